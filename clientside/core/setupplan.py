"""What ``clam-clientsync setup`` changes, decided from a description of the account's files.

Pure: the I/O shell (``verbs/setup.py``) describes what exists (:class:`State`, from ``lstat``),
this module returns the :class:`Plan` (directories to create, modes to set, files to write, and
what is left as it is), or raises :class:`SetupRefused` naming the path and the fix.
"""

from typing import Dict, List, NamedTuple, Optional

from clientside.core import authkeys

DIR, FILE, LINK, OTHER = "dir", "file", "link", "other"

CONFIG_TEMPLATE = b"""\
# clam-clientsync config, written by 'clam-clientsync setup'. Read as KEY=VALUE lines, never by a
# shell. Uncomment and fill in at least TO, RSYNC_USER and RSYNC_PASSWORD, then run
# 'clam-clientsync --doctor'. Keep this file mode 600: it holds the rsync password.

# required: the DocumentRoot your web server serves for ClamAV (not your home directory)
#TO=/home/clamavdb/public_html
# the rsync account the ClamAV team gave you
#RSYNC_USER=
#RSYNC_PASSWORD=
#MODULE="clamavdb"
#EXCLUDE="--exclude local_*"

# optional, with their defaults:
#SOURCES="rsync1.clamav.net=rsync://rsync1.clamav.net rsync2.clamav.net=rsync://rsync2.clamav.net"
#STATE_DIR=~/var/clam-clientsync
#LOG_FILE=~/var/clam-clientsync/clam-clientsync.log
#MAX_DELETE=100
#TIMEOUT=180
#CONTIMEOUT=30
#DEADLINE=900
#MAX_ROUNDS=3
#RSYNC=/usr/bin/rsync

# optional: your mirror's home page (TO/index.html, written at every sync; a logo you put in
# TO as local_logo.png is shown on it). A value that cannot be used is left out with a warning.
#MIRROR_NAME=clamav.example.org
#COUNTRY="Poland"
#SPONSOR="Example Hosting"
#SPONSOR_URL=https://hosting.example.org/
#CONTACT="Jane Doe <[email protected]>"
# show CONTACT on the page (default no)
#SHOW_CONTACT=no

# your web server's access log for the mirror (combined, or combinedrealsize with %O): each
# sync reports what it served since the last, to the ClamAV team
#ACCESS_LOG=/var/log/nginx/clamav-access.log
"""


class SetupRefused(Exception):
    """Setup cannot go on safely; nothing was changed. The message names the path and the fix."""


class Node(NamedTuple):
    kind: str  # DIR, FILE, LINK or OTHER, as lstat sees it (the home itself: as stat sees it)
    mode: int  # permission bits
    uid: int


class Layout(NamedTuple):
    home: str
    config: str
    client: str
    dirs: List[str]  # to exist, parents first
    dir_modes: Dict[str, int]  # the mode each gets when created (and at most, when it exists)

    @property
    def ssh_dir(self) -> str:
        return self.home + "/.ssh"

    @property
    def authorized_keys(self) -> str:
        return self.ssh_dir + "/authorized_keys"


class State(NamedTuple):
    uid: int  # who runs setup: everything must be theirs
    nodes: Dict[str, Optional[Node]]  # every path of the layout; None when missing
    authorized_keys: Optional[bytes]  # its content when it is a regular file


class Action(NamedTuple):
    kind: str  # "mkdir", "chmod" or "write"
    path: str
    mode: int
    data: Optional[bytes] = None
    note: str = ""


class Plan(NamedTuple):
    actions: List[Action]
    left: List[str]  # what was looked at and is left as it is


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def make_layout(home: str, client: str, config: str, state_dir: str, log_file: str) -> Layout:
    """Given absolute paths, return what setup looks after: ~/.ssh, ~/etc, ~/bin, the state
    and log directories (and their parents below the home)."""
    home = home.rstrip("/") or "/"
    modes = {home + "/.ssh": 0o700, home + "/bin": 0o755, home + "/etc": 0o755}
    modes[_parent(config)] = 0o755
    modes[_parent(client)] = 0o755
    modes[state_dir.rstrip("/")] = 0o700
    modes.setdefault(_parent(log_file), 0o700)
    dirs: List[str] = []
    for target in list(modes):
        if not target.startswith(home + "/"):
            del modes[target]  # outside the home: not ours to create or chmod
            continue
        chain = [target]
        while chain[-1].startswith(home + "/") and _parent(chain[-1]) != home:
            chain.append(_parent(chain[-1]))
        for path in reversed(chain):
            if path not in dirs and path != home:
                dirs.append(path)
                modes.setdefault(path, 0o755)
    return Layout(home, config, client, dirs, modes)


def _own(state: State, path: str, node: Node) -> None:
    if node.uid != state.uid:
        raise SetupRefused(
            f"{path} belongs to uid {node.uid}, not to the user running setup (uid {state.uid}): "
            f"run setup as its owner, or 'chown' it first"
        )


