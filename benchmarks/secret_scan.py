# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""launchready.core.secret_scan's engine against detect-secrets: speed on a real tree, recall and precision on the labelled corpus.

(a) speed, on one tree of several thousand files: ansible-core (``ansible``, ``ansible_test``) and
    the ansible.* and community.* collections, as the ``ansible`` package installs them in
    benchmarks/.venv-bench (made by benchmarks/dns_reconcile.py); without that venv, ansible-core
    from this project's .venv (fewer files). Both tools get the same list of files (``__pycache__`` and the other
    vendored/generated folders secret_scan skips left out) and use every CPU. Before each
    measurement the files are evicted from the page cache (``posix_fadvise(DONTNEED)``), so each
    one starts cold-ish; the raw read of every file once, in one process, is the physical limit the
    scan's MB/s is set against.
(b) quality, on the corpus tests/unit/plugins/fixtures/secret_corpus.py generates (fake secrets
    with real formats, and hard negatives), scored by labelled line: recall over the positives,
    precision over what each tool reports.

The peer is detect-secrets from PyPI (pinned), installed into benchmarks/.venv-detect-secrets
(created here, never committed), run as its CLI: ``detect-secrets scan --all-files --no-verify
<files>``. ``--no-verify``: by default it asks the providers' APIs whether keys it found are live;
that reaches the internet (which a benchmark here must not) and would time the network instead.
Both tools look for secrets only (secret_scan's default ``checks: [secrets]``); a second timing
adds the source audit (dev URLs, test credentials) for information.

Run from the repository root: `.venv/bin/python -m benchmarks.secret_scan`. The last line is
``RESULT files=N speedup=X recall=R precision=P ds_recall=R2 ds_precision=P2``.
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.unit.plugins.fixtures import secret_corpus  # noqa: E402  pylint: disable=wrong-import-position

PEER_VENV = ROOT / "benchmarks" / ".venv-detect-secrets"
PEER_PACKAGE = "detect-secrets==1.5.0"
BENCH_SITE = ROOT / "benchmarks" / ".venv-bench" / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
OWN_SITE = ROOT / ".venv" / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
MAX_FILE_SIZE = 1048576
MB = 1024 * 1024


def engine():
    """The collection's module_utils, imported from this checkout."""
    try:
        from ansible_collections.launchready.core.plugins.module_utils import _scan, _secret_rules  # pylint: disable=import-outside-toplevel
    except ImportError:
        link_root = pathlib.Path(tempfile.mkdtemp(prefix="lr-bench-import-"))
        link = link_root / "ansible_collections" / "launchready" / "core"
        link.parent.mkdir(parents=True)
        link.symlink_to(ROOT, target_is_directory=True)
        sys.path.insert(0, str(link_root))
        from ansible_collections.launchready.core.plugins.module_utils import _scan, _secret_rules  # pylint: disable=import-outside-toplevel
    return _scan, _secret_rules


def ensure_peer() -> pathlib.Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PEER_PACKAGE], check=True)
    return PEER_VENV / "bin" / "detect-secrets"


def tree(exclude_dirs: tuple[str, ...]) -> tuple[pathlib.Path, list[str], str]:
    """The site-packages folder, the files to scan relative to it, and what they are."""
    collections = BENCH_SITE / "ansible_collections"
    if collections.is_dir():
        root, what = BENCH_SITE, "ansible-core and the ansible.* and community.* collections of the ansible package (benchmarks/.venv-bench)"
        found = sorted(str(path.relative_to(root)) for namespace in ("ansible", "community") for path in (collections / namespace).iterdir() if path.is_dir())
        parts = ["ansible", "ansible_test", *found]
    else:
        root, parts, what = OWN_SITE, ["ansible", "ansible_test"], "ansible-core from .venv (benchmarks/.venv-bench not found: fewer files)"
    paths = []
    for part in parts:
        for directory, dirnames, filenames in os.walk(root / part):
            dirnames[:] = sorted(name for name in dirnames if name not in exclude_dirs)
            for name in sorted(filenames):
                full = pathlib.Path(directory) / name
                if full.is_file() and not full.is_symlink():
                    paths.append(str(full.relative_to(root)))
    return root, paths, what


