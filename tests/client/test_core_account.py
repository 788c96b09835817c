"""Whether the mirror account can take a push: locked for sshd, login shell (pure parts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clientside.core.account import (
    lock_check,
    passwd_status,
    shadow_password,
    shell_checks,
    shells_listed,
)

SHADOW = "root:*:20000:0:99999:7:::\nclamavdb:!:20794:0:99999:7:::\nother:$y$j9T$x:20794::::::\n"
GOOD = ["/bin/sh", "/bin/bash"]


def test_shadow_and_passwd_status_are_read_for_the_named_user_only() -> None:
    assert shadow_password(SHADOW, "clamavdb") == "!"
    assert shadow_password(SHADOW, "root") == "*"
    assert shadow_password(SHADOW, "clamav") is None  # a prefix of a name is not the name
    assert passwd_status("clamavdb L 2026-12-07 0 99999 7 -1\n", "clamavdb") == "L"
    assert passwd_status("clamavdb P 2026-12-07 0 99999 7 -1\n", "clamav") is None
    assert passwd_status("passwd: Permission denied.\n", "clamavdb") is None


@pytest.mark.parametrize(
    ("shadow", "status", "good"),
    [
        ("!", None, False),  # useradd's default: sshd without PAM refuses it
        ("!$y$j9T$x", None, False),  # passwd -l of an account with a password
        ("!*", None, False),
        ("*", "L", True),  # usermod -p '*': no password, keys log in
        ("$y$j9T$x", None, True),
        ("", None, True),
        (None, "P", True),
        (None, "NP", True),
    ],
)
def test_a_bang_password_is_locked_for_sshd_and_star_is_not(
    shadow: str | None, status: str | None, good: bool
) -> None:
    """Failed on the code before it: doctor had no such check (an account useradd left
    locked passed doctor, and sshd refused every push)."""
    check = lock_check("clamavdb", shadow, status)
    assert check is not None and check.good is good
    if not good:
        assert "not locked for sshd" in check.what and "'!'" in check.what
        assert check.fix.startswith("as root: usermod -p '*' clamavdb")


@pytest.mark.parametrize("status", ["L", None])
def test_without_shadow_a_locked_status_cannot_be_told_from_star(status: str | None) -> None:
    """passwd -S says L for '!' and for '*': the account's own user cannot tell them apart, so
    it is not a failure (the caller prints a note)."""
    assert lock_check("clamavdb", None, status) is None


@pytest.mark.parametrize(
    ("shell", "exists", "listed", "failing"),
    [
        ("/bin/sh", True, True, []),
        ("/usr/sbin/nologin", True, False, ["can run", "/etc/shells"]),
        ("/bin/false", True, False, ["can run", "/etc/shells"]),
        ("/bin/shh", False, False, ["exists", "/etc/shells"]),
        ("", False, False, ["exists", "can run", "/etc/shells"]),
        ("/bin/zsh", True, True, ["sh or bash"]),
        ("/bin/bash", True, None, []),  # no /etc/shells: not checked
    ],
)
def test_the_login_shell_must_run_the_forced_command(
    shell: str, exists: bool, listed: bool | None, failing: list[str]
) -> None:
    """Failed on the code before it for nologin, false, a missing shell and one not in
    /etc/shells: doctor only compared the shell with sh and bash ('chsh -s', which asks for the
    password a key-only account has not)."""
    checks = shell_checks(
        "clamavdb", shell, exists=exists, executable=exists, listed=listed, good_shells=GOOD
    )
    bad = [c for c in checks if not c.good]
    assert len(bad) == len(failing), checks
    for check, word in zip(bad, failing, strict=True):
        assert word in check.what and check.fix == "as root: usermod -s /bin/sh clamavdb"


_NAME = st.from_regex(r"[a-z_][a-z0-9_-]{0,15}", fullmatch=True)
_FIELD = st.text(st.characters(blacklist_characters=":\n", codec="utf-8"), max_size=40)


@given(st.lists(st.tuples(_NAME, _FIELD), max_size=8), _NAME, _FIELD)
def test_shadow_password_finds_exactly_the_users_line(
    others: list[tuple[str, str]], user: str, password: str
) -> None:
    """Property: whatever other lines say, the user's own field is found, and the verdict is
    "locked" exactly when it starts with '!'."""
    lines = [f"{n}:{p}:20000::::::" for n, p in others if n != user]
    text = "\n".join([*lines[:3], f"{user}:{password}:20000::::::", *lines[3:]]) + "\n"
    assert shadow_password(text, user) == password
    check = lock_check(user, password, None)
    assert check is not None and check.good is (not password.startswith("!"))


_PATH = st.from_regex(r"/[a-z/]{1,20}", fullmatch=True)


@given(st.lists(_PATH, max_size=10), _PATH)
def test_a_shell_is_listed_exactly_when_it_is_a_line_of_etc_shells(
    shells: list[str], shell: str
) -> None:
    """Property: a shell is listed when a line (blanks around it aside) is that path; a comment
    naming it, or a longer path beginning with it, is not."""
    text = "# /etc/shells: " + shell + "\n" + "\n".join(f" {s}\t" for s in shells) + "\n"
    text += shell + "x\n"
    assert shells_listed(text, shell) is (shell in shells)


@given(st.text(max_size=300), _NAME, st.sampled_from(["P", "NP", "L"]))
def test_passwd_status_is_the_users_own_line_whatever_surrounds_it(
    noise: str, user: str, status: str
) -> None:
    """Property (hostile output too: any text before, a line of another user): the status is
    read from the user's own line only, and never from another's."""
    other = ("x" + user)[:16]
    text = f"{noise}\n{other} P 2026-12-07 0 99999 7 -1\n{user} {status} 2026-12-07 0 99999 7 -1\n"
    found = passwd_status(text, user)
    assert found in ("P", "NP", "L")
    if not any(line.split()[:1] == [user] for line in noise.split("\n")):
        assert found == status
    assert passwd_status(f"{other} {status} 2026-12-07\n", user) is None
