# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""log_hygiene: tokens, passwords, session ids and emails next to tokens found, never echoed."""

from __future__ import annotations

import gzip
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.launchready.core.plugins.modules import log_hygiene
from ansible_collections.launchready.core.tests.unit.plugins.fixtures.secret_corpus import ALNUM, B64URL, Fakes


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        log_hygiene.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    result["_raw"] = out
    return result


def test_leaky_logs(tmp_path, capsys):
    fakes = Fakes(8)
    bearer = fakes.chars(B64URL, 40)
    password = "Pw-" + fakes.chars(ALNUM, 12)
    stripe = fakes.stripe_live()
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    (log_dir / "app.log").write_text(
        "GET /healthz 200\n"
        "POST /login member=ann@members.example.org Authorization: Bearer %s\n"
        "DEBUG body={'email': 'bob@members.example.org', 'password': '%s'}\n" % (bearer, password)
    )
    with gzip.open(log_dir / "worker.log.1.gz", "wt") as handle:
        handle.write("charging with %s\n" % stripe)
    result = run(capsys, paths=[str(log_dir)])
    assert result["changed"] is False
    assert [(m["file"].rsplit("/", 1)[1], m["line"], m["rule"]) for m in result["matches"]] == [
        ("app.log", 2, "authorization-header"),
        ("app.log", 2, "log-email-with-token"),
        ("app.log", 3, "log-password"),
        ("app.log", 3, "log-email-with-token"),
        ("worker.log.1.gz", 1, "stripe-live-secret-key"),
    ]
    assert {m["category"] for m in result["matches"]} == {"log"}
    titles = [f["title"] for f in result["findings"]]
    assert "Member email logged on the same line as a token (2 places)" in titles
    assert "Stripe live secret or restricted key in a log (1 place)" in titles
    assert result["summary"]["must_do_now"] == 5 and result["summary"]["files"] == 2
    for secret in (bearer, password, stripe, "ann@members.example.org", "bob@members.example.org"):
        assert secret not in result["_raw"]


def test_clean_logs_and_missing_paths(tmp_path, capsys):
    (tmp_path / "clean.log").write_text("GET / 200\nPOST /login 302 member=ann@members.example.org\npassword=[FILTERED]\n")
    result = run(capsys, paths=[str(tmp_path / "*.log"), str(tmp_path / "nothing-here.log")])
    assert result["matches"] == []
    assert result["findings"] == [
        {
            "stage": "secrets_env",
            "severity": "ok",
            "title": "No tokens, passwords or session ids found in the logs",
            "evidence": "1 log files read (%d bytes)" % (tmp_path / "clean.log").stat().st_size,
            "fix": "",
        }
    ]


def test_skip_email_rule_and_allowlist(tmp_path, capsys):
    token = Fakes(2).chars(ALNUM, 32)
    (tmp_path / "a.log").write_text("user=ann@members.example.org sessionid=%s\nhealth sessionid=%s\n" % (token, token))
    result = run(capsys, paths=[str(tmp_path / "a.log")], skip_rules=["log-email-with-token"], allowlist=["^health"])
    assert [(m["line"], m["rule"]) for m in result["matches"]] == [(1, "log-session-id")]
