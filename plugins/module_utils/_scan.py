# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The file walk and the parallel scan behind ``secret_scan`` and ``log_hygiene``; baseline and reports.

Walk: in a git work tree, the tracked files plus the untracked files git does not ignore
(``git ls-files --cached --others --exclude-standard``), else every file under the root. Vendored
and generated folders (``node_modules``, ``vendor``, ``.venv``, ``dist``...) are skipped, and so are
symbolic links, files over the size limit and binary files (a NUL byte in the first 8 KiB).

History (optional): every blob any commit on any ref added or modified (``git log --all --raw``),
read once each through one ``git cat-file --batch``, except the blobs of the current index, which
the walk already covered. A history match names the commit that introduced the blob.

Files are scanned in parallel worker processes (``concurrent.futures``, fork start method) in
chunks; small scans stay in one process, where forking would cost more than it saves. Workers
return matches without secrets (see ``_secret_rules.Hit``).
"""

from __future__ import annotations

import glob
import gzip
import json
import multiprocessing
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field

from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK, Finding, ranked
from ansible_collections.launchready.core.plugins.module_utils._secret_rules import (
    DEV_URL,
    LOG,
    SECRET,
    TEST_CREDENTIAL,
    PathMatcher,
    Rule,
    ScanOptions,
    scan_text,
)

DEFAULT_EXCLUDE_DIRS = (
    ".git",
    "node_modules",
    "bower_components",
    "jspm_packages",
    "vendor",
    "third_party",
    ".venv",
    "venv",
    "site-packages",
    "__pycache__",
    "dist",
    "build",
    ".next",
    ".nuxt",
    ".svelte-kit",
    ".turbo",
    ".cache",
    "coverage",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "target",
    ".terraform",
)
SNIFF_BYTES = 8192
# Below this many files one process scans faster than a pool can start.
PARALLEL_MIN_FILES = 64
CHUNK_BYTES = 4 * 1024 * 1024
TOOL_NAME = "launchready.core.secret_scan"
BASELINE_VERSION = 1


class ScanError(Exception):
    pass


@dataclass
class Match:
    """A rule match placed in a file (and, from history, a commit). Holds no secret."""

    rule: str
    category: str
    title: str
    severity: str
    file: str
    line: int
    column: int
    match: str
    fingerprint: str
    commit: str | None = None
    accepted: bool = False

    def as_dict(self) -> dict:
        result = asdict(self)
        if self.commit is None:
            del result["commit"]
        return result


@dataclass
class ScanStats:
    files: int = 0
    bytes: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    skipped_unreadable: int = 0
    history_blobs: int = 0

    def add(self, other: ScanStats) -> None:
        for name in ("files", "bytes", "skipped_binary", "skipped_large", "skipped_unreadable", "history_blobs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


# --- walk ------------------------------------------------------------------------------------------


def _git(root: str, *args: str) -> bytes:
    try:
        completed = subprocess.run(["git", "-C", root, *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise ScanError("git is not installed") from None
    if completed.returncode != 0:
        raise ScanError("git %s failed: %s" % (args[0], completed.stderr.decode("utf-8", "replace").strip()))
    return completed.stdout


def is_git_work_tree(root: str) -> bool:
    try:
        return _git(root, "rev-parse", "--is-inside-work-tree").strip() == b"true"
    except ScanError:
        return False


def excluded(path: str, exclude_dirs: tuple[str, ...], exclude_paths: PathMatcher) -> bool:
    parts = path.split("/")
    return any(part in exclude_dirs for part in parts[:-1]) or exclude_paths(path)


def list_files(root: str, exclude_dirs: tuple[str, ...], exclude_paths: PathMatcher) -> tuple[list[str], str]:
    """Relative POSIX paths to scan, and how they were found (``git`` or ``filesystem``)."""
    if is_git_work_tree(root):
        listing = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        paths = sorted({os.fsdecode(raw) for raw in listing.split(b"\0") if raw})
        return [path for path in paths if not excluded(path, exclude_dirs, exclude_paths)], "git"
    paths = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if name not in exclude_dirs)
        relative_dir = os.path.relpath(directory, root).replace(os.sep, "/")
        for name in sorted(filenames):
            path = name if relative_dir == "." else relative_dir + "/" + name
            if not excluded(path, exclude_dirs, exclude_paths):
                paths.append(path)
    return paths, "filesystem"


# --- workers ---------------------------------------------------------------------------------------

_WORKER_OPTIONS: ScanOptions | None = None


def _init_worker(options: ScanOptions) -> None:
    global _WORKER_OPTIONS
    _WORKER_OPTIONS = options


def _worker_options() -> ScanOptions:
    if _WORKER_OPTIONS is None:
        raise ScanError("scan worker used before _init_worker")
    return _WORKER_OPTIONS


def _hits_to_matches(options: ScanOptions, text: str, path: str, commit: str | None, line_offset: int = 0) -> list[Match]:
    matches = []
    for hit in scan_text(text, path, options):
        rule = options.rule_index[hit.rule]
        matches.append(Match(hit.rule, rule.category, rule.title, hit.severity, path, hit.line + line_offset, hit.column, hit.match, hit.fingerprint, commit))
    return matches


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _scan_file_chunk(task: tuple[str, list[str], int]) -> tuple[list[Match], ScanStats]:
    root, paths, max_size = task
    options = _worker_options()
    stats = ScanStats()
    matches: list[Match] = []
    for path in paths:
        full = os.path.join(root, path)
        try:
            info = os.lstat(full)
            if not stat.S_ISREG(info.st_mode):
                continue
            if info.st_size > max_size:
                stats.skipped_large += 1
                continue
            with open(full, "rb") as handle:
                data = handle.read()
        except OSError:
            stats.skipped_unreadable += 1
            continue
        if b"\0" in data[:SNIFF_BYTES]:
            stats.skipped_binary += 1
            continue
        stats.files += 1
        stats.bytes += len(data)
        matches.extend(_hits_to_matches(options, decode(data), path, None))
    return matches, stats


# One item of content read by the parent process: path, commit (history) or None (log), data, lines skipped before it.
Item = tuple[str, "str | None", bytes, int]


def _scan_item_chunk(task: list[Item]) -> tuple[list[Match], ScanStats]:
    options = _worker_options()
    stats = ScanStats()
    matches: list[Match] = []
    for path, commit, data, line_offset in task:
        if b"\0" in data[:SNIFF_BYTES]:
            stats.skipped_binary += 1
            continue
        if commit:
            stats.history_blobs += 1
        else:
            stats.files += 1
        stats.bytes += len(data)
        matches.extend(_hits_to_matches(options, decode(data), path, commit, line_offset))
    return matches, stats


def _pool(options: ScanOptions, jobs: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker, initargs=(options,))


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _chunks(paths: list[str], root: str, jobs: int) -> list[list[str]]:
    """About eight chunks per worker, balanced by file size, so one big file does not hold the others back."""
    sizes = []
    for path in paths:
        try:
            sizes.append(os.lstat(os.path.join(root, path)).st_size)
        except OSError:
            sizes.append(0)
    count = max(1, min(len(paths), jobs * 8))
    buckets: list[list[str]] = [[] for _index in range(count)]
    loads = [0] * count
    for size, path in sorted(zip(sizes, paths, strict=True), reverse=True):
        index = loads.index(min(loads))
        buckets[index].append(path)
        loads[index] += size + 4096
    return [bucket for bucket in buckets if bucket]


def scan_files(root: str, paths: list[str], options: ScanOptions, max_file_size: int, jobs: int) -> tuple[list[Match], ScanStats]:
    stats = ScanStats()
    matches: list[Match] = []
    if jobs <= 1 or len(paths) < PARALLEL_MIN_FILES or not can_fork():
        _init_worker(options)
        found, stats = _scan_file_chunk((root, paths, max_file_size))
        return found, stats
    with _pool(options, jobs) as pool:
        for found, chunk_stats in pool.map(_scan_file_chunk, [(root, chunk, max_file_size) for chunk in _chunks(paths, root, jobs)]):
            matches.extend(found)
            stats.add(chunk_stats)
    return matches, stats


# --- history ---------------------------------------------------------------------------------------


def history_blobs(root: str, exclude_dirs: tuple[str, ...], exclude_paths: PathMatcher) -> dict[str, tuple[str, str]]:
    """Blob id -> (commit that first added or changed it, path), for every regular file in every ref's history."""
    log = _git(root, "-c", "core.quotepath=off", "log", "--all", "--reverse", "--relative", "--no-renames", "--raw", "--no-abbrev", "--format=commit %H")
    skip = set()
    for entry in _git(root, "ls-files", "-s", "-z").split(b"\0"):
        if entry:
            skip.add(entry.split(b" ", 2)[1].decode("ascii"))
    blobs: dict[str, tuple[str, str]] = {}
    commit = ""
    for raw_line in log.decode("utf-8", "replace").splitlines():
        if raw_line.startswith("commit "):
            commit = raw_line[7:]
            continue
        if not raw_line.startswith(":") or "\t" not in raw_line:
            continue
        meta, path = raw_line.split("\t", 1)
        fields = meta.split()
        new_mode, new_sha, status = fields[1], fields[3], fields[4]
        if status not in ("A", "M") or new_mode not in ("100644", "100755") or new_sha in skip or new_sha in blobs:
            continue
        if not excluded(path, exclude_dirs, exclude_paths):
            blobs[new_sha] = (commit, path)
    return blobs


