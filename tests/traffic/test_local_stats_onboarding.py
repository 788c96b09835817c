"""The guide's /local_stats/ at onboarding (``syncd mirrors check``): real nginx answering it
protected (401 with auth_basic, 403), open to the world, or not at all; asked without any
credentials, its open answer a warning that does not fail the check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.nginx import Nginx
from syncd.cli import app
from syncd.files import edit_inventory
from syncd.inventory.edits import text_updated
from syncd.traffic.localstats import judge
from tests.publish.fakes import MirrorFactory

NAME = "clamav.mirror.example.org"
MAIL = (
    "From: jo@mirror.example.org\nSubject: new mirror\n\n"
    f"{NAME} ip address: 127.0.0.1 country: Poland admin: Jo <jo@mirror.example.org>\n"
)


def docroot(tmp_path: Path, name: str, stats: bool) -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "local_test").write_text("Success")
    if stats:
        (root / "local_stats").mkdir()
        (root / "local_stats" / "index.html").write_text("requests per day: 12345\n")
    return root


def protected(tmp_path: Path) -> list[str]:
    users = tmp_path / "htpasswd"
    users.write_text("clamavdb:{PLAIN}the-rsync-password\n")
    return [f'location /local_stats/ {{ auth_basic "stats"; auth_basic_user_file {users}; }}']


@pytest.mark.parametrize(
    ("case", "mark", "detail"),
    [
        ("401", "ok  ", "refuses access without credentials (HTTP 401)"),
        ("403", "ok  ", "refuses access without credentials (HTTP 403)"),
        ("open", "warn", "open to the world without credentials (HTTP 200)"),
        ("none", "ok  ", "no /local_stats/ (optional)"),
    ],
)
def test_mirrors_check_judges_local_stats_without_sending_credentials(
    tmp_path: Path,
    nginx_factory: Callable[..., Nginx],
    fake_mirror: MirrorFactory,
    case: str,
    mark: str,
    detail: str,
) -> None:
    inv = tmp_path / "inventory.toml"
    inv.write_text(LAB_INVENTORY)
    assert (
        CliRunner()
        .invoke(app, ["mirrors", "register", "-", "--inventory", str(inv)], input=MAIL)
        .exit_code
        == 0
    )
    server = fake_mirror("x.test", "ok").sshd
    edit_inventory(inv, lambda t: text_updated(t, NAME, port=server.port))
    locations = {
        "401": protected(tmp_path),
        "403": ["location /local_stats/ { deny all; }"],
    }.get(case, [])
    web = nginx_factory(
        docroot(tmp_path, "www", stats=case != "none"),
        server_names=["database.clamav.net", "db.*.clamav.net", NAME],
        extra_locations=locations,
    )
    result = CliRunner().invoke(
        app, ["mirrors", "check", NAME, "--inventory", str(inv), "--http", web.base_url]
    )
    assert result.exit_code == 0, result.output  # a warning does not hold the mirror back
    assert f"{mark} http: /local_stats/: {detail}" in result.output
    # asked once, as the mirror's own name, and with no credentials at all
    asked = [ln for ln in web.access_log.read_text().splitlines() if "/local_stats/" in ln]
    assert len(asked) == 1 and " - - [" in asked[0] and "ClamAV-MirrorCheck" in asked[0]


def test_answers_that_cannot_tell_are_unclear() -> None:
    assert judge(301, "https://x/login").verdict == "unclear"
    assert judge(500).verdict == "unclear"
    assert judge(None, error="ConnectError: refused").verdict == "unclear"
    hostile = judge(302, "https://evil/\u202e" + "x" * 5000)
    assert hostile.verdict == "unclear" and len(hostile.detail) < 400
    assert "\u202e" not in hostile.detail  # cleaned (syncd.text.clean) before it is shown


def test_hostile_answers_to_local_stats_are_unclear_never_a_crash() -> None:
    """A redirect to a URL httpx cannot build (its InvalidURL is no HTTPError), an endless
    body (never read: the status is the answer), a closed port: each mirror gets a verdict."""
    import trio

    from devtools.harness.faultproxy import closed_port
    from devtools.harness.hostilehttp import RoutedHttp, answer, endless
    from syncd.httpcheck.client import local_stats_each

    routes = {
        "/local_stats/": answer(b"", b"302 Found", b"Location: javascript:x\r\n"),
    }
    with (
        RoutedHttp(routes) as bad_url,
        RoutedHttp({"/local_stats/": endless(b"stats " * 1000)}) as flood,
    ):
        found = trio.run(
            lambda: local_stats_each(
                [
                    ("bad-url.test", bad_url.base_url),
                    ("flood.test", flood.base_url),
                    ("closed.test", f"http://127.0.0.1:{closed_port()}"),
                ],
                timeout_s=2,
                deadline_s=3,
                concurrency=3,
                overall_s=10,
            )
        )
    verdicts = {name: judge(*answer_).verdict for name, answer_ in found.items()}
    assert verdicts == {"bad-url.test": "unclear", "flood.test": "open", "closed.test": "unclear"}
    assert "InvalidURL" in (found["bad-url.test"][2] or "")
