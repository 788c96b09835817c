"""``clam-clientsync --doctor``: check what the old mirror guide asked admins to do by hand."""

import functools
import os
import pwd
import shlex
import socket
import stat
from typing import List, Optional, Tuple, Union

from clientside.configfile import check_to, load_config
from clientside.core import account, rsyncplan
from clientside.core.config import Config, ConfigError, Source
from clientside.core.mounts import REMOTE_FS
from clientside.fsutil import fs_type
from clientside.runner import capture, find_rsync, rsync_version, run
from clientside.statedir import bound_tree, check_state_dir
from clientside.trust import check_program, check_trusted
from clientside.verbs.doctor_served import check_access_log, check_homepage
from clientside.verbs.findings import Doctor
from pushwire.authorized_keys import parse_line
from pushwire.keyfile import CLIENT_NAME

# its -S tells an account's own user about the account (Debian)
STATUS_PROGRAM = "/usr/bin/passwd"
GOOD_SHELLS = ("/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "/bin/dash")


def _mode(path: str) -> Optional[os.stat_result]:
    try:
        return os.stat(path)
    except OSError:
        return None


def _check_mode(d: Doctor, path: str, want: int, label: str, *, exact: bool = True) -> None:
    st = _mode(path)
    q = shlex.quote(path)
    if st is None:
        d.check(False, f"{label} {path} exists", f"create it (mode {want:o})")
        return
    mode = stat.S_IMODE(st.st_mode)
    if exact:
        what = f"{label} {path} has mode {want:o} (is {mode:o})"
        good = mode == want
    else:  # a home: others must be able to pass through it (the web server), not write
        what = f"{label} {path} is 755-like: o+x, not writable by others (is {mode:o})"
        good = not mode & 0o022 and bool(mode & 0o001)
    d.check(good, what, f"chmod {want:o} {q}")
    d.check(
        st.st_uid == os.geteuid(),
        f"{label} {path} is owned by this user",
        f"chown {pwd.getpwuid(os.geteuid()).pw_name} {q}",
    )


def reachable(host: str, port: int, timeout: float = 5.0) -> Tuple[bool, str]:
    """Return whether an rsync daemon answers at host:port, and what was seen."""
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            greeting = conn.recv(64)
    except OSError as exc:
        return False, str(exc)
    if greeting.startswith(b"@RSYNCD:"):
        return True, greeting.split(b"\n")[0].decode("ascii", "replace")
    return False, "not an rsync daemon"


def doctor(config_path: str, home: str, source: Optional[str], programs: List[str]) -> int:
    """Print each check and the fix for each problem; return 0 when all is well, else 1."""
    d = Doctor()
    _check_account(d, home, programs)
    config: Optional[Config] = None
    d.trusted(f"config {config_path}", lambda: check_trusted(config_path, "config", link_ok=True))
    try:
        config = load_config(config_path, home, source, strict=False)
        d.check(True, f"config {config_path} parses", "")
    except ConfigError as exc:
        fix = (
            f"edit {shlex.quote(config_path)} at the line or key named above (every key: the"
            " operators' guide, Config), then run --doctor again"
            if os.path.lexists(config_path)
            else "'clam-clientsync setup' writes one to fill in (every key: the operators'"
            " guide, Config), then run --doctor again"
        )
        d.check(False, f"config {config_path} is usable: {exc}", fix)
    except OSError as exc:
        d.check(
            False,
            f"config {config_path} is readable: {exc.strerror}",
            f"make it this user's and private: chown {pwd.getpwuid(os.geteuid()).pw_name}"
            f" {shlex.quote(config_path)} && chmod 600 {shlex.quote(config_path)}",
        )
    if config is not None:
        _check_config(d, config, config_path, home, programs)
    for what in d.ok:
        print(f"ok    {what}")
    for what in d.notes:
        print(f"note  {what}")
    for what, fix in d.problems:
        print(f"FAIL  {what}\n      fix: {fix}")
    print(f"{len(d.problems)} problem(s) found" if d.problems else "all checks passed")
    return 1 if d.problems else 0


def _check_account(d: Doctor, home: str, programs: List[str]) -> None:
    _check_mode(d, home, 0o755, "home", exact=False)
    _check_mode(d, os.path.join(home, ".ssh"), 0o700, "~/.ssh")
    keys = os.path.join(home, ".ssh", "authorized_keys")
    _check_mode(d, keys, 0o600, "authorized_keys")
    try:
        with open(keys, encoding="utf-8", errors="replace") as fh:
            lines = [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]
        unforced = [ln for ln in lines if "command=" not in ln.split(" ssh-")[0]]
        d.check(
            not unforced,
            "every authorized key has a forced command",
            'prefix each pusher key with restrict,command="~/bin/clam-clientsync SOURCE"',
        )
        _check_forced_programs(d, home, lines)
    except OSError:
        pass
    _check_login(d, pwd.getpwuid(os.geteuid()))
    for program in sorted(set(programs)):
        if os.path.exists(program):
            d.trusted(f"program {program}", functools.partial(check_program, program, "program"))


def _check_login(d: Doctor, entry: pwd.struct_passwd) -> None:
    """The account is not locked for sshd and its login shell can run the forced command."""
    user, shell = entry.pw_name, entry.pw_shell
    shadow_text = _read_text("/etc/shadow")  # root (or group shadow) only
    shadow = account.shadow_password(shadow_text, user) if shadow_text is not None else None
    status = None
    if shadow is None:
        output = capture([STATUS_PROGRAM, "-S"], {"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
        status = account.passwd_status(output or "", user)
    verdict = account.lock_check(user, shadow, status)
    if verdict is not None:
        d.check(*verdict)
    else:
        told = f"passwd -S says {status}" if status else "passwd -S did not say"
        d.notes.append(
            f"account {user}: {told}, and only root can read /etc/shadow: if its password"
            " starts with '!' (as useradd leaves it), sshd without PAM refuses every login;"
            f" check as root: grep '^{user}:' /etc/shadow (fix: {account.unlock_fix(user)})"
        )
    shells = _read_text("/etc/shells")
    for check in account.shell_checks(
        user,
        shell,
        exists=os.path.isfile(shell),
        executable=os.access(shell, os.X_OK),
        listed=account.shells_listed(shells, shell) if shells is not None else None,
        good_shells=list(GOOD_SHELLS),
    ):
        d.check(*check)


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(1024 * 1024)
    except OSError:
        return None


def _check_forced_programs(d: Doctor, home: str, lines: List[str]) -> None:
    """Each forced command that runs the client names a program that exists."""
    for text in lines:
        try:
            line = parse_line(text)
        except ValueError:
            continue
        if line is None:
            continue
        command = line.option("command") or ""
        for word in command.split():
            if not word.rsplit("/", 1)[-1].startswith(CLIENT_NAME):
                continue
            path = home.rstrip("/") + word[1:] if word.startswith("~/") else word
            d.check(
                os.path.isfile(path),
                f"forced command of key {line.comment or line.key_type} runs {path}, which exists",
                f"install the client there (install -m 755 clam-clientsync.pyz {shlex.quote(path)})"
                " or run 'clam-clientsync setup --client PATH' with the keys again",
            )
        if command.rstrip().endswith("&"):
            d.check(
                False,
                f"forced command {command!r} does not end in '&' (the push waits for the result)",
                "install the signed key file with 'clam-clientsync setup --keys-dir DIR'",
            )


def _check_config(
    d: Doctor, config: Config, config_path: str, home: str, programs: List[str]
) -> None:
    _check_mode(d, config_path, 0o600, "config")
    for warning in config.warnings:
        d.check(False, warning, f"remove or correct that line in {shlex.quote(config_path)}")
    try:
        check_to(config, home=home, config_path=config_path, program_paths=programs)
        d.check(True, f"TO {config.to} is a safe directory", "")
        d.check(
            os.access(config.to, os.W_OK),
            f"TO {config.to} is writable",
            f"chown -R {pwd.getpwuid(os.geteuid()).pw_name} {shlex.quote(config.to)}",
        )
    except ConfigError as exc:
        d.check(
            False,
            str(exc),
            f"set TO= in {shlex.quote(config_path)} to the web server's document root for"
            " ClamAV: a directory of its own, owned by this user (create it with"
            f" install -d -m 755 {shlex.quote(config.to)})",
        )
    _check_state(d, config)
    check_homepage(d, config)
    check_access_log(d, config)
    kind = fs_type(config.state_dir if os.path.exists(config.state_dir) else home)
    d.check(
        kind not in REMOTE_FS,
        f"lock directory {config.state_dir} is on a local filesystem ({kind})",
        "set STATE_DIR= to a directory on a local disk",
    )
    rsync = find_rsync(config)
    d.check(rsync is not None, "rsync is installed", "apt-get install rsync")
    if rsync is not None and not d.trusted(f"rsync {rsync}", lambda: check_program(rsync, "rsync")):
        return  # not run, not even for its version
    found = rsync_version(rsync, None)
    too_old = rsyncplan.version_warning(found) if rsync else None
    d.check(
        too_old is None,
        f"rsync is 3.4.0 or newer (is {found})",
        "upgrade rsync (apt-get install rsync from a current release), or set RSYNC= to a newer"
        " build",
    )
    for src in (*config.sources, *config.hubs):
        _check_source(d, config, config_path, src, rsync=rsync, home=home)


def _check_source(
    d: Doctor, config: Config, config_path: str, src: Source, *, rsync: Optional[str], home: str
) -> None:
    """One source (or hub): its name resolves, its rsync daemon answers on its port, and its
    module lists with this config's credentials (a hub's: without any), as a sync would ask."""
    port = src.port or 873
    kind = "hub" if src.hub else "source"
    label = f"{kind} {src.name} ({src.host}:{port})"
    conf = shlex.quote(config_path)
    host = src.host.strip("[]")
    resolved = resolve(host, port)
    if isinstance(resolved, str):
        d.check(
            False,
            f"{label}: the name {host} resolves (it does not: {resolved})",
            f"make the host's resolver find it (getent hosts {shlex.quote(host)} must print its"
            f" address; see /etc/resolv.conf), or set SOURCES= in {conf} to where it points",
        )
        return
    d.check(True, f"{label}: the name {host} resolves ({', '.join(resolved)})", "")
    good, seen = reachable(src.host, port)
    d.check(
        good,
        f"{label} answers: {seen}",
        f"allow outgoing TCP to {src.host} port {port}"
        + (", or remove the hub from HUBS (pushes through it then fall back)" if src.hub else ""),
    )
    if not good or rsync is None:
        return
    module = src.module or config.module
    user = None if src.hub else config.rsync_user
    outcome = list_module(rsync, src, config, home)
    who = f" as RSYNC_USER {user}" if user else ""
    d.check(
        outcome.verdict == "ok",
        f"{label}: module {module} lists{who}"
        + ("" if outcome.verdict == "ok" else f" ({outcome.kind}: {outcome.message})"),
        _module_fix(outcome.kind, src, conf),
    )


def _module_fix(kind: Optional[str], src: Source, conf: str) -> str:
    """The fix for a module that does not list, by the error kind a sync would report."""
    if kind == "auth_failed":
        return f"set RSYNC_USER= and RSYNC_PASSWORD= in {conf} to what the ClamAV team gave you"
    if kind == "unknown_module":
        where = f"the hub's module in HUBS= in {conf}" if src.hub else f"MODULE= in {conf}"
        return f"correct {where} (the ClamAV team's module is clamavdb)"
    return f"allow outgoing TCP to {src.host} port {src.port or 873}, then run --doctor again"


def resolve(host: str, port: int) -> Union[List[str], str]:
    """Return the addresses `host` resolves to, or why it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:  # socket.gaierror
        return exc.strerror or str(exc)
    return sorted({str(info[4][0]) for info in infos})


def list_module(rsync: str, src: Source, config: Config, home: str) -> rsyncplan.RsyncVerdict:
    """List the top of `src`'s module with rsync, as a sync connects (credentials, timeouts)."""
    url = rsyncplan.source_url(src, config.module, config.rsync_user)
    argv = [
        rsync,
        "--list-only",
        "--no-motd",
        f"--contimeout={min(config.contimeout, 30)}",
        f"--timeout={min(config.timeout, 30)}",
        url,
    ]
    env = rsyncplan.build_env(os.path.expanduser("~"), None if src.hub else config.rsync_password)
    res = run(argv, env, deadline_s=60.0, work_dir=os.path.expanduser("~"))
    if res.exit_code is None:
        return rsyncplan.RsyncVerdict("transient", "deadline", "no listing within 60s", True)
    return rsyncplan.classify(res.exit_code, res.output)


def _check_state(d: Doctor, config: Config) -> None:
    """The state directory, what it holds and the log: as a push checks them, and bound to
    this config's TO."""
    state = config.state_dir
    safe = d.trusted(f"STATE_DIR {state}", lambda: check_trusted(state, "STATE_DIR", link_ok=True))
    if safe and os.path.isdir(state):
        d.trusted(f"what STATE_DIR {state} holds", lambda: check_state_dir(state))
    bound = bound_tree(state)
    d.check(
        bound is None or bound == os.path.realpath(config.to),
        f"STATE_DIR {state} holds the state of this TO {config.to} "
        f"(bound to {bound or 'none yet'})",
        "give this config a STATE_DIR= of its own",
    )
    d.trusted(f"LOG_FILE {config.log_file}", lambda: check_trusted(config.log_file, "LOG_FILE"))
