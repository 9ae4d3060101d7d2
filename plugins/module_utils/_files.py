# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files written so that readers see the old content or the new one, never a part."""

from __future__ import annotations

import os
import tempfile


def fsync_dir(path: str) -> None:
    """Make a rename or a new entry in folder ``path`` survive a crash."""
    dir_fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_atomic(path: str, data: bytes, mode: int, uid: int = -1, gid: int = -1, *, sync_dir: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path`` with its final mode and owner, fsync it, rename it over ``path``.

    Readers see either the old file or the new one, never a partial one, and the file never exists
    with looser permissions than ``mode``. When a step before the rename fails, the temporary file
    is removed and ``path`` keeps its old content. ``sync_dir=False`` skips the final ``fsync_dir``,
    for a caller that syncs the folder itself (one that tolerates file systems that cannot).
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd != -1:
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(directory)