def evict(root: pathlib.Path, paths: list[str]) -> None:
    """Drop the files from the page cache, so the next read comes from the disk (as far as the kernel lets us)."""
    for path in paths:
        fd = os.open(root / path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def raw_read(root: pathlib.Path, paths: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    for path in paths:
        with open(root / path, "rb") as handle:
            total += len(handle.read())
    return time.perf_counter() - start, total


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the scan's workers, the peer and its workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ours(root: pathlib.Path, paths: list[str], categories: list[str], jobs: int) -> tuple[float, float, list, object]:
    """Wall and CPU seconds of the engine's parallel scan of ``paths``, its matches and statistics."""
    _scan, rules = engine()
    options = rules.ScanOptions(rules=rules.select_rules(categories))
    cpu, start = cpu_seconds(), time.perf_counter()
    matches, stats = _scan.scan_files(str(root), paths, options, MAX_FILE_SIZE, jobs)
    return time.perf_counter() - start, cpu_seconds() - cpu, matches, stats


def detect_secrets(tool: pathlib.Path, root: pathlib.Path, paths: list[str], workdir: pathlib.Path) -> tuple[float, float, dict]:
    """Run the peer's CLI on ``paths`` (relative to ``root``); its results by file."""
    output = workdir / "ds-out.json"
    # One command line holds every path (well under ARG_MAX), so the peer runs once, as a user would.
    cpu, start = cpu_seconds(), time.perf_counter()
    with open(output, "wb") as handle:
        done = subprocess.run([str(tool), "scan", "--all-files", "--no-verify", *paths], cwd=root, stdout=handle, stderr=subprocess.PIPE, check=False)
    elapsed, used = time.perf_counter() - start, cpu_seconds() - cpu
    if done.returncode != 0:
        raise SystemExit("detect-secrets failed: %s" % done.stderr.decode("utf-8", "replace")[-2000:])
    return elapsed, used, json.loads(output.read_text(encoding="utf-8"))["results"]


def main() -> None:
    _scan, rules = engine()
    tool = ensure_peer()
    version = subprocess.run([str(tool), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    jobs = os.cpu_count() or 1
    root, paths, what = tree(_scan.DEFAULT_EXCLUDE_DIRS)

    with tempfile.TemporaryDirectory(prefix="lr-bench-secrets-") as tmp:
        workdir = pathlib.Path(tmp)
        size = sum((root / path).stat().st_size for path in paths)
        print("tree: %s: %d files, %.1f MB, %d CPUs" % (what, len(paths), size / MB, jobs), flush=True)

        evict(root, paths)
        read_s, read_bytes = raw_read(root, paths)
        print("raw read, cold-ish, one process:        %7.2f s  %7.1f MB/s" % (read_s, read_bytes / MB / read_s), flush=True)

        evict(root, paths)
        ours_s, ours_cpu, matches, stats = ours(root, paths, [rules.SECRET], jobs)
        print("secret_scan engine, secrets, %d jobs:    %7.2f s  %7.2f MB/s  CPU %7.2f s  %d matches in %d files (%d binary, %d over 1 MiB skipped)" % (
            jobs, ours_s, stats.bytes / MB / ours_s, ours_cpu, len(matches), stats.files, stats.skipped_binary, stats.skipped_large), flush=True)

        evict(root, paths)
        audit_s, audit_cpu, audit_matches, audit_stats = ours(root, paths, [rules.SECRET, rules.DEV_URL, rules.TEST_CREDENTIAL], jobs)
        print("secret_scan engine, + source audit:      %7.2f s  %7.2f MB/s  CPU %7.2f s  %d matches" % (
            audit_s, audit_stats.bytes / MB / audit_s, audit_cpu, len(audit_matches)), flush=True)

        evict(root, paths)
        ds_s, ds_cpu, ds_results = detect_secrets(tool, root, paths, workdir)
        print("%-41s %7.2f s  %7.2f MB/s  CPU %7.2f s  %d findings in %d files" % (
            "detect-secrets %s, %d processes:" % (version, jobs), ds_s, size / MB / ds_s, ds_cpu, sum(len(items) for items in ds_results.values()),
            len(ds_results)), flush=True)
        print("speedup: %.1fx in wall time, %.1fx in CPU time" % (ds_s / ours_s, ds_cpu / ours_cpu), flush=True)

        corpus_root = workdir / "corpus"
        files = secret_corpus.generate()
        secret_corpus.write(str(corpus_root), files)
        corpus_paths = sorted(corpus_file.path for corpus_file in files)
        _s, _cpu, corpus_matches, _stats = ours(corpus_root, corpus_paths, [rules.SECRET], 1)
        our_score = secret_corpus.score(files, {(match.file, match.line) for match in corpus_matches})
        _s, _cpu, ds_corpus = detect_secrets(tool, corpus_root, corpus_paths, workdir)
        ds_detected = {(path.removeprefix("./"), item["line_number"]) for path, items in ds_corpus.items() for item in items}
        ds_score = secret_corpus.score(files, ds_detected)
        print("corpus: %d files, %d labelled positive lines, %d hard negatives" % (len(files), our_score["positives"], our_score["negatives"]))
        for label, score in (("secret_scan", our_score), ("detect-secrets", ds_score)):
            print("  %-15s recall %.3f  precision %.3f  (missed %d, false %d)" % (
                label, score["recall"], score["precision"], len(score["missed"]), len(score["false"])))

    print("RESULT files=%d speedup=%.1f recall=%.3f precision=%.3f ds_recall=%.3f ds_precision=%.3f" % (
        len(paths), ds_s / ours_s, our_score["recall"], our_score["precision"], ds_score["recall"], ds_score["precision"]))


if __name__ == "__main__":
    main()
