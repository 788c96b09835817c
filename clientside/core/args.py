"""The command line ``clam-clientsync [--config PATH] SOURCE`` (as sshd runs it, or ``--doctor``).
Pure: argparse that neither prints nor exits; ``setupargs`` reads ``clam-clientsync setup ...``.
"""

import argparse
from typing import List, NamedTuple, NoReturn, Optional

USAGE = (
    "usage: clam-clientsync [--config PATH] SOURCE | clam-clientsync --doctor [--config PATH]"
    " | clam-clientsync setup --help | clam-clientsync maintenance --help"
)

HELP = (
    USAGE + "\n\n"
    "The mirror's side of pushsync. sshd runs it as the forced command of the pusher keys in\n"
    "~/.ssh/authorized_keys; it rsyncs the ClamAV databases from SOURCE (falling back to the\n"
    "other source), publishes them atomically into TO, verifies every CVD it serves, and\n"
    "prints one JSON report. Each sync also writes the mirror's home page, TO/index.html.\n"
    "\n"
    "  SOURCE          the source to sync from, e.g. rsync1.clamav.net (one of the config's\n"
    "                  SOURCES; without SOURCES, rsync1.clamav.net and rsync2.clamav.net)\n"
    "  --config PATH   the config file (default ~/etc/clam-clientsync.conf: TO=,\n"
    "                  RSYNC_USER=, RSYNC_PASSWORD=, MODULE=, EXCLUDE=, SOURCES=; the home\n"
    "                  page's MIRROR_NAME=, COUNTRY=, SPONSOR=, SPONSOR_URL=, CONTACT=,\n"
    "                  SHOW_CONTACT=)\n"
    "  --doctor        check the account, the config, every source and the served tree;\n"
    "                  print what to fix\n"
    "  setup --help    install the signed key file and check the account's permissions\n"
    "  maintenance --help\n"
    "                  announce a maintenance window (--from, --until, --reason), cancel\n"
    "                  it (--cancel) or show it (--show)\n"
    "  --version       print the version\n"
    "  -h, --help      print this help\n"
    "\n"
    "Exit codes: 0 ok or queued, 64 usage or rejected request, 75 temporary failure (a sync\n"
    "is running: the push is remembered), 78 configuration error, 1 other failure.\n"
    "Log: ~/var/clam-clientsync/clam-clientsync.log (LOG_FILE=). Guide: the pushsync\n"
    "operators' guide (docs/operators-guide.md)."
)


class UsageError(Exception):
    """The command line is not one we accept: exit 64 (EX_USAGE)."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose every problem is a UsageError: no help printed, no exit."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class Args(NamedTuple):
    config: Optional[str]
    source: Optional[str]
    doctor: bool
    help: bool
    version: bool
    home: Optional[str] = None  # --home DIR: for tests and packaging


def parse_args(argv: List[str]) -> Args:
    """Given argv (without the program, not starting with ``setup``), return Args; raise
    UsageError."""
    parser = Parser("clam-clientsync")
    parser.add_argument("--config", metavar="PATH")
    parser.add_argument("--home", metavar="DIR")
    parser.add_argument("--doctor", action="store_true")
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("words", nargs="*")
    # parse_known_args, not parse_intermixed_args (six times the work, on every push): the
    # words after an option come back as extras
    ns, extras = parser.parse_known_args(argv)
    words: List[str] = [*ns.words, *extras]
    for word in words:
        if word.startswith("-"):  # unknown options, "-5", anything after "--"
            raise UsageError(f"unknown option {word[:40]!r}")
    doctor = bool(ns.doctor)
    if words[:1] == ["doctor"]:
        doctor, words = True, words[1:]
    if len(words) > 1:
        raise UsageError("only one SOURCE may be given")
    if not (doctor or ns.help or ns.version) and not words:
        raise UsageError("SOURCE is missing")
    return Args(ns.config, words[0] if words else None, doctor, ns.help, ns.version, ns.home)
