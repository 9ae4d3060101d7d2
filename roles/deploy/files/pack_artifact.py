# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack a deploy artifact on the controller: the deploy role runs it with ansible-playbook's Python.

    python pack_artifact.py ARTIFACT [--exclude PATTERN ...]

ARTIFACT is a folder or a tar archive. A folder is taken as ansible.builtin.copy takes one: with a
trailing slash its contents become the release, without one the folder itself goes into the
release under its name. It is packed into a gzipped tarball (owners dropped, names sorted, no
times in the gzip header) in a cache folder of this user's (``launchready-artifacts-<uid>`` in the
temporary folder, mode 0700), named after a hash of the contents: packing the same files again
reuses it, and tarballs unused for a day are removed. An archive is used as it is.

Prints one JSON object: ``path`` (the archive to copy), ``sha256`` (of that archive, checked again
on the host) and ``revision`` (the first 12 hex digits of the contents' hash for a folder, of the
SHA-256 for an archive). Exit status 2 with the reason on standard error when the artifact is
missing or cannot be packed.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import json
import os
import stat
import sys
import tarfile
import tempfile
import time

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
CHUNK = 1 << 20
CACHE_DAYS = 1


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def walk(folder: str, exclude: list[str]) -> list[str]:
    """Relative paths under folder, sorted, without excluded names (an excluded folder is not entered)."""
    found: list[str] = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if not any(fnmatch.fnmatch(name, pattern) for pattern in exclude))
        for name in dirs + sorted(files):
            if not any(fnmatch.fnmatch(name, pattern) for pattern in exclude):
                found.append(os.path.relpath(os.path.join(top, name), folder))
    return sorted(found)


def members(folder: str, exclude: list[str], prefix: str) -> list[tuple[str, str]]:
    """(path on disk, name in the archive) of every member, sorted, the folder itself first when it has a prefix."""
    found = [(folder, prefix)] if prefix else []
    for relative in walk(folder, exclude):
        full = os.path.join(folder, relative)
        info = os.lstat(full)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            raise ValueError("%s is neither a file, a folder nor a symbolic link" % full)
        found.append((full, os.path.join(prefix, relative) if prefix else relative))
    return found


def content_hash(entries: list[tuple[str, str]]) -> str:
    """A hash of names, kinds, permissions, link targets and file contents (not times, not owners)."""
    digest = hashlib.sha256()
    for full, name in entries:
        info = os.lstat(full)
        kind = "l" if stat.S_ISLNK(info.st_mode) else "d" if stat.S_ISDIR(info.st_mode) else "f"
        target = os.readlink(full) if kind == "l" else ""
        digest.update(("%s %s %o %s\0" % (kind, name, info.st_mode & 0o755, target)).encode("utf-8", "surrogateescape"))
        if kind == "f":
            digest.update(bytes.fromhex(sha256_file(full)))
    return digest.hexdigest()


def cache_folder() -> str:
    folder = os.path.join(tempfile.gettempdir(), "launchready-artifacts-%d" % os.getuid())
    os.makedirs(folder, mode=0o700, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ValueError("%s must be a folder of this user's that nobody else may read" % folder)
    cutoff = time.time() - CACHE_DAYS * 86400
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
            os.unlink(entry.path)
    return folder


def write_tarball(entries: list[tuple[str, str]], target: str) -> None:
    """Write the tarball beside its final name, then rename it there: a reader never sees half of it."""
    handle, partial = tempfile.mkstemp(prefix=".packing-", dir=os.path.dirname(target))
    try:
        # mtime=0 in the gzip header: the archive's bytes depend on the files only.
        with os.fdopen(handle, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped, \
                tarfile.open(fileobj=zipped, mode="w") as archive:
            for full, name in entries:
                member = archive.gettarinfo(full, arcname=name)
                member.uid = member.gid = 0
                member.uname = member.gname = ""
                member.mode &= 0o755
                if member.isfile():
                    with open(full, "rb") as data:
                        archive.addfile(member, data)
                else:
                    archive.addfile(member)
        os.replace(partial, target)
    except BaseException:
        os.unlink(partial)
        raise


def pack(folder: str, exclude: list[str], prefix: str) -> dict:
    entries = members(folder, exclude, prefix)
    revision = content_hash(entries)
    target = os.path.join(cache_folder(), revision + ".tar.gz")
    if os.path.exists(target):
        os.utime(target)
    else:
        write_tarball(entries, target)
    return {"path": target, "sha256": sha256_file(target), "revision": revision[:12]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact")
    parser.add_argument("--exclude", action="append", default=[])
    args = parser.parse_args(argv)
    path = os.path.abspath(os.path.expanduser(args.artifact))
    try:
        if os.path.isdir(path):
            result = pack(path, args.exclude, "" if args.artifact.endswith("/") else os.path.basename(path))
        elif os.path.isfile(path):
            if not path.endswith(ARCHIVE_SUFFIXES) or not tarfile.is_tarfile(path):
                raise ValueError("%s is neither a folder nor a tar archive (%s)" % (path, ", ".join(ARCHIVE_SUFFIXES)))
            checksum = sha256_file(path)
            result = {"path": path, "sha256": checksum, "revision": checksum[:12]}
        else:
            raise ValueError("artifact %s does not exist on the controller" % path)
    except (OSError, ValueError, tarfile.TarError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
