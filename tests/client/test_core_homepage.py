"""The mirror's home page, pure: the config keys, the template language, the escaping, and
since when a release is served. Hostile values and templates, and the property that no value
ever yields markup outside the template's slots."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clientside.core.config import build_config, parse_config_text
from clientside.core.homepage import (
    BUILTIN_NODES,
    BUILTIN_TEMPLATE,
    MAX_TEMPLATE,
    SLOTS,
    TEMPLATE_NAME,
    PageFacts,
    TemplateError,
    decode_template,
    parse_template,
    render,
    render_page,
    served_since,
    slot_values,
)
from clientside.core.pagekeys import PageSettings, page_settings, url_problem

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "deploy" / "examples" / TEMPLATE_NAME
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)  # an injected clock, never aged (noqa: date)
FACTS = PageFacts("host.example", True, {"daily": 28034, "main": 62, "bytecode": 339}, "T")


class Shape(HTMLParser):
    """The markup of a page: every tag with its attribute names, comments and declarations;
    the URLs of its links and images aside."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shape: list[tuple[str, ...]] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.shape.append(("start", tag, *sorted(a for a, _ in attrs)))
        self.urls += [v or "" for a, v in attrs if a in ("href", "src")]

    def handle_endtag(self, tag: str) -> None:
        self.shape.append(("end", tag))

    def handle_comment(self, data: str) -> None:
        self.shape.append(("comment",))

    def handle_decl(self, decl: str) -> None:
        self.shape.append(("decl", decl))

    def handle_pi(self, data: str) -> None:
        self.shape.append(("pi",))


def shape(page: str) -> Shape:
    parser = Shape()
    parser.feed(page)
    parser.close()
    return parser


def settings_of(**values: str) -> PageSettings:
    page, _ = page_settings(values)
    return page


# -- the config keys -------------------------------------------------------------------------


def test_keys_from_the_config_file() -> None:
    text = (
        "TO=/srv/clamav\nMIRROR_NAME=clamav.example.org\nCOUNTRY=Poland\n"
        'SPONSOR="Example Hosting"\nSPONSOR_URL=https://hosting.example/\n'
        "CONTACT='Jane <[email protected]>'\nSHOW_CONTACT=yes\n"
    )
    cfg = build_config(parse_config_text(text), home="/home/c")
    assert cfg.warnings == ()
    assert cfg.page == PageSettings(
        "clamav.example.org",
        "Poland",
        "Example Hosting",
        "https://hosting.example/",
        "Jane <[email protected]>",
        True,
    )
    assert build_config(parse_config_text("TO=/srv/x\n"), home="/h").page == PageSettings()


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "https:javascript:alert(1)",
        "//evil.example/",
        "evil.example",
        "https://",
        "https://user:[email protected]/",
        "https://a.example/ onmouseover=alert(1)",
        "https://a.example/\u202e",
        "http://a.example:notaport/",
        "https://[::1/",
        "https://a.example/" + "a" * 2000,
    ],
)
def test_a_link_is_only_ever_http_or_https(url: str) -> None:
    assert url_problem(url) is not None
    page, warnings = page_settings({"SPONSOR": "S", "SPONSOR_URL": url})
    assert page.sponsor_url is None and page.sponsor == "S"
    assert len(warnings) == 1 and warnings[0].startswith("SPONSOR_URL: ")
    assert "javascript" not in render(BUILTIN_NODES, slot_values(page, FACTS)).lower()


def test_a_good_link_is_kept() -> None:
    for url in ("https://a.example/", "HTTP://a.example:8080/x?q=1&r=\"'<>", "https://bü.example"):
        assert url_problem(url) is None, url


def test_text_is_cleaned_and_bounded() -> None:
    page, warnings = page_settings(
        {
            "MIRROR_NAME": "m\u202eirror\u200b",
            "COUNTRY": "x" * 65,
            "SPONSOR": "Ünïcödé 日本 🙂\x85",
            "CONTACT": "c" * 201,
            "SHOW_CONTACT": "maybe",
        }
    )
    assert page.mirror_name == "mirror"
    assert page.country is None and page.contact is None and not page.show_contact
    assert page.sponsor == "Ünïcödé 日本 🙂"
    assert [w.split(":")[0] for w in warnings] == ["COUNTRY", "CONTACT", "SHOW_CONTACT"]


