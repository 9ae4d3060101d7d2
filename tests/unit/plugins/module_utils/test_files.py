# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_files.write_atomic: final mode before any byte lands, all or nothing, no temporary file left behind."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _files


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / "app.env"
    path.write_bytes(b"OLD=1\n")
    os.chmod(path, 0o644)
    return path


def test_the_mode_is_set_before_the_first_byte_is_written(tmp_path, monkeypatch):
    real_write = os.write
    seen = []

    def spying_write(fd, data):
        info = os.fstat(fd)
        seen.append((stat.S_IMODE(info.st_mode), info.st_size))
        return real_write(fd, data)

    monkeypatch.setattr(_files.os, "write", spying_write)
    path = tmp_path / "secret.pem"
    _files.write_atomic(str(path), b"key material", 0o640)  # not 0600, the mode mkstemp creates with
    assert seen and seen[0] == (0o640, 0)  # an empty file with its final mode when the content starts to land
    assert mode_of(path) == 0o640 and path.read_bytes() == b"key material"


def test_the_owner_is_set_before_the_first_byte_and_only_when_asked(tmp_path, monkeypatch):
    events = []
    real_write, real_fchown = os.write, os.fchown
    monkeypatch.setattr(_files.os, "write", lambda fd, data: events.append("write") or real_write(fd, data))
    monkeypatch.setattr(_files.os, "fchown", lambda fd, uid, gid: events.append(("fchown", uid, gid)) or real_fchown(fd, uid, gid))
    _files.write_atomic(str(tmp_path / "a"), b"x", 0o600, os.getuid(), os.getgid())
    assert events == [("fchown", os.getuid(), os.getgid()), "write"]
    events.clear()
    _files.write_atomic(str(tmp_path / "b"), b"x", 0o600)
    assert events == ["write"]


def test_the_rename_replaces_an_existing_file_whole(old_file):
    with open(old_file, "rb") as reader:  # a reader that opened the old file keeps reading the old file
        before = os.fstat(reader.fileno()).st_ino
        _files.write_atomic(str(old_file), b"NEW=2\n", 0o600)
        assert reader.read() == b"OLD=1\n"
    assert old_file.read_bytes() == b"NEW=2\n" and mode_of(old_file) == 0o600
    assert os.stat(old_file).st_ino != before  # a new file renamed over the old one, not rewritten in place
    assert os.listdir(old_file.parent) == [old_file.name]


def test_short_writes_are_continued_until_everything_is_written(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(_files.os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    data = bytes(range(256)) * 10
    _files.write_atomic(str(tmp_path / "blob"), data, 0o644)
    assert (tmp_path / "blob").read_bytes() == data


def test_data_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    monkeypatch.setattr(_files.os, "fsync", fsync)
    monkeypatch.setattr(_files.os, "replace", lambda src, dst: events.append("rename") or real_replace(src, dst))
    _files.write_atomic(str(tmp_path / "f"), b"x", 0o600)
    assert events == ["fsync file", "rename", "fsync folder"]
    events.clear()
    _files.write_atomic(str(tmp_path / "f"), b"y", 0o600, sync_dir=False)
    assert events == ["fsync file", "rename"]


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary_file(old_file, monkeypatch):
    real_write = os.write
    calls = []

    def write_then_disk_full(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:4]))  # part of the new content lands in the temporary file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files.os, "write", write_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        _files.write_atomic(str(old_file), b"NEW=2\nMORE=3\n", 0o600)
    assert len(calls) == 2
    assert old_file.read_bytes() == b"OLD=1\n" and mode_of(old_file) == 0o644
    assert os.listdir(old_file.parent) == [old_file.name]


@pytest.mark.parametrize("broken", ["fchmod", "fsync", "replace"])
def test_any_failing_step_before_the_rename_cleans_up(old_file, monkeypatch, broken):
    def fail(*args):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(_files.os, broken, fail)
    with pytest.raises(OSError, match="I/O error"):
        _files.write_atomic(str(old_file), b"NEW=2\n", 0o600)
    assert old_file.read_bytes() == b"OLD=1\n"
    assert os.listdir(old_file.parent) == [old_file.name]


def test_an_interrupt_cleans_up_too(old_file, monkeypatch):
    def interrupted(fd, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(_files.os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _files.write_atomic(str(old_file), b"NEW=2\n", 0o600)
    assert old_file.read_bytes() == b"OLD=1\n"
    assert os.listdir(old_file.parent) == [old_file.name]


def test_a_bare_file_name_is_written_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _files.write_atomic("plain.txt", b"x", 0o644)
    assert (tmp_path / "plain.txt").read_bytes() == b"x"
    _files.fsync_dir("")  # the current folder
