# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secrets_env stage through ansible-playbook: the environment file, blockers and the baseline, the token check on the lab."""

from __future__ import annotations

import os
import secrets
import stat
import uuid
from pathlib import Path

import pytest

from tests import demo_app
from tests.e2e.demo_inventory import DEMO_ZONE, demo_token_permissions
from tests.e2e.playbook import run_playbook
from tests.lab.client import Lab

dotenv = pytest.importorskip("dotenv")

STAGE = """
- name: Stage 4 - secrets and environment
  hosts: localhost
  gather_facts: false
  roles:
    - role: launchready.core.secrets_env
"""

VERIFY = """
- name: Verify stage 4
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Verify
      ansible.builtin.include_role:
        name: launchready.core.secrets_env
        tasks_from: verify
"""

TOKEN_TASK = "Check the Cloudflare API token (status, expiry, least privilege)"
BLOCKERS_TASK = "Fail the launch on blockers not accepted in the baseline"


def task(result, name: str) -> dict:
    """The result of the last run of a task of the role (Ansible prefixes role task names with the role)."""
    return result.task("launchready.core.secrets_env : " + name)


def fake_secrets() -> dict[str, str]:
    return {
        "DATABASE_URL": "postgres://members:%s@db.internal:5432/members" % secrets.token_urlsafe(18),
        "SESSION_SECRET": secrets.token_urlsafe(32),
        "SIGNING_KEY": 'line one %s\nline two with "quotes", $dollar and # hash\n' % secrets.token_hex(8),
    }


def stage_vars(tmp_path: Path, lab: Lab, values: dict[str, str], **extra) -> dict:
    variables = {
        "secrets_env_deploy_root": str(tmp_path / "srv"),
        "secrets_env_values": {"production": values},
        "secrets_env_plain_values": {"production": {"NODE_ENV": "production", "APP_URL": "https://app.%s" % DEMO_ZONE}},
        "secrets_env_required_keys": ["DATABASE_URL", "SESSION_SECRET"],
        "secrets_env_report_dir": str(tmp_path / "reports"),
        "secrets_env_scan_history": True,
        "secrets_env_staging_hosts": demo_app.STAGING_HOSTS,
        "launchready_cloudflare_api_token": lab.add_token(demo_token_permissions(), zones=[DEMO_ZONE]),
        "launchready_cloudflare_api_base_url": lab.api_base_url,
        "secrets_env_cloudflare_zones": [DEMO_ZONE],
    }
    variables.update(extra)
    return variables


def env_path(tmp_path: Path) -> Path:
    return tmp_path / "srv" / "shared" / ".env"


def test_the_env_file_is_written_0600_atomically_and_a_second_run_changes_nothing(tmp_path, lab):
    values = fake_secrets()
    variables = stage_vars(tmp_path, lab, values)
    first = run_playbook(STAGE, variables, diff=True)
    assert first.rc == 0, first.output
    path = env_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dotenv.dotenv_values(path, interpolate=False) == dict(values, NODE_ENV="production", APP_URL="https://app.%s" % DEMO_ZONE)
    assert sorted(os.listdir(path.parent)) == [".env"], "a temporary file was left behind"
    assert task(first, "Render the environment file from the vault (values never shown)")["censored"]
    for value in values.values():
        assert value.splitlines()[0] not in first.output

    second = run_playbook(STAGE, variables)
    assert second.rc == 0, second.output
    assert second.recap["changed"] == 0, [r["task"] for r in second.results if r["status"] == "changed"]

    # A changed secret: a new file renamed over the old one (a new inode), the old one kept as a 0600 backup.
    before, old_secret = path.stat().st_ino, values["SESSION_SECRET"]
    variables["secrets_env_values"]["production"] = dict(values, SESSION_SECRET=secrets.token_urlsafe(32))
    third = run_playbook(STAGE, variables)
    assert third.rc == 0, third.output
    assert task(third, "Show what changed in the environment file (key names only)")["msg"]["changed"] == ["SESSION_SECRET"]
    assert path.stat().st_ino != before
    backups = [name for name in os.listdir(path.parent) if name != ".env"]
    assert len(backups) == 1 and stat.S_IMODE((path.parent / backups[0]).stat().st_mode) == 0o600
    assert dotenv.dotenv_values(path.parent / backups[0], interpolate=False)["SESSION_SECRET"] == old_secret


def test_planted_blockers_fail_the_launch_unless_accepted_in_the_baseline(tmp_path, lab):
    app = demo_app.create(tmp_path / "app")
    variables = stage_vars(tmp_path, lab, fake_secrets(), secrets_env_app_source=str(app.root))
    failed = run_playbook(STAGE, variables)
    assert failed.rc != 0
    assert failed.results[-1]["task"].endswith(BLOCKERS_TASK) and failed.results[-1]["status"] == "failed"
    message = task(failed, BLOCKERS_TASK)["msg"]
    # One finding per rule: each planted problem is a rule of its own.
    assert message.startswith("%d must-do-now finding(s)" % len({p.rule for p in app.planted})), message
    scan = task(failed, "Scan the app's source for secrets, dev and preview URLs and test credentials")
    found = {(m["rule"], m["file"], "commit" in m) for m in scan["matches"] if not m["accepted"]}
    assert found == {(p.rule, p.file, p.history_only) for p in app.planted}
    assert all(m["severity"] == "must_do_now" for m in scan["matches"])
    assert (tmp_path / "reports" / "secret-scan.sarif").is_file()

    demo_app.accept_all(app.root)
    accepted = run_playbook(STAGE, variables)
    assert accepted.rc == 0, accepted.output
    scan = task(accepted, "Scan the app's source for secrets, dev and preview URLs and test credentials")
    assert scan["summary"]["must_do_now"] == 0 and scan["summary"]["accepted"] == len(app.planted)
    assert "%d known matches accepted in the baseline" % len(app.planted) in [f["title"] for f in scan["findings"]]


