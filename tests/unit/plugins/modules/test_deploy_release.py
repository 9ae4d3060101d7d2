# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_release for real on a temporary deploy root: deploys, rollbacks, the lock, cleanup, check mode and bad inputs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import time

import pytest
from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.launchready.core.plugins.modules import deploy_release
from ansible_collections.launchready.core.tests.unit.plugins.http_responder import Site

V1, V2, V3, V4, V5, V6 = (
    "20261101T100000Z-1111111",
    "20261102T100000Z-2222222",
    "20261103T100000Z-3333333",
    "20261104T100000Z-4444444",
    "20261105T100000Z-5555555",
    "20261106T100000Z-6666666",
)


def run(capsys, **args):
    # Modules collect warnings process-wide; each run here stands for a process of its own.
    module_warnings._global_warnings.clear()
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        deploy_release.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    return result


def warnings_of(result):
    """Warning texts: plain strings before ansible-core 2.19, summaries with an event since."""
    return [item if isinstance(item, str) else item["event"]["msg"] for item in result.get("warnings", [])]


def tree(root):
    """Every entry under ``root`` with its type, mode, mtime and content (or link target): any write shows."""
    listing = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if os.path.islink(path):
                what = "link " + os.readlink(path)
            elif os.path.isdir(path):
                what = "dir"
            else:
                with open(path, "rb") as handle:
                    what = "file " + hashlib.sha256(handle.read()).hexdigest()
            listing[os.path.relpath(path, root)] = (what, info.st_mode, info.st_mtime_ns)
    return listing


def make_tarball(where, version, extra=None):
    """A release artifact: app.py and VERSION (plus ``extra`` files), as a .tar.gz; returns (path, sha256)."""
    path = where / ("app-%s.tar.gz" % version)
    files = {"VERSION": version, "app.py": "print(%r)\n" % version, "log/.keep": "", **(extra or {})}
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo("./" + name)
            member.size = len(data)
            member.mode = 0o644
            archive.addfile(member, io.BytesIO(data))
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "srv" / "members"
    (path / "shared").mkdir(parents=True)
    (path / "shared" / ".env").write_text("SESSION_SECRET=%s\n" % secrets.token_hex(16))
    return path


@pytest.fixture
def artifacts(tmp_path):
    folder = tmp_path / "artifacts"
    folder.mkdir()
    return folder


def deploy(capsys, root, artifacts, name, **extra):
    """present then activated, each taking the lock for itself (no lock_id)."""
    path, checksum = make_tarball(artifacts, name)
    prepared = run(
        capsys,
        root=str(root),
        release=name,
        revision=name[-7:],
        artifact=path,
        artifact_checksum=checksum,
        shared_paths=["log"],
        shared_files=[".env"],
        **extra,
    )
    assert prepared["changed"] is True, prepared
    activated = run(capsys, root=str(root), state="activated", release=name)
    assert activated["changed"] is True and activated["current"] == name, activated
    return activated


def log_lines(root):
    return [json.loads(line) for line in (root / "releases.log").read_text().splitlines()]


def test_three_deploys_layout_links_markers_and_log(capsys, root, artifacts):
    first = deploy(capsys, root, artifacts, V1)
    assert first["previous"] is None
    deploy(capsys, root, artifacts, V2)
    third = deploy(capsys, root, artifacts, V3)

    assert third["previous"] == V2 and third["previous_good"] == V2
    assert os.readlink(root / "current") == "releases/" + V3
    assert (root / "current" / "VERSION").read_text() == V3
    release = root / "releases" / V3
    assert os.readlink(release / ".env") == "../../shared/.env"
    assert os.readlink(release / "log") == "../../shared/log"
    assert (root / "shared" / "log").is_dir()
    assert not (release / "DEPLOY_UNFINISHED").exists()
    assert sorted(os.listdir(root / "releases")) == [V1, V2, V3]
    assert [(item["name"], item["status"], item["current"]) for item in third["releases"]] == [(V1, "good", False), (V2, "good", False), (V3, "good", True)]
    assert third["lock"]["held"] is False

    lines = log_lines(root)
    assert [(line["action"], line["release"]) for line in lines] == [
        ("deploy", V1),
        ("activate", V1),
        ("deploy", V2),
        ("activate", V2),
        ("deploy", V3),
        ("activate", V3),
    ]
    assert set(lines[0]) == {"time", "action", "release", "revision", "user", "health", "schema_version", "previous", "message"}
    assert lines[4]["revision"] == "3333333" and lines[5]["revision"] == "3333333"
    assert lines[5]["previous"] == V2
    assert lines[5]["time"].endswith("Z")


def test_present_and_activated_are_idempotent(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V1)
    again = run(capsys, root=str(root), release=V1, artifact=path, artifact_checksum=checksum)
    assert again["changed"] is False and again["plan"] == []
    again = run(capsys, root=str(root), state="activated", release=V1)
    assert again["changed"] is False and again["previous"] == V1
    assert len(log_lines(root)) == 2


