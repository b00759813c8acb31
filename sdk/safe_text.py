"""Text that reaches a terminal or a file name from untrusted input (project rows, prompts, names).

Names and prompts may not contain NUL or other control characters (they are refused at input with
:func:`refuse_controls`); rows written by something else are escaped on output with :func:`printable`, so a
crafted name cannot move the cursor, recolour or clear a user's terminal.
"""
from __future__ import annotations

import re
import unicodedata

from sdk.errors import InvalidRequest

# C0 and C1 controls and DEL, except tab and newline which multi-line prompts may hold
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# bidi overrides and isolates make text display in another order than it reads
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


def find_control(text: str) -> str | None:
    """The first control (or bidi override) character in ``text``, or None."""
    m = _CONTROL.search(text) or _BIDI.search(text)
    return m.group(0) if m else None


def refuse_controls(text: str, field: str, what: str | None = None) -> str:
    """Return ``text`` unchanged, or raise :class:`InvalidRequest` naming the field and the character."""
    ch = find_control(text)
    if ch is not None:
        name = unicodedata.name(ch, f"U+{ord(ch):04X}")
        raise InvalidRequest(f"The {what or field} contains a control character ({name}, {ch!r}).",
                             hint="Remove it: names and prompts take printable text only.", field=field)
    return text


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with control and bidi characters shown as escapes (``\\x1b``), safe to print on a terminal."""
    s = str(text)

    def esc(m: re.Match[str]) -> str:
        return m.group(0).encode("unicode_escape").decode("ascii")

    if keep_newlines:
        return _BIDI.sub(esc, _CONTROL.sub(esc, s))
    return _BIDI.sub(esc, _CONTROL.sub(esc, s.replace("\n", "\\n").replace("\t", "\\t")))
