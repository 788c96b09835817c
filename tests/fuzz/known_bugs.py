"""Product bugs this suite found, tolerated *precisely* until fixed (see
benchmarks/RELIABILITY.md): each predicate matches only the one known failure, so any other
exception still fails the test. Delete a predicate when its fix lands."""

from __future__ import annotations

import traceback


def cvd_unix_time_bug(err: BaseException) -> bool:
    """syncd/core/cvd.py: the 9th header field passes ``.strip().isdigit()`` but is given to
    ``int()`` unstripped, so ``\\x1f1795599000`` raises ValueError instead of CvdError."""
    if type(err) is not ValueError or "invalid literal for int()" not in str(err):
        return False
    last = traceback.extract_tb(err.__traceback__)[-1]
    return last.filename.endswith("syncd/core/cvd.py") and "fields[8]" in (last.line or "")


def authorized_keys_whitespace_bug(err: BaseException) -> bool:
    """syncd/core/authorized_keys.py: a line of only non-ASCII whitespace (``\\xa0``) passes
    ``.strip(" \\t")`` but ``split(None, 1)[0]`` finds no field: IndexError, not
    AuthorizedKeysError (reached from an inventory's ``host_keys``)."""
    if type(err) is not IndexError:
        return False
    last = traceback.extract_tb(err.__traceback__)[-1]
    return last.filename.endswith("syncd/core/authorized_keys.py")
