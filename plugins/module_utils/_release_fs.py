# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filesystem side of deploy_release: read a deploy root, and carry out a plan from ``_releases``.

Every change is made so that a run killed at any point leaves something the next run recognises:

* a release is built in ``releases/.<name>.partial-<token>`` holding a ``DEPLOY_UNFINISHED`` marker, then
  renamed to ``releases/<name>``; the marker stays until activation;
* a release is removed by renaming it to ``releases/.<name>.removing-<token>`` first, so a half-deleted
  folder never looks like a release;
* ``current`` is switched by creating a new relative symbolic link and renaming it over the old one;
* the lock is a folder created with ``mkdir`` (atomic: exactly one of two racing deploys gets it);
* log lines are appended with ``O_APPEND`` and flushed to disk with ``fsync``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from ansible_collections.launchready.core.plugins.module_utils._files import fsync_dir, write_atomic
from ansible_collections.launchready.core.plugins.module_utils._releases import (
    BAD_MARKER,
    CURRENT_LINK,
    GIT_MIRROR_DIR,
    LOCK_DIR,
    LOCK_OWNER_FILE,
    LOG_FILE,
    RELEASES_DIR,
    RESERVED_NAMES,
    SHARED_DIR,
    UNFINISHED_MARKER,
    LockRecord,
    LockState,
    LogEntry,
    Plan,
    ReleaseDir,
    ReleaseError,
    Snapshot,
    Source,
    Step,
    parse_log,
)

LEFTOVER_RE = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9._+-]*\.(partial|removing)-[0-9a-f]+\Z")
CHUNK = 1024 * 1024


class LockBusy(Exception):
    """The lock folder appeared between reading it and taking it."""


def _token() -> str:
    return secrets.token_hex(4)


# --- reading -----------------------------------------------------------------------------------


def read_lock(root: str) -> LockState | None:
    return _read_lock_dir(os.path.join(root, LOCK_DIR))


def _read_lock_dir(path: str) -> LockState | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    try:
        with open(os.path.join(path, LOCK_OWNER_FILE), encoding="utf-8") as handle:
            record = LockRecord.from_json(handle.read())
    except OSError:
        record = None
    return LockState(record=record, fallback_since=datetime.fromtimestamp(info.st_mtime, timezone.utc))


def scan(root: str) -> Snapshot:
    """Read the deploy root: release folders and their markers, ``current``, the log and the lock. Writes nothing."""
    snapshot = Snapshot(root=root)
    releases_dir = os.path.join(root, RELEASES_DIR)
    if os.path.isdir(releases_dir):
        for entry in sorted(os.scandir(releases_dir), key=lambda entry: entry.name):
            if LEFTOVER_RE.match(entry.name):
                snapshot.leftovers.append(entry.name)
            elif not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                snapshot.dirs[entry.name] = ReleaseDir(
                    name=entry.name,
                    unfinished=os.path.lexists(os.path.join(entry.path, UNFINISHED_MARKER)),
                    bad_marker=os.path.lexists(os.path.join(entry.path, BAD_MARKER)),
                )
    link = os.path.join(root, CURRENT_LINK)
    if os.path.islink(link):
        snapshot.current_target = os.readlink(link)
        resolved = os.path.realpath(link)
        name = os.path.basename(resolved)
        if os.path.dirname(resolved) == os.path.realpath(releases_dir) and name in snapshot.dirs:
            snapshot.current = name
    elif os.path.isdir(link):
        snapshot.current_is_dir = True
    log_path = os.path.join(root, LOG_FILE)
    if os.path.isfile(log_path):
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            snapshot.log, snapshot.unreadable_log_lines = parse_log(handle.read())
    snapshot.lock = read_lock(root)
    return snapshot


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_artifact(source: Source) -> None:
    """Fail before any write when the artifact is missing, of the wrong kind, altered or unsafe to unpack."""
    path = source.location
    if not os.path.exists(path):
        raise ReleaseError("artifact %s does not exist on this host; copy it there first (the deploy role does)" % path)
    if source.kind == "folder":
        reserved = [name for name in RESERVED_NAMES if os.path.lexists(os.path.join(path, name))]
        if reserved:
            raise ReleaseError("artifact %s holds %s, a name deploy_release keeps for its own marker files" % (path, ", ".join(reserved)))
        return
    if not tarfile.is_tarfile(path):
        raise ReleaseError("artifact %s is neither a folder nor a tar archive (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz)" % path)
    if source.checksum:
        actual = sha256_file(path)
        if actual != source.checksum:
            raise ReleaseError(
                "artifact %s has SHA-256 %s, not the expected %s: the copy is damaged or not the artifact that was built" % (path, actual, source.checksum)
            )
    with tarfile.open(path) as archive:
        for member in archive:
            check_member(member, path)


def artifact_kind(path: str) -> str:
    return "folder" if os.path.isdir(path) else "tarball"


