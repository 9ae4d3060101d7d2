# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release planning (_releases) and its filesystem primitives (_release_fs)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _release_fs as fs
from ansible_collections.launchready.core.plugins.module_utils._releases import (
    ACQUIRE,
    BAD,
    GOOD,
    HELD,
    TAKE_OVER,
    UNFINISHED,
    Context,
    LockRecord,
    LockState,
    LogEntry,
    ReleaseDir,
    ReleaseError,
    Snapshot,
    Source,
    check_git_source,
    check_release_name,
    check_shared_paths,
    choose_rollback_target,
    inventory,
    lock_decision,
    normalise_checksum,
    parse_log,
    plan_activated,
    plan_bad,
    plan_cleaned,
    plan_present,
    plan_rolled_back,
    previous_good,
    releases_to_remove,
    schema_is_older,
    unlock_decision,
)

NOW = datetime(2026, 11, 27, 22, 15, 0, tzinfo=timezone.utc)
CONTEXT = Context(now=NOW, user="alice")


def entry(action, release, **fields):
    return LogEntry(time="2026-11-01T00:00:00Z", action=action, release=release, user="alice", **fields)


def snapshot(dirs, log=(), current=None, bad=(), unfinished=(), leftovers=()):
    return Snapshot(
        root="/srv/app",
        dirs={name: ReleaseDir(name, unfinished=name in unfinished, bad_marker=name in bad) for name in dirs},
        log=list(log),
        current=current,
        leftovers=list(leftovers),
    )


def deployed(*names):
    log = []
    for name in names:
        log += [entry("deploy", name, revision=name[-3:]), entry("activate", name)]
    return log


# --- names, paths, checksums ---


@pytest.mark.parametrize("name", ["20261127T221500Z-3f2a9c1", "v1", "1.2.3+build.7", "a_b-c"])
def test_good_release_names(name):
    assert check_release_name(name) == name


@pytest.mark.parametrize("name", ["", "..", "../x", "a/b", ".hidden", "-rf", "a..b", "x" * 129, "é"])
def test_bad_release_names(name):
    with pytest.raises(ReleaseError, match="not usable as a folder name"):
        check_release_name(name)


def test_shared_paths_are_normalised_and_must_not_overlap():
    assert check_shared_paths(["./log/", "storage/uploads"], [".env"]) == (["log", "storage/uploads"], [".env"])
    for dirs, files in ((["storage"], ["storage/app.yml"]), (["log", "log"], []), (["a/b"], ["a"])):
        with pytest.raises(ReleaseError, match="overlap"):
            check_shared_paths(dirs, files)
    for bad in ("/etc", "../x", "a/../../b", ".", ""):
        with pytest.raises(ReleaseError, match="relative path inside the release"):
            check_shared_paths([bad], [])
    with pytest.raises(ReleaseError, match="marker files"):
        check_shared_paths([], ["BAD_RELEASE"])


def test_checksums():
    digest = "A" * 64
    assert normalise_checksum("sha256:" + digest) == "a" * 64
    assert normalise_checksum(" %s " % digest) == "a" * 64
    for bad in ("md5:abc", "a" * 63, "g" * 64):
        with pytest.raises(ReleaseError, match="SHA-256"):
            normalise_checksum(bad)


def test_git_sources():
    check_git_source("git@github.com:example/app.git", "main")
    check_git_source("https://token-less.example/app.git", "v1.2")
    with pytest.raises(ReleaseError, match="holds a password") as raised:
        check_git_source("https://ci:s3cr3t-value@example.com/app.git", "main")
    assert "s3cr3t-value" not in str(raised.value)
    with pytest.raises(ReleaseError, match="cannot start with '-'"):
        check_git_source("https://example.com/app.git", "--upload-pack=evil")


# --- the log ---


def test_a_log_line_round_trips_and_bad_lines_are_reported():
    line = entry("bad", "r1", revision="abc", health="GET /healthz 500", schema_version="12").to_line()
    assert line.endswith("\n") and line.count("\n") == 1
    text = line + "not json\n" + json.dumps({"action": "deploy"}) + "\n\n" + json.dumps({"action": "fly", "release": "x"}) + "\n" + '{"time": "2026'
    entries, unreadable = parse_log(text)
    assert entries == [entry("bad", "r1", revision="abc", health="GET /healthz 500", schema_version="12")]
    assert unreadable == [2, 3, 5, 6]


# --- order and status ---


