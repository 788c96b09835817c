"""The status site in a real browser (Chromium's headless shell, Debian's
``chromium-headless-shell``), at a desktop width and a phone's: screenshots into
build/screenshots/, no horizontal overflow, no wrapped state cell, and no hostile string that
becomes markup once the browser has parsed the page.

Why the headless shell and not ``chromium --headless``: the new headless mode keeps a window at
least 500 px wide, so a 390 px screenshot is a 500 px layout cut off (measured: innerWidth 500
with --window-size=390,...). The shell lays out at the width asked for.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from syncd.statuspage.site import CSP, page_name, render_site
from tests.statuspage.sitedata import hostile_mirror, sample_site

ROOT = Path(__file__).parents[2]
SHOTS = ROOT / "build" / "screenshots"
WIDTHS = (1280, 390)  # a laptop, a phone (iPhone 12 to 15: 390 CSS px)

# Measures the page as laid out and writes the result into the DOM, for --dump-dom to carry out.
# Only the test's copy of a page carries it (the published pages have no script, and a CSP
# that forbids any).
CHECK = """<script>
(function () {
  var doc = document.documentElement, out = {inner: innerWidth, scroll: doc.scrollWidth,
    states: 0, wrapped: [], truncated: []};
  document.querySelectorAll('.st').forEach(function (el) {
    out.states += 1;
    var lh = parseFloat(getComputedStyle(el).lineHeight);
    var h = el.getBoundingClientRect().height;
    if (h > lh * 1.5) out.wrapped.push(el.textContent + ' ' + h + '>' + lh);
    if (el.scrollWidth > el.clientWidth + 1) out.truncated.push(el.textContent);
  });
  // a state cell's content (not the cell: a cell is as tall as its row) is one line high
  document.querySelectorAll('td[data-label="State"]').forEach(function (td) {
    var range = document.createRange();
    range.selectNodeContents(td);
    var h = range.getBoundingClientRect().height;
    var lh = parseFloat(getComputedStyle(td.querySelector('.st')).lineHeight);
    if (h > lh * 1.5) out.wrapped.push('cell ' + td.textContent + ' ' + h + '>' + lh);
  });
  doc.setAttribute('data-check', JSON.stringify(out));
})();
</script>"""


@pytest.fixture(scope="module")
def browser() -> str:
    found = shutil.which("chromium-headless-shell")
    assert found, (
        "Chromium's headless shell is missing: run scripts/setup "
        "(Debian package chromium-headless-shell)"
    )
    return found


def _run(browser: str, tmp: Path, width: int, height: int, *args: str) -> str:
    # the page renders from the injected now: the browser needs no shifted clock (and
    # libfaketime, which scripts/test preloads for the date-sensitive rerun, is not for it)
    env = {
        k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")
    }
    argv = [
        browser,
        "--no-sandbox",  # root in CI: the sandbox refuses to start as root
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={width},{height}",
        *args,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _write(site_dir: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = site_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _measure(browser: str, tmp: Path, page: Path, width: int) -> dict[str, object]:
    probe = page.with_name(page.stem + ".check.html")
    text = page.read_text()
    text = text.replace(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', "")
    probe.write_text(text.replace("</body>", CHECK + "</body>"))
    dom = _run(browser, tmp, width, 900, "--dump-dom", probe.as_uri())
    found = re.search(r'data-check="([^"]*)"', dom)
    assert found, f"the check did not run: {dom[:500]}"
    result: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return result


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def _elements(dom: str) -> list[tuple[str, dict[str, str | None]]]:
    """The elements of the DOM the browser built (as --dump-dom serializes it)."""
    parser = _Elements()
    parser.feed(dom)
    parser.close()
    return parser.found


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_overview_and_mirror_page_read_well_on_a_laptop_and_a_phone(
    browser: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = sample_site()
    files = render_site(site)
    _write(tmp_path / "site", files)
    overview = tmp_path / "site" / "index.html"
    mirror = tmp_path / "site" / page_name(site.mirrors[0].status.name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        for name, page, height in (("overview", overview, 1400), ("mirror", mirror, 2600)):
            shot = SHOTS / f"{name}-{width}.png"
            shot.unlink(missing_ok=True)
            _run(browser, tmp_path, width, height, f"--screenshot={shot}", page.as_uri())
            assert _png_size(shot) == (width, height)
            with capsys.disabled():  # into the log whatever pytest captures
                print(f"\nscreenshot: {shot}")
            m = _measure(browser, tmp_path, page, width)
            assert m["inner"] == width, m
            assert m["scroll"] <= m["inner"], f"{name} at {width} px overflows: {m}"
            assert m["states"], m  # the check found the state cells
            assert m["wrapped"] == [], f"{name} at {width} px wraps state cells: {m}"
            assert m["truncated"] == [], f"{name} at {width} px cuts state cells: {m}"


def test_hostile_strings_stay_text_in_the_browser_and_do_not_break_the_layout(
    browser: str, tmp_path: Path
) -> None:
    site = sample_site(hostile_mirror())
    files = render_site(site)
    _write(tmp_path / "site", files)
    pages = [
        tmp_path / "site" / "index.html",
        tmp_path / "site" / page_name(site.mirrors[-1].status.name),
    ]
    for page in pages:
        # the page as published (its CSP kept), parsed by the browser: no element came of
        # the strings, so no script, no event handler, no second svg of the attacker's
        dom = _run(browser, tmp_path, 1280, 900, "--dump-dom", page.as_uri())
        elements = _elements(dom)
        assert "script" not in {tag for tag, _ in elements}
        assert not [(t, k) for t, attrs in elements for k in attrs if k.startswith("on")]
        assert sum(t == "svg" for t, _ in elements) == page.read_text().count("<svg ")
        hrefs = [a.get("href") or "" for t, a in elements if t == "a"]
        assert hrefs and not [h for h in hrefs if h.lower().startswith("javascript")]
        for width in WIDTHS:
            m = _measure(browser, tmp_path, page, width)
            assert m["scroll"] <= m["inner"], f"{page.name} at {width} px overflows: {m}"
            assert m["wrapped"] == [], f"{page.name} at {width} px wraps state cells: {m}"