def check_member(member: tarfile.TarInfo, origin: str) -> bool:
    """Refuse a tar member that would land outside the release or is not a plain file, folder or link.
    Returns False for the archive's root entry (``.``), which is skipped."""
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if name in ("", "."):
        return False
    parts = name.split("/")
    problem = None
    if name.startswith("/") or ".." in parts:
        problem = "its path leaves the release"
    elif parts[0] in RESERVED_NAMES:
        problem = "deploy_release keeps that name for its own marker file"
    elif member.issym():
        if member.linkname.startswith("/") or os.path.normpath(os.path.join(os.path.dirname(name), member.linkname)).split("/")[0] == "..":
            problem = "it is a symbolic link to %s, outside the release" % member.linkname
    elif member.islnk():
        target = os.path.normpath(member.linkname)
        if target.startswith("/") or target.split("/")[0] == "..":
            problem = "it is a hard link to %s, outside the release" % member.linkname
    elif not (member.isfile() or member.isdir()):
        problem = "it is a device, FIFO or other special file"
    if problem:
        raise ReleaseError("%s holds %r, which deploy_release does not unpack: %s" % (origin, member.name, problem))
    return True


def _extract(archive: tarfile.TarFile, dest: str, origin: str) -> None:
    for member in archive:
        if not check_member(member, origin):
            continue
        if hasattr(tarfile, "data_filter"):
            archive.extract(member, dest, filter="data")
        else:
            # Python without extraction filters (before 3.10.12/3.11.4): the same effect by hand.
            member.mode &= 0o755
            member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
            archive.extract(member, dest)


# --- the lock ----------------------------------------------------------------------------------


def make_layout(root: str) -> None:
    """The deploy root with its releases/ and shared/ folders."""
    for folder in (RELEASES_DIR, SHARED_DIR):
        os.makedirs(os.path.join(root, folder), exist_ok=True)


def acquire_lock(root: str, record: LockRecord) -> None:
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, LOCK_DIR)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        raise LockBusy() from None
    write_atomic(os.path.join(path, LOCK_OWNER_FILE), record.to_json().encode("utf-8"), 0o644)


def take_over_lock(root: str, record: LockRecord, seen: LockState) -> None:
    """Replace the lock ``seen`` (stale or forced) with ours. Raises LockBusy when it changed hands meanwhile."""
    path = os.path.join(root, LOCK_DIR)
    old = "%s.stale-%s" % (path, _token())
    try:
        os.rename(path, old)
    except FileNotFoundError:
        raise LockBusy() from None
    moved = _read_lock_dir(old)
    if moved is None or moved.record != seen.record:
        # Someone took it over first: put their lock back.
        os.rename(old, path)
        raise LockBusy()
    try:
        acquire_lock(root, record)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def release_lock(root: str) -> None:
    path = os.path.join(root, LOCK_DIR)
    gone = "%s.released-%s" % (path, _token())
    os.rename(path, gone)
    shutil.rmtree(gone)


# --- carrying out a plan -----------------------------------------------------------------------


