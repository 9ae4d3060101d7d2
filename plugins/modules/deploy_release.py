#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_release
short_description: Release folders, an atomic current switch, rollback to the last good release, a deploy lock and an audit log
version_added: 0.1.0
description:
  - Manages a deploy root on the target host laid out as C(<root>/releases/<name>) (one folder per release), C(<root>/shared/)
    (files and folders every release shares, such as C(.env) and uploads) and C(<root>/current), a relative symbolic link to the live release.
  - Each V(state) is one step of a deploy or a rollback. The C(launchready.core.deploy) role makes these calls in order, health-checks a release
    before and after the switch, and switches back by itself when a check fails.
  - V(state=activated) can also start the release on a side port (O(candidate_command)), check it there (O(health_url)), reload the app
    server (O(reload_command)), remove the oldest releases (O(keep_releases)) and release the lock (O(release_lock)), all in the one task.
    Each task costs a new Python process on the host (about a third of a second), and a deploy has to be quick.
  - Every change is appended to the audit log C(<root>/releases.log), one JSON object per line with the keys C(time), C(action)
    (V(deploy), V(activate), V(rollback), V(failed), V(bad) or V(cleaned)), C(release), C(revision), C(user), C(health), C(schema_version),
    C(previous) and C(message).
  - Release order comes from the audit log (when each release was deployed) and, for releases the log does not know, from their names.
    It never comes from file times, so a write into an old release folder does not change which release a rollback picks.
  - A release stays C(unfinished) (a C(DEPLOY_UNFINISHED) file inside it) from V(state=present) until V(state=activated).
    A release marked bad gets a C(BAD_RELEASE) file and a V(bad) log line; it is kept for inspection and no rollback picks it again.
  - Every state that changes the deploy root needs the deploy lock C(<root>/.deploy.lock), a folder created atomically with C(mkdir) that holds
    C(owner.json) (id, user, host, since, release, message). With O(lock_id) the task uses the lock its run took with V(state=locked);
    without it, the task takes the lock for its own duration. A lock held by anyone else fails the task with the holder's name and since when,
    unless it is stale (see O(lock_stale_after)) or O(force_unlock=true).
  - Inputs are checked before anything is written; a failed check changes nothing.
author:
  - launchready.core maintainers (@launchready)
