# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""config_files for real in a temporary folder: writes only what differs, check mode writes nothing, diffs, bad input."""

from __future__ import annotations

import json
import os
import pathlib
import stat

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.launchready.core.plugins.modules import config_files


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        config_files.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    return result


def listing(folder):
    """Every entry under ``folder`` with its mode, mtime and content: any write shows."""
    seen = {}
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(base, name)
            info = os.lstat(path)
            content = pathlib.Path(path).read_text(encoding="utf-8") if stat.S_ISREG(info.st_mode) else None
            seen[os.path.relpath(path, folder)] = (stat.S_IMODE(info.st_mode), info.st_mtime_ns, content)
    return seen


def test_writes_what_differs_creates_folders_and_is_idempotent(capsys, tmp_path):
    conf, units = tmp_path / "server" / "gunicorn.conf.py", tmp_path / "server" / "sup" / "supervisord.conf"
    files = [dict(path=str(conf), content="workers = 2\n"), dict(path=str(units), content="[supervisord]\n", mode="0600")]

    preview = run(capsys, files=files, _ansible_check_mode=True, _ansible_diff=True)
    assert preview["changed"] is True and preview["changed_files"] == [str(conf), str(units)]
    assert [(item["before"], item["after"]) for item in preview["diff"]] == [("", "workers = 2\n"), ("", "[supervisord]\n")]
    assert list(tmp_path.iterdir()) == []

    written = run(capsys, files=files)
    assert written["changed_files"] == [str(conf), str(units)]
    assert conf.read_text() == "workers = 2\n" and units.read_text() == "[supervisord]\n"
    assert stat.S_IMODE(units.stat().st_mode) == 0o600 and stat.S_IMODE(conf.stat().st_mode) == 0o644
    assert stat.S_IMODE(units.parent.stat().st_mode) == 0o755

    before = listing(tmp_path)
    again = run(capsys, files=files, _ansible_diff=True)
    assert again["changed"] is False and again["changed_files"] == [] and again["diff"] == []
    assert listing(tmp_path) == before

    files[0]["content"] = "workers = 4\n"
    files[1]["mode"] = "0640"
    changed = run(capsys, files=files, _ansible_diff=True)
    assert changed["changed_files"] == [str(conf), str(units)]
    assert changed["diff"][0]["before"] == "workers = 2\n" and changed["diff"][0]["after"] == "workers = 4\n"
    assert stat.S_IMODE(units.stat().st_mode) == 0o640 and units.read_text() == "[supervisord]\n"
    assert [name for name in os.listdir(conf.parent) if name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    "files, message",
    [
        ([dict(path="{tmp}/a.conf", content="x", mode="rw-r--r--")], "is not an octal mode"),
        ([dict(path="{tmp}/a.conf", content="x"), dict(path="{tmp}/./a.conf", content="y")], "given twice"),
        ([dict(path="{tmp}", content="x")], "is not a regular file"),
    ],
)
def test_bad_input_fails_before_writing(capsys, tmp_path, files, message):
    (tmp_path / "keep.txt").write_text("unchanged")
    before = listing(tmp_path)
    for item in files:
        item["path"] = item["path"].format(tmp=tmp_path)
    result = run(capsys, files=files)
    assert result["failed"] is True and message in result["msg"]
    assert listing(tmp_path) == before


def test_an_unknown_owner_fails_before_writing(capsys, tmp_path):
    result = run(capsys, files=[dict(path=str(tmp_path / "a.conf"), content="x", owner="no-such-user-7d1e")])
    assert result["failed"] is True and "unknown owner or group" in result["msg"]
    assert list(tmp_path.iterdir()) == []