def test_roll_back_twice_lands_on_v1_and_bad_releases_are_kept(capsys, root, artifacts):
    for name in (V1, V2, V3):
        deploy(capsys, root, artifacts, name)

    first = run(capsys, root=str(root), state="rolled_back", health="GET /healthz 503")
    assert first["changed"] is True and first["release"] == V2 and first["current"] == V2 and first["previous"] == V3
    second = run(capsys, root=str(root), state="rolled_back")
    assert second["current"] == V1 and second["previous"] == V2
    assert os.readlink(root / "current") == "releases/" + V1

    # Marked bad, not deleted.
    assert sorted(os.listdir(root / "releases")) == [V1, V2, V3]
    for name in (V2, V3):
        assert (root / "releases" / name / "BAD_RELEASE").is_file()
    assert [(item["name"], item["status"]) for item in second["releases"]] == [(V1, "good"), (V2, "bad"), (V3, "bad")]
    lines = log_lines(root)[6:]
    assert [(line["action"], line["release"]) for line in lines] == [("rollback", V2), ("bad", V3), ("rollback", V1), ("bad", V2)]
    assert lines[0]["previous"] == V3 and lines[0]["health"] == "GET /healthz 503"
    assert lines[1]["message"] == "rolled back to %s" % V2

    before = tree(root)
    third = run(capsys, root=str(root), state="rolled_back")
    assert third["failed"] is True
    assert "no good release is left before %s" % V1 in third["msg"]
    assert "%s (bad)" % V3 in third["msg"]
    assert tree(root) == before


def test_a_write_into_an_old_release_does_not_change_the_rollback_target(capsys, root, artifacts):
    for name in (V1, V2, V3):
        deploy(capsys, root, artifacts, name)
    old = root / "releases" / V1
    (old / "cache.txt").write_text("written by a cron job")
    future = time.time() + 3600
    os.utime(old, (future, future))
    # Ordered by mtime (as ansistrano does), V1 would now look like the newest release.
    assert max(os.listdir(root / "releases"), key=lambda name: os.stat(root / "releases" / name).st_mtime) == V1

    planned = run(capsys, root=str(root), state="rolled_back", _ansible_check_mode=True)
    assert planned["release"] == V2 and planned["current"] == V2
    done = run(capsys, root=str(root), state="rolled_back")
    assert done["current"] == V2


def test_log_order_wins_over_names(capsys, root, artifacts):
    # A host whose clock was wrong named the second release earlier than the first.
    deploy(capsys, root, artifacts, V2)
    deploy(capsys, root, artifacts, V1)
    result = run(capsys, root=str(root), state="rolled_back")
    assert result["current"] == V2
    assert [item["name"] for item in result["releases"]] == [V2, V1]


def test_a_rolled_back_release_is_never_chosen_again(capsys, root, artifacts):
    for name in (V1, V2, V3):
        deploy(capsys, root, artifacts, name)
    run(capsys, root=str(root), state="rolled_back")  # V3 bad, current V2
    deploy(capsys, root, artifacts, V4)
    result = run(capsys, root=str(root), state="rolled_back")
    assert result["current"] == V2  # V3 skipped

    refused = run(capsys, root=str(root), state="rolled_back", rollback_to=V3)
    assert refused["failed"] is True and "%s is marked bad" % V3 in refused["msg"]
    refused = run(capsys, root=str(root), state="activated", release=V3)
    assert refused["failed"] is True and "marked bad" in refused["msg"]


def test_rollback_to_a_name_or_some_steps_back(capsys, root, artifacts):
    for name in (V1, V2, V3, V4):
        deploy(capsys, root, artifacts, name)
    two_back = run(capsys, root=str(root), state="rolled_back", rollback_steps=2)
    assert two_back["current"] == V2
    assert [item["status"] for item in two_back["releases"]] == ["good", "good", "good", "bad"]

    same = run(capsys, root=str(root), state="rolled_back", rollback_to=V2)
    assert same["changed"] is False

    named = run(capsys, root=str(root), state="rolled_back", rollback_to=V1, mark_bad=False)
    assert named["current"] == V1
    assert [item["status"] for item in named["releases"]] == ["good", "good", "good", "bad"]

    too_far = run(capsys, root=str(root), state="rolled_back", rollback_steps=1)
    assert too_far["failed"] is True and "no good release is left" in too_far["msg"]
    forward = run(capsys, root=str(root), state="rolled_back", rollback_to=V3)
    assert forward["current"] == V3


