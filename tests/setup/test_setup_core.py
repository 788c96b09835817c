"""The pure half of setup: the key file, the merge, and the plan over a described state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clientside.core import authkeys
from clientside.core.setupplan import (
    DIR,
    FILE,
    LINK,
    Layout,
    Node,
    SetupRefused,
    State,
    make_layout,
    plan_setup,
)
from pushwire.authorized_keys import AuthorizedKey, render

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2zX9Fj5h3u+QmRpusher"
GOOD = (
    'restrict,from="192.0.2.10",command="/home/clamavdb/bin/clam-clientsync rsync1.clamav.net" '
    + KEY
    + " pushsync-rsync1\n"
)
HOME = "/home/m"
UID = 1000


def test_key_file_parses_to_pusher_lines() -> None:
    (p,) = authkeys.parse_key_file(b"# header\n\n" + GOOD.encode())
    assert p.program == "/home/clamavdb/bin/clam-clientsync"
    assert p.source == "rsync1.clamav.net"
    line = authkeys.with_client(p, "/srv/m/bin/clam-clientsync")
    assert render(line) == GOOD.strip().replace("/home/clamavdb", "/srv/m")


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"# only comments\n",
        KEY.encode() + b"\n",
        GOOD.replace("restrict,", "").encode(),
        GOOD.replace("rsync1.clamav.net", "rsync1.clamav.net --evil").encode(),
        GOOD.replace("/home/clamavdb/bin/clam-clientsync", "bin/clam-clientsync").encode(),
        GOOD.replace("/home/clamavdb/bin/clam-clientsync", "/bin/bash").encode(),
        GOOD.replace("/home/clamavdb/bin/", "/home/clamavdb/../../bin/").encode(),
        GOOD.replace("restrict,", 'restrict,environment="X=1",').encode(),
        GOOD.replace("restrict,", "restrict,restrict,").encode(),
        GOOD.replace("restrict,", "restrict,pty,").encode(),
        GOOD.encode().replace(b"pushsync", b"push\xc3\xa9"),
        GOOD.replace("ssh-ed25519", "ssh-dss").encode(),
    ],
)
def test_key_file_that_is_not_restricted_forced_commands_is_refused(bad: bytes) -> None:
    with pytest.raises(authkeys.KeyFileError):
        authkeys.parse_key_file(bad)


def _lines() -> list[AuthorizedKey]:
    return [
        authkeys.with_client(p, "/home/m/bin/clam-clientsync")
        for p in authkeys.parse_key_file(GOOD.encode())
    ]


def test_merge_is_idempotent_and_keeps_foreign_lines() -> None:
    foreign = b"ssh-rsa AAAAB3Nza admin\r\n# note\n\nnot a key at all \xff\n"
    legacy = b'no-pty,command="bash ~/bin/clam-clientsync rsync1.clamav.net &" ssh-rsa AAAAOLD x\n'
    once, kept, replaced = authkeys.merge(foreign + legacy, _lines())
    assert once.startswith(foreign + authkeys.MARKER)
    assert (kept, replaced) == (3, 1)
    twice, kept2, replaced2 = authkeys.merge(once, _lines())
    assert twice == once and (kept2, replaced2) == (3, 1)


def test_a_foreign_copy_of_a_pusher_key_is_replaced_not_duplicated() -> None:
    unrestricted = (KEY + " copied-by-hand\n").encode()
    new, kept, replaced = authkeys.merge(unrestricted, _lines())
    assert new.count(KEY.split()[1].encode()) == 1 and (kept, replaced) == (0, 1)


@given(st.lists(st.binary(max_size=60).filter(lambda b: b"\n" not in b), max_size=8))
def test_merge_keeps_any_foreign_bytes_in_order(foreign: list[bytes]) -> None:
    lines = _lines()
    blobs = frozenset(line.blob for line in lines)
    existing = b"".join(f + b"\n" for f in foreign)
    new, _, _ = authkeys.merge(existing, lines)
    expected = b"".join(f + b"\n" for f in foreign if not authkeys.is_ours(f + b"\n", blobs))
    assert new == expected + authkeys.MARKER + render(lines[0]).encode() + b"\n"


def _state(nodes: dict[str, Node | None] | None = None) -> State:
    """The state of a fresh home with the client installed, updated by `nodes` (by path
    relative to the home)."""
    lay = _layout()
    all_nodes: dict[str, Node | None] = {p: None for p in [*lay.dirs, lay.config]}
    all_nodes[HOME] = Node(DIR, 0o755, UID)
    all_nodes[lay.client] = Node(FILE, 0o755, UID)
    all_nodes[lay.authorized_keys] = None
    all_nodes.update({(HOME + "/" + k).rstrip("/"): v for k, v in (nodes or {}).items()})
    return State(UID, all_nodes, None)


def _layout() -> Layout:
    return make_layout(
        HOME,
        HOME + "/bin/clam-clientsync",
        HOME + "/etc/clam-clientsync.conf",
        HOME + "/var/clam-clientsync",
        HOME + "/var/clam-clientsync/clam-clientsync.log",
    )


def test_layout_creates_parents_first() -> None:
    lay = _layout()
    assert lay.dirs == [HOME + d for d in ("/.ssh", "/bin", "/etc", "/var", "/var/clam-clientsync")]
    assert lay.dir_modes[HOME + "/.ssh"] == 0o700
    assert lay.dir_modes[HOME + "/var/clam-clientsync"] == 0o700
    outside = make_layout(HOME, HOME + "/bin/c", "/etc/c.conf", "/srv/state", "/srv/state/log")
    assert all(d.startswith(HOME + "/") for d in outside.dirs)


def test_plan_for_a_fresh_home() -> None:
    plan = plan_setup(_layout(), _state(), authkeys.parse_key_file(GOOD.encode()))
    kinds = [(a.kind, a.path.removeprefix(HOME), a.mode) for a in plan.actions]
    assert kinds == [
        ("mkdir", "/.ssh", 0o700),
        ("mkdir", "/bin", 0o755),
        ("mkdir", "/etc", 0o755),
        ("mkdir", "/var", 0o755),
        ("mkdir", "/var/clam-clientsync", 0o700),
        ("write", "/etc/clam-clientsync.conf", 0o600),
        ("write", "/.ssh/authorized_keys", 0o600),
    ]


def test_modes_are_tightened_and_reported() -> None:
    state = _state(
        {
            "": Node(DIR, 0o775, UID),
            ".ssh": Node(DIR, 0o755, UID),
            "etc/clam-clientsync.conf": Node(FILE, 0o644, UID),
        }
    )
    plan = plan_setup(_layout(), state, None)
    chmods = {
        a.path.removeprefix(HOME): (a.mode, a.note) for a in plan.actions if a.kind == "chmod"
    }
    assert chmods == {
        "": (0o755, "was 775"),
        "/.ssh": (0o700, "was 755"),
        "/etc/clam-clientsync.conf": (0o600, "was 644"),
    }


@pytest.mark.parametrize(
    ("nodes", "words"),
    [
        ({".ssh": Node(LINK, 0o777, UID)}, "symbolic link"),
        ({".ssh/authorized_keys": Node(LINK, 0o777, UID)}, "symbolic link"),
        ({"etc/clam-clientsync.conf": Node(LINK, 0o777, UID)}, "symbolic link"),
        ({".ssh": Node(DIR, 0o700, 0)}, "belongs to uid 0"),
        ({".ssh": Node(FILE, 0o600, UID)}, "not a directory"),
        ({"bin/clam-clientsync": None}, "does not exist"),
    ],
)
def test_unsafe_states_are_refused(nodes: dict[str, Node | None], words: str) -> None:
    state = _state(nodes)
    with pytest.raises(SetupRefused, match=words):
        plan_setup(_layout(), state, authkeys.parse_key_file(GOOD.encode()))


@pytest.mark.parametrize("name", ["authkeys", "setupplan"])
def test_setup_core_is_pure(name: str) -> None:
    forbidden = {"subprocess", "socket", "time", "os", "shutil", "filelock", "signal", "pathlib"}
    tree = ast.parse((ROOT / "clientside" / "core" / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & forbidden
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in forbidden
        elif isinstance(node, ast.Call):
            fn = node.func
            assert getattr(fn, "id", getattr(fn, "attr", "")) not in {"open", "now"}


@pytest.mark.parametrize(
    ("client", "ok"),
    [
        (Node(FILE, 0o755, 0), True),  # a package's, root's
        (Node(FILE, 0o755, UID), True),
        (Node(FILE, 0o775, 0), False),  # group may change it
        (Node(FILE, 0o700, 0), False),  # we could not run it
        (Node(FILE, 0o755, 4242), False),  # a stranger's
        (Node(DIR, 0o755, 0), False),
    ],
)
def test_a_client_outside_the_home_may_be_roots_but_must_be_safe(client: Node, ok: bool) -> None:
    lay = make_layout(
        HOME,
        "/usr/local/bin/clam-clientsync",
        HOME + "/etc/clam-clientsync.conf",
        HOME + "/var/clam-clientsync",
        HOME + "/var/clam-clientsync/clam-clientsync.log",
    )
    state = _state()
    state.nodes[lay.client] = client
    pushers = authkeys.parse_key_file(GOOD.encode())
    if not ok:
        with pytest.raises(SetupRefused):
            plan_setup(lay, state, pushers)
        return
    plan = plan_setup(lay, state, pushers)
    assert not [a for a in plan.actions if a.path == lay.client]
    written = next(a for a in plan.actions if a.path == lay.authorized_keys)
    assert (
        written.data
        and b'command="/usr/local/bin/clam-clientsync rsync1.clamav.net"' in written.data
    )
