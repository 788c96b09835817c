"""The command line ``clam-clientsync setup ...``. Pure, like ``args`` (whose parser it uses)."""

from typing import Dict, List, NamedTuple

from clientside.core.args import Parser, UsageError
from pushwire.keyfile import DEFAULT_PRINCIPAL

SETUP_USAGE = (
    "usage: clam-clientsync setup [--dry-run] [--config PATH] [--client PATH]\n"
    "           [--keys-dir DIR | --keys FILE --signers ALLOWED_SIGNERS] [--principal NAME]\n"
    "  --keys-dir DIR  DIR/authorized_keys_noshell, its .sig and DIR/allowed_signers\n"
    "  --keys FILE     a signed key file (FILE.sig beside it); needs --signers\n"
    f"  --principal     who must have signed it (default {DEFAULT_PRINCIPAL})\n"
    "  --client PATH   the installed client the forced commands run\n"
    "                  (default ~/bin/clam-clientsync)\n"
    "  --home DIR      the account's home (default: the home of the user running setup;\n"
    "                  for packaging and tests)\n"
    "  --dry-run       print what would change, change nothing"
)
SETUP_VALUED = (
    "--home",
    "--config",
    "--client",
    "--keys",
    "--signers",
    "--principal",
    "--keys-dir",
)


class SetupArgs(NamedTuple):
    values: Dict[str, str]  # option (e.g. "--keys-dir") -> value, for the options given
    dry_run: bool
    help: bool


def parse_setup_args(argv: List[str]) -> SetupArgs:
    """Given the arguments after ``setup``, return them; raise UsageError."""
    parser = Parser("clam-clientsync setup")
    for option in SETUP_VALUED:
        parser.add_argument(option)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("-h", "--help", action="store_true")
    ns = vars(parser.parse_args(argv))
    values = {o: ns[o[2:].replace("-", "_")] for o in SETUP_VALUED}
    given = {option: value for option, value in values.items() if value is not None}
    if "--keys" in given and "--keys-dir" in given:
        raise UsageError("give --keys FILE or --keys-dir DIR, not both")
    if "--keys" in given and "--signers" not in given:
        raise UsageError("--keys FILE needs --signers ALLOWED_SIGNERS (whose signature to trust)")
    return SetupArgs(given, bool(ns["dry_run"]), bool(ns["help"]))