def _read_blobs(root: str, shas: list[str]) -> Iterator[tuple[str, bytes]]:
    """Stream blob contents through one ``git cat-file --batch``."""
    process = subprocess.Popen(["git", "-C", root, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stdin, stdout = process.stdin, process.stdout
    if stdin is None or stdout is None:
        raise ScanError("could not start git cat-file")

    def feed() -> None:
        try:
            for sha in shas:
                stdin.write(sha.encode("ascii") + b"\n")
        finally:
            stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        for _sha in shas:
            header = stdout.readline().split()
            if len(header) != 3:
                continue
            size = int(header[2])
            data = stdout.read(size)
            stdout.read(1)
            yield header[0].decode("ascii"), data
    finally:
        writer.join()
        stdout.close()
        process.wait()


def _blob_sizes(root: str, shas: list[str]) -> dict[str, int]:
    completed = subprocess.run(
        ["git", "-C", root, "cat-file", "--batch-check"], input="".join(sha + "\n" for sha in shas).encode("ascii"), capture_output=True, check=False
    )
    sizes = {}
    for line in completed.stdout.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "blob":
            sizes[parts[0]] = int(parts[2])
    return sizes


def _chunked(items: Iterator[Item]) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    chunk_bytes = 0
    for item in items:
        chunk.append(item)
        chunk_bytes += len(item[2])
        if chunk_bytes >= CHUNK_BYTES:
            yield chunk
            chunk, chunk_bytes = [], 0
    if chunk:
        yield chunk


def scan_items(items: Iterator[Item], count: int, options: ScanOptions, jobs: int) -> tuple[list[Match], ScanStats]:
    """Scan content read here (history blobs, logs), in chunks handed to worker processes as they fill."""
    matches: list[Match] = []
    stats = ScanStats()

    def collect(result: tuple[list[Match], ScanStats]) -> None:
        matches.extend(result[0])
        stats.add(result[1])

    if jobs <= 1 or count < PARALLEL_MIN_FILES or not can_fork():
        _init_worker(options)
        for chunk in _chunked(items):
            collect(_scan_item_chunk(chunk))
        return matches, stats
    with _pool(options, jobs) as pool:
        pending: set[Future] = set()
        for chunk in _chunked(items):
            pending.add(pool.submit(_scan_item_chunk, chunk))
            if len(pending) >= jobs * 2:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    collect(future.result())
        for future in pending:
            collect(future.result())
    return matches, stats


def scan_history(
    root: str, options: ScanOptions, max_file_size: int, jobs: int, exclude_dirs: tuple[str, ...], exclude_paths: PathMatcher
) -> tuple[list[Match], ScanStats]:
    blobs = history_blobs(root, exclude_dirs, exclude_paths)
    sizes = _blob_sizes(root, list(blobs))
    wanted = [sha for sha in blobs if sizes.get(sha, 0) <= max_file_size]
    items = ((blobs[sha][1], blobs[sha][0], data, 0) for sha, data in _read_blobs(root, wanted))
    matches, stats = scan_items(items, len(wanted), options, jobs)
    stats.skipped_large += len(blobs) - len(wanted)
    return matches, stats


# --- logs ------------------------------------------------------------------------------------------


def expand_log_paths(patterns: list[str]) -> list[str]:
    """Files named, files matching a glob, and every file under a directory; sorted, each once."""
    found: set[str] = set()
    for pattern in patterns:
        if os.path.isdir(pattern):
            for directory, _dirs, filenames in os.walk(pattern):
                found.update(os.path.join(directory, name) for name in filenames)
        elif os.path.isfile(pattern):
            found.add(pattern)
        else:
            found.update(path for path in glob.glob(pattern) if os.path.isfile(path))
    return sorted(found)


def read_log_tail(path: str, max_bytes: int) -> tuple[bytes, int]:
    """The last ``max_bytes`` of a log (gzip-compressed when it ends in .gz), from a line start; and the lines before it."""
    opener = gzip.open if path.endswith(".gz") else open
    tail = bytearray()
    skipped_lines = 0
    with opener(path, "rb") as handle:
        while True:
            block = handle.read(CHUNK_BYTES)
            if not block:
                break
            tail += block
            if len(tail) > max_bytes:
                cut = tail.find(b"\n", len(tail) - max_bytes)
                cut = len(tail) if cut == -1 else cut + 1
                skipped_lines += tail.count(b"\n", 0, cut)
                del tail[:cut]
    return bytes(tail), skipped_lines


def scan_logs(paths: list[str], options: ScanOptions, max_bytes: int, jobs: int) -> tuple[list[Match], ScanStats]:
    unreadable = []

    def items() -> Iterator[Item]:
        for path in paths:
            try:
                data, skipped_lines = read_log_tail(path, max_bytes)
            except (OSError, EOFError, gzip.BadGzipFile):
                unreadable.append(path)
                continue
            yield path, None, data, skipped_lines

    matches, stats = scan_items(items(), len(paths), options, jobs)
    stats.skipped_unreadable += len(unreadable)
    return matches, stats


# --- baseline --------------------------------------------------------------------------------------


@dataclass
class Baseline:
    path: str | None
    entries: list[dict] = field(default_factory=list)

    @property
    def accepted_keys(self) -> set[tuple[str, str]]:
        return {(entry["rule"], entry["fingerprint"]) for entry in self.entries}


def load_baseline(path: str | None) -> Baseline:
    """A missing file is an empty baseline; a malformed one is an error."""
    if not path or not os.path.exists(path):
        return Baseline(path)
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        entries = document["accepted"]
        if not isinstance(entries, list) or not all(isinstance(entry, dict) and {"rule", "fingerprint"} <= set(entry) for entry in entries):
            raise ValueError("every entry of 'accepted' needs 'rule' and 'fingerprint'")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScanError("baseline %s is not a valid baseline file: %s" % (path, exc)) from None
    return Baseline(path, entries)


def apply_baseline(matches: list[Match], baseline: Baseline) -> None:
    keys = baseline.accepted_keys
    for match in matches:
        match.accepted = (match.rule, match.fingerprint) in keys


def updated_baseline(matches: list[Match], baseline: Baseline) -> str:
    """The baseline text with every current match accepted (existing entries and their notes kept)."""
    entries = list(baseline.entries)
    keys = baseline.accepted_keys
    for match in matches:
        key = (match.rule, match.fingerprint)
        if key not in keys:
            keys.add(key)
            entries.append({"rule": match.rule, "fingerprint": match.fingerprint, "file": match.file, "line": match.line, "note": ""})
    entries.sort(key=lambda entry: (entry.get("file", ""), entry.get("line", 0), entry["rule"], entry["fingerprint"]))
    document = {"generated_by": TOOL_NAME, "version": BASELINE_VERSION, "accepted": entries}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


# --- results ---------------------------------------------------------------------------------------

_OK_TITLES = {
    SECRET: "No committed secrets found",
    DEV_URL: "No hard-coded dev, preview or staging URLs found",
    TEST_CREDENTIAL: "No test credentials or sandbox endpoints in production configuration",
    LOG: "No tokens, passwords or session ids found in the logs",
}
EVIDENCE_LOCATIONS = 10


def _location(match: Match) -> str:
    where = "%s:%d" % (match.file, match.line)
    if match.commit:
        where += " (commit %s)" % match.commit[:12]
    return "%s %s" % (where, match.match)


def to_findings(matches: list[Match], rules: dict[str, Rule], categories: list[str], stage: str, scanned: str, in_logs: bool = False) -> list[dict]:
    """Matches grouped per rule and severity into findings, launch blockers first; an ``ok`` finding per clean category.

    ``in_logs``: every match counts as a log-hygiene problem, and secret rules say where they were found.
    """
    groups: dict[tuple[str, str], list[Match]] = {}
    for match in matches:
        if not match.accepted:
            groups.setdefault((match.rule, match.severity), []).append(match)
    findings = []
    for (rule_id, severity), group in sorted(groups.items()):
        rule = rules[rule_id]
        shown = "; ".join(_location(match) for match in group[:EVIDENCE_LOCATIONS])
        if len(group) > EVIDENCE_LOCATIONS:
            shown += "; and %d more" % (len(group) - EVIDENCE_LOCATIONS)
        title = rule.title + (" in a log" if in_logs and rule.category == SECRET else "")
        title = "%s (%d %s)" % (title, len(group), "place" if len(group) == 1 else "places")
        findings.append(Finding(stage, severity, title, shown, rule.fix))
    reported = {LOG if in_logs else rules[rule_id].category for rule_id, _severity in groups}
    for category in categories:
        if category not in reported:
            findings.append(Finding(stage, OK, _OK_TITLES[category], scanned))
    accepted = [match for match in matches if match.accepted]
    if accepted:
        evidence = "; ".join(_location(match) for match in accepted[:EVIDENCE_LOCATIONS])
        findings.append(Finding(stage, OK, "%d known matches accepted in the baseline" % len(accepted), evidence))
    return ranked(findings)


def summary(matches: list[Match], stats: ScanStats) -> dict:
    counts = {MUST_DO_NOW: 0, CAN_WAIT: 0, "accepted": 0}
    for match in matches:
        counts["accepted" if match.accepted else match.severity] += 1
    return {**counts, **asdict(stats)}


def json_report(root: str, matches: list[Match], findings: list[dict], totals: dict) -> str:
    document = {"tool": TOOL_NAME, "version": 1, "root": root, "summary": totals, "matches": [m.as_dict() for m in matches], "findings": findings}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


_SARIF_LEVEL = {MUST_DO_NOW: "error", CAN_WAIT: "warning"}
_SARIF_SCORE = {MUST_DO_NOW: "9.0", CAN_WAIT: "5.0"}


def sarif_report(root: str, matches: list[Match], rules: dict[str, Rule]) -> str:
    """SARIF 2.1.0: one run, the rules that matched, one result per match (baseline matches as suppressed)."""
    used = sorted({match.rule for match in matches})
    index = {rule_id: position for position, rule_id in enumerate(used)}
    driver_rules = []
    for rule_id in used:
        rule = rules[rule_id]
        driver_rules.append(
            {
                "id": rule.id,
                "name": "".join(part.capitalize() for part in rule.id.split("-")),
                "shortDescription": {"text": rule.title},
                "fullDescription": {"text": rule.title},
                "help": {"text": rule.fix},
                "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
                "properties": {"tags": ["security", rule.category], "security-severity": _SARIF_SCORE[rule.severity]},
            }
        )
    results = []
    for match in matches:
        result: dict = {
            "ruleId": match.rule,
            "ruleIndex": index[match.rule],
            "level": _SARIF_LEVEL[match.severity],
            "message": {"text": "%s: %s" % (match.title, match.match)},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": match.file, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": match.line, "startColumn": match.column},
                    }
                }
            ],
            "partialFingerprints": {"secretFingerprint/v1": match.fingerprint},
        }
        if match.commit:
            result["properties"] = {"commit": match.commit}
        if match.accepted:
            result["suppressions"] = [{"kind": "external", "justification": "accepted in the baseline"}]
        results.append(result)
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": TOOL_NAME, "informationUri": "https://github.com/launchready/core", "rules": driver_rules}},
                "originalUriBaseIds": {"%SRCROOT%": {"uri": "file://" + os.path.abspath(root).rstrip("/") + "/"}},
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def file_differs(path: str, content: str) -> bool:
    """True unless the file exists and already holds exactly ``content``."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() != content
    except (OSError, UnicodeDecodeError):
        return True


def write_text(path: str, content: str) -> None:
    """Write a report or baseline atomically (temporary file in the same directory, then rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
