"""Verification of the staged tree and of what ``TO`` serves: CVD headers and body MD5s (under
every database name: ``.cvd``, ``.cld``, ``.cud``), cdiffs (a whole gzip stream) and sign files
(small text), read once per file (cached by inode), judged by ``core.stagedtree`` (with
``core.cvd`` and ``core.patches``)."""

import hashlib
import json
import logging
import os
import stat
from typing import Any, Dict, List, Mapping, Optional, Tuple

from clientside.core import cvd, patches
from clientside.core.stagedtree import FileFacts, Readers, StagedTree, judge_tree
from clientside.fsutil import atomic_write, listing
from pushwire.cvd import HEADER_SIZE, CvdError, CvdHeader, parse_header
from pushwire.report import CdiffSpan, Database

log = logging.getLogger("clam-clientsync")
CHUNK = 1 << 20
CACHE_NAME = "verified.json"


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

    def content_problem(self, path: str) -> Optional[str]:
        """Return what is wrong with the bytes of the cdiff or sign file at ``path``, or None.

        Raise OSError (a symlink: ELOOP)."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                return "not a regular file"
            key = "release:" + _key(st)
            hit = self.used.get(key) or self.cache.get(key)
            if isinstance(hit, dict) and "problem" in hit:
                self.used[key] = hit
                problem = hit["problem"]
                return problem if isinstance(problem, str) else None
            name = patches.release_name(os.path.basename(path))
            if name is not None and name.kind == "cdiff":
                check = patches.GzipCheck()
                while True:
                    chunk = fh.read(CHUNK)
                    if not chunk:
                        break
                    check.feed(chunk)
                    if check.result() not in (None, "truncated gzip stream"):
                        break  # already hopeless: do not read the rest
                problem = check.result()
            else:
                problem = patches.sign_problem(st.st_size, fh.read(patches.MAX_SIGN_SIZE))
        self.used[key] = {"problem": problem}
        return problem

    def save(self) -> None:
        try:
            atomic_write(self.path, json.dumps(self.used).encode(), durable=False)
        except OSError as exc:
            log.warning("cannot save verification cache: %s", exc)


def _facts_from_json(data: Dict[str, Any]) -> FileFacts:
    raw = data.get("header")
    header = CvdHeader(*raw) if isinstance(raw, list) and len(raw) == 7 else None
    return FileFacts(header, data.get("header_error"), data.get("body_md5"))


def verify_staging(
    verifier: Verifier,
    *,
    staging: str,
    to: str,
    expect: Mapping[str, int],
    pins: Mapping[str, str] = {},
) -> StagedTree:
    """List the staging tree and ``TO``, read every staged file that must be verified (and the
    served file each database replaces) and return the tree judged by ``core.stagedtree``.

    Raise OSError when a staged file cannot be read."""
    staged = listing(staging, skip_private=False)
    served = listing(to)
    facts: Dict[str, FileFacts] = {}
    versions: Dict[str, Optional[int]] = {}
    problems: Dict[str, Optional[str]] = {}

    def read_facts(path: str) -> FileFacts:
        facts[path] = verifier.facts(os.path.join(staging, path))
        return facts[path]

    def read_version(path: str) -> Optional[int]:
        versions[path] = _served_version(verifier, os.path.join(to, path))
        return versions[path]

    def read_problem(path: str) -> Optional[str]:
        problems[path] = verifier.content_problem(os.path.join(staging, path))
        return problems[path]

    readers = Readers(read_facts, read_version, read_problem)
    findings = judge_tree(staged, served, readers, expect=expect, pins=pins)
    read = (facts, versions, problems)
    return StagedTree(staged, served, expect, pins, read, tuple(findings))


def _served_version(verifier: Verifier, path: str) -> Optional[int]:
    try:
        facts = verifier.facts(path)
    except OSError:
        return None
    if facts.header is None or facts.body_md5 != facts.header.md5:
        return None  # a broken served file never blocks its replacement
    return facts.header.version


def served_databases(verifier: Verifier, to: str) -> Dict[str, Database]:
    """Return the report's ``databases``: the top-level ``NAME.cvd`` files TO serves now (what
    freshclam fetches; an alias such as ``NAME.cud`` beside it is not described). A served
    name that is not a verified regular file is described as such (``md5_ok`` false)."""
    dbs: Dict[str, Database] = {}
    for name in sorted(os.listdir(to)):
        db = cvd.database_name(name)
        if db is None or not name.endswith(cvd.SERVED_SUFFIX):
            continue
        try:
            facts: Optional[FileFacts] = verifier.facts(os.path.join(to, name))
        except OSError:
            facts = None  # a symlink (ELOOP), unreadable: served, but not verified
        header = facts.header if facts else None
        dbs[db] = {
            "file": name,
            "version": header.version if header else None,
            "build_time": header.build_time_rfc3339() if header else None,
            "signatures": header.signatures if header else None,
            "md5_ok": bool(facts and header and facts.body_md5 == header.md5),
        }
    return dbs


def served_release_files(to: str) -> Tuple[Dict[str, CdiffSpan], List[str]]:
    """Return the report's ``cdiffs`` and ``signs``: the top-level cdiffs (range per database)
    and sign files that TO serves now, regular files only."""
    names = []
    with os.scandir(to) as it:
        for de in it:
            if de.is_file(follow_symlinks=False) and patches.is_release_file(de.name):
                names.append(de.name)
    ranges, signs = patches.served_release_files(names)
    spans: Dict[str, CdiffSpan] = {
        db: {"first": r.first, "last": r.last, "count": r.files} for db, r in ranges.items()
    }
    return spans, signs