def test_health_failure_before_the_switch_marks_bad_and_keeps_current(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    bad = run(capsys, root=str(root), state="bad", release=V2, health="side port 8001: GET /healthz 500", _ansible_diff=True)
    assert bad["changed"] is True and bad["current"] == V1
    assert bad["diff"]["before"]["releases"] == ["%s (good)" % V1, "%s (unfinished)" % V2]
    assert bad["diff"]["after"]["releases"] == ["%s (good)" % V1, "%s (bad)" % V2]
    assert json.loads((root / "releases" / V2 / "BAD_RELEASE").read_text())["health"] == "side port 8001: GET /healthz 500"
    assert log_lines(root)[-1]["action"] == "bad"
    assert run(capsys, root=str(root), state="bad", release=V2)["changed"] is False

    # The next deploy cleans unfinished releases, but keeps the bad one for inspection.
    deploy(capsys, root, artifacts, V3)
    assert sorted(os.listdir(root / "releases")) == [V1, V2, V3]


def test_a_deploy_killed_half_way_is_cleaned_by_the_next_one(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    # Killed after preparing V2 (its marker stays) and while building V3 (a partial folder stays).
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    partial = root / "releases" / (".%s.partial-0badf00d" % V3)
    partial.mkdir()
    (partial / "half").write_text("x")
    (root / "releases" / ".keep-me").write_text("not ours")
    result = run(capsys, root=str(root), release=V3, artifact=make_tarball(artifacts, V3)[0])
    assert result["removed"] == [V2]
    assert sorted(os.listdir(root / "releases")) == [".keep-me", V1, V3]
    assert result["current"] == V1
    cleaned = log_lines(root)[-2]
    assert cleaned["action"] == "cleaned" and cleaned["release"] == V2 and "unfinished" in cleaned["message"]

    # An unfinished release of the same name is prepared again from scratch.
    (root / "releases" / V3 / "stray").write_text("left by the killed run")
    again = run(capsys, root=str(root), release=V3, artifact=make_tarball(artifacts, V3)[0])
    assert again["changed"] is True
    assert not (root / "releases" / V3 / "stray").exists()
    assert (root / "releases" / V3 / "DEPLOY_UNFINISHED").exists()


def test_a_run_killed_right_after_the_switch_is_finished_not_prepared_again(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    os.symlink("releases/" + V2, root / "current.new")
    os.replace(root / "current.new", root / "current")  # the switch happened, the marker stayed
    again = run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    assert again["changed"] is False and again["current"] == V2
    finished = run(capsys, root=str(root), state="activated", release=V2)
    assert finished["plan"] == ["remove the DEPLOY_UNFINISHED marker of release %s" % V2, "log activate of %s" % V2]
    assert [item["status"] for item in finished["releases"]] == ["good", "good"]


def test_keep_releases_never_removes_current_or_previous_good(capsys, root, artifacts):
    for name in (V1, V2, V3, V4, V5, V6):
        deploy(capsys, root, artifacts, name)
    run(capsys, root=str(root), state="rolled_back", rollback_to=V2)  # V6 bad; V1 is the previous good release
    result = run(capsys, root=str(root), state="cleaned", keep_releases=1, _ansible_diff=True)
    assert result["removed"] == [V3, V4, V5]
    assert sorted(os.listdir(root / "releases")) == [V1, V2, V6]
    assert result["current"] == V2 and result["previous_good"] == V1
    assert result["diff"]["after"]["releases"] == ["%s (good)" % V1, "%s (good)" % V2, "%s (bad)" % V6]
    assert [line["release"] for line in log_lines(root) if line["action"] == "cleaned"] == [V3, V4, V5]
    assert run(capsys, root=str(root), state="cleaned", keep_releases=1)["changed"] is False
    assert run(capsys, root=str(root), state="rolled_back")["current"] == V1


def test_cleaned_keeps_the_newest_and_the_given_release(capsys, root, artifacts):
    for name in (V1, V2, V3, V4):
        deploy(capsys, root, artifacts, name)
    run(capsys, root=str(root), state="rolled_back", rollback_to=V3)
    result = run(capsys, root=str(root), state="cleaned", keep_releases=1, release=V1)
    assert result["removed"] == []
    assert sorted(os.listdir(root / "releases")) == [V1, V2, V3, V4]
    result = run(capsys, root=str(root), state="cleaned", keep_releases=1)
    assert result["removed"] == [V1]


def test_the_lock_refuses_a_concurrent_deploy(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    held = run(capsys, root=str(root), state="locked", lock_id="run-a", release=V2, deployer="alice", deployer_host="laptop", lock_message="launch playbook")
    assert held["changed"] is True and held["lock"]["ours"] is True and held["lock"]["user"] == "alice"
    owner = json.loads((root / ".deploy.lock" / "owner.json").read_text())
    assert owner["id"] == "run-a" and owner["host"] == "laptop" and owner["release"] == V2 and owner["message"] == "launch playbook"
    assert run(capsys, root=str(root), state="locked", lock_id="run-a")["changed"] is False

    before = tree(root)
    path, checksum = make_tarball(artifacts, V2)
    for args in (
        dict(release=V2, artifact=path, artifact_checksum=checksum, lock_id="run-b"),
        dict(release=V2, artifact=path, artifact_checksum=checksum),
        dict(state="rolled_back", rollback_to=V1),
        dict(state="locked", lock_id="run-b"),
        dict(state="unlocked", lock_id="run-b"),
    ):
        refused = run(capsys, root=str(root), **args)
        assert refused["failed"] is True, args
        assert "alice (from laptop) since " in refused["msg"] and "for release %s" % V2 in refused["msg"], refused["msg"]
        assert '"launch playbook"' in refused["msg"]
        assert refused["lock"]["user"] == "alice" and refused["lock"]["ours"] is False
    assert tree(root) == before

    prepared = run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum, lock_id="run-a")
    assert prepared["changed"] is True and prepared["lock"]["ours"] is True
    run(capsys, root=str(root), state="activated", release=V2, lock_id="run-a")
    released = run(capsys, root=str(root), state="unlocked", lock_id="run-a")
    assert released["changed"] is True and released["lock"]["held"] is False
    assert not (root / ".deploy.lock").exists()
    assert run(capsys, root=str(root), state="unlocked", lock_id="run-a")["changed"] is False


def test_a_stale_lock_is_taken_over_and_force_unlock_works(capsys, root):
    run(capsys, root=str(root), state="locked", lock_id="dead-run", deployer="bob")
    owner = root / ".deploy.lock" / "owner.json"
    record = json.loads(owner.read_text())
    record["since"] = "2020-01-01T00:00:00Z"
    owner.write_text(json.dumps(record))

    taken = run(capsys, root=str(root), state="locked", lock_id="new-run", deployer="carol")
    assert taken["changed"] is True and taken["lock"]["user"] == "carol"
    assert any("stale deploy lock" in warning and "bob" in warning for warning in warnings_of(taken))
    assert sorted(os.listdir(root)) == [".deploy.lock", "releases", "shared"]

    fresh = run(capsys, root=str(root), state="locked", lock_id="third-run")
    assert fresh["failed"] is True
    forced = run(capsys, root=str(root), state="locked", lock_id="third-run", force_unlock=True)
    assert forced["changed"] is True and forced["lock"]["id"] == "third-run"
    assert any("force_unlock" in warning and "carol" in warning for warning in warnings_of(forced))
    removed = run(capsys, root=str(root), state="unlocked", force_unlock=True)
    assert removed["changed"] is True and not (root / ".deploy.lock").exists()
    assert [name for name in os.listdir(root) if name.startswith(".deploy.lock")] == []


def test_a_lock_id_that_holds_nothing_is_warned_about(capsys, root, artifacts):
    path, checksum = make_tarball(artifacts, V1)
    result = run(capsys, root=str(root), release=V1, artifact=path, artifact_checksum=checksum, lock_id="lost-run")
    assert result["changed"] is True and result["lock"]["held"] is False
    assert any("lock_id lost-run does not hold the deploy lock" in warning for warning in warnings_of(result))


def test_a_lock_folder_without_owner_file_names_an_unknown_holder(capsys, root, artifacts):
    (root / ".deploy.lock").mkdir()
    path, checksum = make_tarball(artifacts, V1)
    refused = run(capsys, root=str(root), release=V1, artifact=path, artifact_checksum=checksum)
    assert refused["failed"] is True and "an unknown holder" in refused["msg"]


def test_check_mode_writes_nothing_in_any_state(capsys, root, artifacts):
    for name in (V1, V2, V3):
        deploy(capsys, root, artifacts, name)
    path, checksum = make_tarball(artifacts, V4)
    cases = [
        (dict(release=V4, artifact=path, artifact_checksum=checksum, shared_files=[".env"]), ["create release %s from tarball %s" % (V4, path)]),
        (dict(state="activated", release=V1), ["switch current to release %s (was %s)" % (V1, V3), "log activate of %s" % V1]),
        (dict(state="rolled_back"), None),
        (dict(state="bad", release=V2), None),
        (dict(state="cleaned", keep_releases=1), None),
        (dict(state="locked", lock_id="x"), ["take the deploy lock %s/.deploy.lock" % root]),
    ]
    for args, plan in cases:
        before = tree(root)
        result = run(capsys, root=str(root), _ansible_check_mode=True, _ansible_diff=True, **args)
        assert result["changed"] is True, args
        assert result["plan"], args
        if plan:
            assert result["plan"] == plan
        assert tree(root) == before, args
    rolled = run(capsys, root=str(root), state="rolled_back", _ansible_check_mode=True, _ansible_diff=True)
    assert rolled["diff"]["before"]["current"] == V3 and rolled["diff"]["after"]["current"] == V2
    assert rolled["diff"]["after"]["releases"][-1] == "%s (bad)" % V3
    assert rolled["plan"] == [
        "switch current to release %s (was %s)" % (V2, V3),
        "log rollback of %s" % V2,
        "mark release %s bad (BAD_RELEASE marker) (rolled back)" % V3,
        "log bad of %s" % V3,
    ]
    cleaned = run(capsys, root=str(root), state="cleaned", keep_releases=1, _ansible_check_mode=True)
    assert cleaned["removed"] == [V1]

    run(capsys, root=str(root), state="locked", lock_id="x")
    before = tree(root)
    unlock = run(capsys, root=str(root), state="unlocked", lock_id="x", _ansible_check_mode=True)
    assert unlock["changed"] is True and unlock["lock"]["held"] is False
    assert tree(root) == before


def test_the_first_deploy_creates_the_root(capsys, tmp_path, artifacts):
    root = tmp_path / "fresh" / "app"
    path, checksum = make_tarball(artifacts, V1)
    run(capsys, root=str(root), release=V1, artifact=path, artifact_checksum=checksum, shared_paths=["storage/uploads"])
    result = run(capsys, root=str(root), state="activated", release=V1)
    assert result["current"] == V1 and result["previous"] is None and result["previous_good"] is None
    assert os.readlink(root / "releases" / V1 / "storage" / "uploads") == "../../../shared/storage/uploads"
    assert (root / "current" / "storage" / "uploads").is_dir()


def test_check_mode_on_a_new_root_creates_nothing(capsys, tmp_path, artifacts):
    path, checksum = make_tarball(artifacts, V1)
    root = tmp_path / "new"
    result = run(capsys, root=str(root), release=V1, artifact=path, artifact_checksum=checksum, shared_files=[".env"], _ansible_check_mode=True)
    assert result["changed"] is True and result["releases"][0]["status"] == "unfinished"
    assert any("shared file .env missing" in warning for warning in warnings_of(result))
    assert not root.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(release=V4, artifact="/nonexistent/app.tar.gz"), "artifact /nonexistent/app.tar.gz does not exist"),
        (dict(release=V4, artifact="ARTIFACT", artifact_checksum="0" * 64), "has SHA-256"),
        (dict(release=V4, artifact="ARTIFACT", artifact_checksum="abc"), "artifact_checksum must be a SHA-256"),
        (dict(release=V4, artifact="FOLDER", artifact_checksum="0" * 64), "artifact_checksum is for an archive"),
        (dict(release=V4, artifact="NOT_A_TARBALL"), "neither a folder nor a tar archive"),
        (dict(release="../../etc", artifact="ARTIFACT"), "is not usable as a folder name"),
        (dict(release=V4, artifact="ARTIFACT", shared_files=["missing.yml"]), "shared file missing.yml missing"),
        (dict(release=V4, artifact="ARTIFACT", shared_paths=["../outside"]), "must be a relative path inside the release"),
        (dict(release=V4, artifact="ARTIFACT", shared_paths=["storage"], shared_files=["storage/x"]), "overlap"),
        (dict(release=V3, artifact="ARTIFACT"), "is marked bad; deploy the code again under a new release name"),
        (dict(state="activated", release="20261231T000000Z-0000000"), "release 20261231T000000Z-0000000 does not exist"),
        (dict(state="rolled_back", rollback_to="20261231T000000Z-0000000"), "does not exist in"),
        (dict(state="rolled_back", rollback_steps=3), "cannot roll back 3 steps: only 2 good releases before"),
        (dict(state="bad", release="nope"), "release nope does not exist"),
        (dict(state="cleaned", keep_releases=0), "keep_releases must be 1 or more"),
        (dict(state="unlocked"), "needs the lock_id"),
    ],
)
def test_bad_inputs_fail_clearly_and_change_nothing(capsys, root, artifacts, tmp_path, args, message):
    for name in (V1, V2, V3):
        deploy(capsys, root, artifacts, name)
    run(capsys, root=str(root), state="bad", release=V3)
    path = make_tarball(artifacts, V4)[0]
    folder = tmp_path / "folder"
    folder.mkdir()
    not_tar = tmp_path / "app.zip"
    not_tar.write_bytes(b"PK\x03\x04 not a tarball")
    substitutes = {"ARTIFACT": path, "FOLDER": str(folder), "NOT_A_TARBALL": str(not_tar)}
    args = {key: substitutes.get(value, value) if isinstance(value, str) else value for key, value in args.items()}
    before = tree(root)
    result = run(capsys, root=str(root), **args)
    assert result["failed"] is True
    assert message in result["msg"], result["msg"]
    assert tree(root) == before


