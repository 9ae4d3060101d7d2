# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""env_file: checks before any write, atomic 0600 writes, idempotence, check mode, masked diff, values never in the output."""

from __future__ import annotations

import json
import os
import secrets
import stat

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.launchready.core.plugins.module_utils import _envfile
from ansible_collections.launchready.core.plugins.module_utils._redact import fingerprint
from ansible_collections.launchready.core.plugins.modules import env_file


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        env_file.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    result["_raw"] = out
    return result


@pytest.fixture
def secret_values():
    return {
        "DATABASE_URL": "postgres://app:%s@db.internal:5432/app" % secrets.token_urlsafe(18),
        "SESSION_SECRET": secrets.token_hex(32),
        "STRIPE_SECRET_KEY": "sk_live_" + secrets.token_hex(16),
    }


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def assert_no_value_leaks(result, values):
    for value in values.values():
        assert value not in result["_raw"]


def test_writes_0600_atomically_then_is_idempotent(tmp_path, capsys, secret_values):
    path = tmp_path / ".env"
    first = run(
        capsys,
        path=str(path),
        values=secret_values,
        plain_values={"NODE_ENV": "production", "PORT": 3000},
        required_keys=["DATABASE_URL", "SESSION_SECRET"],
        _ansible_diff=True,
    )
    assert first["changed"] is True
    assert mode(path) == 0o600
    assert os.listdir(tmp_path) == [".env"]
    assert _envfile.parse(path.read_text(), "dotenv") == {**secret_values, "NODE_ENV": "production", "PORT": "3000"}
    assert first["keys"] == ["DATABASE_URL", "NODE_ENV", "PORT", "SESSION_SECRET", "STRIPE_SECRET_KEY"]
    assert first["added"] == first["keys"] and first["removed"] == [] and first["changed_keys"] == []
    assert first["fingerprints"]["SESSION_SECRET"] == fingerprint(secret_values["SESSION_SECRET"])
    assert first["diff"]["before"] == ""
    assert "SESSION_SECRET=********\n" in first["diff"]["after"]
    assert first["diff"]["after"].startswith("# mode 0600")
    assert_no_value_leaks(first, secret_values)

    second = run(capsys, path=str(path), values=secret_values, plain_values={"NODE_ENV": "production", "PORT": 3000})
    assert second["changed"] is False
    assert second["added"] == [] and second["changed_keys"] == []


def test_change_diff_marks_changed_keys_with_values_masked(tmp_path, capsys, secret_values):
    path = tmp_path / ".env"
    run(capsys, path=str(path), values={**secret_values, "OLD_KEY": "retired-" + secrets.token_hex(8)})
    new_values = {**secret_values, "SESSION_SECRET": secrets.token_hex(32), "NEW_KEY": secrets.token_hex(8)}
    result = run(capsys, path=str(path), values=new_values, _ansible_diff=True)
    assert result["changed"] is True
    assert (result["added"], result["removed"], result["changed_keys"]) == (["NEW_KEY"], ["OLD_KEY"], ["SESSION_SECRET"])
    diff = result["diff"]
    assert "OLD_KEY=********\n" in diff["before"] and "OLD_KEY" not in diff["after"]
    assert "SESSION_SECRET=******** (changed)\n" in diff["after"]
    assert "DATABASE_URL=********\n" in diff["after"]
    assert_no_value_leaks(result, new_values)


def test_check_mode_writes_nothing(tmp_path, capsys, secret_values):
    path = tmp_path / ".env"
    result = run(capsys, path=str(path), values=secret_values, _ansible_check_mode=True)
    assert result["changed"] is True
    assert os.listdir(tmp_path) == []
    # a directory an earlier task would create in a real run
    missing = run(capsys, path=str(tmp_path / "shared" / ".env"), values=secret_values, _ansible_check_mode=True)
    assert missing["changed"] is True and missing["added"] == sorted(secret_values)
    assert os.listdir(tmp_path) == []