def test_order_comes_from_the_log_not_from_names():
    # r2 was deployed before r1 (a clock that was wrong when r1 was named).
    found = inventory(snapshot(["r1", "r2"], deployed("r2", "r1")))
    assert [release.name for release in found] == ["r2", "r1"]


def test_releases_the_log_does_not_know_come_first_in_name_order():
    found = inventory(snapshot(["old-b", "old-a", "r9"], deployed("r9")))
    assert [release.name for release in found] == ["old-a", "old-b", "r9"]


def test_a_release_deployed_again_takes_its_new_place():
    log = [*deployed("r1", "r2"), entry("cleaned", "r1"), entry("deploy", "r1")]
    assert [release.name for release in inventory(snapshot(["r1", "r2"], log))] == ["r2", "r1"]


def test_status_and_history():
    log = [
        entry("deploy", "r1", revision="aaa", schema_version="1"),
        entry("activate", "r1", schema_version="2"),
        entry("deploy", "r2", revision="bbb"),
        entry("bad", "r2", health="500"),
        entry("deploy", "r3"),
    ]
    found = {release.name: release for release in inventory(snapshot(["r1", "r2", "r3", "r4"], log, bad=["r4"], unfinished=["r3", "r4"]))}
    assert (found["r1"].status, found["r1"].revision, found["r1"].schema_version) == (GOOD, "aaa", "2")
    assert found["r1"].deployed_at == "2026-11-01T00:00:00Z"
    assert found["r2"].status == BAD  # from the log alone
    assert found["r3"].status == UNFINISHED
    assert found["r4"].status == BAD  # the marker wins over unfinished
    assert found["r4"].deployed_at is None


def test_a_bad_line_before_a_new_deploy_of_the_same_name_no_longer_counts():
    log = [entry("deploy", "r1"), entry("bad", "r1"), entry("cleaned", "r1"), entry("deploy", "r1")]
    assert inventory(snapshot(["r1"], log))[0].status == GOOD


# --- rollback targets ---


def test_previous_good_skips_bad_and_unfinished():
    releases = inventory(snapshot(["r1", "r2", "r3", "r4"], deployed("r1", "r2", "r3", "r4"), bad=["r2"], unfinished=["r3"]))
    assert previous_good(releases, "r4") == "r1"
    assert previous_good(releases, "r1") is None
    assert previous_good(releases, None) is None


def test_choose_rollback_target():
    releases = inventory(snapshot(["r1", "r2", "r3", "r4", "r5"], deployed("r1", "r2", "r3", "r4", "r5"), bad=["r3"], unfinished=["r5"]))
    assert choose_rollback_target(releases, "r4", None, 1, "/srv") == "r2"
    assert choose_rollback_target(releases, "r4", None, 2, "/srv") == "r1"
    assert choose_rollback_target(releases, "r1", "r4", 1, "/srv") == "r4"
    with pytest.raises(ReleaseError, match=r"cannot roll back 3 steps: only 2 good releases before r4 \(releases: r1 \(good\), r2 \(good\), r3 \(bad\)"):
        choose_rollback_target(releases, "r4", None, 3, "/srv")
    with pytest.raises(ReleaseError, match="no good release is left before r1"):
        choose_rollback_target(releases, "r1", None, 1, "/srv")
    with pytest.raises(ReleaseError, match="r3 is marked bad"):
        choose_rollback_target(releases, "r4", "r3", 1, "/srv")
    with pytest.raises(ReleaseError, match="r5 was never activated"):
        choose_rollback_target(releases, "r4", "r5", 1, "/srv")
    with pytest.raises(ReleaseError, match=r"release r9 does not exist in /srv/releases \(releases there: r1, r2, r3, r4, r5\)"):
        choose_rollback_target(releases, "r4", "r9", 1, "/srv")
    with pytest.raises(ReleaseError, match="current does not point to a release"):
        choose_rollback_target(releases, None, None, 1, "/srv")
    with pytest.raises(ReleaseError, match="rollback_steps must be 1 or more"):
        choose_rollback_target(releases, "r4", None, 0, "/srv")


