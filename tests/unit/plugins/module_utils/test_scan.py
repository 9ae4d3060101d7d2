# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_scan: the git-aware walk, skips, parallel and serial scans agreeing, history, logs, baseline, reports."""

from __future__ import annotations

import gzip
import json
import os
import subprocess

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _scan
from ansible_collections.launchready.core.plugins.module_utils import _secret_rules as rules
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK
from ansible_collections.launchready.core.tests.unit.plugins.fixtures import secret_corpus
from ansible_collections.launchready.core.tests.unit.plugins.fixtures.secret_corpus import Fakes

NO_PATHS = rules.PathMatcher(())
OPTIONS = rules.ScanOptions(rules=rules.select_rules([rules.SECRET]))

pytestmark = pytest.mark.skipif(subprocess.run(["git", "--version"], capture_output=True, check=False).returncode != 0, reason="git is needed")


def git(root, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True, text=True, env=env).stdout.strip()


def write(root, path, content):
    full = os.path.join(str(root), path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(full, mode) as handle:
        handle.write(content)


@pytest.fixture
def fakes():
    return Fakes(42)


@pytest.fixture
def repo(tmp_path, fakes):
    """A git work tree with tracked, untracked, ignored, vendored, binary and large files, each holding a secret."""
    root = tmp_path / "app"
    root.mkdir()
    git(root, "init", "-q")
    write(root, ".gitignore", "ignored.env\n")
    write(root, "tracked.py", "KEY = '%s'\n" % fakes.stripe_live())
    write(root, "node_modules/lib/index.js", "const k = '%s';\n" % fakes.stripe_live())
    write(root, "image.png", b"\x89PNG\0\0" + fakes.stripe_live().encode())
    write(root, "big.txt", ("x" * 100 + "\n") * 20 + "KEY='%s'\n" % fakes.stripe_live())
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    write(root, "untracked.py", "TOKEN = '%s'\n" % fakes.github_token())
    write(root, "ignored.env", "KEY=%s\n" % fakes.stripe_live())
    return root


def test_git_walk_lists_tracked_and_untracked_not_ignored_minus_vendored(repo):
    paths, walk = _scan.list_files(str(repo), _scan.DEFAULT_EXCLUDE_DIRS, NO_PATHS)
    assert walk == "git"
    assert paths == [".gitignore", "big.txt", "image.png", "tracked.py", "untracked.py"]
    paths, _walk = _scan.list_files(str(repo), _scan.DEFAULT_EXCLUDE_DIRS, rules.PathMatcher(("*.txt",)))
    assert "big.txt" not in paths


def test_filesystem_walk_outside_git(tmp_path):
    write(tmp_path, "a/b.py", "x")
    write(tmp_path, "node_modules/c.js", "x")
    write(tmp_path, "vendor/d.rb", "x")
    paths, walk = _scan.list_files(str(tmp_path), _scan.DEFAULT_EXCLUDE_DIRS, NO_PATHS)
    assert (paths, walk) == (["a/b.py"], "filesystem")


def test_scan_skips_binary_and_large_files(repo):
    paths, _walk = _scan.list_files(str(repo), _scan.DEFAULT_EXCLUDE_DIRS, NO_PATHS)
    matches, stats = _scan.scan_files(str(repo), paths, OPTIONS, max_file_size=1000, jobs=1)
    assert sorted((match.file, match.rule) for match in matches) == [("tracked.py", "stripe-live-secret-key"), ("untracked.py", "github-token")]
    assert (stats.files, stats.skipped_binary, stats.skipped_large) == (3, 1, 1)
    matches, stats = _scan.scan_files(str(repo), paths, OPTIONS, max_file_size=1 << 20, jobs=1)
    assert "big.txt" in {match.file for match in matches} and stats.skipped_large == 0


def test_symlinks_and_vanished_files_are_skipped(tmp_path, fakes):
    write(tmp_path, "real.py", "K = '%s'\n" % fakes.stripe_live())
    os.symlink("real.py", str(tmp_path / "link.py"))
    matches, stats = _scan.scan_files(str(tmp_path), ["link.py", "real.py", "gone.py"], OPTIONS, 1 << 20, 1)
    assert [match.file for match in matches] == ["real.py"]
    assert (stats.files, stats.skipped_unreadable) == (1, 1)


def test_parallel_scan_finds_exactly_what_the_serial_scan_finds(tmp_path):
    files = secret_corpus.generate(seed=9, copies=4)
    secret_corpus.write(str(tmp_path), files)
    paths, _walk = _scan.list_files(str(tmp_path), _scan.DEFAULT_EXCLUDE_DIRS, NO_PATHS)
    assert len(paths) >= _scan.PARALLEL_MIN_FILES
    serial, serial_stats = _scan.scan_files(str(tmp_path), paths, OPTIONS, 1 << 20, 1)
    parallel, parallel_stats = _scan.scan_files(str(tmp_path), paths, OPTIONS, 1 << 20, 2)

    def key(match):
        return (match.file, match.line, match.rule, match.fingerprint)

    assert sorted(map(key, parallel)) == sorted(map(key, serial))
    assert parallel_stats == serial_stats
    assert len(serial) == len(secret_corpus.positives(files))


def test_chunks_cover_every_file_once(tmp_path):
    for index in range(30):
        write(tmp_path, "f%d" % index, "x" * index * 100)
    paths = ["f%d" % index for index in range(30)]
    chunks = _scan._chunks(paths, str(tmp_path), 2)
    assert sorted(path for chunk in chunks for path in chunk) == sorted(paths)
    assert len(chunks) == 16


def test_history_finds_removed_secrets_and_names_the_commit(repo, fakes):
    removed = fakes.github_token()
    write(repo, "old_config.py", "TOKEN = '%s'\n" % removed)
    write(repo, "old.bin", b"\0\0" + fakes.stripe_live().encode())
    git(repo, "add", "old_config.py", "old.bin")
    git(repo, "commit", "-qm", "add config")
    introduced = git(repo, "rev-parse", "HEAD")
    git(repo, "rm", "-q", "old_config.py", "old.bin")
    git(repo, "commit", "-qm", "remove config")
    git(repo, "checkout", "-q", "-b", "side")
    write(repo, "side.py", "AWS = '%s'\n" % fakes.aws_access_key_id())
    git(repo, "add", "side.py")
    git(repo, "commit", "-qm", "side branch")
    side = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-")
    matches, stats = _scan.scan_history(str(repo), OPTIONS, 1 << 20, 1, _scan.DEFAULT_EXCLUDE_DIRS, NO_PATHS)
    found = {(match.file, match.rule, match.commit) for match in matches}
    assert ("old_config.py", "github-token", introduced) in found
    assert ("side.py", "aws-access-key-id", side) in found  # every ref, not only the current branch
    assert not any(match.file == "tracked.py" for match in matches)  # the current index was covered by the walk
    assert not any(match.file.startswith("node_modules/") for match in matches)
    assert stats.skipped_binary == 1  # old.bin
    assert stats.history_blobs >= 2


def test_history_size_limit(repo):
    matches, stats = _scan.scan_history(str(repo), OPTIONS, 10, 1, _scan.DEFAULT_EXCLUDE_DIRS, NO_PATHS)
    assert matches == [] and stats.history_blobs == 0


def test_logs_gzip_tail_and_line_numbers(tmp_path, fakes):
    token = fakes.github_token()
    plain = tmp_path / "app.log"
    plain.write_text("".join("line %d ok\n" % index for index in range(1, 1001)) + "line 1001 token=%s\n" % token)
    rotated = tmp_path / "app.log.1.gz"
    with gzip.open(rotated, "wt") as handle:
        handle.write("first\nsecond sessionid=%s\n" % fakes.chars(secret_corpus.ALNUM, 32))
    (tmp_path / "broken.log.gz").write_bytes(b"not gzip")
    paths = _scan.expand_log_paths([str(tmp_path / "*.log*"), str(tmp_path / "missing.log")])
    assert [os.path.basename(path) for path in paths] == ["app.log", "app.log.1.gz", "broken.log.gz"]
    options = rules.ScanOptions(rules=rules.select_rules([rules.SECRET, rules.LOG]), all_config_like=True)
    matches, stats = _scan.scan_logs(paths, options, max_bytes=200, jobs=1)
    assert sorted((os.path.basename(match.file), match.line, match.rule) for match in matches) == [
        ("app.log", 1001, "github-token"),
        ("app.log.1.gz", 2, "log-session-id"),
    ]
    assert (stats.files, stats.skipped_unreadable) == (2, 1)
    data, skipped = _scan.read_log_tail(str(plain), 200)
    assert len(data) <= 200 and data.startswith(b"line ") and skipped + data.count(b"\n") == 1001


def test_baseline_round_trip(tmp_path):
    match = _scan.Match("github-token", "secret", "GitHub token", MUST_DO_NOW, "a.py", 3, 1, "ghp_********", "sha256:abc")
    other = _scan.Match("jwt", "secret", "JSON Web Token", CAN_WAIT, "b.py", 1, 1, "eyJh********", "sha256:def")
    path = str(tmp_path / "baseline.json")
    empty = _scan.load_baseline(path)
    _scan.apply_baseline([match], empty)
    assert match.accepted is False
    _scan.write_text(path, _scan.updated_baseline([match], empty))
    baseline = _scan.load_baseline(path)
    assert baseline.entries == [{"rule": "github-token", "fingerprint": "sha256:abc", "file": "a.py", "line": 3, "note": ""}]
    _scan.apply_baseline([match, other], baseline)
    assert (match.accepted, other.accepted) == (True, False)
    # updating keeps existing entries (and their notes) and adds the new ones
    baseline.entries[0]["note"] = "rotated, kept for the test suite"
    text = _scan.updated_baseline([match, other], baseline)
    assert [entry["rule"] for entry in json.loads(text)["accepted"]] == ["github-token", "jwt"]
    assert json.loads(text)["accepted"][0]["note"] == "rotated, kept for the test suite"
    assert not _scan.file_differs(path, _scan.updated_baseline([match], empty))
    (tmp_path / "bad.json").write_text('{"accepted": [{"rule": "x"}]}')
    with pytest.raises(_scan.ScanError, match="not a valid baseline"):
        _scan.load_baseline(str(tmp_path / "bad.json"))


def test_findings_group_per_rule_and_report_clean_categories():
    index = {rule.id: rule for rule in rules.select_rules([rules.SECRET, rules.DEV_URL])}
    matches = [_scan.Match("github-token", "secret", "GitHub token", MUST_DO_NOW, "f%d.py" % n, n, 1, "ghp_********", "sha256:%d" % n) for n in range(12)]
    matches.append(_scan.Match("jwt", "secret", "JSON Web Token", CAN_WAIT, "t.py", 1, 1, "eyJh********", "sha256:j", accepted=True))
    findings = _scan.to_findings(matches, index, [rules.SECRET, rules.DEV_URL], "secrets_env", "12 files scanned")
    assert [(f["severity"], f["title"]) for f in findings] == [
        (MUST_DO_NOW, "GitHub token (12 places)"),
        (OK, "No hard-coded dev, preview or staging URLs found"),
        (OK, "1 known matches accepted in the baseline"),
    ]
    assert findings[0]["evidence"].endswith("; and 2 more") and findings[0]["fix"]
    clean = _scan.to_findings([], index, [rules.SECRET], "audit", "3 files scanned")
    assert clean == [{"stage": "audit", "severity": OK, "title": "No committed secrets found", "evidence": "3 files scanned", "fix": ""}]


def test_sarif_report_shape(tmp_path):
    index = {rule.id: rule for rule in rules.select_rules([rules.SECRET])}
    matches = [
        _scan.Match("github-token", "secret", "GitHub token", MUST_DO_NOW, "src/a.py", 3, 9, "ghp_********", "sha256:abc", commit="f" * 40),
        _scan.Match("jwt", "secret", "JSON Web Token", CAN_WAIT, "b.py", 1, 1, "eyJh********", "sha256:def", accepted=True),
    ]
    document = json.loads(_scan.sarif_report(str(tmp_path), matches, index))
    assert document["version"] == "2.1.0" and document["$schema"].endswith("sarif-2.1.0.json")
    [run] = document["runs"]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == ["github-token", "jwt"]
    first, second = run["results"]
    assert first["ruleId"] == "github-token" and first["ruleIndex"] == 0 and first["level"] == "error"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "src/a.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 3, "startColumn": 9}
    assert first["partialFingerprints"] == {"secretFingerprint/v1": "sha256:abc"} and first["properties"] == {"commit": "f" * 40}
    assert second["level"] == "warning" and second["suppressions"][0]["kind"] == "external"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")


def test_json_report_and_summary():
    match = _scan.Match("jwt", "secret", "JSON Web Token", CAN_WAIT, "b.py", 1, 1, "eyJh********", "sha256:def")
    totals = _scan.summary([match], _scan.ScanStats(files=1, bytes=10))
    assert totals["can_wait"] == 1 and totals["must_do_now"] == 0 and totals["files"] == 1
    document = json.loads(_scan.json_report("/src", [match], [], totals))
    assert document["matches"][0]["match"] == "eyJh********" and "commit" not in document["matches"][0]
