"""Shared fixtures: real servers on loopback, started per test and always torn down."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from devtools.harness.account import MirrorAccount, mirror_account
from devtools.harness.client import build_client_zipapp
from devtools.harness.cvd import DEFAULT_VERSIONS, write_release
from devtools.harness.nginx import Nginx
from devtools.harness.rsyncd import RsyncDaemon
from devtools.harness.smtp import SmtpSink
from devtools.harness.sshd import Sshd
from devtools.harness.sshkeys import KeyPair, generate_keypair

# The suites whose meaning depends on the date (freshness, DNS record times, the demo, the soak):
# scripts/test runs them again under libfaketime at +400 days and at -1 day (-m date_sensitive).
DATE_SENSITIVE = (
    "tests/monitor/",
    "tests/statuspage/",
    "tests/httpcheck/test_mirrorhttp.py",
    "tests/httpcheck/test_tls.py",  # OpenSSL judges the certificates' dates by the clock
    "tests/dns/",
    "tests/publish/test_heartbeat.py",
    "tests/publish/test_publish_gate.py",
    "tests/release/test_release_tree.py",
    "tests/release/test_releases_e2e.py",
    "tests/faults/test_soak.py",
    "tests/test_demo.py",
    "tests/test_clock_shift.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        where = item.path.relative_to(root).as_posix()
        if where.startswith(DATE_SENSITIVE):
            item.add_marker(pytest.mark.date_sensitive)


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """A release tree (daily, main, bytecode CVDs and a timestamp) as rsync1/rsync2 serve it."""
    tree = tmp_path / "source"
    write_release(
        tree, DEFAULT_VERSIONS["daily"], DEFAULT_VERSIONS["main"], DEFAULT_VERSIONS["bytecode"]
    )
    return tree


@pytest.fixture
def rsync_pair(tmp_path: Path, source_tree: Path) -> Iterator[tuple[RsyncDaemon, RsyncDaemon]]:
    """rsync1 and rsync2: two daemons serving `source_tree` as module ``clamavdb``."""
    with (
        RsyncDaemon(tmp_path / "rsyncd", source_tree, name="rsync1") as r1,
        RsyncDaemon(tmp_path / "rsyncd", source_tree, name="rsync2") as r2,
    ):
        yield r1, r2


@pytest.fixture
def keypair(tmp_path: Path) -> KeyPair:
    """The pusher's ed25519 key."""
    return generate_keypair(tmp_path / "keys" / "pusher_ed25519", "pushsync-pusher")


@pytest.fixture(scope="session")
def account() -> MirrorAccount:
    """The account test mirrors run as (a system user when root)."""
    return mirror_account()


@pytest.fixture
def sshd_factory(tmp_path: Path, account: MirrorAccount) -> Iterator[Callable[..., Sshd]]:
    """Start any number of sshd instances: ``sshd_factory(authorized_keys=[...])``."""
    with ExitStack() as stack:
        count = 0

        def start(authorized_keys: list[str], **kw: object) -> Sshd:
            nonlocal count
            count += 1
            kw.setdefault("account", account)
            server = Sshd(tmp_path / f"sshd{count}", authorized_keys=authorized_keys, **kw)  # type: ignore[arg-type]
            return stack.enter_context(server)

        yield start


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[Callable[..., Nginx]]:
    """Start nginx serving a DocumentRoot: ``nginx_factory(docroot)``."""
    with ExitStack() as stack:
        count = 0

        def start(docroot: Path, **kw: object) -> Nginx:
            nonlocal count
            count += 1
            return stack.enter_context(Nginx(tmp_path / f"nginx{count}", docroot, **kw))  # type: ignore[arg-type]

        yield start


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def mirror_tmp_root() -> Iterator[Path]:
    """One directory per session for everything mirrors must reach, outside pytest's own."""
    root = Path(tempfile.mkdtemp(prefix="pushsync-tests-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest, mirror_tmp_root: Path) -> Path:
    """A per-test directory outside /tmp/pytest-of-<user>: every pytest that starts on this
    machine (another session's too) resets that directory to 0700, and sshd reads
    authorized_keys, and runs forced commands, as the mirror account, which then cannot get in.
    """
    name = re.sub(r"\W", "_", request.node.name)[:40]
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=mirror_tmp_root))
    path.chmod(0o711)
    return path


@pytest.fixture(scope="session")
def client_zipapp(mirror_tmp_root: Path) -> Path:
    """``clam-clientsync.pyz`` built once per session, reachable by the mirror account.

    Run it with ``devtools.harness.client.client_command(pyz)`` (the system python3, ``-I``).
    """
    return build_client_zipapp(mirror_tmp_root / "client")
