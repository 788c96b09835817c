"""The judgement of a staged tree: given its listing, ``TO``'s and what was read of each file
(``FileFacts`` of a database, the version of the served file it replaces, what is wrong with
the bytes of a cdiff or sign file), one finding per file that must be verified. Pure: the
reading is ``verification``'s, handed in as ``Readers``; a tree judged once is judged again from
what was read (without the files a round removed, under other pins), never read twice."""

from typing import Callable, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Tuple

from clientside.core import cvd, patches
from clientside.core.publishplan import Entry, server_interpretable
from pushwire.cvd import CvdHeader


class FileFacts(NamedTuple):
    header: Optional[CvdHeader]
    header_error: Optional[str]
    body_md5: Optional[str]


class Finding(NamedTuple):
    path: str
    verdict: cvd.Verdict


class Readers(NamedTuple):
    """What the judgement reads, by path relative to the trees."""

    facts: Callable[[str], FileFacts]  # a staged database file
    served_version: Callable[[str], Optional[int]]  # the served file a staged one replaces
    content_problem: Callable[[str], Optional[str]]  # a staged cdiff or sign file


class StagedTree(NamedTuple):
    """One verification of the staging tree: the listings, what was read, and the findings
    under the request's expectations and the pins it was judged with."""

    staged: Dict[str, Entry]
    served: Dict[str, Entry]
    expect: Mapping[str, int]
    pins: Mapping[str, str]
    read: Tuple[Dict[str, FileFacts], Dict[str, Optional[int]], Dict[str, Optional[str]]]
    findings: Tuple[Finding, ...]

    def bad(self) -> List[Finding]:
        """Return the findings of files that may not be published."""
        return [f for f in self.findings if not f.verdict.ok]

    def without(self, removed: FrozenSet[str]) -> "StagedTree":
        """Return this tree without the entries ``removed`` (and what is below them), judged
        from what was read, as verifying the tree anew would judge it."""
        if not removed:
            return self
        staged = {
            p: e
            for p, e in self.staged.items()
            if p not in removed and not any(p.startswith(r + "/") for r in removed)
        }
        return self._judged(staged, self.pins)

    def under(self, pins: Mapping[str, str]) -> "StagedTree":
        """Return this tree judged with ``pins`` (a hub's) from what was read."""
        return self if dict(pins) == dict(self.pins) else self._judged(self.staged, pins)

    def _judged(self, staged: Dict[str, Entry], pins: Mapping[str, str]) -> "StagedTree":
        facts, versions, problems = self.read
        readers = Readers(facts.__getitem__, versions.__getitem__, problems.__getitem__)
        findings = judge_tree(staged, self.served, readers, expect=self.expect, pins=pins)
        return self._replace(staged=staged, pins=pins, findings=tuple(findings))


def judge_tree(
    staged: Dict[str, Entry],
    served: Dict[str, Entry],
    readers: Readers,
    *,
    expect: Mapping[str, int],
    pins: Mapping[str, str] = {},
) -> List[Finding]:
    """Judge every staged name that must be verified (``*.cvd *.cld *.cud *.cdiff *.sign``):
    a regular file whose bytes are whole and not older than what it replaces, whatever the
    request names, and, for a database in `pins` (a hub's tree), the pinned CVD itself; return
    one finding per file, per missing expected ``NAME.cvd`` and per served database the
    source replaces by an alias."""
    findings: List[Finding] = []
    seen_dbs = set()
    cvd_versions: Dict[str, int] = {}
    # a name never published (a dot name, a server script) is never judged either
    staged = {p: e for p, e in staged.items() if not server_interpretable(p)}
    for path in sorted(staged):
        base = path.rsplit("/", 1)[-1]
        if cvd.is_checked_name(base) and staged[path].kind != "file":
            # every name that is verified is a regular file: a link or directory never is
            msg = f"{path}: not a regular file"
            findings.append(Finding(path, cvd.Verdict(False, "corrupt_file", msg)))
            continue
        name = cvd.database_name(base)
        if name is None:
            continue
        top_level = "/" not in path
        if top_level and base.endswith(cvd.SERVED_SUFFIX):
            seen_dbs.add(name)
        facts = readers.facts(path)
        current = served.get(path)
        replaced = current is not None and (current.dev, current.ino) != (
            staged[path].dev,
            staged[path].ino,
        )
        verdict = cvd.judge(
            path,
            header=facts.header,
            header_error=facts.header_error,
            body_md5=facts.body_md5,
            served_version=readers.served_version(path) if replaced else None,
            expected_version=expect.get(name) if top_level else None,
            pinned_md5=pins.get(name),
        )
        findings.append(Finding(path, verdict))
        if top_level and facts.header is not None and base.endswith(cvd.SERVED_SUFFIX):
            cvd_versions[name] = facts.header.version
    for path in sorted(staged):
        base = path.rsplit("/", 1)[-1]
        if staged[path].kind != "file" or cvd.database_name(base) is not None:
            continue
        if not patches.is_release_file(base):
            if cvd.is_checked_name(base):
                msg = f"{path}: not the name of a cdiff or sign file (NAME-N.cdiff[.sign])"
                findings.append(Finding(path, cvd.Verdict(False, "corrupt_file", msg)))
            continue
        verdict = patches.judge_release_file(
            path,
            regular=True,
            content_problem=readers.content_problem(path),
            cvd_versions=cvd_versions,
        )
        findings.append(Finding(path, verdict))
    findings.extend(_aliases(staged, served))
    for name, version in sorted(expect.items()):
        if name not in seen_dbs:
            msg = f"{name}: expected version {version} but the source has no {name}.cvd"
            findings.append(Finding(name + ".cvd", cvd.Verdict(False, "expectation_unmet", msg)))
    return findings


def _aliases(staged: Dict[str, Entry], served: Dict[str, Entry]) -> List[Finding]:
    """Return a finding for each served ``NAME.cvd`` the source no longer has while it ships
    the same database under another name (``daily.cud`` for ``daily.cvd``): freshclam fetches
    ``NAME.cvd``, so it is never removed for the alias."""
    found: List[Finding] = []
    for path in sorted(served):
        base = path.rsplit("/", 1)[-1]
        name = cvd.database_name(base)
        if name is None or not base.endswith(cvd.SERVED_SUFFIX):
            continue  # an alias the source no longer ships beside its NAME.cvd goes
        if path in staged or served[path].kind != "file":
            continue
        directory = path[: -len(path.rsplit("/", 1)[-1])]
        aliases = sorted(
            p
            for p in staged
            if p.startswith(directory)
            and "/" not in p[len(directory) :]
            and cvd.database_name(p[len(directory) :]) == name
        )
        if aliases:
            msg = f"{path}: the source ships {aliases[0]} instead; {path} stays served"
            found.append(Finding(path, cvd.Verdict(False, "incoherent", msg)))
    return found
