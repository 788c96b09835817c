"""Hints for names that were mistyped: "did you mean ...?" from the names that exist. Pure."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, known: Iterable[str]) -> str | None:
    """Return the known name closest to `word` when one is close enough to be a typo, else None."""
    matches = difflib.get_close_matches(word, sorted(set(known)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """Return ``"did you mean 'NAME'? "`` for the closest known name, or "" when none is close."""
    match = closest(word, known)
    return f"did you mean {match!r}? " if match else ""
