# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""secret_scan: results without secrets, source-audit checks in the same walk, history, baseline, reports, check mode."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.launchready.core.plugins.modules import secret_scan
from ansible_collections.launchready.core.tests.unit.plugins.fixtures.secret_corpus import Fakes

pytestmark = pytest.mark.skipif(subprocess.run(["git", "--version"], capture_output=True, check=False).returncode != 0, reason="git is needed")


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        secret_scan.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    result["_raw"] = out
    return result


def git(root, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True, text=True, env=env).stdout.strip()


@pytest.fixture
def app(tmp_path):
    """A small app repository with planted problems; returns (root, the secrets planted)."""
    fakes = Fakes(99)
    planted = {"live": fakes.stripe_live(), "test": fakes.stripe_test(), "removed": fakes.github_token(), "session": fakes.chars("abcdefABCDEF0123456789", 48)}
    root = tmp_path / "app"
    (root / "src").mkdir(parents=True)
    git(root, "init", "-q")
    (root / "old.py").write_text("TOKEN = '%s'\n" % planted["removed"])
    git(root, "add", "-A")
    git(root, "commit", "-qm", "old")
    git(root, "rm", "-q", "old.py")
    (root / "src" / "billing.py").write_text("stripe.api_key = '%s'\nAPI = 'http://localhost:8000/api'\n" % planted["live"])
    (root / "src" / "client.js").write_text("fetch('https://members-git-feature.vercel.app/api/members');\n")
    (root / ".env.production").write_text("STRIPE_SECRET_KEY=%s\nSESSION_SECRET=%s\n" % (planted["test"], planted["session"]))
    (root / "tests").mkdir()
    (root / "tests" / "test_api.py").write_text("BASE = 'http://localhost:8000'\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "app")
    return root, planted


def assert_no_secret(result, planted):
    for secret in planted.values():
        assert secret not in result["_raw"]


def test_secrets_only_by_default(app, capsys):
    root, planted = app
    result = run(capsys, path=str(root))
    assert result["changed"] is False and result["walk"] == "git"
    assert [(m["file"], m["line"], m["rule"], m["severity"]) for m in result["matches"]] == [
        (".env.production", 1, "stripe-test-secret-key", "can_wait"),
        (".env.production", 2, "session-secret", "must_do_now"),
        ("src/billing.py", 1, "stripe-live-secret-key", "must_do_now"),
    ]
    assert result["summary"]["must_do_now"] == 2 and result["summary"]["can_wait"] == 1 and result["summary"]["files"] == 4
    assert [f["severity"] for f in result["findings"]] == ["must_do_now", "must_do_now", "can_wait"]
    assert result["findings"][0]["stage"] == "secrets_env"
    assert_no_secret(result, planted)


def test_source_audit_shares_the_walk(app, capsys):
    root, planted = app
    result = run(capsys, path=str(root), checks=["secrets", "dev_urls", "test_credentials"], stage="audit")
    found = {(m["file"], m["rule"], m["severity"]) for m in result["matches"]}
    assert (".env.production", "stripe-test-key-in-production", "must_do_now") in found
    assert ("src/billing.py", "dev-url-localhost", "can_wait") in found
    assert ("src/client.js", "preview-url", "must_do_now") in found
    assert not any(m["file"].startswith("tests/") for m in result["matches"])
    assert ("src/client.js", "members-git-feature.vercel.app") in {(m["file"], m["match"]) for m in result["matches"]}
    assert {f["stage"] for f in result["findings"]} == {"audit"}
    assert_no_secret(result, planted)


def test_history_adds_what_was_removed(app, capsys):
    root, planted = app
    result = run(capsys, path=str(root), history=True)
    [old] = [m for m in result["matches"] if m["file"] == "old.py"]
    assert old["rule"] == "github-token" and len(old["commit"]) == 40
    assert result["summary"]["history_blobs"] >= 1
    assert "blobs from the git history" in " ".join(f["evidence"] for f in result["findings"] if f["severity"] == "ok") or result["summary"]["must_do_now"]
    assert_no_secret(result, planted)


def test_history_needs_git(tmp_path, capsys):
    (tmp_path / "a.py").write_text("x = 1\n")
    result = run(capsys, path=str(tmp_path), history=True)
    assert result["failed"] is True and "git work tree" in result["msg"]


def test_baseline_update_then_clean(app, tmp_path, capsys):
    root, planted = app
    baseline = tmp_path / "baseline.json"
    check = run(capsys, path=str(root), baseline=str(baseline), update_baseline=True, _ansible_check_mode=True)
    assert check["changed"] is True and not baseline.exists()
    update = run(capsys, path=str(root), baseline=str(baseline), update_baseline=True)
    assert update["changed"] is True and baseline.exists()
    assert_no_secret({"_raw": baseline.read_text()}, planted)
    again = run(capsys, path=str(root), baseline=str(baseline))
    assert again["changed"] is False
    assert all(m["accepted"] for m in again["matches"])
    assert again["summary"]["must_do_now"] == 0 and again["summary"]["accepted"] == 3
    assert [f["severity"] for f in again["findings"]] == ["ok", "ok"]
    # a new secret is not covered by the baseline
    (root / "src" / "new.py").write_text("KEY = '%s'\n" % Fakes(5).stripe_live())
    fresh = run(capsys, path=str(root), baseline=str(baseline))
    assert fresh["summary"]["must_do_now"] == 1


def test_reports_are_written_once_and_hold_no_secret(app, tmp_path, capsys):
    root, planted = app
    json_path, sarif_path = tmp_path / "scan.json", tmp_path / "scan.sarif"
    first = run(capsys, path=str(root), json_report=str(json_path), sarif_report=str(sarif_path))
    assert first["changed"] is True
    report = json.loads(json_path.read_text())
    assert len(report["matches"]) == 3 and report["summary"]["must_do_now"] == 2
    sarif = json.loads(sarif_path.read_text())
    assert sarif["version"] == "2.1.0" and len(sarif["runs"][0]["results"]) == 3
    for text in (json_path.read_text(), sarif_path.read_text()):
        assert_no_secret({"_raw": text}, planted)
    second = run(capsys, path=str(root), json_report=str(json_path), sarif_report=str(sarif_path))
    assert second["changed"] is False


def test_options_errors(app, tmp_path, capsys):
    root, _planted = app
    assert "not a directory" in run(capsys, path=str(tmp_path / "missing"))["msg"]
    assert "invalid regular expression" in run(capsys, path=str(root), allowlist=["("])["msg"]
    assert "unknown rule ids" in run(capsys, path=str(root), skip_rules=["no-such-rule"])["msg"]
    result = run(capsys, path=str(root), update_baseline=True)
    assert result["failed"] is True and "baseline" in result["msg"]


def test_allowlist_and_skip_rules(app, capsys):
    root, _planted = app
    result = run(capsys, path=str(root), allowlist=["stripe\\.api_key"], skip_rules=["session-secret", "generic-secret"])
    assert [m["rule"] for m in result["matches"]] == ["stripe-test-secret-key"]
