"""Text from outside (the broker, scraped pages, the network) made safe to show in a terminal.

Worker names, queue names, job descriptions, error texts and page titles are data. Printed raw,
an ESC sequence in one of them clears the screen or plants a hyperlink, and a bidi override
reorders what a person reads. `printable` keeps every visible character as it is and replaces
each control or formatting character with a visible escape (`\\x1b`, `\\u202e`), so the text is
shown faithfully and inertly. Rich markup is a separate concern: the console layer prints such
text with `markup=False` or inside a `rich.text.Text`, never as a markup string.

`--json` output never goes through here: JSON's own escaping already keeps it exact and inert.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories never printed as they are: controls (C0, C1, DEL), format characters
#: (bidi overrides and isolates, zero-width joiners), line/paragraph separators, unassigned,
#: private use and surrogates.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"})


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """`value` as text with every control and formatting character shown as a visible escape.

    With `keep_newlines`, line feeds stay line feeds (a traceback keeps its lines); tabs always do.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char == "\t" or (keep_newlines and char == "\n"):
            out.append(char)
        elif unicodedata.category(char) in _HIDDEN_CATEGORIES:
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)


def as_text(raw: object, errors: str = "strict") -> str:
    """A broker reply (a member, a field's value) as text: bytes decoded as UTF-8, a str as it is.

    rq.utils.as_text, for what redis-py's types say a reply may be (bytes or str, or a tuple where
    scores were asked for) on a client without decode_responses; `errors="replace"` for text that is
    only shown. Anything else is a caller's mistake.
    """
    if isinstance(raw, bytes):
        return raw.decode(errors=errors)
    if isinstance(raw, str):
        return raw
    raise TypeError(f"a broker reply is bytes or str, not {type(raw).__name__}")