def _node(state: State, path: str, kind: str) -> Optional[Node]:
    node = state.nodes.get(path)
    if node is None:
        return None
    if node.kind == LINK:
        raise SetupRefused(
            f"{path} is a symbolic link: not followed. Remove it ('rm {path}') and run setup again"
        )
    if node.kind != kind:
        what = "a directory" if kind == DIR else "a regular file"
        raise SetupRefused(f"{path} exists but is not {what}: move it away and run setup again")
    _own(state, path, node)
    return node


def _chmod(actions: List[Action], path: str, node: Node, want: int, good: bool) -> None:
    if not good:
        actions.append(Action("chmod", path, want, note=f"was {node.mode:o}"))


def plan_setup(lay: Layout, state: State, pushers: Optional[List[authkeys.PusherLine]]) -> Plan:
    """Given the layout, the current state and the verified pusher lines (None: no key file),
    return the plan; raise SetupRefused when a path is unsafe to touch."""
    actions: List[Action] = []
    left: List[str] = []
    home = state.nodes.get(lay.home)
    if home is None or home.kind != DIR:
        raise SetupRefused(f"home {lay.home} is not an existing directory")
    _own(state, lay.home, home)
    # the web server passes through the home: o+x, and nobody else may write
    _chmod(actions, lay.home, home, 0o755, not home.mode & 0o022 and bool(home.mode & 0o001))
    for path in lay.dirs:
        want = lay.dir_modes[path]
        node = _node(state, path, DIR)
        if node is None:
            actions.append(Action("mkdir", path, want))
        elif path == lay.ssh_dir:
            _chmod(actions, path, node, want, node.mode == want)
        else:
            _chmod(actions, path, node, want, not node.mode & ~want & 0o777)
    _plan_config(lay, state, actions, left)
    if lay.client.startswith(lay.home + "/"):
        client = _node(state, lay.client, FILE)
        if client is None:
            left.append(
                f"{lay.client}: not installed yet (install -m 755 clam-clientsync.pyz there)"
            )
        else:
            _chmod(actions, lay.client, client, 0o755, client.mode == 0o755)
    else:
        client = _system_client(state, lay.client, left)
    _plan_keys(
        lay,
        state=state,
        pushers=pushers,
        have_client=client is not None,
        actions=actions,
        left=left,
    )
    return Plan(actions, left)


def _system_client(state: State, path: str, left: List[str]) -> Optional[Node]:
    """A client outside the home (a package's, described following links): it may belong to
    root, but it must run, and only its owner may change it."""
    node = state.nodes.get(path)
    if node is None:
        return None
    if node.kind != FILE or not node.mode & 0o001 or node.mode & 0o022:
        raise SetupRefused(
            f"client {path} must be a program others may run and only its owner may change "
            f"(mode {node.mode:o}): chmod 755 {path}"
        )
    if node.uid not in (0, state.uid):
        raise SetupRefused(f"client {path} belongs to uid {node.uid}: neither root nor you")
    left.append(f"{path}: outside the home, mode and owner left as they are")
    return node


def _plan_config(lay: Layout, state: State, actions: List[Action], left: List[str]) -> None:
    node = _node(state, lay.config, FILE)
    if node is None:
        actions.append(Action("write", lay.config, 0o600, CONFIG_TEMPLATE, "config template"))
        return
    left.append(f"{lay.config}: exists, not overwritten")
    _chmod(actions, lay.config, node, 0o600, node.mode == 0o600)


def _plan_keys(
    lay: Layout,
    *,
    state: State,
    pushers: Optional[List[authkeys.PusherLine]],
    have_client: bool,
    actions: List[Action],
    left: List[str],
) -> None:
    path = lay.authorized_keys
    node = _node(state, path, FILE)
    if pushers is None:
        left.append(f"{path}: no key file given, keys not changed")
    elif not have_client:
        raise SetupRefused(
            f"the forced commands would run {lay.client}, which does not exist: install the "
            f"client there first (install -m 755 clam-clientsync.pyz {lay.client}), or name "
            f"it with --client PATH"
        )
    else:
        lines = [authkeys.with_client(p, lay.client) for p in pushers]
        moved = sorted({p.program for p in pushers if p.program != lay.client})
        data, kept, replaced = authkeys.merge(state.authorized_keys, lines)
        if data != state.authorized_keys:
            note = f"{len(lines)} pusher key(s), {kept} other line(s) kept, {replaced} replaced"
            if moved:
                note += f"; forced command path {', '.join(moved)} -> {lay.client}"
            actions.append(Action("write", path, 0o600, data, note))
            return
        left.append(f"{path}: pusher keys already installed, {kept} other line(s) kept")
    if node is not None:
        _chmod(actions, path, node, 0o600, node.mode == 0o600)


def describe(action: Action, *, dry_run: bool) -> str:
    """Return the one-line report of ``action``."""
    verb = {"mkdir": "create", "chmod": "chmod", "write": "write"}[action.kind]
    text = f"{'would ' if dry_run else ''}{verb} {action.path} (mode {action.mode:o}"
    text += f", {action.note})" if action.note else ")"
    return text