def append_log(root: str, entry: LogEntry) -> None:
    line = entry.to_line().encode("utf-8")
    fd = os.open(os.path.join(root, LOG_FILE), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        # A line cut short by a crash gets its end, so this entry starts on a line of its own.
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def remove_release(root: str, name: str) -> None:
    releases_dir = os.path.join(root, RELEASES_DIR)
    doomed = os.path.join(releases_dir, ".%s.removing-%s" % (name, _token()))
    os.rename(os.path.join(releases_dir, name), doomed)
    fsync_dir(releases_dir)
    shutil.rmtree(doomed)


def switch_current(root: str, name: str) -> None:
    """Point ``current`` at ``releases/<name>`` with a relative link, atomically."""
    tmp = os.path.join(root, ".%s.tmp-%s" % (CURRENT_LINK, _token()))
    os.symlink(os.path.join(RELEASES_DIR, name), tmp)
    try:
        os.replace(tmp, os.path.join(root, CURRENT_LINK))
    except BaseException:
        os.unlink(tmp)
        raise
    fsync_dir(root)


def link_shared(root: str, release_dir: str, shared_dirs: Iterable[str], shared_files: Iterable[str]) -> None:
    """Replace each shared path in the release with a relative link into ``<root>/shared``."""
    shared_root = os.path.join(root, SHARED_DIR)
    for path in shared_dirs:
        os.makedirs(os.path.join(shared_root, path), exist_ok=True)
    for path in (*shared_dirs, *shared_files):
        in_release = os.path.join(release_dir, path)
        _remove_tree(in_release)
        os.makedirs(os.path.dirname(in_release), exist_ok=True)
        # From releases/<name>/<path>: up past its own folders, the release and releases/, to the root.
        os.symlink("../" * (path.count("/") + 2) + SHARED_DIR + "/" + path, in_release)


def missing_shared_files(root: str, shared_files: Iterable[str]) -> list[str]:
    return [path for path in shared_files if not os.path.lexists(os.path.join(root, SHARED_DIR, path))]


def _git(git: str, args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    result = subprocess.run([git, *args], capture_output=True, env=env, check=False)
    if result.returncode != 0:
        error = result.stderr.decode("utf-8", errors="replace").strip()
        raise ReleaseError("git %s failed (exit %d): %s" % (args[0] if args[0] != "-C" else args[2], result.returncode, error))
    return result


def export_git(root: str, git: str, source: Source, dest: str) -> str:
    """Fetch into the mirror ``<root>/repo.git``, resolve the ref, unpack that commit into ``dest``; return the commit."""
    mirror = os.path.join(root, GIT_MIRROR_DIR)
    if not os.path.isdir(mirror):
        _git(git, ["clone", "--mirror", "--quiet", "--", source.location, mirror])
    else:
        _git(git, ["-C", mirror, "remote", "set-url", "origin", "--", source.location])
        _git(git, ["-C", mirror, "fetch", "--prune", "--quiet", "origin"])
    try:
        resolved = _git(git, ["-C", mirror, "rev-parse", "--verify", "--quiet", "%s^{commit}" % source.git_ref])
    except ReleaseError:
        raise ReleaseError("git ref %s is not a branch, tag or commit of %s" % (source.git_ref, source.location)) from None
    commit = resolved.stdout.decode("ascii").strip()
    if source.expected_revision and not commit.startswith(source.expected_revision.lower()):
        raise ReleaseError(
            "git ref %s is now commit %s, not the expected revision %s (did the branch move during the deploy?)"
            % (source.git_ref, commit, source.expected_revision)
        )
    env = dict(os.environ, LC_ALL="C")
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen([git, "-C", mirror, "archive", "--format=tar", commit], stdout=subprocess.PIPE, stderr=errors, env=env) as proc,
    ):
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                _extract(archive, dest, "commit %s" % commit)
        except BaseException:
            proc.kill()
            raise
        proc.wait()
        errors.seek(0)
        if proc.returncode != 0:
            raise ReleaseError("git archive failed (exit %d): %s" % (proc.returncode, errors.read().decode("utf-8", errors="replace").strip()))
    return commit


def _populate(root: str, step: Step, dest: str, git: str | None) -> str | None:
    """Fill ``dest`` from the step's source; return the git commit when the source is git."""
    source = step.source
    if source is None:
        raise ReleaseError("release %s has no source" % step.release)
    if source.kind == "folder":
        shutil.copytree(source.location, dest, symlinks=True, dirs_exist_ok=True)
        return None
    if source.kind == "tarball":
        with tarfile.open(source.location) as archive:
            _extract(archive, dest, source.location)
        return None
    if git is None:
        raise ReleaseError("git is not installed on this host")
    return export_git(root, git, source, dest)


def create_release(root: str, step: Step, git: str | None) -> str | None:
    """Build release ``step.release`` beside its final place and rename it there; return the git commit if any."""
    releases_dir = os.path.join(root, RELEASES_DIR)
    os.makedirs(releases_dir, exist_ok=True)
    building = os.path.join(releases_dir, ".%s.partial-%s" % (step.release, _token()))
    os.mkdir(building, 0o755)
    try:
        marker = step.entry.to_line() if step.entry else "{}\n"
        write_atomic(os.path.join(building, UNFINISHED_MARKER), marker.encode("utf-8"), 0o644)
        commit = _populate(root, step, building, git)
        link_shared(root, building, step.shared_dirs, step.shared_files)
        os.rename(building, os.path.join(releases_dir, step.release))
        fsync_dir(releases_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return commit


def apply(root: str, plan: Plan, git: str | None = None, failure_entry: Callable[[str, str], LogEntry] | None = None) -> dict[str, str]:
    """Carry out the plan's steps in order; return the git commit of each release created from git.

    When creating a release fails, its partial folder is removed and ``failure_entry(release, message)``
    (a ``LogEntry`` for the ``failed`` line) is appended to the log before the error propagates.
    """
    commits: dict[str, str] = {}
    os.makedirs(root, exist_ok=True)
    for step in plan.steps:
        release_dir = os.path.join(root, RELEASES_DIR, step.release)
        if step.kind == "clean_leftover":
            shutil.rmtree(release_dir, ignore_errors=True)
        elif step.kind == "remove_release":
            remove_release(root, step.release)
        elif step.kind == "create_release":
            try:
                commit = create_release(root, step, git)
            except (ReleaseError, OSError, tarfile.TarError) as exc:
                if failure_entry is not None:
                    append_log(root, failure_entry(step.release, str(exc)))
                if isinstance(exc, ReleaseError):
                    raise
                raise ReleaseError("could not create release %s: %s" % (step.release, exc)) from exc
            if step.entry is not None:
                entry = dataclasses.replace(step.entry, revision=commit) if commit else step.entry
                append_log(root, entry)
            if commit:
                commits[step.release] = commit
        elif step.kind == "switch":
            switch_current(root, step.release)
        elif step.kind == "remove_unfinished_marker":
            marker = os.path.join(release_dir, UNFINISHED_MARKER)
            if os.path.lexists(marker):
                os.unlink(marker)
                fsync_dir(release_dir)
        elif step.kind == "mark_bad":
            write_atomic(os.path.join(release_dir, BAD_MARKER), (step.entry.to_line() if step.entry else "{}\n").encode("utf-8"), 0o644)
        elif step.kind == "log" and step.entry is not None:
            append_log(root, step.entry)
    return commits
