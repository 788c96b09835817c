"""docs/publishing.md's set-up followed as written, as far as a test can, then the operators'
guide's registration as the team receives it: the example syncd.toml and inventory copied to
``./etc/`` (the first place syncd looks) with the pusher key beside them (mode 600, the user
running syncd its owner), the example mirrors removed with ``syncd mirrors remove``, ``syncd
config check``; the registration mail exactly as docs/operators-guide.md shows it (the test's
address for the guide's example one), ``syncd mirrors register``, ``set`` for the test's sshd
port, account and web server, ``check``, ``trust --fingerprint`` with ``ssh-keygen -lf`` of the
host key; then ``.venv/bin/syncd publish`` with rsync1 down. The mirror is a real one: sshd
forcing the client zipapp, which syncs from the harness's rsync daemons, and nginx serving
what it published.

What a test cannot do as written: paths are the test's (``state``, ``source_tree``, the status
page and the metrics), the inventory declares itself a lab (the mirror listens on loopback), the
mirror's sshd is not on port 22 nor its account ``clamavdb`` (``syncd mirrors set`` records
them, as the registration section says an admin asks for).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.harness.account import MirrorAccount
from devtools.harness.client import SOURCE_NAMES, client_command, client_config, mirror_home
from devtools.harness.cvd import DEFAULT_VERSIONS
from devtools.harness.nginx import MIRROR_NAMES, Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.sshd import Sshd, forced_command_line
from devtools.harness.sshkeys import generate_keypair
from syncd.inventory.registration import RegistrationError, parse_mail
from tests.publish.realclient import kill_clients

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent.parent
OPERATORS = ROOT / "docs" / "operators-guide.md"
PUBLISHING = ROOT / "docs" / "publishing.md"
EXAMPLES = ROOT / "deploy" / "examples"
NAME = "clamav.example.org"


def guide_mail() -> tuple[str, str]:
    """The operators' guide's registration mail (the one line) and its example address."""
    text = OPERATORS.read_text()
    section = text.split("\n## Registering, and the files you need\n", 1)[1].split("\n## ", 1)[0]
    (line,) = [ln.strip() for ln in section.splitlines() if " ip address: " in ln]
    address = re.search(r" ip address: (\S+) ", line)
    assert address, line
    return line, address[1]


def syncd_command() -> list[str]:
    """``.venv/bin/syncd``, as docs/publishing.md names it (the venv running the tests)."""
    command = Path(sys.executable).with_name("syncd")
    assert command.is_file(), f"{command}: scripts/setup installs it"
    return [str(command)]


def test_the_guides_mail_is_an_example_register_refuses_until_its_address_is_replaced() -> None:
    """The guide says its address is an example to replace: register refuses it (it is a
    documentation address), and takes the line once a mirror's global address replaces it.
    (Proven to fail before the guide said so.)"""
    line, address = guide_mail()
    section = OPERATORS.read_text().split(line, 1)[1][:1200]
    assert f"`{address}` above is a documentation example" in " ".join(section.split())
    with pytest.raises(RegistrationError, match=re.escape(f"ip address '{address}'")):
        parse_mail(line)
    (reg,) = parse_mail(line.replace(f" {address} ", " 193.0.6.139 "))  # a global address
    assert (reg.name, reg.address, reg.country) == (NAME, "193.0.6.139", "PL")
    assert reg.admin == "Jan Kowalski <jan@example.org>"


def example_config(etc: Path, tmp_path: Path, source_tree: Path) -> Path:
    """deploy/examples/syncd.toml into `etc`, its host paths replaced by the test's (the
    inventory beside it, as the guide says for ./etc/)."""
    text = (EXAMPLES / "syncd.toml").read_text()
    paths: dict[str, Path | str] = {
        "/var/lib/syncd/mirrors.toml": "mirrors.toml",
        "/var/lib/syncd/state.sqlite": tmp_path / "var" / "state.sqlite",
        "/srv/clamav/release": source_tree,
        "/var/www/mirror-status/index.html": tmp_path / "www" / "index.html",
        "/var/lib/node_exporter/textfile_collector/pushsync.prom": tmp_path / "pushsync.prom",
    }
    for old, new in paths.items():
        assert f'"{old}"' in text, old
        text = text.replace(f'"{old}"', f'"{new}"')
    config = etc / "syncd.toml"
    config.write_text(text)
    return config


def test_the_publishing_guide_registers_and_publishes_to_a_new_mirror(
    tmp_path: Path,
    source_tree: Path,
    rsync_pair: tuple[RsyncDaemon, RsyncDaemon],
    account: MirrorAccount,
    sshd_factory: Callable[..., Sshd],
    nginx_factory: Callable[..., Nginx],
    client_zipapp: Path,
) -> None:
    """Proven able to fail: with rsync1 left up the report's source_used is rsync1 (the
    assertion on the fallback fails); on the code before `syncd config check` checked the
    secrets, its key line is missing."""
    work = tmp_path / "team"
    etc = work / "etc"  # ./etc/syncd.toml: the first place syncd looks
    etc.mkdir(parents=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "LC_ALL": "C.UTF-8",
        "COLUMNS": "200",
    }

    def syncd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*syncd_command(), *args],
            cwd=work, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    # "Start from the examples": syncd.toml and the inventory, the pusher key beside them
    config = example_config(etc, tmp_path, source_tree)
    inventory = etc / "mirrors.toml"
    # the mirror listens on loopback: a lab inventory (section 2, "Mirror addresses")
    inventory.write_text(
        "allow_private_addresses = true\n\n" + (EXAMPLES / "mirrors.toml").read_text()
    )
    pusher = generate_keypair(etc / "pusher_ed25519", "pusher")
    info = pusher.private.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    for example in ("clamav.example.org", "clamav.example.net"):
        done = syncd("mirrors", "remove", example)
        assert done.returncode == 0, done.stderr
    check = syncd("config", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"config: {config}" in check.stdout
    assert f"key: {pusher.private}: private key, owner only: ok" in check.stdout
    assert f"inventory: {inventory}: 0 mirrors, 0 active: ok" in check.stdout

    # the mirror, laid out as the operators' guide makes it (tests/setup/
    # test_operators_guide.py follows that guide itself): its client syncs from rsync1, and
    # falls back to rsync2
    r1, r2 = rsync_pair
    laid = mirror_home(
        tmp_path / "mirror",
        account,
        client_command(client_zipapp),
        SOURCE_NAMES[0],
        lambda docroot, state: client_config(
            docroot, state, (r1.url, r2.url), r1.user, r1.password
        ),
    )
    sshd = sshd_factory(
        authorized_keys=[forced_command_line(pusher.public_line, laid.forced_command)]
    )
    web = nginx_factory(laid.docroot, server_names=(*MIRROR_NAMES, NAME))
    try:
        # the registration mail, as the guide shows it, with the mirror's address; the host
        # key's fingerprint on the next line, as the admin prints it
        line, example_address = guide_mail()
        fingerprint_line = subprocess.run(
            ["ssh-keygen", "-lf", str(sshd.host_key.private) + ".pub"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
        fingerprint = fingerprint_line.split()[1]
        assert fingerprint.startswith("SHA256:"), fingerprint_line
        mail = work / "registration.eml"
        mail.write_text(
            "From: Jan Kowalski <jan@example.org>\nTo: mirror-admin@clamav.net\n"
            f"Subject: new mirror\n\n{line.replace(example_address, sshd.host)}\n"
            f"{fingerprint_line}\n"
        )
        registered = syncd("mirrors", "register", str(mail))
        assert registered.returncode == 0, registered.stderr
        assert f"registered {NAME} as pending" in registered.stdout
        # not on port 22, not the account clamavdb, the web server not http://NAME
        done = syncd(
            "mirrors", "set", NAME, f"port={sshd.port}", f"user={account.name}",
            f"http={web.base_url}",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        checked = syncd("mirrors", "check", NAME)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        trusted = syncd("mirrors", "trust", NAME, "--fingerprint", fingerprint)
        assert trusted.returncode == 0, trusted.stderr
        assert f"pinned {fingerprint} for {NAME}" in trusted.stdout

        r1.stop()  # rsync1 is down: the client falls back to rsync2
        published = syncd("publish", "--source-tree", str(source_tree), timeout=300)
    finally:
        kill_clients(tmp_path / "mirror")
    assert published.returncode == 0, published.stdout + published.stderr
    run_id = re.search(r"^run (\S+): 1 of 1 mirrors serve the release$", published.stderr, re.M)
    assert run_id, published.stderr
    assert f"now active (first successful publish): {NAME}" in published.stderr
    (mirror,) = tomllib.loads(inventory.read_text())["mirrors"]
    assert mirror["name"] == NAME and not mirror.get("pending") and mirror.get("active", True)
    assert mirror["host_keys"] == [sshd.host_key_line]
    assert (laid.docroot / "daily.cvd").is_file()

    # its report: rsync1 asked for and failed, the release synced from rsync2
    shown = syncd("runs", "show", run_id[1], "--json")
    assert shown.returncode == 0, shown.stderr
    (result,) = json.loads(shown.stdout)["mirrors"]
    report = result["report"]
    assert (result["name"], result["outcome"], report["status"]) == (NAME, "ok", "ok"), result
    assert report["source_requested"] == "rsync1.clamav.net", report
    assert report["source_used"] == "rsync2.clamav.net", report
    assert [a["source"] for a in report["attempts"]] == list(SOURCE_NAMES), report
    assert report["attempts"][0]["error"] and report["attempts"][1]["error"] is None, report
    text = syncd("runs", "show", run_id[1]).stdout
    assert "  source rsync2.clamav.net: 1 of 1," in text, text

    status = syncd("status")
    assert status.returncode == 0, status.stderr
    (row,) = [ln for ln in status.stdout.splitlines() if ln.strip().startswith(NAME)]
    assert row.split()[1] == "ok", status.stdout
    assert f"daily={DEFAULT_VERSIONS['daily']}" in row, status.stdout
    assert f"{run_id[1]}" in status.stdout and "1 ok" in status.stdout, status.stdout
