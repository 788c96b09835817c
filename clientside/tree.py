"""The staging tree, CVD verification and the atomic publish into ``TO`` (the I/O half)."""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
from typing import Any, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple

from clientside import cvd
from clientside.fsutil import atomic_write, listing
from clientside.publishplan import (
    PRIVATE_DIR,
    TEMP_PREFIX,
    Entry,
    Plan,
    plan_publish,
    seed_paths,
)
from pushwire.cvd import HEADER_SIZE, CvdError, CvdHeader, parse_header
from pushwire.report import Database

log = logging.getLogger("clam-clientsync")
CHUNK = 1 << 20
CACHE_NAME = "verified.json"


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
    removed = 0
    for root, dirnames, _files in os.walk(staging):
        for name in list(dirnames):
            if name == ".~tmp~":
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
                dirnames.remove(name)
                removed += 1
    if removed:
        log.info("removed %d stale rsync temporary directories", removed)
    return staging


# -- verification -------------------------------------------------------------------------------


class FileFacts(NamedTuple):
    header: Optional[CvdHeader]
    header_error: Optional[str]
    body_md5: Optional[str]


def _key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


class Verifier:
    """Reads CVD headers and body MD5s, remembering results per inode (files are never changed
    in place: rsync and our publish both write new inodes)."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, CACHE_NAME)
        self.cache: Dict[str, Any] = {}
        self.used: Dict[str, Any] = {}
        try:
            with open(self.path, encoding="utf-8") as fh:
                loaded = json.load(fh)
            if isinstance(loaded, dict):
                self.cache = loaded
        except (OSError, ValueError):
            pass

    def facts(self, path: str) -> FileFacts:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                return FileFacts(None, "not a regular file", None)
            key = _key(st)
            hit = self.used.get(key) or self.cache.get(key)
            if isinstance(hit, dict):
                self.used[key] = hit
                return _facts_from_json(hit)
            head = fh.read(HEADER_SIZE)
            try:
                header: Optional[CvdHeader] = parse_header(head)
                error = None
            except CvdError as exc:
                header, error = None, str(exc)
            digest = hashlib.md5(usedforsecurity=False)
            while True:
                chunk = fh.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
            facts = FileFacts(header, error, digest.hexdigest() if header else None)
        self.used[key] = {
            "header": list(facts.header) if facts.header else None,
            "header_error": facts.header_error,
            "body_md5": facts.body_md5,
        }
        return facts

    def save(self) -> None:
        try:
            atomic_write(self.path, json.dumps(self.used).encode(), durable=False)
        except OSError as exc:
            log.warning("cannot save verification cache: %s", exc)


def _facts_from_json(data: Dict[str, Any]) -> FileFacts:
    raw = data.get("header")
    header = CvdHeader(*raw) if isinstance(raw, list) and len(raw) == 7 else None
    return FileFacts(header, data.get("header_error"), data.get("body_md5"))


class Finding(NamedTuple):
    path: str
    verdict: cvd.Verdict


def verify_staging(
    verifier: Verifier,
    *,
    staging: str,
    to: str,
    staged: Dict[str, Entry],
    served: Dict[str, Entry],
    expect: Dict[str, int],
) -> List[Finding]:
    """Judge every staged ``*.cvd``/``*.cud``; return one finding per file (and per missing
    expected database)."""
    findings: List[Finding] = []
    seen_dbs = set()
    for path in sorted(staged):
        base = path.rsplit("/", 1)[-1]
        name = cvd.database_name(base)
        if name is None or staged[path].kind != "file":
            continue
        top_level = "/" not in path
        if top_level:
            seen_dbs.add(name)
        facts = verifier.facts(os.path.join(staging, path))
        served_version = None
        current = served.get(path)
        if current is not None and (current.dev, current.ino) != (
            staged[path].dev,
            staged[path].ino,
        ):
            served_version = _served_version(verifier, os.path.join(to, path))
        verdict = cvd.judge(
            path,
            header=facts.header,
            header_error=facts.header_error,
            body_md5=facts.body_md5,
            served_version=served_version,
            expected_version=expect.get(name) if top_level else None,
        )
        findings.append(Finding(path, verdict))
    for name, version in sorted(expect.items()):
        if name not in seen_dbs:
            msg = f"{name}: expected version {version} but the source has no {name}.cvd"
            findings.append(Finding(name + ".cvd", cvd.Verdict(False, "expectation_unmet", msg)))
    return findings


def _served_version(verifier: Verifier, path: str) -> Optional[int]:
    try:
        facts = verifier.facts(path)
    except OSError:
        return None
    if facts.header is None or facts.body_md5 != facts.header.md5:
        return None  # a broken served file never blocks its replacement
    return facts.header.version


def served_databases(verifier: Verifier, to: str) -> Dict[str, Database]:
    """Return the report's ``databases``: the top-level CVDs that TO serves now."""
    dbs: Dict[str, Database] = {}
    for name in sorted(os.listdir(to)):
        db = cvd.database_name(name)
        if db is None or db in dbs:
            continue
        try:
            facts = verifier.facts(os.path.join(to, name))
        except OSError:
            continue
        header = facts.header
        dbs[db] = {
            "file": name,
            "version": header.version if header else None,
            "build_time": header.build_time_rfc3339() if header else None,
            "signatures": header.signatures if header else None,
            "md5_ok": bool(header and facts.body_md5 == header.md5),
        }
    return dbs