def test_plan_rolled_back_switches_logs_and_marks_the_release_left():
    state = snapshot(["r1", "r2"], deployed("r1", "r2"), current="r2")
    plan = plan_rolled_back(state, Context(now=NOW, user="bob", health="503"), None, 1, True, None, False)
    assert [(step.kind, step.release) for step in plan.steps] == [("switch", "r1"), ("log", "r1"), ("mark_bad", "r2"), ("log", "r2")]
    rollback, bad = plan.steps[1].entry, plan.steps[3].entry
    assert (rollback.action, rollback.previous, rollback.user, rollback.health, rollback.time) == ("rollback", "r2", "bob", "503", "2026-11-27T22:15:00Z")
    assert (bad.action, bad.revision, bad.message) == ("bad", "r2", "rolled back to r1")
    assert plan.current_after == "r1" and plan.previous == "r2" and plan.statuses == {"r1": GOOD, "r2": BAD}

    kept = plan_rolled_back(state, CONTEXT, None, 1, False, None, False)
    assert [step.kind for step in kept.steps] == ["switch", "log"] and kept.statuses["r2"] == GOOD


def test_schema_versions():
    assert schema_is_older("9", "10", []) is True
    assert schema_is_older("0010", "0009", []) is False
    assert schema_is_older("2026_01_a", "2026_02_a", []) is True
    assert schema_is_older("x", "x", []) is False
    # Opaque ids (alembic): the one the log recorded first is older, whatever their spelling.
    log = [entry("deploy", "r1", schema_version="f00d"), entry("deploy", "r2", schema_version="0abc")]
    assert schema_is_older("f00d", "0abc", log) is True
    assert schema_is_older("0abc", "f00d", log) is False


def test_schema_guard():
    log = [entry("deploy", "r1", schema_version="3"), entry("activate", "r1"), entry("deploy", "r2", schema_version="4"), entry("activate", "r2")]
    state = snapshot(["r1", "r2"], log, current="r2")
    with pytest.raises(ReleaseError, match="expects database schema 3, older than the database's 4"):
        plan_rolled_back(state, CONTEXT, None, 1, True, "4", False)
    allowed = plan_rolled_back(state, CONTEXT, None, 1, True, "4", True)
    assert allowed.current_after == "r1" and "allowed by allow_schema_mismatch" in allowed.warnings[0]
    assert plan_rolled_back(state, CONTEXT, None, 1, True, "3", False).warnings == []


# --- other plans ---


def test_plan_present_cleans_leftovers_and_unfinished_but_not_bad_or_current():
    state = snapshot(
        ["r1", "r2", "r3", "r4"], deployed("r1", "r2", "r3", "r4"), current="r4", unfinished=["r2", "r3", "r4"], bad=["r3"], leftovers=[".r5.partial-ab"]
    )
    source = Source(kind="tarball", location="/tmp/app.tgz")
    plan = plan_present(state, CONTEXT, "r5", source, ["log"], [".env"], "abc1234")
    assert [(step.kind, step.release) for step in plan.steps] == [
        ("clean_leftover", ".r5.partial-ab"),
        ("remove_release", "r2"),
        ("log", "r2"),
        ("create_release", "r5"),
    ]
    created = plan.steps[-1]
    assert created.shared_dirs == ("log",) and created.shared_files == (".env",)
    assert (created.entry.action, created.entry.revision) == ("deploy", "abc1234")
    assert plan.removed == ["r2"] and list(plan.statuses) == ["r1", "r3", "r4", "r5"]


def test_plan_activated():
    state = snapshot(["r1", "r2"], [*deployed("r1"), entry("deploy", "r2")], current="r1", unfinished=["r2"])
    plan = plan_activated(state, Context(now=NOW, user="a", schema_version="7"), "r2")
    assert [step.kind for step in plan.steps] == ["switch", "remove_unfinished_marker", "log"]
    assert plan.steps[-1].entry.previous == "r1" and plan.steps[-1].entry.schema_version == "7"
    # Killed between the switch and removing the marker: finishing it is all that is left.
    finishing = plan_activated(snapshot(["r2"], [entry("deploy", "r2")], current="r2", unfinished=["r2"]), CONTEXT, "r2")
    assert [step.kind for step in finishing.steps] == ["remove_unfinished_marker", "log"]


def test_plan_bad_only_writes_what_is_missing():
    state = snapshot(["r1"], [entry("deploy", "r1"), entry("bad", "r1")])
    plan = plan_bad(state, CONTEXT, "r1")
    assert [step.kind for step in plan.steps] == ["mark_bad"]  # the log already says so
    assert plan_bad(snapshot(["r1"], bad=["r1"]), CONTEXT, "r1").steps == []


