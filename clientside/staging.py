"""The staging tree: ``TO/.clam-clientsync/staging``, where rsync writes (never into ``TO``).

Created on first use and seeded from ``TO`` by hard links, so that rsync's delta transfer starts
from what is served; left-overs of an interrupted run are removed before each round, and the
files a source sent corrupt after its rsync.
"""

import contextlib
import logging
import os
import re
import shutil
import stat
from typing import Dict, FrozenSet, List, Sequence

from clientside.core.publishplan import PRIVATE_DIR, TEMP_PREFIX, seed_paths
from clientside.core.stagedtree import Finding
from clientside.fsutil import listing

log = logging.getLogger("clam-clientsync")


class TreeError(Exception):
    """The served tree or the staging tree cannot be used; ``kind`` names the report error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def private_dir(to: str) -> str:
    return os.path.join(to, PRIVATE_DIR)


def staging_dir(to: str) -> str:
    return os.path.join(to, PRIVATE_DIR, "staging")


def prepare_staging(to: str, patterns: Sequence[str]) -> str:
    """Return the staging directory, creating and seeding it from TO by hard links if new.

    Stale rsync temporary directories (``.~tmp~``) of an interrupted run are removed.
    """
    priv = private_dir(to)
    os.makedirs(priv, mode=0o700, exist_ok=True)
    st = os.lstat(priv)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise TreeError("publish_failed", f"{priv} is not our own directory (a symlink?)")
    os.chmod(priv, 0o700)  # the web server has no business in here
    staging = staging_dir(to)
    if st.st_dev != os.stat(to).st_dev:
        raise TreeError("publish_failed", f"{priv} is not on the filesystem of TO")
    if os.path.lexists(staging) and not stat.S_ISDIR(os.lstat(staging).st_mode):
        raise TreeError("publish_failed", f"{staging} is not a directory")
    if not os.path.isdir(staging):
        seeding = staging + ".seeding"
        shutil.rmtree(seeding, ignore_errors=True)
        os.mkdir(seeding, 0o755)
        dirs, files = seed_paths(listing(to), patterns)
        for d in dirs:
            os.mkdir(os.path.join(seeding, d), 0o755)
        linked = 0
        for f in files:
            try:
                os.link(os.path.join(to, f), os.path.join(seeding, f), follow_symlinks=False)
                linked += 1
            except OSError as exc:  # e.g. another user's file (fs.protected_hardlinks)
                log.info("not seeding %s: %s (rsync will fetch it)", f, exc.strerror)
        os.rename(seeding, staging)
        log.info("staging tree created with %d files linked from TO", linked)
    removed = remove_partials(staging)
    if removed:
        log.info("removed %d stale rsync temporary files and directories", removed)
    return staging


# rsync's temporary names: ``.NAME.XXXXXX`` beside the file (``mkstemp``), and the
# ``.~tmp~`` directory ``--delay-updates`` gathers finished files in until the end
_RSYNC_TEMP = re.compile(r"\A\..+\.[A-Za-z0-9]{6}\Z")


def remove_partials(staging: str) -> int:
    """Remove what an rsync that did not finish (a full disk, a timeout, a kill) left in
    staging: ``.~tmp~`` directories and rsync's temporary files. Return how many."""
    removed = 0
    for root, dirnames, files in os.walk(staging):
        for name in list(dirnames):
            if name == ".~tmp~":
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
                dirnames.remove(name)
                removed += 1
        for name in files:
            if _RSYNC_TEMP.match(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, name))
                    removed += 1
    return removed


def clean_stray_temps(to: str) -> int:
    """Remove temporary names an interrupted publish left in TO; return how many."""
    removed = 0
    for path, entry in listing(to).items():
        if path.rsplit("/", 1)[-1].startswith(TEMP_PREFIX) and entry.kind != "dir":
            os.unlink(os.path.join(to, path))
            removed += 1
    return removed


def quarantine(staging: str, bad: List[Finding], quarantined: Dict[str, Finding]) -> FrozenSet[str]:
    """Remove corrupt files from staging, so that the next source (or run) sends them whole:
    rsync's quick check (size and time) would otherwise keep a corrupt copy forever. A file held
    back as incoherent (a version past its CVD) stays: it is whole, only early. Return the
    paths removed."""
    removed = set()
    for finding in bad:
        if finding.verdict.kind in ("corrupt_cvd", "corrupt_file"):
            path = os.path.join(staging, finding.path)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)  # a directory under a database name
            elif os.path.lexists(path):
                os.unlink(path)
            else:
                continue
            quarantined[finding.path] = finding
            removed.add(finding.path)
    return frozenset(removed)