attributes:
  action:
    support: full
    description: With O(artifact_on_controller=true), the action copies O(artifact) from the control node to the host before the module runs.
  check_mode:
    support: full
    description: Reads the deploy root, checks the inputs (the artifact's checksum and contents included) and returns the plan without writing.
  diff_mode:
    support: full
    description: The C(current) release and the list of releases with their status, before and after.
  platform:
    support: full
    platforms: posix
    description: Needs symbolic links and atomic C(rename) and C(mkdir), as on Linux, BSD and macOS.
options:
  root:
    description:
      - The deploy root, such as C(/srv/members). Created by V(state=present) and V(state=locked) when missing; V(state=locked) also creates
        its C(releases/) and C(shared/) folders, so that the shared files (such as C(.env)) can be written before the release is prepared.
    type: path
    required: true
  state:
    description:
      - V(present) prepares release O(release) from O(artifact) or O(git_repo), links O(shared_paths) and O(shared_files) into it and leaves it
        unfinished. It first removes unfinished releases that earlier runs left (killed half-way), unless they are marked bad.
        A release that already exists and is finished (or current) is left as it is; an unfinished one of the same name is prepared again.
      - V(activated) switches C(current) to O(release) atomically (a new symbolic link renamed over the old one), removes its unfinished marker
        and logs V(activate). The result's RV(previous) is the release C(current) pointed to before.
      - V(rolled_back) switches C(current) back to the newest good release deployed before the current one, to O(rollback_to), or
        O(rollback_steps) good releases back, and marks the release it leaves bad (see O(mark_bad)). It refuses when no good release is left,
        when the named release is unknown, unfinished or bad, and when the target's schema version is older than O(database_schema_version).
      - V(bad) marks O(release) bad, for a release whose health check failed before the switch.
      - V(cleaned) removes the oldest releases beyond O(keep_releases). The current release, the previous good release (the default rollback
        target) and O(release), when given, are always kept.
      - V(locked) takes the deploy lock for O(lock_id). A stale lock (older than O(lock_stale_after)) is taken over with a warning.
      - V(unlocked) releases the deploy lock, only when O(lock_id) holds it unless O(force_unlock=true).
    type: str
    choices: [present, activated, rolled_back, bad, cleaned, locked, unlocked]
    default: present
  release:
    description:
      - The release name, also its folder name under C(releases/). Required with V(state=present), V(state=activated) and V(state=bad).
      - Compute it once per run and pass the same name to every host, as the UTC time of the run and the short revision,
        for example C(20261127T221500Z-3f2a9c1) from C({{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') ~ '-' ~ revision[:7] }}) in a C(run_once) task.
      - Letters, digits, C(.), C(_), C(+) and C(-), up to 128 characters, starting with a letter or digit.
      - With V(state=cleaned), this release is never removed. Other states ignore it.
    type: str
  revision:
    description:
      - The revision the release is built from (a commit id or version), recorded in the audit log with V(state=present).
      - With O(git_repo), the commit O(git_ref) resolves to must start with this value, so every host deploys the same commit even if the
        branch moves during the run. The log then records the full commit id.
    type: str
  artifact:
    description:
      - With V(state=present), a tar archive (C(.tar), C(.tar.gz), C(.tgz), C(.tar.bz2), C(.tar.xz)) or a folder already on the target host,
        whose contents become the release.
      - Archive members that would land outside the release (absolute paths, C(..), links pointing outside), special files and the marker names
        C(DEPLOY_UNFINISHED) and C(BAD_RELEASE) are refused before anything is written.
    type: path
  artifact_on_controller:
    description:
      - With V(state=present), O(artifact) is an archive on the control node. The action copies it to a temporary folder on the target host,
        prepares the release from that copy and removes the copy, so that the archive is never left on the host. A folder must be packed
        into an archive first.
      - Check mode copies it too (into the temporary folder only), so that its checksum and contents are checked as in a real run.
    type: bool
    default: false
  artifact_checksum:
    description:
      - The SHA-256 of the O(artifact) archive, in hex, optionally prefixed with C(sha256:). A different checksum fails the task before anything
        is written. Not for a folder.
    type: str
  git_repo:
    description:
      - With V(state=present), a git repository URL that the target host fetches with the C(git) command into the mirror C(<root>/repo.git).
        The release gets the files of O(git_ref), without the C(.git) folder (as C(git archive) exports them; submodules are not included).
      - A URL holding a password is refused, because the mirror's configuration would keep it in plain text. Use an SSH deploy key or a git
        credential helper on the host.
    type: str
  git_ref:
    description:
      - The branch, tag or commit of O(git_repo) to deploy. V(HEAD) is the repository's default branch.
    type: str
    default: HEAD
  shared_paths:
    description:
      - Folders, relative to the release, replaced by a relative symbolic link to the same path under C(<root>/shared/), which is created when
        missing. Whatever the release held at that path is removed first.
    type: list
    elements: str
    default: []
  shared_files:
    description:
      - Files, relative to the release, replaced by a relative symbolic link to the same path under C(<root>/shared/), such as C(.env).
        Each must already exist under C(shared/), or the task fails before writing (in check mode, a warning).
    type: list
    elements: str
    default: []
  keep_releases:
    description:
      - With V(state=cleaned), how many of the newest releases to keep (bad and unfinished ones count); 5 when not set.
        The current release and the previous good release are kept in any case.
      - With V(state=activated), when set, the releases beyond it are removed right after the switch, in the same task.
    type: int
  reload_command:
    description:
      - With V(state=activated) and V(state=rolled_back), a command (program and arguments, run without a shell) that makes the app server load
        the release C(current) now points to, such as a graceful reload. It runs right after the switch, under the deploy lock, only when
        C(current) moved. When it fails, the task fails with its output and logs a V(failed) line; C(current) stays switched.
    type: list
    elements: str
  rollback_to:
    description:
      - With V(state=rolled_back), the release to switch to instead of the previous good one. It must be a good release.
        When it is current already, nothing changes.
    type: str
  rollback_steps:
    description:
      - With V(state=rolled_back), how many good releases to go back (bad and unfinished releases are skipped). Without O(rollback_to), 1.
    type: int
  mark_bad:
    description:
      - With V(state=rolled_back), mark the release being left bad, so that no later rollback returns to it.
    type: bool
    default: true
  schema_version:
    description:
      - The database schema version the release expects, recorded in the audit log with V(state=present), V(state=activated) or V(state=bad),
        usually after the release's migrations ran.
    type: str
  database_schema_version:
    description:
      - With V(state=rolled_back), the database's current schema version. The rollback is refused when the target release's schema version is
        older, or unknown, unless O(allow_schema_mismatch=true).
      - When not set, the newest schema version the audit log records (migrations only go forward), if any.
      - A version recorded earlier in the audit log is older. Versions the log does not hold compare in natural order (runs of digits as numbers).
    type: str
  allow_schema_mismatch:
    description:
      - Roll back even when the target release expects an older database schema, with a warning. Only for code that runs on the newer schema.
    type: bool
    default: false
  health:
    description:
      - The result of the health check behind this task, as text (such as C(GET /healthz 503 after 10 s on 127.0.0.1:8001)), recorded in the
        C(health) field of the V(activate), V(rollback) and V(bad) log lines. With O(health_url), the check's own summary is recorded.
    type: str
  health_url:
    description:
      - With V(state=activated), a health check before the switch. This URL (typically the release started on a side port of the host) is
        asked from the host every 0.2 seconds until it answers one of O(health_status) with O(health_json), for up to O(health_timeout)
        seconds. Only when it does is C(current) switched. When it does not, the release is marked bad (a V(bad) log line with the last
        answer), C(current) does not move and the task fails with that answer.
      - Asked only when C(current) is to move; check mode does not ask it.
    type: str
  candidate_command:
    description:
      - With O(health_url), a command (program and arguments, run without a shell) that starts the release where O(health_url) asks it,
        such as the app server on a side port, run first. When it fails, the release is marked bad as for a failed health check.
      - Stopping it is left to O(reload_command) after the switch, and to the caller when the check fails.
    type: list
    elements: str
  health_status:
    description:
      - The statuses a healthy O(health_url) answers.
    type: list
    elements: int
    default: [200]
  health_json:
    description:
      - Top-level keys the JSON answer of O(health_url) must hold, with these values, such as V(status=ok) and V(release) set to the release's name.
    type: dict
    default: {}
  health_timeout:
    description:
      - Seconds to wait for O(health_url) to answer healthy.
    type: float
    default: 30
  deployer:
    description:
      - Who deploys, recorded in the log and the lock, such as C(alice) or C(ci). Defaults to the user the module runs as.
    type: str
  deployer_host:
    description:
      - Where the deploy runs from (the control node), recorded in the lock. Defaults to this host's name.
    type: str
  lock_id:
    description:
      - The identity of this run's hold on the deploy lock, a value unique to the run, the same on every host and in every task of the run
        (the deploy role makes a random one with C(run_once)). Required with V(state=locked).
      - When the lock is held with another id, every state that changes the deploy root fails.
    type: str
  release_lock:
    description:
      - Release the deploy lock that O(lock_id) holds when the task succeeds, as V(state=unlocked) would, in the same task. For the last
        task of a deploy that changes the deploy root (such as the switch).
    type: bool
    default: false
  lock_message:
    description:
      - Why the lock is held, shown to anyone the lock refuses, such as C(deploy of 3f2a9c1 by the launch playbook).
    type: str
  lock_stale_after:
    description:
      - Seconds after which a lock counts as stale (its holder presumably died); V(state=locked), and a task that takes the lock for its own
        duration, then take it over with a warning.
    type: int
    default: 900
  force_unlock:
    description:
      - With V(state=locked), and with a task that takes the lock for its own duration (such as a V(state=rolled_back) without O(lock_id)),
        take the lock over from anyone; with V(state=unlocked), remove it whoever holds it. Each warns with the holder's name.
    type: bool
    default: false
seealso:
  - module: launchready.core.env_file
  - name: Release layout, states, lock and log format
    description: The deploy documentation of this collection (docs/deploy.md).
    link: https://github.com/launchready/core/blob/main/docs/deploy.md
notes:
  - The module runs on the target host with Python 3.10 or newer and the standard library only; O(git_repo) needs the C(git) command there.
"""

EXAMPLES = r"""
- name: Name the release once for every host
  run_once: true
  ansible.builtin.set_fact:
    deploy_release_name: "{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}-{{ app_revision[:7] }}"
    deploy_lock_id: "{{ lookup('ansible.builtin.password', '/dev/null', chars=['hexdigits'], length=16) }}"

- name: Take the deploy lock
  launchready.core.deploy_release:
    root: /srv/members
    state: locked
    lock_id: "{{ deploy_lock_id }}"
    release: "{{ deploy_release_name }}"
    deployer: "{{ lookup('ansible.builtin.env', 'USER') }}"
    lock_message: launch playbook

- name: Prepare the release from an archive on the control node
  launchready.core.deploy_release:
    root: /srv/members
    release: "{{ deploy_release_name }}"
    revision: "{{ app_revision }}"
    artifact: dist/members-{{ app_revision }}.tar.gz
    artifact_on_controller: true
    artifact_checksum: "sha256:{{ app_artifact_sha256 }}"
    shared_paths: [log, storage/uploads]
    shared_files: [.env]
    lock_id: "{{ deploy_lock_id }}"

- name: Or prepare it from git, fetched on the target host
  launchready.core.deploy_release:
    root: /srv/members
    release: "{{ deploy_release_name }}"
    git_repo: git@github.com:example/members.git
    git_ref: main
    revision: "{{ app_revision }}"
    shared_files: [.env]
    lock_id: "{{ deploy_lock_id }}"

- name: Switch current to the release once it answers healthy on the side port where it was started
  launchready.core.deploy_release:
    root: /srv/members
    state: activated
    release: "{{ deploy_release_name }}"
    health_url: http://127.0.0.1:8001/healthz
    health_json: {status: ok}
    schema_version: "{{ migrations.schema_version }}"
    lock_id: "{{ deploy_lock_id }}"
  register: switched

- name: Switch back when the public URL fails after the switch
  launchready.core.deploy_release:
    root: /srv/members
    state: rolled_back
    rollback_to: "{{ switched.previous }}"
    health: "{{ public_check.summary }}"
    lock_id: "{{ deploy_lock_id }}"
  when: public_check is failed

- name: Keep the five newest releases
  launchready.core.deploy_release:
    root: /srv/members
    state: cleaned
    keep_releases: 5
    release: "{{ deploy_release_name }}"
    lock_id: "{{ deploy_lock_id }}"

- name: Or switch, reload gunicorn gracefully and keep the five newest releases in one task
  launchready.core.deploy_release:
    root: /srv/members
    state: activated
    release: "{{ deploy_release_name }}"
    reload_command: [systemctl, reload, members]
    keep_releases: 5
    lock_id: "{{ deploy_lock_id }}"

- name: Release the lock
  launchready.core.deploy_release:
    root: /srv/members
    state: unlocked
    lock_id: "{{ deploy_lock_id }}"

- name: Friday night - two releases back, refusing if the database is newer than that code expects
  launchready.core.deploy_release:
    root: /srv/members
    state: rolled_back
    rollback_steps: 2
    database_schema_version: "{{ db_schema.version }}"
    reload_command: [systemctl, reload, members]
"""

RETURN = r"""
release:
  description:
    - The release the task acted on; with V(state=rolled_back), the release switched to. Null for V(state=locked), V(state=unlocked) and
      V(state=cleaned) without O(release).
  returned: always
  type: str
  sample: 20261127T221500Z-3f2a9c1
revision:
  description: The revision of RV(release) as the audit log records it (with O(git_repo), the full commit id). Null when unknown.
  returned: always
  type: str
  sample: 3f2a9c1d0b6e4f9a8c7d5e3b1a2f4c6d8e0a9b7c
current:
  description: The release C(current) points to after the task, or null.
  returned: always
  type: str
  sample: 20261127T221500Z-3f2a9c1
health:
  description:
    - With O(health_url), what the health check before the switch saw, in one line (also when the task fails); otherwise null.
  returned: always
  type: str
  sample: GET http://127.0.0.1:8001/healthz 200 after 3 attempt(s)
previous:
  description:
    - The release C(current) pointed to before the task, or null. After a switch, the release to switch back to.
    - Also returned when the task fails after it read the deploy root (a failed O(reload_command) leaves C(current) switched).
  returned: always
  type: str
  sample: 20261120T090000Z-8e1d2b4
previous_good:
  description: The newest good release deployed before RV(current), where a default rollback would go now, or null.
  returned: always
  type: str
  sample: 20261120T090000Z-8e1d2b4
releases:
  description: The releases after the task, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The release name.
      type: str
      sample: 20261127T221500Z-3f2a9c1
    status:
      description: V(good), V(bad) (marked bad, never chosen by a rollback) or V(unfinished) (not activated yet, or left by a killed run).
      type: str
      sample: good
    current:
      description: Whether C(current) points to it.
      type: bool
      sample: true
    revision:
      description: The revision recorded when it was deployed, or null.
      type: str
      sample: 3f2a9c1
    schema_version:
      description: The latest schema version recorded for it, or null.
      type: str
      sample: "0042"
    deployed_at:
      description: When it was deployed (UTC, ISO 8601), from the audit log, or null.
      type: str
      sample: "2026-11-27T22:15:03Z"
reloaded:
  description: Whether O(reload_command) ran (it runs only when C(current) moved; never in check mode).
  returned: always
  type: bool
  sample: true
removed:
  description: The releases the task removed (or would remove, in check mode).
  returned: always
  type: list
  elements: str
  sample: [20261101T120000Z-0a1b2c3]
plan:
  description: What the task did (or would do, in check mode), one line per step.
  returned: always
  type: list
  elements: str
  sample: ["switch current to release 20261127T221500Z-3f2a9c1 (was 20261120T090000Z-8e1d2b4)", "log activate of 20261127T221500Z-3f2a9c1"]
lock:
  description: The deploy lock after the task.
  returned: always
  type: dict
  contains:
    held:
      description: Whether anyone holds the lock.
      type: bool
      sample: true
    ours:
      description: Whether O(lock_id) holds it.
      type: bool
      sample: true
    id:
      description: The holder's lock id, or null.
      type: str
      sample: 9f86d081884c7d65
    user:
      description: Who holds it, or null.
      type: str
      sample: alice
    host:
      description: Where the holder deploys from, or null.
      type: str
      sample: alice-laptop
    since:
      description: Since when it is held (UTC, ISO 8601), or null.
      type: str
      sample: "2026-11-27T22:15:00Z"
    age_seconds:
      description: How long it has been held, or null.
      type: int
      sample: 42
    stale:
      description: Whether it is older than O(lock_stale_after).
      type: bool
      sample: false
    release:
      description: The release the holder deploys, or null.
      type: str
      sample: 20261127T221500Z-3f2a9c1
    message:
      description: The holder's O(lock_message), or null.
      type: str
      sample: launch playbook
"""

import getpass
import os
import secrets
import socket
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.launchready.core.plugins.module_utils._release_fs import (
    LockBusy,
    acquire_lock,
    append_log,
    apply,
    artifact_kind,
    check_artifact,
    make_layout,
    missing_shared_files,
    read_lock,
    release_lock,
    scan,
    take_over_lock,
)
from ansible_collections.launchready.core.plugins.module_utils._release_health import Health, wait_healthy
from ansible_collections.launchready.core.plugins.module_utils._releases import (
    ACQUIRE,
    HELD,
    LOCK_DIR,
    Context,
    LockRecord,
    LogEntry,
    Plan,
    Release,
    ReleaseError,
    Snapshot,
    Source,
    check_git_source,
    check_release_name,
    check_shared_paths,
    diff_view,
    free_lock_result,
    inventory,
    iso_utc,
    lock_decision,
    normalise_checksum,
    plan_activated,
    plan_bad,
    plan_cleaned,
    plan_present,
    plan_rolled_back,
    previous_good,
    releases_after,
    unlock_decision,
)

CHANGING_STATES = ("present", "activated", "rolled_back", "bad", "cleaned")

DEFAULT_KEEP_RELEASES = 5


class Task:
    """One run of the module: its options, its clock and identity, and what it reports back."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.root = os.path.abspath(self.params["root"])
        self.now = datetime.now(timezone.utc)
        self.user = self.params["deployer"] or getpass.getuser()
        self.host = self.params["deployer_host"] or socket.gethostname()
        self.lock_id = self.params["lock_id"]
        self.stale_after = self.params["lock_stale_after"]
        self.git: str | None = None
        self.health: str | None = None
        self.previous: str | None = None

    def record(self, lock_id: str) -> LockRecord:
        return LockRecord(
            id=lock_id,
            user=self.user,
            host=self.host,
            since=iso_utc(self.now),
            release=self.params["release"],
            message=self.params["lock_message"],
        )

    def lock_result(self) -> dict:
        lock = read_lock(self.root)
        return lock.as_result(self.now, self.lock_id, self.stale_after) if lock else free_lock_result()

    def refuse_busy(self) -> None:
        lock = read_lock(self.root)
        holder = lock.describe(self.now) if lock else "another deploy"
        raise ReleaseError("another deploy took the lock %s/%s at the same moment: %s" % (self.root, LOCK_DIR, holder))

    # --- locked / unlocked ---

    def run_lock_state(self) -> dict:
        state = self.params["state"]
        force = self.params["force_unlock"]
        lock = read_lock(self.root)
        plan: list[str] = []
        if state == "locked":
            decision, warning = lock_decision(lock, self.lock_id, self.now, self.stale_after, force, True, self.root)
            if decision != HELD:
                plan.append("take the deploy lock %s/%s" % (self.root, LOCK_DIR) + (" over" if lock else ""))
            if warning:
                self.module.warn(warning)
            if plan and not self.module.check_mode:
                try:
                    if decision == ACQUIRE:
                        acquire_lock(self.root, self.record(self.lock_id))
                    elif lock is not None:
                        take_over_lock(self.root, self.record(self.lock_id), lock)
                except LockBusy:
                    self.refuse_busy()
                make_layout(self.root)
        else:
            remove, warning = unlock_decision(lock, self.lock_id, self.now, self.stale_after, force, self.root)
            if remove:
                plan.append("release the deploy lock %s/%s" % (self.root, LOCK_DIR))
            if warning:
                self.module.warn(warning)
            if remove and not self.module.check_mode:
                release_lock(self.root)
        snapshot = scan(self.root)
        releases = inventory(snapshot)
        result = self.report(snapshot.current, snapshot.current, releases, None)
        result.update(changed=bool(plan), plan=plan, removed=[], reloaded=False, health=None)
        if self.module.check_mode and plan:
            result["lock"] = self.planned_lock(state)
        return result

    def planned_lock(self, state: str) -> dict:
        if state == "unlocked":
            return free_lock_result()
        record = self.record(self.lock_id)
        return dict(
            held=True,
            ours=True,
            id=record.id,
            user=record.user,
            host=record.host,
            since=record.since,
            age_seconds=0,
            stale=False,
            release=record.release,
            message=record.message,
        )

    # --- the states that change releases ---

    def source(self) -> Source:
        params = self.params
        if params["git_repo"]:
            check_git_source(params["git_repo"], params["git_ref"])
            return Source(kind="git", location=params["git_repo"], git_ref=params["git_ref"], expected_revision=params["revision"])
        path = params["artifact"]
        kind = artifact_kind(path)
        checksum = normalise_checksum(params["artifact_checksum"]) if params["artifact_checksum"] else None
        if checksum and kind == "folder":
            raise ReleaseError("artifact_checksum is for an archive, but artifact %s is a folder" % path)
        return Source(kind=kind, location=path, checksum=checksum)

    def check_present_inputs(self) -> tuple[Source, list[str], list[str]]:
        params = self.params
        shared_dirs, shared_files = check_shared_paths(params["shared_paths"], params["shared_files"])
        source = self.source()
        if source.kind == "git":
            self.git = self.module.get_bin_path("git", required=True)
        else:
            check_artifact(source)
        missing = missing_shared_files(self.root, shared_files)
        if missing:
            text = "shared file%s %s missing under %s/shared; create %s before deploying (the secrets_env role writes .env there)" % (
                "s" if len(missing) > 1 else "",
                ", ".join(missing),
                self.root,
                "them" if len(missing) > 1 else "it",
            )
            if not self.module.check_mode:
                raise ReleaseError(text)
            self.module.warn(text + " (check mode: an earlier task may create it)")
        return source, shared_dirs, shared_files

    def plan(self, snapshot: Snapshot, inputs: tuple[Source, list[str], list[str]] | None, health: str | None = None) -> Plan:
        params = self.params
        state = params["state"]
        context = Context(now=self.now, user=self.user, health=health or params["health"], schema_version=params["schema_version"])
        if state == "present" and inputs is not None:
            source, shared_dirs, shared_files = inputs
            return plan_present(snapshot, context, params["release"], source, shared_dirs, shared_files, params["revision"])
        if state == "activated":
            return plan_activated(snapshot, context, params["release"], params["keep_releases"])
        if state == "bad":
            return plan_bad(snapshot, context, params["release"])
        if state == "rolled_back":
            steps = params["rollback_steps"] if params["rollback_steps"] is not None else 1
            return plan_rolled_back(
                snapshot, context, params["rollback_to"], steps, params["mark_bad"], params["database_schema_version"], params["allow_schema_mismatch"]
            )
        keep = params["keep_releases"] if params["keep_releases"] is not None else DEFAULT_KEEP_RELEASES
        return plan_cleaned(snapshot, context, keep, params["release"])

    def run_change_state(self) -> dict:
        params = self.params
        state = params["state"]
        for name in (params["release"], params["rollback_to"]):
            if name is not None:
                check_release_name(name)
        if state != "present" and not os.path.isdir(self.root):
            raise ReleaseError("deploy root %s does not exist: nothing was deployed there yet" % self.root)
        inputs = self.check_present_inputs() if state == "present" else None

        snapshot = scan(self.root)
        decision, warning = lock_decision(snapshot.lock, self.lock_id, self.now, self.stale_after, params["force_unlock"], True, self.root)
        if warning:
            self.module.warn(warning)
        if decision == ACQUIRE and self.lock_id:
            self.module.warn("lock_id %s does not hold the deploy lock (nobody does): this task takes it for its own duration only" % self.lock_id)
        temporary_lock = decision != HELD and not self.module.check_mode
        if temporary_lock:
            record = self.record("task-" + secrets.token_hex(8))
            try:
                if decision == ACQUIRE:
                    acquire_lock(self.root, record)
                elif snapshot.lock is not None:
                    take_over_lock(self.root, record, snapshot.lock)
            except LockBusy:
                self.refuse_busy()
            snapshot = scan(self.root)
        reload_command = params["reload_command"] if state in ("activated", "rolled_back") else None
        reloaded = False
        try:
            plan = self.plan(snapshot, inputs)
            self.previous = plan.previous
            before = inventory(snapshot)
            health_check = state == "activated" and bool(params["health_url"]) and plan.current_after != plan.previous
            if health_check and not self.module.check_mode:
                plan = self.check_health(snapshot, inputs)
            if plan.changed and not self.module.check_mode:
                apply(self.root, plan, self.git, self.failure_entry)
            moved = plan.current_after != plan.previous
            if reload_command and moved and plan.current_after is not None and not self.module.check_mode:
                self.reload(reload_command, plan.current_after)
                reloaded = True
        finally:
            if temporary_lock:
                release_lock(self.root)
        if params["release_lock"] and decision == HELD and not self.module.check_mode:
            release_lock(self.root)
        for warning in plan.warnings:
            self.module.warn(warning)
        if self.module.check_mode:
            after_current, after = plan.current_after, releases_after(plan, snapshot)
        else:
            rescanned = scan(self.root)
            after_current, after = rescanned.current, inventory(rescanned)
        result = self.report(after_current, plan.previous, after, plan.release)
        steps = [step.describe() for step in plan.steps]
        if health_check:
            steps.insert(0, "ask %s until it answers healthy, before the switch" % params["health_url"])
            if params["candidate_command"]:
                steps.insert(0, "start the release to check: %s" % " ".join(params["candidate_command"]))
        if reload_command and moved:
            steps.append("run the reload command: %s" % " ".join(reload_command))
        if params["release_lock"] and decision == HELD:
            steps.append("release the deploy lock %s/%s" % (self.root, LOCK_DIR))
        result.update(changed=plan.changed, plan=steps, removed=plan.removed, reloaded=reloaded, health=self.health)
        if self.module._diff:
            result["diff"] = dict(
                before=diff_view(snapshot.current, before), after=diff_view(after_current, after), before_header=self.root, after_header=self.root
            )
        return result

    def check_health(self, snapshot: Snapshot, inputs: tuple[Source, list[str], list[str]] | None) -> Plan:
        """The switch's plan once the release answers healthy; otherwise mark it bad and fail."""
        params = self.params
        health = self.start_candidate()
        if health is None:
            health = wait_healthy(params["health_url"], params["health_status"], params["health_json"], params["health_timeout"])
        self.health = health.text
        if health.healthy:
            return self.plan(snapshot, inputs, health.text)
        context = Context(now=self.now, user=self.user, health=health.text, schema_version=params["schema_version"])
        apply(self.root, plan_bad(snapshot, context, params["release"]))
        raise ReleaseError(
            "release %s failed its health check before the switch: %s. Nothing was switched; %s is marked bad"
            % (params["release"], health.text, params["release"])
        )

    def start_candidate(self) -> Health | None:
        """Run candidate_command; a failure to start is an unhealthy answer."""
        command = self.params["candidate_command"]
        if not command:
            return None
        rc, out, err = self.module.run_command(command)
        if rc == 0:
            return None
        return Health(False, "the candidate command %s failed (exit %d): %s" % (" ".join(command), rc, (err.strip() or out.strip())[-500:] or "no output"))

    def reload(self, command: list[str], current: str) -> None:
        rc, out, err = self.module.run_command(command)
        if rc != 0:
            output = (err.strip() or out.strip())[-1000:]
            message = "current now points to %s, but the reload command %s failed (exit %d): %s" % (current, " ".join(command), rc, output or "no output")
            append_log(self.root, self.failure_entry(current, message))
            raise ReleaseError(message)

    def failure_entry(self, release: str, message: str) -> LogEntry:
        context = Context(now=datetime.now(timezone.utc), user=self.user, schema_version=self.params["schema_version"])
        return context.entry("failed", release, revision=self.params["revision"], message=message)

    def report(self, current: str | None, previous: str | None, releases: list[Release], release: str | None) -> dict:
        revision = next((item.revision for item in releases if item.name == release), None)
        return dict(
            release=release,
            revision=revision,
            current=current,
            previous=previous,
            previous_good=previous_good(releases, current),
            releases=[item.as_result(current) for item in releases],
            lock=self.lock_result(),
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            state=dict(type="str", default="present", choices=["present", "activated", "rolled_back", "bad", "cleaned", "locked", "unlocked"]),
            release=dict(type="str"),
            revision=dict(type="str"),
            artifact=dict(type="path"),
            artifact_checksum=dict(type="str"),
            git_repo=dict(type="str"),
            git_ref=dict(type="str", default="HEAD"),
            shared_paths=dict(type="list", elements="str", default=[]),
            shared_files=dict(type="list", elements="str", default=[]),
            artifact_on_controller=dict(type="bool", default=False),
            keep_releases=dict(type="int"),
            reload_command=dict(type="list", elements="str"),
            rollback_to=dict(type="str"),
            rollback_steps=dict(type="int"),
            mark_bad=dict(type="bool", default=True),
            schema_version=dict(type="str"),
            database_schema_version=dict(type="str"),
            allow_schema_mismatch=dict(type="bool", default=False),
            health=dict(type="str"),
            health_url=dict(type="str"),
            health_status=dict(type="list", elements="int", default=[200]),
            health_json=dict(type="dict", default={}),
            health_timeout=dict(type="float", default=30.0),
            candidate_command=dict(type="list", elements="str"),
            release_lock=dict(type="bool", default=False),
            deployer=dict(type="str"),
            deployer_host=dict(type="str"),
            lock_id=dict(type="str"),
            lock_message=dict(type="str"),
            lock_stale_after=dict(type="int", default=900),
            force_unlock=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("artifact", "git_repo"), ("rollback_to", "rollback_steps"), ("health", "health_url")],
        required_if=[
            ("state", "present", ("release",)),
            ("state", "present", ("artifact", "git_repo"), True),
            ("state", "activated", ("release",)),
            ("state", "bad", ("release",)),
            ("state", "locked", ("lock_id",)),
            ("release_lock", True, ("lock_id",)),
        ],
        required_by={"artifact_checksum": "artifact", "candidate_command": "health_url"},
        supports_check_mode=True,
    )
    task = Task(module)
    try:
        if module.params["state"] == "unlocked" and not (task.lock_id or module.params["force_unlock"]):
            raise ReleaseError("state=unlocked needs the lock_id that holds the lock, or force_unlock=true")
        result = task.run_change_state() if module.params["state"] in CHANGING_STATES else task.run_lock_state()
    except (ReleaseError, OSError) as exc:
        message = str(exc) if isinstance(exc, ReleaseError) else "deploy root %s: %s" % (task.root, exc)
        try:
            lock, current = task.lock_result(), scan(task.root).current
        except OSError:
            lock, current = None, None
        module.fail_json(msg=message, lock=lock, current=current, previous=task.previous, health=task.health)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