def test_keep_releases_protects_current_previous_good_and_the_given_release():
    releases = inventory(snapshot(["r1", "r2", "r3", "r4", "r5", "r6"], deployed("r1", "r2", "r3", "r4", "r5", "r6"), bad=["r6"]))
    assert [release.name for release in releases_to_remove(releases, "r3", 2)] == ["r1", "r4"]
    assert [release.name for release in releases_to_remove(releases, "r3", 2, ("r1",))] == ["r4"]
    assert [release.name for release in releases_to_remove(releases, "r6", 1)] == ["r1", "r2", "r3", "r4"]
    with pytest.raises(ReleaseError, match="keep_releases must be 1 or more"):
        releases_to_remove(releases, "r6", 0)
    plan = plan_cleaned(snapshot(["r1", "r2", "r3"], deployed("r1", "r2", "r3"), current="r3"), CONTEXT, 1, None)
    assert plan.removed == ["r1"] and plan.steps[1].entry.message == "keep_releases=1"


# --- the lock ---


def lock(since=NOW - timedelta(seconds=30), lock_id="run-a"):
    record = LockRecord(id=lock_id, user="alice", host="laptop", since=since.strftime("%Y-%m-%dT%H:%M:%SZ"), release="r2", message="hotfix")
    return LockState(record=record, fallback_since=NOW)


def test_lock_decisions():
    assert lock_decision(None, "x", NOW, 900, False, False, "/srv") == (ACQUIRE, None)
    assert lock_decision(lock(), "run-a", NOW, 900, False, False, "/srv") == (HELD, None)
    with pytest.raises(ReleaseError) as refused:
        lock_decision(lock(), "run-b", NOW, 900, False, True, "/srv")
    assert 'lock /srv/.deploy.lock: alice (from laptop) since 2026-11-27T22:14:30Z (30 s ago) for release r2: "hotfix"' in str(refused.value)
    stale = lock(NOW - timedelta(seconds=901))
    decision, warning = lock_decision(stale, "run-b", NOW, 900, False, True, "/srv")
    assert decision == TAKE_OVER and "stale" in warning and "alice" in warning
    with pytest.raises(ReleaseError, match="take the lock over with state=locked"):
        lock_decision(stale, "run-b", NOW, 900, False, False, "/srv")  # only state=locked takes a lock over
    assert lock_decision(lock(), None, NOW, 900, True, True, "/srv")[0] == TAKE_OVER


def test_unlock_decisions():
    assert unlock_decision(None, "x", NOW, 900, False, "/srv") == (False, None)
    assert unlock_decision(lock(), "run-a", NOW, 900, False, "/srv") == (True, None)
    with pytest.raises(ReleaseError, match="only its holder"):
        unlock_decision(lock(), "run-b", NOW, 900, False, "/srv")
    assert "alice" in unlock_decision(lock(), None, NOW, 900, True, "/srv")[1]


def test_a_lock_without_a_readable_owner_uses_the_folder_time():
    state = LockState(record=None, fallback_since=NOW - timedelta(seconds=1000))
    assert state.is_stale(NOW, 900) and not state.held_by(None) and not state.held_by("x")
    assert state.describe(NOW).startswith("an unknown holder")
    assert LockRecord.from_json("{not json") is None and LockRecord.from_json("{}") is None


# --- filesystem primitives ---


