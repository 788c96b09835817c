"""``clam-clientsync setup``: prepare the mirror account (the I/O shell of ``core.setupplan``).

Reads what exists (``lstat``), verifies the signed key file with ``ssh-keygen -Y verify``, lets
``setupplan.plan_setup`` decide, then applies the plan (or prints it with ``--dry-run``).
"""

import os
import shutil
import stat
import subprocess
import sys
from typing import List, Optional

from clientside.core import authkeys, rsyncplan
from clientside.core.args import UsageError
from clientside.core.config import ConfigError, build_config, parse_config_text
from clientside.core.setupargs import SETUP_USAGE, SetupArgs, parse_setup_args
from clientside.core.setupplan import (
    DIR,
    FILE,
    LINK,
    OTHER,
    Layout,
    Node,
    Plan,
    SetupRefused,
    State,
    describe,
    make_layout,
    plan_setup,
)
from clientside.fsutil import atomic_write, read_small
from pushwire.keyfile import (
    ALLOWED_SIGNERS,
    DEFAULT_PRINCIPAL,
    NAMESPACE,
    NOSHELL,
    SIGNATURE_SUFFIX,
)

MAX_KEYS = 4 << 20  # bytes of an existing authorized_keys we read whole


def _abs(path: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        path = home.rstrip("/") + path[1:]
    return os.path.normpath(os.path.abspath(path))


def _node(path: str, follow: bool = False) -> Optional[Node]:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        kind = LINK
    elif stat.S_ISDIR(st.st_mode):
        kind = DIR
    elif stat.S_ISREG(st.st_mode):
        kind = FILE
    else:
        kind = OTHER
    return Node(kind, stat.S_IMODE(st.st_mode), st.st_uid)


def gather(lay: Layout) -> State:
    """Describe what exists at every path of the layout (never following a link but the home)."""
    nodes = {lay.home: _node(lay.home, follow=True)}
    for path in [*lay.dirs, lay.config, lay.authorized_keys]:
        nodes[path] = _node(path)
    # a client outside the home (a package's) may be a link to the real program
    nodes[lay.client] = _node(lay.client, follow=not lay.client.startswith(lay.home + "/"))
    keys = nodes[lay.authorized_keys]
    data = read_small(lay.authorized_keys, MAX_KEYS + 1) if keys and keys.kind == FILE else None
    if data is not None and len(data) > MAX_KEYS:  # never rewrite what we could not read whole
        raise SetupRefused(f"{lay.authorized_keys} is larger than {MAX_KEYS} bytes")
    return State(os.geteuid(), nodes, data)


def verify_signature(data: bytes, sig: str, signers: str, principal: str) -> None:
    """Raise SetupRefused unless ``sig`` is ``principal``'s signature over ``data``."""
    keygen = shutil.which("ssh-keygen", path=rsyncplan.SAFE_PATH)
    if keygen is None:
        raise SetupRefused("ssh-keygen not found (apt-get install openssh-client)")
    for what, path in (("signature", sig), ("allowed signers file", signers)):
        if not os.path.isfile(path):
            raise SetupRefused(f"{what} {path} not found")
    argv = [keygen, "-Y", "verify", "-f", signers, "-I", principal, "-n", NAMESPACE, "-s", sig]
    try:
        done = subprocess.run(argv, input=data, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise SetupRefused("ssh-keygen -Y verify did not answer within 30 s") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
        raise SetupRefused(
            f"the signature {sig} does not verify for {principal} with {signers}: "
            f"{why[-1] if why else 'exit ' + str(done.returncode)}; nothing was installed"
        )


def load_pushers(args: SetupArgs) -> Optional[List[authkeys.PusherLine]]:
    """Read, verify and validate the key file named by the arguments; None when none given."""
    values = args.values
    if "--keys-dir" in values:
        keys = os.path.join(values["--keys-dir"], NOSHELL)
        signers = values.get("--signers", os.path.join(values["--keys-dir"], ALLOWED_SIGNERS))
    elif "--keys" in values:
        keys, signers = values["--keys"], values["--signers"]
    else:
        return None
    try:
        with open(keys, "rb") as fh:
            data = fh.read(1 << 20)  # what is verified is exactly what is installed
    except OSError as exc:
        raise SetupRefused(f"key file {keys}: {exc.strerror}") from None
    principal = values.get("--principal", DEFAULT_PRINCIPAL)
    verify_signature(data, keys + SIGNATURE_SUFFIX, signers, principal)
    try:
        return authkeys.parse_key_file(data)
    except authkeys.KeyFileError as exc:
        raise SetupRefused(f"key file {keys} refused: {exc}; nothing was installed") from None


def layout_for(args: SetupArgs, home: str) -> Layout:
    config = _abs(args.values.get("--config", "~/etc/clam-clientsync.conf"), home)
    client = _abs(args.values.get("--client", "~/bin/clam-clientsync"), home)
    state_dir = home + "/var/clam-clientsync"
    log_file = state_dir + "/clam-clientsync.log"
    raw = read_small(config, 64 * 1024) if os.path.isfile(config) else None
    if raw is not None:  # an existing config may move the state and the log
        try:
            cfg = build_config(parse_config_text(raw.decode("utf-8")), home=home)
            state_dir, log_file = cfg.state_dir, cfg.log_file
        except (ConfigError, UnicodeDecodeError):
            pass  # not filled in yet: the defaults
    return make_layout(home, client, config, state_dir, log_file)


def apply(plan: Plan) -> None:
    for action in plan.actions:
        if action.kind == "mkdir":
            os.mkdir(action.path, action.mode)
        elif action.kind == "write":
            assert action.data is not None
            atomic_write(action.path, action.data, action.mode)
        os.chmod(action.path, action.mode)  # exact, whatever the umask


def run_setup(argv: List[str], default_home: str) -> int:
    """Run setup; print each change and what is left; return the exit code."""
    if os.environ.get("SSH_ORIGINAL_COMMAND") is not None:
        print("clam-clientsync setup: not through a push; run it in a login", file=sys.stderr)
        return 64
    try:
        args = parse_setup_args(argv)
    except UsageError as exc:
        print(f"clam-clientsync setup: {exc}\n{SETUP_USAGE}", file=sys.stderr)
        return 64
    if args.help:
        print(SETUP_USAGE)
        return 0
    home = _abs(args.values.get("--home", default_home), "/")
    try:
        pushers = load_pushers(args)
        lay = layout_for(args, home)
        plan = plan_setup(lay, gather(lay), pushers)
        for line in plan.left:
            print(f"left   {line}")
        for action in plan.actions:
            print(describe(action, dry_run=args.dry_run))
        if not args.dry_run:
            apply(plan)
    except (SetupRefused, authkeys.KeyFileError) as exc:
        print(f"clam-clientsync setup: refused: {exc}", file=sys.stderr)
        return 78
    except OSError as exc:
        print(f"clam-clientsync setup: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    if not plan.actions:
        print("nothing to change")
    elif not args.dry_run:
        print(f"{len(plan.actions)} change(s) made; next: fill in {lay.config}, then run")
        print(f"  {lay.client} --doctor")
    return 0
