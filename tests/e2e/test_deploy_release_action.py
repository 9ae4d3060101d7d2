# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_release's action plugin through ansible-playbook: an artifact on the controller is copied with the task and removed after."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tests.e2e.playbook import run_playbook

PREPARE = """
- name: Prepare a release from an archive on the controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Prepare
      launchready.core.deploy_release:
        root: "{{ root }}"
        release: 20261128T020000Z-abcdef0
        artifact: "{{ artifact }}"
        artifact_on_controller: true
      environment:
        TMPDIR: "{{ remote_tmp }}"
      vars:
        ansible_remote_tmp: "{{ remote_tmp }}"
"""


def tarball(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        data = b"print('v1')\n"
        member = tarfile.TarInfo("./app.py")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return path


def test_an_archive_on_the_controller_becomes_a_release_and_no_copy_stays(tmp_path):
    remote_tmp = tmp_path / "remote-tmp"
    remote_tmp.mkdir()
    extra = {"root": str(tmp_path / "srv"), "artifact": str(tarball(tmp_path / "app.tar.gz")), "remote_tmp": str(remote_tmp)}

    preview = run_playbook(PREPARE, extra, check=True)
    assert preview.rc == 0, preview.output[-3000:]
    assert not (tmp_path / "srv" / "releases").exists() and list(remote_tmp.iterdir()) == []

    done = run_playbook(PREPARE, extra)
    assert done.rc == 0, done.output[-3000:]
    assert (tmp_path / "srv" / "releases" / "20261128T020000Z-abcdef0" / "app.py").read_text() == "print('v1')\n"
    assert list(remote_tmp.iterdir()) == [], "the copy of the archive is removed with the task's temporary folder"


def test_a_folder_or_a_missing_archive_fails_before_anything_is_written(tmp_path):
    (tmp_path / "build").mkdir()
    for artifact, message in ((tmp_path / "build", "is a folder: with artifact_on_controller, pack it into an archive first"),
                              (tmp_path / "nowhere.tar.gz", "not found on the control node")):
        failed = run_playbook(PREPARE, {"root": str(tmp_path / "srv"), "artifact": str(artifact), "remote_tmp": str(tmp_path)})
        assert failed.rc != 0 and message in failed.output, failed.output[-3000:]
        assert not (tmp_path / "srv").exists()