def test_only_one_of_many_racing_deploys_gets_the_lock(tmp_path):
    winners, losers = [], []
    barrier = threading.Barrier(16)

    def contend(number):
        barrier.wait()
        try:
            fs.acquire_lock(str(tmp_path), LockRecord(id="run-%d" % number, user="u", host="h", since="2026-11-27T22:15:00Z"))
            winners.append(number)
        except fs.LockBusy:
            losers.append(number)

    threads = [threading.Thread(target=contend, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(losers) == 15
    assert fs.read_lock(str(tmp_path)).record.id == "run-%d" % winners[0]


def test_take_over_gives_back_a_lock_that_changed_hands(tmp_path):
    root = str(tmp_path)
    fs.acquire_lock(root, LockRecord(id="dead", user="u", host="h", since="2020-01-01T00:00:00Z"))
    seen = fs.read_lock(root)
    fs.release_lock(root)
    fs.acquire_lock(root, LockRecord(id="quicker", user="v", host="h", since="2026-11-27T22:15:00Z"))
    with pytest.raises(fs.LockBusy):
        fs.take_over_lock(root, LockRecord(id="late", user="w", host="h", since="2026-11-27T22:15:00Z"), seen)
    assert fs.read_lock(root).record.id == "quicker"
    assert sorted(os.listdir(root)) == [".deploy.lock"]


def test_switch_current_replaces_the_link_with_a_relative_one(tmp_path):
    for name in ("r1", "r2"):
        (tmp_path / "releases" / name).mkdir(parents=True)
    os.symlink(str(tmp_path / "releases" / "r1"), tmp_path / "current")  # an absolute link, as older tools write
    assert fs.scan(str(tmp_path)).current == "r1"
    fs.switch_current(str(tmp_path), "r2")
    assert os.readlink(tmp_path / "current") == "releases/r2"
    assert sorted(os.listdir(tmp_path)) == ["current", "releases"]
    assert fs.scan(str(tmp_path)).current == "r2"


def test_scan_reads_markers_leftovers_and_a_current_outside_the_releases(tmp_path):
    (tmp_path / "releases" / "r1").mkdir(parents=True)
    (tmp_path / "releases" / "r1" / "DEPLOY_UNFINISHED").write_text("")
    (tmp_path / "releases" / "r1" / "BAD_RELEASE").write_text("")
    (tmp_path / "releases" / ".r2.removing-0a1b").mkdir()
    (tmp_path / "releases" / ".cache").mkdir()
    (tmp_path / "releases" / "notes.txt").write_text("")
    (tmp_path / "elsewhere").mkdir()
    os.symlink("elsewhere", tmp_path / "current")
    state = fs.scan(str(tmp_path))
    assert state.dirs == {"r1": ReleaseDir("r1", unfinished=True, bad_marker=True)}
    assert state.leftovers == [".r2.removing-0a1b"]
    assert state.current is None and state.current_target == "elsewhere"


def test_append_log_starts_a_new_line_after_a_cut_one(tmp_path):
    (tmp_path / "releases.log").write_text('{"action": "dep')
    fs.append_log(str(tmp_path), entry("deploy", "r1"))
    fs.append_log(str(tmp_path), entry("activate", "r1"))
    lines = (tmp_path / "releases.log").read_text().splitlines()
    assert lines[0] == '{"action": "dep'
    assert [json.loads(line)["action"] for line in lines[1:]] == ["deploy", "activate"]


def tar_with(*members):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for member in members:
            archive.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    data.seek(0)
    return tarfile.open(fileobj=data)


def member(name, kind=tarfile.REGTYPE, linkname="", size=0):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, size
    return info


@pytest.mark.parametrize(
    "info",
    [
        member("./app/../../x"),
        member("/abs"),
        member("a/link", tarfile.SYMTYPE, "../../outside"),
        member("link", tarfile.SYMTYPE, "/etc/passwd"),
        member("hard", tarfile.LNKTYPE, "../x"),
        member("fifo", tarfile.FIFOTYPE),
        member("DEPLOY_UNFINISHED"),
    ],
)
def test_unsafe_members_are_refused(info):
    with pytest.raises(ReleaseError, match="does not unpack"):
        fs.check_member(info, "app.tar")


@pytest.mark.parametrize("filters", [True, False], ids=["extraction-filters", "python-without-filters"])
def test_safe_members_unpack_with_plain_permissions(tmp_path, monkeypatch, filters):
    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    setuid = member("bin/tool", size=3)
    setuid.mode = 0o4777
    archive = tar_with(member(".", tarfile.DIRTYPE), member("bin", tarfile.DIRTYPE), setuid, member("bin/t", tarfile.SYMTYPE, "tool"))
    assert fs.check_member(archive.getmember("."), "app.tar") is False
    fs._extract(archive, str(tmp_path), "app.tar")
    mode = os.stat(tmp_path / "bin" / "tool").st_mode & 0o7777
    assert mode & 0o7000 == 0 and mode & 0o022 == 0
    assert os.readlink(tmp_path / "bin" / "t") == "tool"


def test_readers_never_see_current_missing_while_it_switches(tmp_path):
    for name in ("r1", "r2"):
        (tmp_path / "releases" / name).mkdir(parents=True)
        (tmp_path / "releases" / name / "VERSION").write_text(name)
    fs.switch_current(str(tmp_path), "r1")
    seen, errors, done = set(), [], threading.Event()

    def read():
        while not done.is_set():
            try:
                seen.add((tmp_path / "current" / "VERSION").read_text())
            except OSError as exc:
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for number in range(300):
        fs.switch_current(str(tmp_path), "r2" if number % 2 == 0 else "r1")
    done.set()
    reader.join()
    assert errors == [] and seen == {"r1", "r2"}