@pytest.mark.parametrize(
    "member, kind, problem",
    [
        ("../evil", tarfile.REGTYPE, "its path leaves the release"),
        ("/etc/evil", tarfile.REGTYPE, "its path leaves the release"),
        ("link", tarfile.SYMTYPE, "outside the release"),
        ("BAD_RELEASE", tarfile.REGTYPE, "marker file"),
        ("dev", tarfile.CHRTYPE, "special file"),
    ],
)
def test_an_unsafe_tarball_is_refused_before_any_write(capsys, root, artifacts, member, kind, problem):
    path = artifacts / "evil.tar"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo(member)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "../../../../etc/passwd"
        archive.addfile(info, io.BytesIO(b""))
    before = tree(root)
    result = run(capsys, root=str(root), release=V1, artifact=str(path))
    assert result["failed"] is True and problem in result["msg"], result["msg"]
    assert tree(root) == before


def test_a_folder_artifact_is_copied(capsys, root, tmp_path):
    marked = tmp_path / "marked"
    marked.mkdir()
    (marked / "DEPLOY_UNFINISHED").write_text("")
    refused = run(capsys, root=str(root), release=V1, artifact=str(marked))
    assert refused["failed"] is True and "holds DEPLOY_UNFINISHED" in refused["msg"]

    folder = tmp_path / "build"
    (folder / "static").mkdir(parents=True)
    (folder / "static" / "app.css").write_text("body{}")
    os.symlink("static/app.css", folder / "style.css")
    result = run(capsys, root=str(root), release=V1, artifact=str(folder))
    assert result["changed"] is True
    release = root / "releases" / V1
    assert (release / "static" / "app.css").read_text() == "body{}"
    assert os.readlink(release / "style.css") == "static/app.css"


