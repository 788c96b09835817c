"""Input generators for the fuzz suite: raw noise mixed with near-valid structure.

Pure noise rarely gets past a parser's first check; each generator here also mutates a valid
example (field swaps, truncation, odd digits, unicode look-alikes), which reaches deeper code.
"""

from __future__ import annotations

from hypothesis import strategies as st

# characters that tend to break parsers: separators, quotes, unicode digits and spaces
TRICKY = (
    ":=\"' \t\n\r\\$`;|&<>#,.-_+0123456789\x00\x0b\x0c\x1b\x7f\x85\xa0"
    "\u00b2\u0660\u0966\uff10\u2028\u2029\u200b\u202e\ufeff\udcff"
)


def tricky_text(max_size: int = 200) -> st.SearchStrategy[str]:
    return st.text(
        st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")), max_size=max_size
    )


def mutate(valid: str, max_size: int = 200) -> st.SearchStrategy[str]:
    """Return strings made from `valid` by splicing, truncating and inserting tricky text."""

    @st.composite
    def _m(draw: st.DrawFn) -> str:
        text = valid
        for _ in range(draw(st.integers(0, 4))):
            i = draw(st.integers(0, len(text)))
            j = draw(st.integers(i, min(len(text), i + 12)))
            text = text[:i] + draw(tricky_text(12)) + text[j:]
        return text[: max_size * 4]

    return st.one_of(_m(), tricky_text(max_size))
