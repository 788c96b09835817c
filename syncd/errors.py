"""syncd's own errors.

`SyncdError` is the base of every error the operator reads: one line that says what is wrong
and how to fix it, and the exit code syncd ends with (the command line maps it, in one place:
``syncd.cli.groups``). Most are configuration or usage errors (2).

The family, each with its own module beside the feature it speaks for: `ConfigError`
(`syncd.settings`), `InventoryError` (`syncd.inventory.model`), `StoreError` (`syncd.sqlite`),
`DnsSafetyError` and `DnsUpdateError` (`syncd.dns`), `KeyringError` (`syncd.keys.keyring`), and
more; every one is a `SyncdError` with its exit code. A failure talking to one mirror is not
one of them: it is a `syncd.publish.errors.PushError`, that mirror's outcome, never syncd's
exit.
"""

from __future__ import annotations

EXIT_FAILED = 1  # the work ran and something failed (a mirror, the mail, the DNS update)
EXIT_USAGE = 2  # configuration or usage: nothing was done
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL: busy (another syncd works on the run); try again later


class SyncdError(Exception):
    """A problem for the operator, in one line; `exit_code` is what syncd exits with."""

    exit_code: int = EXIT_USAGE


class ConfigError(SyncdError, ValueError):
    """The configuration cannot be used; the message names file and field and the fix."""


class UsageError(SyncdError):
    """A required option is missing, or names nothing there is (a run, a record)."""