def test_the_contact_is_shown_only_when_the_admin_wants_it() -> None:
    hidden = slot_values(settings_of(CONTACT="[email protected]"), FACTS)
    assert hidden["contact"] == ""
    assert "[email protected]" not in render(BUILTIN_NODES, hidden)
    shown = slot_values(settings_of(CONTACT="[email protected]", SHOW_CONTACT="yes"), FACTS)
    assert "[email protected]" in render(BUILTIN_NODES, shown)
    _, warnings = page_settings({"SHOW_CONTACT": "yes"})
    assert warnings == ["SHOW_CONTACT=yes but CONTACT is not set: no contact is shown"]


# -- the template ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{{nope}}", "line 1: unknown slot 'nope'"),
        ("a\n{{ mirror-name }}", "line 2: '{{' starts no slot"),
        ("{{{mirror_name}}}", "line 1: '{{' starts no slot"),
        ("{{#logo}}x", "section {{#logo}} is never closed"),
        ("{{/logo}}", "line 1: {{/logo}} closes no open section"),
        ("{{#logo}}{{#country}}{{/logo}}{{/country}}", "{{/logo}} closes no open section"),
        ("{{#logo}}" * 9 + "{{/logo}}" * 9, "nested deeper than 8"),
        ("{{", "'{{' starts no slot"),
    ],
)
def test_a_broken_template_is_an_error_naming_its_line(text: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(problem)):
        parse_template(text)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xfe<html>", "not UTF-8 (at byte 0)"),
        (b"<p>\xc3</p>", "not UTF-8 (at byte 3)"),
        (b"a\x00b", "holds a NUL"),
        (b"x" * (MAX_TEMPLATE + 1), "larger than 64 KiB"),
    ],
)
def test_a_template_that_is_not_text_falls_back(data: bytes, problem: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(problem)):
        decode_template(data)
    page, warning = render_page(data, PageSettings(), FACTS)
    assert page == render(BUILTIN_NODES, slot_values(PageSettings(), FACTS))
    assert warning is not None and problem in warning and "built-in template" in warning


def test_no_template_is_the_builtin_with_a_warning() -> None:
    page, warning = render_page(None, PageSettings(), FACTS)
    assert "<h1>ClamAV database mirror host.example</h1>" in page
    assert warning == (
        "home page: the source ships no index-template.txt; the built-in template was used"
    )


def test_sections_and_slots() -> None:
    nodes = parse_template(
        "\ufeff{{#sponsor_url}}<a href='{{ sponsor_url }}'>{{sponsor}}</a>{{/sponsor_url}}"
        "{{^sponsor_url}}{{sponsor}}{{/sponsor_url}}|{{release}}|{{daily}}|{{^contact}}-{{/contact}}"
    )
    with_link = slot_values(settings_of(SPONSOR="S&Co", SPONSOR_URL="https://s.example/"), FACTS)
    assert render(nodes, with_link) == (
        "\ufeff<a href='https://s.example/'>S&amp;Co</a>|daily 28034, main 62, bytecode 339|28034|-"
    )
    assert render(nodes, slot_values(settings_of(SPONSOR="S"), FACTS)).startswith("\ufeffS|")
    # decoding drops the byte order mark
    assert decode_template("\ufeff{{daily}}".encode()) == "{{daily}}"
    # a link with no sponsor named: its host names it
    assert slot_values(settings_of(SPONSOR_URL="https://s.example/x"), FACTS)["sponsor"] == (
        "s.example"
    )


def test_a_value_is_never_read_as_the_template() -> None:
    values = slot_values(settings_of(SPONSOR="{{#logo}}{{contact}}{{/logo}}"), FACTS)
    assert render(parse_template("{{sponsor}}"), values) == "{{#logo}}{{contact}}{{/logo}}"


def test_hostile_values_are_escaped() -> None:
    page_cfg = settings_of(
        MIRROR_NAME="</title><script>alert(1)</script>",
        COUNTRY='"><img src=x onerror=alert(1)>',
        SPONSOR="'; alert(1); '",
        SPONSOR_URL='https://a.example/"onmouseover="alert(1)',
        CONTACT="<a href='javascript:alert(1)'>x</a>",
        SHOW_CONTACT="yes",
    )
    page = render(BUILTIN_NODES, slot_values(page_cfg, FACTS))
    assert "<script>" not in page and "<img src=x" not in page and "<a href='javascript" not in page
    assert "&lt;/title&gt;&lt;script&gt;" in page
    assert 'href="https://a.example/&quot;onmouseover=&quot;alert(1)"' in page
    harmless = render(BUILTIN_NODES, slot_values(benign(page_cfg), FACTS))
    assert shape(page).shape == shape(harmless).shape


