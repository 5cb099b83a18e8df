"""Rate limits per token (per user for sessions): ``WHALEFALL_API_RATE``; over it, 429 with
``Retry-After``."""

from rest_framework.throttling import SimpleRateThrottle

from whalefall.models import ApiToken
from whalefall.security import client_ip


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"token:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{client_ip(request._request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
