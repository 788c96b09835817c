"""Whether the mirror account can take a push: not locked for sshd, a login shell that can run
the forced command. Pure: the callers read ``/etc/shadow``, run ``passwd -S`` and stat the shell.

What sshd refuses: built without PAM, or with ``UsePAM no``, OpenSSH refuses every login to an
account whose ``/etc/shadow`` password starts with ``!`` (``User NAME not allowed because account
is locked``), public keys included; ``useradd`` leaves a new account so. ``*`` (``usermod -p '*'
NAME``) means "no password can log in" and is not locked for sshd. ``passwd -S`` says ``L`` for
both, so an account's own user (who cannot read ``/etc/shadow``) cannot tell them apart.
sshd then runs the forced command with the login shell (``SHELL -c COMMAND``): a shell that is
missing, not executable or a refusal (``nologin``, ``false``) makes every push fail.
"""

from typing import List, NamedTuple, Optional

LOCKED_PREFIX = "!"
REFUSING_SHELLS = ("nologin", "false")


class Check(NamedTuple):
    good: bool
    what: str
    fix: str


def shadow_password(shadow_text: str, user: str) -> Optional[str]:
    """Given ``/etc/shadow``'s text, return `user`'s password field, or None when not listed."""
    for line in shadow_text.split("\n"):
        fields = line.split(":")
        if len(fields) >= 2 and fields[0] == user:
            return fields[1]
    return None


def passwd_status(output: str, user: str) -> Optional[str]:
    """Given ``passwd -S``'s output (``NAME L 2026-12-07 0 99999 7 -1``), return its status
    (``P``, ``NP`` or ``L``), or None when the output is not about `user`."""
    for line in output.split("\n"):
        fields = line.split()
        if len(fields) >= 2 and fields[0] == user and fields[1] in ("P", "NP", "L"):
            return fields[1]
    return None


def unlock_fix(user: str) -> str:
    return (
        f"as root: usermod -p '*' {user} (no password can log in, keys can; sshd without PAM"
        " refuses a '!' account)"
    )


def lock_check(user: str, shadow: Optional[str], status: Optional[str]) -> Optional[Check]:
    """Given `user`'s ``/etc/shadow`` password field (None when unreadable) and else its
    ``passwd -S`` status (None when unknown), return the check, or None when it cannot be
    told (the caller says so, without failing: see the module)."""
    if shadow is not None:
        locked = shadow.startswith(LOCKED_PREFIX)
        return Check(
            not locked,
            f"account {user} is not locked for sshd"
            + (" (its /etc/shadow password starts with '!')" if locked else ""),
            unlock_fix(user),
        )
    if status in ("P", "NP"):
        return Check(True, f"account {user} is not locked (passwd -S: {status})", "")
    return None


def shell_checks(
    user: str,
    shell: str,
    *,
    exists: bool,
    executable: bool,
    listed: Optional[bool],
    good_shells: List[str],
) -> List[Check]:
    """The checks of `user`'s login shell: it exists and runs, it is listed in ``/etc/shells``
    (`listed` None: no such file), it is not a refusal, and it is sh or bash (what the old guide
    asked: the rc files of others may be slow or print)."""
    fix = f"as root: usermod -s /bin/sh {user}"
    name = shell.rsplit("/", 1)[-1]
    checks = [
        Check(
            exists and executable, f"login shell {shell or '(none)'} exists and is executable", fix
        ),
        Check(
            name not in REFUSING_SHELLS and bool(shell),
            f"login shell {shell or '(none)'} can run the forced command (not nologin or false)",
            fix,
        ),
    ]
    if listed is not None:
        checks.append(Check(listed, f"login shell {shell or '(none)'} is in /etc/shells", fix))
    if all(c.good for c in checks):
        checks.append(Check(shell in good_shells, f"login shell is sh or bash (is {shell})", fix))
    return checks


def shells_listed(shells_text: str, shell: str) -> bool:
    """Given ``/etc/shells``' text, return whether `shell` is one of its lines."""
    return any(
        line.strip() == shell for line in shells_text.split("\n") if not line.startswith("#")
    )
