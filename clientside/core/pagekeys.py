"""The config keys of the mirror's home page (``MIRROR_NAME``, ``COUNTRY``, ``SPONSOR``,
``SPONSOR_URL``, ``CONTACT``, ``SHOW_CONTACT``), cleaned and checked. Pure.

Every key is optional and only decorates the page: a value that cannot be used is left out
of the page with a warning (log, report, ``--doctor``), never a config error, so that a
sponsor's link can never stop the databases. Text is cleaned once here (controls and format
characters, the bidi overrides among them, removed); it is escaped where it is rendered
(``core.homepage``). A link is shown only when it is an ``http``/``https`` URL with a host.
"""

import unicodedata
from typing import Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

PAGE_NAME = "index.html"  # the page, at the top of TO: the client's own, never the source's
PAGE_KEYS = ("MIRROR_NAME", "COUNTRY", "SPONSOR", "SPONSOR_URL", "CONTACT", "SHOW_CONTACT")

# characters of each text key (after cleaning); a longer value is not shown
TEXT_LIMITS: Dict[str, int] = {
    "MIRROR_NAME": 253,  # a host name at most
    "COUNTRY": 64,
    "SPONSOR": 200,
    "CONTACT": 200,
}
MAX_URL = 2000
_YES = ("yes", "true", "1", "on")
_NO = ("no", "false", "0", "off", "")


class PageSettings(NamedTuple):
    """What the config says about the home page; None where a key is unset or unusable."""

    mirror_name: Optional[str] = None
    country: Optional[str] = None
    sponsor: Optional[str] = None
    sponsor_url: Optional[str] = None
    contact: Optional[str] = None
    show_contact: bool = False


def clean_text(text: str) -> str:
    """Return ``text`` as one line fit for a page: line breaks as spaces, control and format
    characters (bidi overrides, zero-width ones) removed, lone surrogates as U+FFFD."""
    if text.isprintable():
        return text
    out: List[str] = []
    for c in text:
        if c.isprintable():
            out.append(c)
            continue
        category = unicodedata.category(c)
        if c in "\t\n\r\x0b\x0c\x85\u2028\u2029":
            out.append(" ")
        elif category == "Cs":
            out.append("\ufffd")
        elif category not in ("Cc", "Cf"):
            out.append(c)  # not printable yet harmless: a non-ASCII space
    return "".join(out)


def url_problem(url: str) -> Optional[str]:
    """Return why ``url`` may not be a link on the page, or None: only ``http://`` and
    ``https://`` URLs with a host, no user name or password, no spaces or controls."""
    if len(url) > MAX_URL:
        return f"longer than {MAX_URL} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "it holds a space or a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        return f"not a URL ({exc})"
    checks = (
        (parts.scheme.lower() in ("http", "https"), "only http:// and https:// links are shown"),
        (bool(parts.hostname), "it names no host"),
        ("@" not in parts.netloc, "a link with a user name or password is not shown"),
    )
    return next((why for good, why in checks if not good), None)


def page_settings(values: Dict[str, str]) -> Tuple[PageSettings, List[str]]:
    """Given the config's values by key, return the page's settings and a warning for each
    value that is left out (naming the key, the problem and the fix)."""
    warnings: List[str] = []
    text: Dict[str, Optional[str]] = {}
    for key, limit in TEXT_LIMITS.items():
        value = clean_text(values.get(key, "")).strip()
        if len(value) > limit:
            warnings.append(
                f"{key}: longer than {limit} characters; not shown on the home page (shorten it)"
            )
            value = ""
        text[key] = value or None
    url: Optional[str] = values.get("SPONSOR_URL", "").strip() or None
    if url is not None:
        problem = url_problem(url)
        if problem:
            warnings.append(
                f"SPONSOR_URL: {problem}; the sponsor is shown without a link"
                " (write https://... or http://...)"
            )
            url = None
    show = values.get("SHOW_CONTACT", "").strip().lower()
    if show not in _YES + _NO:
        warnings.append("SHOW_CONTACT: expected yes or no; the contact is not shown")
        show = "no"
    if show in _YES and text["CONTACT"] is None:
        warnings.append("SHOW_CONTACT=yes but CONTACT is not set: no contact is shown")
    settings = PageSettings(
        mirror_name=text["MIRROR_NAME"],
        country=text["COUNTRY"],
        sponsor=text["SPONSOR"],
        sponsor_url=url,
        contact=text["CONTACT"],
        show_contact=show in _YES,
    )
    return settings, warnings
