# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release planning for deploy_release: what the deploy root holds, and what each state does to it.

Nothing here touches the filesystem. ``_release_fs`` reads the deploy root into a ``Snapshot``;
the planners below turn a snapshot and the task's options into a ``Plan`` (steps, the state after,
the log lines to append); ``_release_fs.apply`` carries the steps out. Check mode and the diff use
the same plan without applying it.

Release order comes from the audit log (the position of each release's ``deploy`` line) and,
for releases the log does not know, from their names. It never comes from file times: a write into
an old release folder must not change which release a rollback picks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

RELEASES_DIR = "releases"
SHARED_DIR = "shared"
CURRENT_LINK = "current"
LOG_FILE = "releases.log"
LOCK_DIR = ".deploy.lock"
LOCK_OWNER_FILE = "owner.json"
GIT_MIRROR_DIR = "repo.git"
UNFINISHED_MARKER = "DEPLOY_UNFINISHED"
BAD_MARKER = "BAD_RELEASE"
RESERVED_NAMES = (UNFINISHED_MARKER, BAD_MARKER)

ACTIONS = ("deploy", "activate", "rollback", "failed", "bad", "cleaned")
GOOD = "good"
BAD = "bad"
UNFINISHED = "unfinished"

RELEASE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")
HEX_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")


class ReleaseError(Exception):
    """A request that cannot be carried out; the message says why and what to do."""


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_utc(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def check_release_name(name: str) -> str:
    if not RELEASE_NAME_RE.match(name) or ".." in name:
        raise ReleaseError(
            "release name %r is not usable as a folder name: use letters, digits, '.', '_', '+' and '-' (up to 128 characters, "
            "starting with a letter or digit), such as 20261127T221500Z-3f2a9c1" % name
        )
    return name


def check_relative_path(path: str, what: str) -> str:
    """A shared path: relative, normalised, inside the release, not a reserved marker name."""
    parts = [part for part in path.strip("/").split("/") if part not in ("", ".")] if not path.startswith("/") else []
    if not parts or ".." in parts:
        raise ReleaseError("%s %r must be a relative path inside the release, without '..'" % (what, path))
    normalised = "/".join(parts)
    if normalised in RESERVED_NAMES:
        raise ReleaseError("%s %r is a name deploy_release keeps for its own marker files" % (what, path))
    return normalised


def check_shared_paths(dirs: list[str], files: list[str]) -> tuple[list[str], list[str]]:
    """Normalise the shared folders and files; none may repeat or lie inside another."""
    checked_dirs = [check_relative_path(path, "shared path") for path in dirs]
    checked_files = [check_relative_path(path, "shared file") for path in files]
    every = checked_dirs + checked_files
    for index, path in enumerate(every):
        for other in every[index + 1 :]:
            if path == other or other.startswith(path + "/") or path.startswith(other + "/"):
                raise ReleaseError("shared paths %r and %r overlap: list each shared folder or file once, none inside another" % (path, other))
    return checked_dirs, checked_files


def check_git_source(url: str, ref: str) -> None:
    try:
        has_password = urlsplit(url).password is not None
    except ValueError:
        has_password = False
    if has_password:
        # The mirror's git config would keep it in plain text, and the task's arguments would show it.
        raise ReleaseError("git_repo holds a password; use an SSH deploy key or a git credential helper on the host instead")
    if ref.startswith("-"):
        raise ReleaseError("git_ref %r cannot start with '-'" % ref)


def normalise_checksum(checksum: str) -> str:
    value = checksum.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    if not HEX_SHA256_RE.match(value):
        raise ReleaseError("artifact_checksum must be a SHA-256 in hex (64 characters, optionally prefixed with 'sha256:'), got %r" % checksum)
    return value


# --- the audit log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    time: str
    action: str
    release: str
    user: str
    revision: str | None = None
    health: str | None = None
    schema_version: str | None = None
    previous: str | None = None
    message: str | None = None

    def to_line(self) -> str:
        record = {
            "time": self.time,
            "action": self.action,
            "release": self.release,
            "revision": self.revision,
            "user": self.user,
            "health": self.health,
            "schema_version": self.schema_version,
            "previous": self.previous,
            "message": self.message,
        }
        return json.dumps(record, sort_keys=False, ensure_ascii=False, separators=(", ", ": ")) + "\n"


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def parse_log(text: str) -> tuple[list[LogEntry], list[int]]:
    """The entries of ``releases.log`` and the numbers of lines that are not entries (a line cut short by a crash)."""
    entries: list[LogEntry] = []
    unreadable: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            unreadable.append(number)
            continue
        if not isinstance(record, dict) or record.get("action") not in ACTIONS or not isinstance(record.get("release"), str):
            unreadable.append(number)
            continue
        entries.append(
            LogEntry(
                time=str(record.get("time", "")),
                action=record["action"],
                release=record["release"],
                user=str(record.get("user", "")),
                revision=_optional_text(record.get("revision")),
                health=_optional_text(record.get("health")),
                schema_version=_optional_text(record.get("schema_version")),
                previous=_optional_text(record.get("previous")),
                message=_optional_text(record.get("message")),
            )
        )
    return entries, unreadable


# --- what the deploy root holds ----------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseDir:
    """A folder under ``releases/`` and the markers it holds."""

    name: str
    unfinished: bool = False
    bad_marker: bool = False


@dataclass(frozen=True)
class LockRecord:
    """The holder of the deploy lock, as written in ``.deploy.lock/owner.json``."""

    id: str
    user: str
    host: str
    since: str
    release: str | None = None
    message: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {"id": self.id, "user": self.user, "host": self.host, "since": self.since, "release": self.release, "message": self.message},
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> LockRecord | None:
        try:
            record = json.loads(text)
        except ValueError:
            return None
        if not isinstance(record, dict) or not record.get("id"):
            return None
        return cls(
            id=str(record["id"]),
            user=str(record.get("user") or "unknown"),
            host=str(record.get("host") or "unknown"),
            since=str(record.get("since") or ""),
            release=_optional_text(record.get("release")),
            message=_optional_text(record.get("message")),
        )


@dataclass(frozen=True)
class LockState:
    """A lock folder that exists. ``record`` is None when its owner file is missing or unreadable
    (a holder killed between ``mkdir`` and writing it); ``fallback_since`` is then the folder's time."""

    record: LockRecord | None
    fallback_since: datetime

    def since(self) -> datetime:
        parsed = parse_iso_utc(self.record.since) if self.record else None
        return parsed or self.fallback_since

    def age_seconds(self, now: datetime) -> int:
        return max(0, int((now - self.since()).total_seconds()))

    def is_stale(self, now: datetime, stale_after: int) -> bool:
        return self.age_seconds(now) > stale_after

    def held_by(self, lock_id: str | None) -> bool:
        return lock_id is not None and self.record is not None and self.record.id == lock_id

    def describe(self, now: datetime) -> str:
        """``alice (from laptop) since 2026-11-27T22:15:00Z (125 s ago) for release X: "hotfix"``."""
        since = "since %s (%d s ago)" % (iso_utc(self.since()), self.age_seconds(now))
        if self.record is None:
            return "an unknown holder (no readable %s in the lock folder) %s" % (LOCK_OWNER_FILE, since)
        text = "%s (from %s) %s" % (self.record.user, self.record.host, since)
        if self.record.release:
            text += " for release %s" % self.record.release
        if self.record.message:
            text += ": %s" % json.dumps(self.record.message, ensure_ascii=False)
        return text

    def as_result(self, now: datetime, lock_id: str | None, stale_after: int) -> dict:
        record = self.record
        return dict(
            held=True,
            ours=self.held_by(lock_id),
            id=record.id if record else None,
            user=record.user if record else None,
            host=record.host if record else None,
            since=iso_utc(self.since()),
            age_seconds=self.age_seconds(now),
            stale=self.is_stale(now, stale_after),
            release=record.release if record else None,
            message=record.message if record else None,
        )


def free_lock_result() -> dict:
    return dict(held=False, ours=False, id=None, user=None, host=None, since=None, age_seconds=None, stale=False, release=None, message=None)


@dataclass
class Snapshot:
    """The deploy root as read by ``_release_fs.scan``."""

    root: str
    dirs: dict[str, ReleaseDir] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
    current: str | None = None
    current_target: str | None = None
    current_is_dir: bool = False
    log: list[LogEntry] = field(default_factory=list)
    unreadable_log_lines: list[int] = field(default_factory=list)
    lock: LockState | None = None


@dataclass(frozen=True)
class Release:
    name: str
    status: str
    revision: str | None
    schema_version: str | None
    deployed_at: str | None

    def as_result(self, current: str | None) -> dict:
        return dict(
            name=self.name,
            status=self.status,
            current=self.name == current,
            revision=self.revision,
            schema_version=self.schema_version,
            deployed_at=self.deployed_at,
        )


def _order_key(name: str, log_position: dict[str, int]) -> tuple[int, int, str]:
    # Releases the log knows come after those it does not (older tools, a log that was lost).
    if name in log_position:
        return (1, log_position[name], name)
    return (0, 0, name)


def inventory(snapshot: Snapshot) -> list[Release]:
    """The releases on disk, oldest first, with the status and history the markers and the log give them."""
    last_deploy: dict[str, int] = {}
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(snapshot.log):
        first_seen.setdefault(entry.release, index)
        if entry.action == "deploy":
            last_deploy[entry.release] = index
    position = {**first_seen, **last_deploy}
    releases = []
    for name in sorted(snapshot.dirs, key=lambda name: _order_key(name, position)):
        directory = snapshot.dirs[name]
        # Only the history since the release's latest deploy counts: a name can be deployed again after it was removed.
        history = [entry for entry in snapshot.log[last_deploy.get(name, 0) :] if entry.release == name]
        bad = directory.bad_marker or any(entry.action == "bad" for entry in history)
        status = BAD if bad else UNFINISHED if directory.unfinished else GOOD
        revision = next((entry.revision for entry in history if entry.revision), None)
        schema = next((entry.schema_version for entry in reversed(history) if entry.schema_version), None)
        deployed = next((entry.time for entry in history if entry.action == "deploy"), None)
        releases.append(Release(name=name, status=status, revision=revision, schema_version=schema, deployed_at=deployed))
    return releases


def previous_good(releases: list[Release], current: str | None) -> str | None:
    """The newest good release deployed before ``current``: where a rollback goes by default."""
    before = _good_before(releases, current)
    return before[0] if before else None


def _good_before(releases: list[Release], current: str | None) -> list[str]:
    names = [release.name for release in releases]
    if current not in names:
        return []
    return [release.name for release in reversed(releases[: names.index(current)]) if release.status == GOOD]


def _describe_releases(releases: list[Release], current: str | None) -> str:
    if not releases:
        return "none"
    return ", ".join("%s (%s%s)" % (release.name, release.status, ", current" if release.name == current else "") for release in releases)


def _schema_key(version: str) -> list[tuple[int, int, str]]:
    return [(0, int(chunk), "") if chunk.isdigit() else (1, 0, chunk) for chunk in re.split(r"(\d+)", version) if chunk]


def _first_recorded(log: list[LogEntry]) -> dict[str, int]:
    """Each schema version the log holds, with the position of the first line that recorded it."""
    first: dict[str, int] = {}
    for index, entry in enumerate(log):
        if entry.schema_version:
            first.setdefault(entry.schema_version, index)
    return first


def newest_logged_schema(log: list[LogEntry]) -> str | None:
    """The schema version the log recorded first most recently: where the database is, as migrations only go forward."""
    first = _first_recorded(log)
    return max(first, key=first.__getitem__) if first else None


def schema_is_older(target: str, database: str, log: list[LogEntry]) -> bool:
    """Is schema version ``target`` older than ``database``?

    When the log recorded both, the one recorded first is older (this works for opaque migration ids such as
    alembic's). Otherwise versions compare in natural order: runs of digits as numbers (9 < 10, 0009 < 0010).
    """
    if target == database:
        return False
    first = _first_recorded(log)
    if target in first and database in first:
        return first[target] < first[database]
    return _schema_key(target) < _schema_key(database)


# --- plans -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a release comes from: a tarball or folder already on the host, or a git repository."""

    kind: str  # tarball | folder | git
    location: str
    checksum: str | None = None
    git_ref: str | None = None
    expected_revision: str | None = None

    def describe(self) -> str:
        if self.kind == "git":
            return "%s at %s" % (self.location, self.git_ref)
        return "%s %s" % (self.kind, self.location)


@dataclass(frozen=True)
class Step:
    """One change to the deploy root, carried out by ``_release_fs.apply``.

    ``kind`` is one of ``clean_leftover``, ``remove_release``, ``create_release``, ``switch``,
    ``remove_unfinished_marker``, ``mark_bad``, ``log``.
    """

    kind: str
    release: str
    detail: str = ""
    source: Source | None = None
    shared_dirs: tuple[str, ...] = ()
    shared_files: tuple[str, ...] = ()
    entry: LogEntry | None = None

    def describe(self) -> str:
        if self.kind == "log" and self.entry is not None:
            return "log %s of %s" % (self.entry.action, self.release)
        texts = {
            "clean_leftover": "remove the leftover %s in releases/ (a run killed while creating or removing a release)",
            "remove_release": "remove release %s",
            "create_release": "create release %s",
            "switch": "switch current to release %s",
            "remove_unfinished_marker": "remove the " + UNFINISHED_MARKER + " marker of release %s",
            "mark_bad": "mark release %s bad (" + BAD_MARKER + " marker)",
        }
        text = texts[self.kind] % self.release
        return text + (" " + self.detail if self.detail else "")


@dataclass
class Plan:
    release: str | None
    previous: str | None
    current_after: str | None
    steps: list[Step] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.steps)


@dataclass(frozen=True)
class Context:
    """What every planner needs besides the snapshot: who, when, and the task's free-text fields."""

    now: datetime
    user: str
    health: str | None = None
    schema_version: str | None = None

    def entry(self, action: str, release: Release | str, **fields) -> LogEntry:
        if isinstance(release, Release):
            fields.setdefault("revision", release.revision)
            fields.setdefault("schema_version", release.schema_version)
            name = release.name
        else:
            name = release
        return LogEntry(time=iso_utc(self.now), action=action, release=name, user=self.user, **fields)


def _new_plan(snapshot: Snapshot, releases: list[Release], release: str | None) -> Plan:
    return Plan(
        release=release,
        previous=snapshot.current,
        current_after=snapshot.current,
        statuses={item.name: item.status for item in releases},
    )


def _find(releases: list[Release], name: str, root: str) -> Release:
    for release in releases:
        if release.name == name:
            return release
    raise ReleaseError(
        "release %s does not exist in %s/%s (releases there: %s)" % (name, root, RELEASES_DIR, ", ".join(item.name for item in releases) or "none")
    )


def _remove(plan: Plan, context: Context, release: Release, reason: str) -> None:
    plan.steps.append(Step("remove_release", release.name, "(%s)" % reason))
    plan.steps.append(Step("log", release.name, entry=context.entry("cleaned", release, message=reason)))
    plan.removed.append(release.name)
    plan.statuses.pop(release.name, None)


def plan_present(
    snapshot: Snapshot, context: Context, name: str, source: Source, shared_dirs: list[str], shared_files: list[str], revision: str | None
) -> Plan:
    """Create release ``name`` (unfinished until activated); clean what killed runs left behind."""
    releases = inventory(snapshot)
    plan = _new_plan(snapshot, releases, name)
    for leftover in snapshot.leftovers:
        plan.steps.append(Step("clean_leftover", leftover))
    existing = next((release for release in releases if release.name == name), None)
    if existing is not None and existing.status == BAD:
        raise ReleaseError("release %s is marked bad; deploy the code again under a new release name" % name)
    if existing is not None and (existing.status == GOOD or name == snapshot.current):
        # Prepared before (and activated, or switched to by a run killed before it finished): nothing to
        # prepare, but a killed run's leftovers still go. State activated finishes a current unfinished one.
        return plan
    for release in releases:
        if release.status == UNFINISHED and release.name != snapshot.current and release.name != name:
            _remove(plan, context, release, "unfinished, left by an earlier run")
    if existing is not None:
        plan.steps.append(Step("remove_release", name, "(unfinished, prepared again)"))
        plan.statuses.pop(name)
    plan.steps.append(
        Step(
            "create_release",
            name,
            "from %s" % source.describe(),
            source=source,
            shared_dirs=tuple(shared_dirs),
            shared_files=tuple(shared_files),
            entry=context.entry("deploy", name, revision=revision, schema_version=context.schema_version),
        )
    )
    plan.statuses[name] = UNFINISHED
    return plan


def plan_activated(snapshot: Snapshot, context: Context, name: str, keep: int | None = None) -> Plan:
    """Switch ``current`` to release ``name`` and finish it; then, with ``keep``, remove releases beyond it."""
    releases = inventory(snapshot)
    release = _find(releases, name, snapshot.root)
    if release.status == BAD:
        raise ReleaseError("release %s is marked bad and cannot be activated; deploy a new release" % name)
    plan = _new_plan(snapshot, releases, name)
    if not (snapshot.current == name and release.status == GOOD):
        _switch_and_finish(plan, snapshot, context, release)
    if keep is not None:
        # The release switched from stays too: a failed check after the switch goes back to it.
        for old in releases_to_remove(releases, name, keep, (snapshot.current,) if snapshot.current else ()):
            _remove(plan, context, old, "keep_releases=%d" % keep)
    return plan


def _switch_and_finish(plan: Plan, snapshot: Snapshot, context: Context, release: Release) -> None:
    name = release.name
    if snapshot.current_is_dir:
        raise ReleaseError("%s/%s is a folder, not a symbolic link; move it away so current can be switched atomically" % (snapshot.root, CURRENT_LINK))
    if snapshot.current != name:
        plan.steps.append(Step("switch", name, "(was %s)" % (snapshot.current or snapshot.current_target or "nothing")))
    if release.status == UNFINISHED:
        plan.steps.append(Step("remove_unfinished_marker", name))
    schema = context.schema_version or release.schema_version
    entry = context.entry("activate", release, previous=snapshot.current, health=context.health, schema_version=schema)
    plan.steps.append(Step("log", name, entry=entry))
    plan.current_after = name
    plan.statuses[name] = GOOD


def plan_bad(snapshot: Snapshot, context: Context, name: str) -> Plan:
    """Mark release ``name`` bad: it stays on disk for inspection and no rollback picks it again."""
    releases = inventory(snapshot)
    release = _find(releases, name, snapshot.root)
    plan = _new_plan(snapshot, releases, name)
    if snapshot.dirs[name].bad_marker:
        return plan
    schema = context.schema_version or release.schema_version
    entry = context.entry("bad", release, health=context.health, schema_version=schema)
    plan.steps.append(Step("mark_bad", name, entry=entry))
    if release.status != BAD:
        plan.steps.append(Step("log", name, entry=entry))
    if name == snapshot.current:
        plan.warnings.append("release %s is current and now marked bad: roll back (state=rolled_back) to leave it" % name)
    plan.statuses[name] = BAD
    return plan


def choose_rollback_target(releases: list[Release], current: str | None, rollback_to: str | None, steps: int, root: str) -> str:
    """The release a rollback switches to: a named good release, or the ``steps``-th good release before current."""
    if rollback_to is not None:
        target = _find(releases, rollback_to, root)
        if target.status == BAD:
            raise ReleaseError(
                "release %s is marked bad; a rollback never goes back to a bad release (releases: %s)" % (rollback_to, _describe_releases(releases, current))
            )
        if target.status == UNFINISHED:
            raise ReleaseError(
                "release %s was never activated (it still has its %s marker); roll back to a release that served before" % (rollback_to, UNFINISHED_MARKER)
            )
        return target.name
    if current is None or current not in {release.name for release in releases}:
        raise ReleaseError("current does not point to a release in %s/%s, so there is no previous release; name one with rollback_to" % (root, RELEASES_DIR))
    if steps < 1:
        raise ReleaseError("rollback_steps must be 1 or more, got %d" % steps)
    candidates = _good_before(releases, current)
    if len(candidates) < steps:
        if not candidates:
            what = "no good release is left before %s" % current
        else:
            what = "only %d good release%s before %s" % (len(candidates), "" if len(candidates) == 1 else "s", current)
        raise ReleaseError("cannot roll back %d step%s: %s (releases: %s)" % (steps, "" if steps == 1 else "s", what, _describe_releases(releases, current)))
    return candidates[steps - 1]


def plan_rolled_back(
    snapshot: Snapshot,
    context: Context,
    rollback_to: str | None,
    steps: int,
    mark_bad: bool,
    database_schema_version: str | None,
    allow_schema_mismatch: bool,
) -> Plan:
    """Switch back to an earlier good release and mark the one left bad."""
    releases = inventory(snapshot)
    current = snapshot.current
    target_name = choose_rollback_target(releases, current, rollback_to, steps, snapshot.root)
    target = _find(releases, target_name, snapshot.root)
    plan = _new_plan(snapshot, releases, target_name)
    if target_name == current:
        return plan
    if snapshot.current_is_dir:
        raise ReleaseError("%s/%s is a folder, not a symbolic link; move it away so current can be switched atomically" % (snapshot.root, CURRENT_LINK))
    database_schema_version = database_schema_version or newest_logged_schema(snapshot.log)
    if database_schema_version:
        problem = None
        if target.schema_version is None:
            problem = "release %s has no recorded schema version and the database is at %s" % (target_name, database_schema_version)
        elif schema_is_older(target.schema_version, database_schema_version, snapshot.log):
            problem = "release %s expects database schema %s, older than the database's %s" % (target_name, target.schema_version, database_schema_version)
        if problem and not allow_schema_mismatch:
            raise ReleaseError(problem + "; migrate the database down first, or pass allow_schema_mismatch=true if that code runs on the newer schema")
        if problem:
            plan.warnings.append(problem + " (allowed by allow_schema_mismatch)")
    plan.steps.append(Step("switch", target_name, "(was %s)" % (current or snapshot.current_target or "nothing")))
    plan.steps.append(Step("log", target_name, entry=context.entry("rollback", target, previous=current, health=context.health)))
    plan.current_after = target_name
    leaving = next((release for release in releases if release.name == current), None)
    if leaving is not None and mark_bad and leaving.status != BAD:
        entry = context.entry("bad", leaving, health=context.health, message="rolled back to %s" % target_name)
        plan.steps.append(Step("mark_bad", leaving.name, "(rolled back)", entry=entry))
        plan.steps.append(Step("log", leaving.name, entry=entry))
        plan.statuses[leaving.name] = BAD
    return plan


def releases_to_remove(releases: list[Release], current: str | None, keep: int, protect: tuple[str, ...] = ()) -> list[Release]:
    """Releases beyond the newest ``keep``, oldest first; never current, the previous good release, nor ``protect``."""
    if keep < 1:
        raise ReleaseError("keep_releases must be 1 or more, got %d" % keep)
    kept = {release.name for release in releases[-keep:]} | {current, previous_good(releases, current), *protect}
    return [release for release in releases if release.name not in kept]


def plan_cleaned(snapshot: Snapshot, context: Context, keep: int, release: str | None) -> Plan:
    """Remove releases beyond ``keep``; ``release`` (the one this run deployed) is kept like current."""
    releases = inventory(snapshot)
    plan = _new_plan(snapshot, releases, release)
    for old in releases_to_remove(releases, snapshot.current, keep, (release,) if release else ()):
        _remove(plan, context, old, "keep_releases=%d" % keep)
    return plan


def releases_after(plan: Plan, snapshot: Snapshot) -> list[Release]:
    """The releases as the plan leaves them, oldest first (what check mode reports)."""
    known = {release.name: release for release in inventory(snapshot)}
    after = []
    for name, status in plan.statuses.items():
        release = known.get(name)
        after.append(
            Release(
                name=name,
                status=status,
                revision=release.revision if release else None,
                schema_version=release.schema_version if release else None,
                deployed_at=release.deployed_at if release else None,
            )
        )
    return after


def diff_view(current: str | None, releases: list[Release]) -> dict:
    return dict(current=current, releases=["%s (%s)" % (release.name, release.status) for release in releases])


# --- the deploy lock ---------------------------------------------------------------------------

ACQUIRE = "acquire"
HELD = "held"
TAKE_OVER = "take_over"


def _lock_refusal(lock: LockState, root: str, now: datetime, stale_after: int, hint: str) -> ReleaseError:
    return ReleaseError(
        "another deploy holds the lock %s/%s: %s. Wait for it to finish; %s" % (root, LOCK_DIR, lock.describe(now), hint)
        + " (it counts as stale after %d s, lock_stale_after)" % stale_after
    )


def lock_decision(
    lock: LockState | None, lock_id: str | None, now: datetime, stale_after: int, force: bool, take_over_stale: bool, root: str
) -> tuple[str, str | None]:
    """What a task that needs the lock does: ``acquire`` it, find it ``held`` by ``lock_id``, or ``take_over`` (with a warning).

    A lock held by someone else is refused unless it is stale (when ``take_over_stale``) or ``force`` is set.
    """
    if lock is None:
        return ACQUIRE, None
    if lock.held_by(lock_id):
        return HELD, None
    if force:
        return TAKE_OVER, "force_unlock: took over the deploy lock from %s" % lock.describe(now)
    if take_over_stale and lock.is_stale(now, stale_after):
        return TAKE_OVER, "took over a stale deploy lock (older than lock_stale_after=%d s) from %s" % (stale_after, lock.describe(now))
    if take_over_stale:
        hint = "a later state=locked takes it over once it is stale, or force_unlock=true takes it now if you are sure no deploy runs"
    else:
        hint = "if that deploy died, take the lock over with state=locked (force_unlock=true if it is not stale yet)"
    raise _lock_refusal(lock, root, now, stale_after, hint)


def unlock_decision(lock: LockState | None, lock_id: str | None, now: datetime, stale_after: int, force: bool, root: str) -> tuple[bool, str | None]:
    """Whether state=unlocked removes the lock, and the warning it gives. Only the holder removes it, unless ``force``."""
    if lock is None:
        return False, None
    if lock.held_by(lock_id):
        return True, None
    if force:
        return True, "force_unlock: removed the deploy lock of %s" % lock.describe(now)
    raise _lock_refusal(lock, root, now, stale_after, "only its holder (lock_id) releases it; force_unlock=true removes it anyway")