def test_required_key_missing_fails_before_writing(tmp_path, capsys, secret_values):
    path = tmp_path / ".env"
    path.write_text("KEEP='me'\n")
    result = run(capsys, path=str(path), values={**secret_values, "MAILER_TOKEN": ""}, required_keys=["MAILER_TOKEN", "SENTRY_DSN"])
    assert result["failed"] is True
    assert result["msg"] == "required keys missing or empty: MAILER_TOKEN, SENTRY_DSN"
    assert path.read_text() == "KEEP='me'\n"
    assert_no_value_leaks(result, secret_values)


def test_forbidden_pattern_fails_with_key_name_only(tmp_path, capsys):
    test_key = "sk_test_" + secrets.token_hex(16)
    path = tmp_path / ".env"
    result = run(
        capsys,
        path=str(path),
        values={"STRIPE_SECRET_KEY": test_key, "REDIS_URL": "redis://localhost:6379"},
        forbidden=[{"pattern": "sk_test_"}, {"pattern": "localhost", "ignore_keys": ["REDIS_URL"]}],
    )
    assert result["failed"] is True
    assert result["msg"] == "STRIPE_SECRET_KEY matches forbidden pattern 'sk_test_'"
    assert test_key not in result["_raw"]
    assert not path.exists()


def test_unportable_value_fails_with_key_name(tmp_path, capsys):
    value = "it's $" + secrets.token_hex(8)
    result = run(capsys, path=str(tmp_path / ".env"), values={"ODD": value})
    assert result["failed"] is True and result["msg"].startswith("ODD: ")
    assert value not in result["_raw"]
    ok = run(capsys, path=str(tmp_path / "env"), values={"ODD": value}, format="systemd")
    assert ok["changed"] is True
    assert _envfile.parse((tmp_path / "env").read_text(), "systemd") == {"ODD": value}


def test_key_in_values_and_plain_values(tmp_path, capsys):
    result = run(capsys, path=str(tmp_path / ".env"), values={"PORT": "1"}, plain_values={"PORT": "2"})
    assert result["failed"] is True and result["msg"] == "keys in both values and plain_values: PORT"


def test_missing_directory_and_unknown_owner(tmp_path, capsys):
    result = run(capsys, path=str(tmp_path / "nope" / ".env"), values={"A": "1"})
    assert result["failed"] is True and "does not exist" in result["msg"]
    result = run(capsys, path=str(tmp_path / ".env"), values={"A": "1"}, owner="no-such-user-launchready")
    assert result["failed"] is True and result["msg"] == "user 'no-such-user-launchready' does not exist on this host"
    assert os.listdir(tmp_path) == []


def test_mode_fix_without_content_change_and_backup(tmp_path, capsys, secret_values):
    path = tmp_path / ".env"
    run(capsys, path=str(path), values=secret_values)
    os.chmod(path, 0o644)
    result = run(capsys, path=str(path), values=secret_values, backup=True, _ansible_diff=True)
    assert result["changed"] is True and result["changed_keys"] == []
    assert mode(path) == 0o600
    assert result["diff"]["before"].startswith("# mode 0644") and result["diff"]["after"].startswith("# mode 0600")
    backup = result["backup_file"]
    assert os.path.exists(backup) and mode(backup) == 0o644  # the backup keeps the old file's permissions
    with open(backup, encoding="utf-8") as handle:
        assert _envfile.parse(handle.read(), "dotenv") == secret_values


def test_owner_and_group_numeric_ids(tmp_path, capsys):
    path = tmp_path / ".env"
    result = run(capsys, path=str(path), values={"A": "1"}, owner=str(os.geteuid()), group=str(os.getegid()), mode="0640")
    assert result["changed"] is True
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, mode(path)) == (os.geteuid(), os.getegid(), 0o640)


def test_symlink_is_followed(tmp_path, capsys):
    target = tmp_path / "shared.env"
    target.write_text("")
    link = tmp_path / ".env"
    link.symlink_to(target)
    # A value that cannot occur in the temporary path: Ansible masks no_log values wherever they appear.
    result = run(capsys, path=str(link), values={"A": "symlinked-value"})
    assert result["path"] == str(target)
    assert link.is_symlink() and _envfile.parse(target.read_text(), "dotenv") == {"A": "symlinked-value"}