def test_the_logo_only_when_it_is_there() -> None:
    shown = render(BUILTIN_NODES, slot_values(PageSettings(), FACTS))
    assert '<img src="local_logo.png"' in shown
    gone = render(BUILTIN_NODES, slot_values(PageSettings(), FACTS._replace(logo=False)))
    assert "<img" not in gone


def test_nothing_served_yet() -> None:
    page = render(BUILTIN_NODES, slot_values(PageSettings(), FACTS._replace(versions={})))
    assert "no release is served yet" in page and "served here since" not in page


def test_the_example_the_source_ships_is_the_builtin() -> None:
    """deploy/examples/index-template.txt is what the team copies into the source tree."""
    assert EXAMPLE.read_text(encoding="utf-8") == BUILTIN_TEMPLATE
    assert set(SLOTS) >= {n for n in _slot_names(BUILTIN_TEMPLATE)}


def _slot_names(text: str) -> list[str]:
    return re.findall(r"\{\{[#^/]?([a-z_]+)\}\}", text)


# -- since when ------------------------------------------------------------------------------


def test_served_since_moves_only_with_the_release() -> None:
    first, state = served_since(None, {"daily": 1}, NOW)
    assert first == "2030-01-02T03:04:05Z"
    later = NOW + timedelta(hours=3)
    assert served_since(state, {"daily": 1}, later)[0] == first
    assert served_since(state, {"daily": 2}, later)[0] == "2030-01-02T06:04:05Z"
    for broken in ("", "[]", "{", '{"versions": {"daily": 1}, "since": "<b>"}', "\udcff"):
        assert served_since(broken, {"daily": 1}, later)[0] == "2030-01-02T06:04:05Z"


# -- the property ----------------------------------------------------------------------------

PIECES = st.one_of(
    st.sampled_from([*"<>\"'&=/;:{}#^ \\`!-\u202e\x85\x9b", "javascript:", "{{", "}}", "<!--"]),
    st.characters(codec="utf-8"),
)
TEXT = st.lists(PIECES, max_size=30).map("".join)
URL = st.one_of(
    TEXT,
    st.builds(
        lambda s, t: s + t, st.sampled_from(["https://", "http://", "javascript:", "//"]), TEXT
    ),
)


def benign(page: PageSettings) -> PageSettings:
    """The same settings with every value that is there replaced by a harmless one."""
    return PageSettings(
        *("x" if v else v for v in page[:3]),
        "https://x.example/" if page.sponsor_url else None,
        "x" if page.contact else None,
        page.show_contact,
    )


@settings(max_examples=300, deadline=None)
@given(
    name=TEXT,
    country=TEXT,
    sponsor=TEXT,
    url=URL,
    contact=TEXT,
    show=st.sampled_from(["yes", "no"]),
    logo=st.booleans(),
    template=st.sampled_from(["builtin", "example"]),
)
def test_no_value_yields_markup_outside_the_slots(
    name: str,
    country: str,
    sponsor: str,
    url: str,
    contact: str,
    show: str,
    logo: bool,
    template: str,
) -> None:
    page_cfg, _ = page_settings(
        {
            "MIRROR_NAME": name,
            "COUNTRY": country,
            "SPONSOR": sponsor,
            "SPONSOR_URL": url,
            "CONTACT": contact,
            "SHOW_CONTACT": show,
        }
    )
    nodes = BUILTIN_NODES if template == "builtin" else parse_template(EXAMPLE.read_text())
    facts = FACTS._replace(logo=logo)
    page = shape(render(nodes, slot_values(page_cfg, facts)))
    assert page.shape == shape(render(nodes, slot_values(benign(page_cfg), facts))).shape
    for link in page.urls:
        assert link == "local_logo.png" or link.lower().startswith(("https://", "http://"))
    for value in slot_values(page_cfg, facts).values():
        assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in value)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["{{", "}}", "{{#", "{{^", "{{/", "logo", "daily", "x", " ", "<"]),
        max_size=40,
    ).map("".join)
)
def test_any_template_text_parses_or_is_a_template_error(text: str) -> None:
    try:
        nodes = parse_template(text)
    except TemplateError:
        return
    render(nodes, slot_values(PageSettings(), FACTS))
