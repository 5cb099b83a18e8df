"""OpenAPI post-processing: every operation documents the error envelope for the errors it
can answer with, so generated clients and schema-driven tests know its shape."""

_FIELD_ERROR = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "description": "`field`, `items[2].name`, or empty."},
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
    "required": ["path", "code", "message"],
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "The error envelope of every 4xx and 5xx answer.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "`validation_error`, `not_found`, …"},
                "message": {"type": "string"},
                "fields": {"type": "array", "items": _FIELD_ERROR},
                "request_id": {
                    "type": "string",
                    "description": "Equals the X-Request-ID header and the id in the logs.",
                },
            },
            "required": ["code", "message", "fields", "request_id"],
        }
    },
    "required": ["error"],
}

_DESCRIPTIONS = {
    "400": "Invalid request: see `error.fields`.",
    "401": "No valid credentials (token missing, invalid, expired or revoked).",
    "403": "Not allowed: a permission is missing or the token is read-only.",
    "404": "No such object, or it is outside your instance scope.",
    "429": "Too many requests: retry after `Retry-After` seconds.",
    "500": "Internal error; quote `request_id`.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: the envelope on every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "put", "patch", "post", "delete", "head", "options"):
                continue
            responses = operation.setdefault("responses", {})
            codes = ["401", "403", "429", "500"]
            if method != "get" or operation.get("parameters"):
                codes.append("400")
            if "{" in path:
                codes.append("404")
            for code in codes:
                responses.setdefault(
                    code, {"description": _DESCRIPTIONS[code], "content": reference}
                )
    return result
