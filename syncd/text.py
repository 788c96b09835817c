"""The one cleaning boundary for text that came from outside syncd: a mirror's report, HTTP
headers, reasons and bodies, registration mails, inventory values, and the text of an exception
that carries any of them. Whatever is stored (SQLite), rendered (the status page, status.json,
metrics), mailed or printed went through `clean` first, where it was made or, for what an older
record holds, at the sink. Pure.

What `clean` does, character class by character class (Unicode general categories):

    =====================================  ===============================================
    lone surrogate (Cs)                    U+FFFD: no encoder (SQLite, UTF-8) can carry it
    tab, newline, CR, U+2028, U+2029       one space: every value is one line
    other C0 and C1 controls (Cc)          removed: a terminal would interpret them
    format characters (Cf): bidi controls  removed: they reorder or hide what is shown
      (U+202A-U+202E, U+2066-U+2069),
      zero-width ones, U+FEFF, tags ...
    anything else                          kept (letters of any script, emoji, private use)
    =====================================  ===============================================

and a value longer than its limit is cut, ending in "…". Clean text is a fixed point:
``clean(clean(t)) == clean(t)``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

MAX_TEXT = 2000  # characters: a value from outside longer than this is cut
_SPACE = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_DROP = frozenset(("Cc", "Cf"))


def clean(text: str, limit: int | None = MAX_TEXT) -> str:
    """Given text from outside, return it as one line fit for every sink: lone surrogates
    replaced, line breaks made spaces, controls and format characters removed, cut to `limit`
    characters (None: no cut) with "…" as the last one."""
    if limit is not None and len(text) > limit:  # cut first: the work stays bounded
        text = text[: limit - 1] + "…" if limit > 0 else ""
    if text.isprintable():  # no control, format, surrogate or line break: the common case
        return text
    return "".join(_char(c) for c in text)


def _char(c: str) -> str:
    if c.isprintable():
        return c
    if c in _SPACE:
        return " "
    category = unicodedata.category(c)
    if category in _DROP:
        return ""
    if category == "Cs":
        return "\ufffd"
    return c  # not printable, yet harmless: a non-ASCII space (Zs), an unassigned code point


def clean_tree(value: Any, limit: int | None = None) -> Any:
    """Given a JSON-like value (dicts, lists, tuples, scalars), return it with every string
    in it (keys too) cleaned: for a document written from values an older record may hold."""
    if isinstance(value, str):
        return clean(value, limit)
    if isinstance(value, dict):
        return {clean_tree(k, limit): clean_tree(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_tree(v, limit) for v in value]
    return value


def internal_error(err: BaseException, limit: int | None = 300) -> str:
    """The one spelling of an unexpected exception in a mirror's outcome, a check's reason or a
    DNS note: ``internal error: Class: message``, cleaned (the message may quote a mirror)."""
    return clean(f"internal error: {type(err).__name__}: {err}", limit)