def test_schema_version_guards_the_rollback(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1, schema_version="a1f3c9")
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    activated = run(capsys, root=str(root), state="activated", release=V2, schema_version="77b2e0")
    assert activated["releases"][1]["schema_version"] == "77b2e0" and activated["releases"][0]["schema_version"] == "a1f3c9"
    assert log_lines(root)[-1]["schema_version"] == "77b2e0"

    before = tree(root)
    refused = run(capsys, root=str(root), state="rolled_back", database_schema_version="77b2e0")
    assert refused["failed"] is True
    assert "expects database schema a1f3c9, older than the database's 77b2e0" in refused["msg"]
    assert tree(root) == before

    same = run(capsys, root=str(root), state="rolled_back", database_schema_version="a1f3c9", _ansible_check_mode=True)
    assert same["changed"] is True and warnings_of(same) == []

    allowed = run(capsys, root=str(root), state="rolled_back", database_schema_version="77b2e0", allow_schema_mismatch=True)
    assert allowed["current"] == V1
    assert any("allow_schema_mismatch" in warning for warning in warnings_of(allowed))


def test_a_release_without_schema_version_is_refused_when_the_database_has_one(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    deploy(capsys, root, artifacts, V2, schema_version="0002")
    refused = run(capsys, root=str(root), state="rolled_back", database_schema_version="0002")
    assert refused["failed"] is True and "has no recorded schema version" in refused["msg"]


def test_activated_refuses_to_replace_a_real_current_folder(capsys, root, artifacts):
    path, checksum = make_tarball(artifacts, V1)
    run(capsys, root=str(root), release=V1, artifact=path, artifact_checksum=checksum)
    (root / "current").mkdir()
    before = tree(root)
    result = run(capsys, root=str(root), state="activated", release=V1)
    assert result["failed"] is True and "is a folder, not a symbolic link" in result["msg"]
    assert tree(root) == before


def test_an_unreadable_log_line_is_skipped_with_a_warning(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    with open(root / "releases.log", "a") as handle:
        handle.write('{"time": "2026-11-01T10:00:00Z", "action": "dep')  # cut short by a crash
    deploy(capsys, root, artifacts, V2)
    lines = (root / "releases.log").read_text().splitlines()
    assert lines[2].endswith('"dep') and json.loads(lines[3])["release"] == V2
    result = run(capsys, root=str(root), state="rolled_back", _ansible_check_mode=True)
    assert result["release"] == V1


git_available = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


def _git(*args, cwd):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "upstream"
    path.mkdir()
    _git("init", "--quiet", "--initial-branch=main", cwd=path)
    (path / "VERSION").write_text("one")
    _git("add", "VERSION", cwd=path)
    _git("commit", "--quiet", "-m", "one", cwd=path)
    return path


@git_available
def test_a_release_from_git(capsys, root, repo):
    first_commit = _git("rev-parse", "HEAD", cwd=repo)
    result = run(capsys, root=str(root), release=V1, git_repo=str(repo), git_ref="main", revision=first_commit[:7], shared_files=[".env"])
    assert result["changed"] is True and result["revision"] == first_commit
    release = root / "releases" / V1
    assert (release / "VERSION").read_text() == "one" and not (release / ".git").exists()
    assert os.readlink(release / ".env") == "../../shared/.env"
    assert log_lines(root)[-1]["revision"] == first_commit
    run(capsys, root=str(root), state="activated", release=V1)

    (repo / "VERSION").write_text("two")
    _git("commit", "--quiet", "-am", "two", cwd=repo)
    second_commit = _git("rev-parse", "HEAD", cwd=repo)
    moved = run(capsys, root=str(root), release=V2, git_repo=str(repo), git_ref="main", revision=first_commit[:7])
    assert moved["failed"] is True and "not the expected revision %s" % first_commit[:7] in moved["msg"]
    assert log_lines(root)[-1]["action"] == "failed"
    assert sorted(os.listdir(root / "releases")) == [V1]

    second = run(capsys, root=str(root), release=V2, git_repo=str(repo), git_ref="main")
    assert second["revision"] == second_commit
    assert (root / "releases" / V2 / "VERSION").read_text() == "two"
    tagged = run(capsys, root=str(root), release=V3, git_repo=str(repo), git_ref=first_commit)
    assert (root / "releases" / V3 / "VERSION").read_text() == "one"
    assert tagged["removed"] == [V2]  # unfinished; V1 is current


@git_available
def test_git_failures_are_logged_and_a_password_in_the_url_is_refused(capsys, root, repo):
    unknown = run(capsys, root=str(root), release=V1, git_repo=str(repo), git_ref="no-such-branch")
    assert unknown["failed"] is True and "git ref no-such-branch is not a branch, tag or commit" in unknown["msg"]
    assert log_lines(root)[-1]["action"] == "failed"

    # The mirror (repo.git) exists since the first call, so this one fetches.
    unreachable = run(capsys, root=str(root), release=V2, git_repo="https://127.0.0.1:9/members.git")
    assert unreachable["failed"] is True and "git fetch failed" in unreachable["msg"]
    entry = log_lines(root)[-1]
    assert entry["action"] == "failed" and entry["release"] == V2 and "git fetch failed" in entry["message"]
    assert os.listdir(root / "releases") == []

    before = tree(root)
    password = secrets.token_urlsafe(12)
    refused = run(capsys, root=str(root), release=V3, git_repo="https://deploy:%s@127.0.0.1:9/members.git" % password)
    assert refused["failed"] is True and "git_repo holds a password" in refused["msg"] and password not in refused["msg"]
    assert tree(root) == before


def test_the_database_schema_defaults_to_the_newest_one_logged(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1, schema_version="0009")
    deploy(capsys, root, artifacts, V2, schema_version="0010")
    deploy(capsys, root, artifacts, V3, schema_version="0010")
    back = run(capsys, root=str(root), state="rolled_back")
    assert back["current"] == V2

    # The rollback line records V2's 0010; V1 still expects the older 0009.
    before = tree(root)
    refused = run(capsys, root=str(root), state="rolled_back")
    assert refused["failed"] is True and "expects database schema 0009, older than the database's 0010" in refused["msg"]
    assert tree(root) == before
    assert run(capsys, root=str(root), state="rolled_back", database_schema_version="0009")["current"] == V1


def reload_script(tmp_path, rc=0):
    """A reload command that records where current points when it runs, and exits with ``rc``."""
    seen = tmp_path / "reloads.txt"
    script = tmp_path / "reload.sh"
    script.write_text('#!/bin/sh\nreadlink "$1/current" >> %s\necho "reload output $2" >&2\nexit %d\n' % (seen, rc))
    script.chmod(0o755)
    return [str(script)], seen


def test_the_reload_command_runs_after_the_switch_only_when_current_moves(capsys, tmp_path, root, artifacts):
    command, seen = reload_script(tmp_path)
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)

    preview = run(capsys, root=str(root), state="activated", release=V2, reload_command=[*command, str(root)], _ansible_check_mode=True)
    assert preview["changed"] is True and preview["reloaded"] is False and not seen.exists()
    assert preview["plan"][-1] == "run the reload command: %s %s" % (command[0], root)

    switched = run(capsys, root=str(root), state="activated", release=V2, reload_command=[*command, str(root)])
    assert switched["reloaded"] is True and seen.read_text() == "releases/%s\n" % V2

    again = run(capsys, root=str(root), state="activated", release=V2, reload_command=[*command, str(root)])
    assert again["changed"] is False and again["reloaded"] is False and again["plan"] == []
    back = run(capsys, root=str(root), state="rolled_back", reload_command=[*command, str(root)])
    assert back["reloaded"] is True and seen.read_text().splitlines() == ["releases/%s" % V2, "releases/%s" % V1]


def test_a_failed_reload_fails_the_task_and_logs_it(capsys, tmp_path, root, artifacts):
    command, _seen = reload_script(tmp_path, rc=3)
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    failed = run(capsys, root=str(root), state="activated", release=V2, reload_command=[*command, str(root), "marker-7f3a"])
    assert failed["failed"] is True
    assert "current now points to %s, but the reload command" % V2 in failed["msg"] and "(exit 3): reload output marker-7f3a" in failed["msg"]
    assert os.readlink(root / "current") == "releases/" + V2
    assert log_lines(root)[-1]["action"] == "failed" and log_lines(root)[-1]["release"] == V2
    assert not (root / ".deploy.lock").exists()


def test_activated_with_keep_releases_cleans_up_after_the_switch(capsys, root, artifacts):
    for name in (V1, V2, V3):
        deploy(capsys, root, artifacts, name)
    path, checksum = make_tarball(artifacts, V4)
    run(capsys, root=str(root), release=V4, artifact=path, artifact_checksum=checksum)
    preview = run(capsys, root=str(root), state="activated", release=V4, keep_releases=2, _ansible_check_mode=True)
    assert preview["removed"] == [V1, V2] and (root / "releases" / V1).is_dir()

    switched = run(capsys, root=str(root), state="activated", release=V4, keep_releases=2)
    assert switched["removed"] == [V1, V2] and sorted(os.listdir(root / "releases")) == [V3, V4]
    assert switched["current"] == V4 and switched["previous_good"] == V3
    assert [line["action"] for line in log_lines(root)[-3:]] == ["activate", "cleaned", "cleaned"]
    # Without keep_releases, activated removes nothing.
    path, checksum = make_tarball(artifacts, V5)
    run(capsys, root=str(root), release=V5, artifact=path, artifact_checksum=checksum)
    assert run(capsys, root=str(root), state="activated", release=V5)["removed"] == []


def test_a_rollback_on_its_own_takes_a_stale_lock_over_and_refuses_a_fresh_one(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    deploy(capsys, root, artifacts, V2)
    run(capsys, root=str(root), state="locked", lock_id="killed-deploy", deployer="bob")
    before = tree(root)
    refused = run(capsys, root=str(root), state="rolled_back")
    assert refused["failed"] is True and "another deploy holds the lock" in refused["msg"] and "bob" in refused["msg"]
    assert tree(root) == before

    owner = root / ".deploy.lock" / "owner.json"
    owner.write_text(json.dumps({**json.loads(owner.read_text()), "since": "2020-01-01T00:00:00Z"}))
    back = run(capsys, root=str(root), state="rolled_back")
    assert back["current"] == V1 and any("stale deploy lock" in warning and "bob" in warning for warning in warnings_of(back))
    assert not (root / ".deploy.lock").exists()


@pytest.fixture
def side_port():
    """The candidate on its side port: /healthz answers 503 ``starting`` times, then {"status": "ok", "release": ...}."""
    site = Site.start()
    yield site
    site.stop()


def healthz(site, release, starting=0, status=200):
    answers = iter([None] * starting)

    def answer(_request):
        return b'{"status": "starting"}' if next(answers, "done") is None else json.dumps({"status": "ok", "release": release}).encode()

    site.route("/healthz", status, [("Content-Type", "application/json")], answer)


def test_a_release_is_switched_to_only_once_it_answers_healthy(capsys, root, artifacts, side_port):
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    healthz(side_port, V2, starting=2)
    gate = dict(health_url=side_port.url("/healthz"), health_json={"status": "ok", "release": V2}, health_timeout=10)

    preview = run(capsys, root=str(root), state="activated", release=V2, _ansible_check_mode=True, **gate)
    assert preview["plan"][0] == "ask %s until it answers healthy, before the switch" % gate["health_url"]
    assert side_port.requests() == [] and preview["health"] is None

    switched = run(capsys, root=str(root), state="activated", release=V2, **gate)
    assert switched["current"] == V2
    assert switched["health"] == 'GET %s 200 with {"release": "%s", "status": "ok"} after 3 attempt(s)' % (gate["health_url"], V2)
    assert len(side_port.requests()) == 3
    assert log_lines(root)[-1]["action"] == "activate" and log_lines(root)[-1]["health"] == switched["health"]

    again = run(capsys, root=str(root), state="activated", release=V2, **gate)
    assert again["changed"] is False and len(side_port.requests()) == 3, "a release already current is not asked again"


@pytest.mark.parametrize(
    ("status", "answer_release", "why"),
    [
        (503, V2, "answered 503 for 0.5 s"),
        (200, "someone-else", 'answered {"status": "ok", "release": "someone-else"}, expected {"status": "ok", "release": "%s"} for 0.5 s' % V2),
    ],
)
def test_a_release_that_stays_unhealthy_is_marked_bad_and_not_switched_to(capsys, root, artifacts, side_port, status, answer_release, why):
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    healthz(side_port, answer_release, status=status)
    url = side_port.url("/healthz")
    failed = run(capsys, root=str(root), state="activated", release=V2, health_url=url, health_json={"status": "ok", "release": V2}, health_timeout=0.5,
                 reload_command=["/bin/false"])
    assert failed["failed"] is True and failed["current"] == V1 and os.readlink(root / "current") == "releases/" + V1
    assert failed["msg"] == "release %s failed its health check before the switch: GET %s %s. Nothing was switched; %s is marked bad" % (V2, url, why, V2)
    assert failed["health"] == "GET %s %s" % (url, why)
    assert (root / "releases" / V2 / "BAD_RELEASE").exists()
    assert log_lines(root)[-1]["action"] == "bad" and log_lines(root)[-1]["health"] == failed["health"]
    assert not (root / ".deploy.lock").exists()


def test_a_health_url_that_does_not_answer(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    failed = run(capsys, root=str(root), state="activated", release=V2, health_url="http://127.0.0.1:9/healthz", health_timeout=0.3)
    assert failed["failed"] is True and "GET http://127.0.0.1:9/healthz got no answer (" in failed["health"]
    assert failed["current"] == V1


def test_the_candidate_command_runs_first_and_a_failed_start_marks_the_release_bad(capsys, tmp_path, root, artifacts, side_port):
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum)
    started = tmp_path / "started.txt"
    healthz(side_port, V2)
    gate = dict(health_url=side_port.url("/healthz"), health_json={"status": "ok"}, health_timeout=5)
    switched = run(capsys, root=str(root), state="activated", release=V2, candidate_command=["/bin/sh", "-c", "echo up > %s" % started], **gate)
    assert switched["current"] == V2 and started.read_text() == "up\n"

    path, checksum = make_tarball(artifacts, V3)
    run(capsys, root=str(root), release=V3, artifact=path, artifact_checksum=checksum)

    failed = run(capsys, root=str(root), state="activated", release=V3, candidate_command=["/bin/sh", "-c", "echo no port 8001 >&2; exit 7"], **gate)
    assert failed["failed"] is True and failed["current"] == V2
    assert failed["health"] == "the candidate command /bin/sh -c echo no port 8001 >&2; exit 7 failed (exit 7): no port 8001"
    assert (root / "releases" / V3 / "BAD_RELEASE").exists() and len(side_port.requests()) == 1


def test_release_lock_frees_the_lock_when_the_task_succeeds(capsys, root, artifacts):
    deploy(capsys, root, artifacts, V1)
    path, checksum = make_tarball(artifacts, V2)
    run(capsys, root=str(root), state="locked", lock_id="run-1")
    run(capsys, root=str(root), release=V2, artifact=path, artifact_checksum=checksum, lock_id="run-1")
    preview = run(capsys, root=str(root), state="activated", release=V2, lock_id="run-1", release_lock=True, _ansible_check_mode=True)
    assert preview["plan"][-1] == "release the deploy lock %s/.deploy.lock" % root and (root / ".deploy.lock").is_dir()
    switched = run(capsys, root=str(root), state="activated", release=V2, lock_id="run-1", release_lock=True)
    assert switched["current"] == V2 and switched["lock"]["held"] is False and not (root / ".deploy.lock").exists()
