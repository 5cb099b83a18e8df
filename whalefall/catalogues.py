"""WhaleFall's translation catalogues read without gettext tools: which entries are
untranslated, fuzzy, or lose or invent a placeholder, and whether a compiled ``.mo`` still
says what its ``.po`` says."""

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

# The apps whose strings WhaleFall translates; the top-level templates/ go to whalefall's.
APPS = (
    "whalefall",
    "whalefall/alerts",
    "inventory",
    "accounts",
    "classification",
    "capacity",
    "syncjobs",
)
LANGUAGE = "zh_Hans"

_FIELD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$')
# printf-style named or positional directives and str.format fields; "%%" is a literal.
_PLACEHOLDER = re.compile(
    r"%\([A-Za-z_]\w*\)[#0\- +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%[sd]|\{\w*\}"
)


@dataclass
class Entry:
    """One message of a ``.po`` file."""

    msgid: str
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def key(self) -> str:
        return f"{self.msgctxt}\x04{self.msgid}" if self.msgctxt else self.msgid


def catalogue_paths(root: Path | None = None, domain: str = "django") -> list[Path]:
    """The ``.po`` files of every app under ``root`` (the project by default)."""
    root = Path(root or settings.BASE_DIR)
    return [root / app / "locale" / LANGUAGE / "LC_MESSAGES" / f"{domain}.po" for app in APPS]


def read_po(path: Path) -> list[Entry]:
    """The entries of a ``.po`` file, header and obsolete (``#~``) entries left out."""
    entries: list[Entry] = []
    for number, block in _blocks(Path(path).read_text(encoding="utf-8")):
        entry, current = Entry(msgid="", line=number), None
        seen_msgid = False
        for line in block:
            if line.startswith("#,"):
                entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            elif match := _FIELD.match(line):
                current, text = match.group(1), ast.literal_eval(match.group(2))
                if current == "msgid":
                    seen_msgid = True
                    entry.msgid = text
                elif current == "msgctxt":
                    entry.msgctxt = text
                elif current == "msgid_plural":
                    entry.msgid_plural = text
                else:
                    entry.msgstr.append(text)
            elif line.startswith('"') and current:
                text = ast.literal_eval(line)
                if current == "msgid":
                    entry.msgid += text
                elif current == "msgctxt":
                    entry.msgctxt = (entry.msgctxt or "") + text
                elif current == "msgid_plural":
                    entry.msgid_plural = (entry.msgid_plural or "") + text
                else:
                    entry.msgstr[-1] += text
        if seen_msgid and entry.msgid:
            entries.append(entry)
    return entries


def _blocks(text: str):
    block, start = [], 1
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if block:
                yield start, block
            block, start = [], number + 1
        elif not line.startswith("#~"):
            block.append(line)
    if block:
        yield start, block


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text.replace("%%", "")))


def problems(path: Path) -> list[str]:
    """What keeps a catalogue from being complete: untranslated or fuzzy entries and
    translations whose placeholders differ from the English ones."""
    found = []
    for entry in read_po(path):
        where = f"{path}:{entry.line}: {entry.msgid!r}"
        if "fuzzy" in entry.flags:
            found.append(f"{where} is fuzzy")
        if not entry.msgstr or not all(entry.msgstr):
            found.append(f"{where} is untranslated")
            continue
        if {"no-python-format", "no-python-brace-format"} & entry.flags:
            continue
        english = placeholders(entry.msgid) | placeholders(entry.msgid_plural or "")
        if entry.msgid_plural is None:
            if placeholders(entry.msgstr[0]) != english:
                found.append(f"{where} has placeholders {placeholders(entry.msgstr[0])}")
        else:
            # Every form may drop the count ("every minute"), none may invent a placeholder,
            # and the last (general) form says all that the English plural says.
            if any(not placeholders(form) <= english for form in entry.msgstr) or (
                placeholders(entry.msgstr[-1]) != placeholders(entry.msgid_plural)
            ):
                found.append(f"{where} has placeholders {[placeholders(f) for f in entry.msgstr]}")
    return found


def stale_compiled(path: Path) -> list[str]:
    """Messages on which the ``.mo`` next to the ``.po`` disagrees with it (compile again)."""
    mo = Path(path).with_suffix(".mo")
    if not mo.exists():
        return [f"{mo} is missing"]
    with mo.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog
    stale = []
    for entry in read_po(path):
        if entry.msgid_plural is None:
            wanted = {entry.key: entry.msgstr[0]}
        else:
            wanted = {(entry.key, n): text for n, text in enumerate(entry.msgstr)}
        stale += [f"{mo}: {key!r}" for key, text in wanted.items() if compiled.get(key) != text]
    return stale