# -- publish ------------------------------------------------------------------------------------


def plan(
    to: str, staging: str, patterns: Sequence[str], failed: FrozenSet[str]
) -> Tuple[Plan, Dict[str, Entry], Dict[str, Entry]]:
    staged = listing(staging, skip_private=False)
    served = listing(to)
    return plan_publish(staged, served, patterns=patterns, failed=failed), staged, served


def clean_stray_temps(to: str) -> int:
    """Remove temporary names an interrupted publish left in TO; return how many."""
    removed = 0
    for path, entry in listing(to).items():
        if path.rsplit("/", 1)[-1].startswith(TEMP_PREFIX) and entry.kind != "dir":
            os.unlink(os.path.join(to, path))
            removed += 1
    return removed


def _safe_link_target(target: str) -> bool:
    return not target.startswith("/") and ".." not in target.split("/")


def _publish_one(src: str, tmp: str, dst: str) -> Optional[str]:
    """Make ``dst`` the staged ``src`` in one rename; return a problem or None."""
    if os.path.lexists(tmp):
        os.unlink(tmp)
    if stat.S_ISLNK(os.lstat(src).st_mode):
        target = os.readlink(src)
        if not _safe_link_target(target):
            return f"symlink to {target!r} not published"
        os.symlink(target, tmp)
    else:
        # rsync does not fsync: make the data durable before a name in TO points at it, so a
        # crash cannot leave a served name on an empty or partial file
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(src, tmp, follow_symlinks=False)
    os.rename(tmp, dst)
    return None


def execute(plan_: Plan, to: str, staging: str, max_delete: int) -> Tuple[int, int, List[str]]:
    """Apply the plan: link+rename each file, then deletions (bounded by ``max_delete``).

    Return (files published, files deleted, problems).
    """
    problems: List[str] = []
    for d in plan_.mkdirs:
        os.makedirs(os.path.join(to, d), mode=0o755, exist_ok=True)
    published = 0
    pid = os.getpid()
    for path in plan_.publish:
        src = os.path.join(staging, path)
        dst = os.path.join(to, path)
        tmp = os.path.join(os.path.dirname(dst), f"{TEMP_PREFIX}{os.path.basename(dst)}.{pid}")
        try:
            problem = _publish_one(src, tmp, dst)
        except OSError as exc:
            problem = f"{exc.strerror}"
        if problem:
            problems.append(f"{path}: {problem}")
        else:
            published += 1
    deleted = 0
    if len(plan_.deletes) > max_delete:
        problems.append(
            f"{len(plan_.deletes)} files to delete exceed MAX_DELETE={max_delete}; none deleted"
        )
    else:
        for path in plan_.deletes:
            try:
                os.unlink(os.path.join(to, path))
                deleted += 1
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror}")
        for path in plan_.rmdirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(to, path))
    for path in plan_.conflicts:
        problems.append(f"{path}: a file and a directory of the same name; left as is")
    fd = os.open(to, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return published, deleted, problems


def plan_publish_from(
    staged: Dict[str, Entry],
    served: Dict[str, Entry],
    patterns: Sequence[str],
    bad: Sequence[Finding],
) -> Plan:
    """Return the publish plan holding back every file with a failed finding."""
    return plan_publish(staged, served, patterns=patterns, failed=frozenset(f.path for f in bad))
