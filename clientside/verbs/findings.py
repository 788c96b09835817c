"""What ``clam-clientsync --doctor`` found: each check passed, each problem with its fix, and
notes on what cannot be checked as this user."""

from typing import Callable, List, Tuple

from clientside.core.config import ConfigError
from clientside.trust import UnsafePath


class Doctor:
    def __init__(self) -> None:
        self.problems: List[Tuple[str, str]] = []
        self.ok: List[str] = []
        self.notes: List[str] = []  # what cannot be checked as this user: not a problem

    def check(self, good: bool, what: str, fix: str) -> None:
        if good:
            self.ok.append(what)
        else:
            self.problems.append((what, fix))

    def trusted(self, what: str, check: Callable[[], None]) -> bool:
        """Run a StrictModes check (as a push runs it); return whether it passed."""
        try:
            check()
        except UnsafePath as exc:
            fix = exc.fix
            self.check(False, exc.problem, fix[len("run: ") :] if fix.startswith("run: ") else fix)
            return False
        except ConfigError as exc:
            self.check(False, str(exc), "fix the path named")
            return False
        self.check(True, f"{what} cannot be changed by another user", "")
        return True
