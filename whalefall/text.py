"""Text that PostgreSQL can store and a page can show: the one check for NUL characters and
unpaired surrogates, used by every importer and by the rule language. Pure: no Django."""

import re

# PostgreSQL text and jsonb hold neither NUL nor a lone UTF-16 surrogate (which is not
# Unicode text at all: it cannot even be encoded as UTF-8 for a page).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

NUL = "\x00"


def unstorable_character(text: str) -> str | None:
    """The first character of ``text`` that cannot be stored (NUL or an unpaired
    surrogate), or None when all of it can."""
    match = _UNSTORABLE.search(text)
    return match.group() if match else None


def unstorable_reason(character: str) -> str:
    """Why ``character`` (from :func:`unstorable_character`) cannot be stored, in words."""
    if character == NUL:
        return "a NUL character"
    return f"an unpaired surrogate (U+{ord(character):04X}), which is not valid Unicode"


def printable(text: str) -> str:
    """``text`` with NUL and unpaired surrogates written as escapes: safe to show on a page
    and to encode as UTF-8 (error messages quote what the user gave)."""
    if _UNSTORABLE.search(text) is None:
        return text
    return text.replace(NUL, "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
