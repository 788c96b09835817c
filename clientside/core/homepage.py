"""The mirror's own home page (``TO/index.html``): the template the source ships, its slots,
the page rendered from it, and since when the release it shows is served. Pure.

The source ships the template as ``index-template.txt`` at the top of its tree; a sync carries
it like any other file (so a hub hands it on to its second wave) and it is served as it is,
as plain text. The language is a small part of mustache:

    {{name}}                 the value of the slot `name`, HTML-escaped, quotes included (so
                             it is safe in text and in a quoted attribute)
    {{#name}} ... {{/name}}  what is between, only when `name` has a value
    {{^name}} ... {{/name}}  what is between, only when it has none

Any other ``{{``, an unknown slot, a section left open or closed twice, a template larger than
``MAX_TEMPLATE`` or not UTF-8 is an error: the page is then rendered from ``BUILTIN_TEMPLATE``
and the report warns. A value is put in after the template is parsed: it is never read as
the template, and it never carries markup (``html.escape``); a URL slot only ever holds an
``http``/``https`` URL (``core.pagekeys``).
"""

import html
import json
import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from clientside.core.pagekeys import PageSettings, clean_text

TEMPLATE_NAME = "index-template.txt"
LOGO_NAME = "local_logo.png"
MAX_TEMPLATE = 64 * 1024  # bytes
MAX_DEPTH = 8  # sections within sections
SLOTS = (
    "mirror_name",
    "country",
    "sponsor",
    "sponsor_url",
    "contact",
    "logo",
    "release",
    "served_since",
    "daily",
    "main",
    "bytecode",
)
RELEASE_ORDER = ("daily", "main", "bytecode")