def test_a_scoped_token_is_ok_and_a_too_broad_one_is_a_blocker(tmp_path, lab):
    other_zone = "other-client-%s.test" % uuid.uuid4().hex[:8]
    lab.add_zone(other_zone)
    try:
        scoped = run_playbook(VERIFY, stage_vars(tmp_path, lab, fake_secrets()))
        assert scoped.rc == 0, scoped.output
        check = task(scoped, TOKEN_TASK)
        assert [f["severity"] for f in check["findings"]] == ["ok", "ok"]
        assert check["privileges"]["source"] == "probes" and not check["privileges"]["reach"]

        # The same permissions on every zone, and the token may read itself: its policies show it.
        broad = lab.add_token([*demo_token_permissions(), "api_tokens:read"], zones=["*"])
        result = run_playbook(VERIFY, stage_vars(tmp_path, lab, fake_secrets(), launchready_cloudflare_api_token=broad))
        check = task(result, TOKEN_TASK)
        assert check["privileges"]["source"] == "policies"
        assert check["findings"][0]["severity"] == "must_do_now"
        assert check["findings"][0]["title"] == "The Cloudflare API token reaches beyond the launch's zones with edit rights"
        assert "every zone (All zones)" in check["findings"][0]["evidence"]
        assert broad not in result.output

        # Without self-read, the probes see the other zone.
        probed = lab.add_token(["zone:read", "dns_records:edit"], zones=["*"])
        result = run_playbook(VERIFY, stage_vars(tmp_path, lab, fake_secrets(), launchready_cloudflare_api_token=probed,
                                                 secrets_env_cloudflare_needs=["secrets_env"]))
        check = task(result, TOKEN_TASK)
        assert check["privileges"]["source"] == "probes"
        assert check["findings"][0]["title"] == "The Cloudflare API token reaches beyond the launch's zones"
        assert other_zone in check["findings"][0]["evidence"]

        # Scoped, readable, but more than the needs: can wait.
        extra = lab.add_token(["zone:read", "dns_records:edit", "zone_waf:edit", "api_tokens:read"], zones=[DEMO_ZONE])
        result = run_playbook(VERIFY, stage_vars(tmp_path, lab, fake_secrets(), launchready_cloudflare_api_token=extra,
                                                 secrets_env_cloudflare_needs=["secrets_env"]))
        check = task(result, TOKEN_TASK)
        assert next((f["severity"], f["title"]) for f in check["findings"]) == (
            "can_wait", "The Cloudflare API token holds zone permissions no configured stage needs")
        assert check["privileges"]["beyond_needs"] == {DEMO_ZONE: ["zone_waf:edit"]}
    finally:
        lab.delete_zone(other_zone)


def test_a_too_broad_or_disabled_token_fails_the_launch(tmp_path, lab):
    broad = lab.add_token([*demo_token_permissions(), "api_tokens:read", "workers_scripts:edit"], zones=[DEMO_ZONE])
    result = run_playbook(STAGE, stage_vars(tmp_path, lab, fake_secrets(), launchready_cloudflare_api_token=broad))
    assert result.rc != 0
    assert "The Cloudflare API token holds account or user permissions no stage needs" in task(result, BLOCKERS_TASK)["msg"]

    disabled = lab.add_token(demo_token_permissions(), zones=[DEMO_ZONE], status="disabled")
    result = run_playbook(VERIFY, stage_vars(tmp_path, lab, fake_secrets(), launchready_cloudflare_api_token=disabled))
    check = task(result, TOKEN_TASK)
    assert check["accepted"] is False and check["api_calls"] == 1
    assert [(f["severity"], f["title"]) for f in check["findings"]] == [("must_do_now", "Cloudflare does not accept the API token")]
    assert disabled not in result.output


def test_without_a_token_the_check_is_a_finding_not_a_crash(tmp_path, lab):
    variables = stage_vars(tmp_path, lab, fake_secrets())
    del variables["launchready_cloudflare_api_token"]
    result = run_playbook(VERIFY, variables)
    assert result.rc == 0, result.output
    findings = task(result, "Collect this host's findings")["ansible_facts"]["secrets_env_findings"]
    assert {"severity": "must_do_now", "title": "The Cloudflare API token could not be checked"}.items() <= next(
        f for f in findings if f["title"].startswith("The Cloudflare API token")).items()

    off = run_playbook(VERIFY, dict(variables, secrets_env_cloudflare_token_check=False))
    findings = task(off, "Collect this host's findings")["ansible_facts"]["secrets_env_findings"]
    assert not [f for f in findings if "Cloudflare" in f["title"]]
