"""`syncd mirrors check` of a mirror with an https URL: its certificate, as the monitor judges
it, against real nginx serving certificates the test makes ([monitor] https_cafile: the test's
CA instead of the system's store)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.harness.documents import LAB_INVENTORY
from devtools.harness.faultproxy import closed_port
from devtools.harness.nginx import Nginx
from devtools.harness.tlscerts import TestCa
from syncd.cli import app

DAY = 86_400.0
NAME = "clamav.mirror.example.org"


@pytest.mark.parametrize(
    ("kind", "ok", "says"),
    [
        (
            "good",
            True,
            "ok   https: certificate at https://localhost:PORT: valid for localhost, 40",
        ),
        ("soon", True, "more days (it expires in 3 days, on "),
        (
            "wrong",
            False,
            "FAIL https: certificate at https://localhost:PORT: invalid: it is not "
            "valid for localhost (it names clamav.example.org)",
        ),
        (
            "expired",
            False,
            "FAIL https: certificate at https://localhost:PORT: expired: it expired on ",
        ),
        ("plain", False, "failed: localhost:PORT does not speak TLS"),
    ],
)
def test_check_says_whether_freshclam_accepts_the_certificate(
    tmp_path: Path, nginx_factory: Callable[..., Nginx], kind: str, ok: bool, says: str
) -> None:
    ca = TestCa(tmp_path / "ca")
    now = time.time()
    issued = {
        "good": lambda: ca.issue(("localhost",), now - DAY, now + 40 * DAY + 3600),
        "soon": lambda: ca.issue(("localhost",), now - DAY, now + 3 * DAY + 3600),
        "wrong": lambda: ca.issue(("clamav.example.org",), now - DAY, now + 40 * DAY),
        "expired": lambda: ca.issue(("localhost",), now - 40 * DAY, now - DAY),
        "plain": lambda: ca.issue(("localhost",), now - DAY, now + 40 * DAY),
    }[kind]()
    root = tmp_path / "root"
    root.mkdir()
    (root / "local_test").write_text("Success")
    nginx = nginx_factory(
        root,
        server_names=["database.clamav.net", "db.*.clamav.net", NAME],
        tls=(issued.chain, issued.key),
        tls_plain=kind == "plain",
    )
    inv = tmp_path / "inventory.toml"
    inv.write_text(
        LAB_INVENTORY
        + f'[[mirrors]]\nname = "{NAME}"\nhost = "127.0.0.1"\nport = {closed_port()}\n'
        f'country = "PL"\npending = true\nhttp = "{nginx.base_url}"\n'
        f'https = "{nginx.https_url()}"\n'
    )
    config = tmp_path / "syncd.toml"
    config.write_text(f'inventory = "{inv}"\n[monitor]\nhttps_cafile = "{ca.cafile}"\n')
    done = CliRunner().invoke(app, ["mirrors", "check", NAME, "--config", str(config)])
    out = done.output
    assert out.count("ok   http: /local_test") == 3, out
    assert says.replace("PORT", str(nginx.tls_port)) in out, out
    assert ("ok   https:" in out) == ok
    assert done.exit_code == 1  # the sshd port is closed: the host key check fails either way