BUILTIN_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" \
content="default-src 'none'; img-src 'self'; style-src 'unsafe-inline'">
<title>ClamAV database mirror {{mirror_name}}</title>
<style>
body { font-family: sans-serif; max-width: 42em; margin: 2em auto; padding: 0 1em; }
img { max-width: 16em; max-height: 8em; }
dt { font-weight: bold; margin-top: 0.5em; }
</style>
</head>
<body>
{{#logo}}<p><img src="{{logo}}" alt="{{sponsor}}"></p>{{/logo}}
<h1>ClamAV database mirror {{mirror_name}}</h1>
<p>This server is one of the mirrors that serve ClamAV's virus databases to freshclam.</p>
<dl>
{{#country}}<dt>Country</dt><dd>{{country}}</dd>{{/country}}
{{#sponsor}}<dt>Sponsored by</dt>
<dd>{{#sponsor_url}}<a href="{{sponsor_url}}" rel="noopener noreferrer">{{sponsor}}</a>\
{{/sponsor_url}}{{^sponsor_url}}{{sponsor}}{{/sponsor_url}}</dd>{{/sponsor}}
{{#contact}}<dt>Contact</dt><dd>{{contact}}</dd>{{/contact}}
<dt>Release</dt>
<dd>{{#release}}{{release}}, served here since {{served_since}}{{/release}}\
{{^release}}no release is served yet{{/release}}</dd>
</dl>
</body>
</html>
"""


class TemplateError(Exception):
    """The template cannot be used; the message names the problem (and the line)."""


class Slot(NamedTuple):
    name: str


class Section(NamedTuple):
    name: str
    inverted: bool  # ``{{^name}}``: shown when the slot has no value
    body: Tuple["Node", ...]


Node = Union[str, Slot, Section]

_TAG = re.compile(r"\{\{ *([#^/]?) *([a-z_]{1,32}) *\}\}")


def decode_template(data: bytes) -> str:
    """Given the template file's bytes (at most ``MAX_TEMPLATE`` + 1 of them), return its text;
    raise TemplateError when it is too large, not UTF-8, or holds a NUL."""
    if len(data) > MAX_TEMPLATE:
        raise TemplateError(f"larger than {MAX_TEMPLATE // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"not UTF-8 (at byte {exc.start})") from None
    if "\x00" in text:
        raise TemplateError("holds a NUL character")
    return text[1:] if text.startswith("\ufeff") else text


def parse_template(text: str) -> Tuple[Node, ...]:
    """Given the template's text, return its nodes; raise TemplateError naming the line of the
    first problem."""
    stack: List[Tuple[Optional[str], bool, List[Node]]] = [(None, False, [])]
    pos = 0
    line = 1
    while True:
        start = text.find("{{", pos)
        if start < 0:
            break
        line += text.count("\n", pos, start)  # counted once: linear in the template
        m = _TAG.match(text, start)
        if not m:
            raise TemplateError(f"line {line}: '{{{{' starts no slot (write {{{{name}}}})")
        kind, name = m.group(1), m.group(2)
        if name not in SLOTS:
            raise TemplateError(f"line {line}: unknown slot {name!r} (known: {', '.join(SLOTS)})")
        if text[pos:start]:
            stack[-1][2].append(text[pos:start])
        pos = m.end()
        if kind in ("#", "^"):
            if len(stack) > MAX_DEPTH:
                raise TemplateError(f"line {line}: sections nested deeper than {MAX_DEPTH}")
            stack.append((name, kind == "^", []))
        elif kind == "/":
            open_name, inverted, body = stack[-1]
            if open_name != name:
                raise TemplateError(f"line {line}: {{{{/{name}}}}} closes no open section")
            stack.pop()
            stack[-1][2].append(Section(name, inverted, tuple(body)))
        else:
            stack[-1][2].append(Slot(name))
    if text[pos:]:
        stack[-1][2].append(text[pos:])
    if len(stack) > 1:
        raise TemplateError(f"section {{{{#{stack[-1][0]}}}}} is never closed")
    return tuple(stack[0][2])


def render(nodes: Tuple[Node, ...], values: Mapping[str, str]) -> str:
    """Given parsed nodes and each slot's value ('' for none), return the page."""
    out: List[str] = []
    _render(nodes, values, out)
    return "".join(out)


def _render(nodes: Tuple[Node, ...], values: Mapping[str, str], out: List[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Slot):
            out.append(html.escape(values.get(node.name, ""), quote=True))
        elif bool(values.get(node.name)) != node.inverted:
            _render(node.body, values, out)


BUILTIN_NODES = parse_template(BUILTIN_TEMPLATE)


class PageFacts(NamedTuple):
    """What the page shows besides the config: this host's name (when MIRROR_NAME is unset),
    whether the admin's logo is there, the versions served and since when."""

    host_name: str
    logo: bool
    versions: Mapping[str, int]
    served_since: str


def slot_values(settings: PageSettings, facts: PageFacts) -> Dict[str, str]:
    """Return every slot's value: '' where there is none (the contact unless it is to be
    shown, the logo unless ``local_logo.png`` is there)."""
    sponsor_url = settings.sponsor_url or ""
    sponsor = settings.sponsor or ""
    if sponsor_url and not sponsor:  # a link with no name: its host names it
        sponsor = sponsor_url.split("//", 1)[-1].split("/", 1)[0]
    ordered = [db for db in RELEASE_ORDER if db in facts.versions]
    ordered += sorted(db for db in facts.versions if db not in RELEASE_ORDER)
    values = {
        "mirror_name": settings.mirror_name or clean_text(facts.host_name)[:253],
        "country": settings.country or "",
        "sponsor": sponsor,
        "sponsor_url": sponsor_url,
        "contact": (settings.contact or "") if settings.show_contact else "",
        "logo": LOGO_NAME if facts.logo else "",
        "release": ", ".join(f"{db} {facts.versions[db]}" for db in ordered),
        "served_since": facts.served_since if ordered else "",
    }
    for db in RELEASE_ORDER:
        values[db] = str(facts.versions[db]) if db in facts.versions else ""
    return values


def render_page(
    template: Optional[bytes], settings: PageSettings, facts: PageFacts
) -> Tuple[str, Optional[str]]:
    """Given the template file's bytes (None when the source ships none), return the page and
    a warning when the built-in template had to be used instead."""
    values = slot_values(settings, facts)
    if template is None:
        return render(BUILTIN_NODES, values), (
            f"home page: the source ships no {TEMPLATE_NAME}; the built-in template was used"
        )
    try:
        nodes = parse_template(decode_template(template))
    except TemplateError as exc:
        return render(BUILTIN_NODES, values), (
            f"home page: {TEMPLATE_NAME}: {exc}; the built-in template was used"
        )
    return render(nodes, values), None


_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")


def rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def served_since(
    previous: Optional[str], versions: Mapping[str, int], now: datetime
) -> Tuple[str, str]:
    """Given the state the last page was rendered with (its JSON text, or None), the versions
    served now and the time, return since when these versions are served (the previous time
    when they are the same, else ``now``) and the state to keep."""
    since = rfc3339(now)
    old: Any = None
    if previous is not None:
        try:
            old = json.loads(previous)
        except ValueError:
            old = None
    if isinstance(old, dict) and old.get("versions") == dict(versions):
        kept = old.get("since")
        if isinstance(kept, str) and _STAMP.match(kept):
            since = kept
    return since, json.dumps({"versions": dict(versions), "since": since}, sort_keys=True)
