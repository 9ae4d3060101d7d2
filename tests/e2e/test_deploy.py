# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy stage on the lab: playbooks/deploy.yml and playbooks/rollback.yml, run as a user runs them.

One deploy root serves the whole file, in order (each test builds on the one before): the lab's
origin app (tests/lab/origin_app) is the artifact, in versions made here; the deploy role runs it
under supervisord and gunicorn on free ports, and the lab's edge sends a zone of this file's own
to it. A load generator asks the edge about 50 times a second from the second deploy to the last
automatic switch-back and must count no failed request.

The sequence: v1, v2, v3; a write into v1's folder (its mtime pushed into the future); two
rollbacks land on v1 (through v2, not v1, despite that write); a third one is refused, and so is an
unknown release; v3 again, under a new name; v4 fails on the side port (v3 keeps serving, v4 bad);
v5 fails behind the edge after the switch (switched back, v5 bad); a deploy held up in its build
hook refuses a concurrent one, is killed, and the next deploy takes its lock over and cleans up,
with keep_releases=1 keeping the current and the previous good release; bad inputs change nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import playbook
from tests.lab.client import Lab

REPO_ROOT = Path(__file__).resolve().parents[2]
ORIGIN_APP = REPO_ROOT / "tests" / "lab" / "origin_app"
ZONE = "deploy-e2e.test"
HOST = "app." + ZONE
LOAD_RATE = 50  # requests per second
LOAD_LIMIT = 600.0  # seconds: the load generator stops by itself at the latest then

_ANSIBLE_CFG = """[defaults]
stdout_callback = ansible.builtin.default
callbacks_enabled = launchready_results
retry_files_enabled = false
nocows = true
inventory_ignore_extensions = ~, .orig, .bak, .cfg, .retry, .pyc, .pyo, .md, .txt, .json

[connection]
pipelining = true
"""

# A release whose health endpoint fails everywhere (v4), or only behind the edge (v5: the
# requests that carry the edge's CF-Ray header), while every other page works.
_BROKEN_WSGI = '''from .app import App

_app = App()


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/healthz" and ({everywhere} or environ.get("HTTP_CF_RAY")):
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'{{"status": "broken"}}']
    return _app(environ, start_response)
'''

_SLOW_BUILD = """---
- name: Build slowly (the test kills the deploy meanwhile)
  ansible.builtin.wait_for:
    timeout: 120
"""

_MIGRATE = """---
- name: Migrate the database (the test's releases carry their schema version in SCHEMA)
  ansible.builtin.set_fact:
    deploy_schema_version: "{{ lookup('ansible.builtin.file', deploy_release_path ~ '/origin_app/SCHEMA') }}"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Deployment:
    """An inventory with one `app` host (this machine), a deploy root, and the artifacts v1..v7."""

    def __init__(self, base: Path, lab: Lab):
        self.base = base
        self.lab = lab
        self.root = base / "srv"
        self.port, self.side_port = free_port(), free_port()
        self.inventory = base / "inventory"
        (self.inventory / "group_vars" / "all").mkdir(parents=True)
        (self.inventory / "hosts.yml").write_text(
            "all:\n  children:\n    app:\n      hosts:\n        localhost:\n          ansible_connection: local\n"
            "          ansible_python_interpreter: %s\n" % sys.executable, encoding="utf-8")
        (base / "hooks").mkdir()
        (base / "hooks" / "slow_build.yml").write_text(_SLOW_BUILD, encoding="utf-8")
        (base / "hooks" / "migrate.yml").write_text(_MIGRATE, encoding="utf-8")
        self.secret = secrets.token_urlsafe(16)
        settings = {
            "deploy_root": str(self.root),
            "deploy_service_manager": "supervisord",
            "deploy_python": sys.executable,
            "deploy_app_module": "origin_app.wsgi:application",
            "deploy_port": self.port,
            "deploy_side_port": self.side_port,
            "deploy_gunicorn_graceful_timeout": 5,
            "deploy_health_json": {"status": "ok"},
            "deploy_health_release_key": "release",
            "deploy_health_timeout": 4,
            "deploy_migrate_tasks": str(base / "hooks" / "migrate.yml"),
            "deploy_public_url": "https://%s/healthz" % HOST,
            "deploy_public_resolve": ["*:80:127.0.0.1:%d" % lab.edge_http_port, "*:443:127.0.0.1:%d" % lab.edge_https_port],
            "deploy_public_ca_path": str(lab.edge_ca_file),
            "deploy_env_values": {"production": {"SECRET_KEY": self.secret}},
            "deploy_env_plain_values": {"production": {"ADMIN_EMAIL": "admin@" + ZONE}},
            "deploy_deployer": "e2e",
        }
        (self.inventory / "group_vars" / "all" / "main.yml").write_text(json.dumps(settings, indent=1), encoding="utf-8")
        self.artifacts = {name: self._artifact(name, schema) for name, schema in
                          (("v1", "0001"), ("v2", "0002"), ("v3", "0002"), ("v4", "0002"), ("v5", "0002"), ("v6", "0002"), ("v7", "0002"))}
        self.workdir = base / "run"
        collection = self.workdir / "collections" / "ansible_collections" / "launchready" / "core"
        collection.parent.mkdir(parents=True)
        collection.symlink_to(REPO_ROOT, target_is_directory=True)
        (self.workdir / "callbacks").mkdir()
        (self.workdir / "callbacks" / "launchready_results.py").write_text(playbook._CALLBACK, encoding="utf-8")
        (self.workdir / "ansible.cfg").write_text(_ANSIBLE_CFG, encoding="utf-8")

    def _artifact(self, name: str, schema: str) -> str:
        folder = self.base / "artifacts" / name
        shutil.copytree(ORIGIN_APP, folder / "origin_app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (folder / "origin_app" / "VERSION").write_text("1.0.%s\n" % name[1:], encoding="utf-8")
        (folder / "origin_app" / "SCHEMA").write_text(schema, encoding="utf-8")
        if name in ("v4", "v5"):
            (folder / "origin_app" / "wsgi.py").write_text(_BROKEN_WSGI.format(everywhere=name == "v4"), encoding="utf-8")
        return str(folder) + "/"

    # Running playbooks

    def command(self, name: str, extra: dict[str, Any], flags: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
        extra_file = self.workdir / ("extra-%s.json" % secrets.token_hex(4))
        extra_file.write_text(json.dumps(extra), encoding="utf-8")
        results = self.workdir / ("results-%s.json" % secrets.token_hex(4))
        environment = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        environment.update(ANSIBLE_CONFIG=str(self.workdir / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(self.workdir / "collections"),
                           ANSIBLE_CALLBACK_PLUGINS=str(self.workdir / "callbacks"), ANSIBLE_LOCAL_TEMP=str(self.workdir / "tmp"),
                           ANSIBLE_REMOTE_TMP=str(self.workdir / "tmp"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
                           **{playbook.RESULTS_ENV: str(results)})
        command = [playbook._ansible_playbook(), str(REPO_ROOT / "playbooks" / name), "-i", str(self.inventory), "-e", "@" + str(extra_file), *flags]
        return command, environment

    def run(self, name: str, *flags: str, **extra: Any) -> playbook.Result:
        command, environment = self.command(name, extra, flags)
        done = subprocess.run(command, cwd=self.workdir, env=environment, capture_output=True, text=True, timeout=300, check=False)
        result = playbook.Result(done.returncode, done.stdout, done.stderr)
        results = Path(environment[playbook.RESULTS_ENV])
        if results.is_file():
            result.results = json.loads(results.read_text(encoding="utf-8"))["results"]
        return result

    def deploy(self, version: str, **extra: Any) -> playbook.Result:
        return self.run("deploy.yml", deploy_artifact=self.artifacts[version], **extra)

    # Looking at the deploy root and the edge

    def current(self) -> str:
        return os.readlink(self.root / "current").split("/")[-1]

    def releases(self) -> list[str]:
        return sorted(entry.name for entry in (self.root / "releases").iterdir())

    def log(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.root / "releases.log").read_text(encoding="utf-8").splitlines() if line.strip()]

    def bad(self, release: str) -> bool:
        return (self.root / "releases" / release / "BAD_RELEASE").exists()

    def serving(self) -> dict[str, Any]:
        with self.lab.edge_client(timeout=10) as web:
            answer = web.get("https://%s/healthz" % HOST)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a refused run must leave as it was."""
        return (self.current(), self.releases(), (self.root / "releases.log").read_bytes(), (self.root / ".deploy.lock").exists(),
                sorted(path.name for path in self.root.iterdir()))

    def supervisorctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.root / "server" / "supervisord.conf"), *args],
                              capture_output=True, text=True, timeout=60, check=False)


class Load:
    """About LOAD_RATE requests a second to the edge, in a thread, until stopped (or LOAD_LIMIT seconds)."""

    def __init__(self, lab: Lab, url: str):
        self.lab = lab
        self.url = url
        self.ok = 0
        self.failed: Counter[str] = Counter()
        self.releases: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deploy-load", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_LIMIT
        due = time.monotonic()
        with self.lab.edge_client(timeout=10) as web:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    answer = web.get(self.url)
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    self.failed[type(exc).__name__] += 1
                else:
                    if answer.status_code == 200:
                        self.ok += 1
                        self.releases[answer.headers.get("x-app-release", "?")] += 1
                    else:
                        self.failed["HTTP %d" % answer.status_code] += 1
                due += 1.0 / LOAD_RATE
                self._stop.wait(max(0.0, due - time.monotonic()))


@pytest.fixture(scope="module")
def deployment(lab: Lab, tmp_path_factory: pytest.TempPathFactory):
    lab.add_zone(ZONE)
    lab.seed_records(ZONE, [{"type": "A", "name": "app", "content": "127.0.0.1", "proxied": True, "ttl": 1}])
    made = Deployment(tmp_path_factory.mktemp("deploy"), lab)
    lab.set_origin_upstream(made.port)
    yield made
    lab.set_origin_upstream(None)
    if (made.root / "server" / "supervisord.conf").exists():
        made.supervisorctl("shutdown")
    lab.delete_zone(ZONE)


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """What the tests of the sequence hand on: release names per version, the load generator."""
    return {}


def test_deploy_v1_v2_v3_under_load(deployment: Deployment, state: dict[str, Any]):
    preview = deployment.run("deploy.yml", "--check", "--diff", deploy_artifact=deployment.artifacts["v1"])
    assert preview.rc == 0, preview.output[-4000:]
    assert "would deploy 20" in preview.output and "replacing nothing" in preview.output
    assert not deployment.root.exists() or not any((deployment.root / "releases").glob("*")), "check mode writes no release"

    first = deployment.deploy("v1")
    assert first.rc == 0, first.output[-4000:]
    state["v1"] = deployment.current()
    assert deployment.serving()["release"] == state["v1"]
    assert deployment.serving()["version"] == "1.0.1"

    state["load"] = Load(deployment.lab, "https://%s/" % HOST).start()
    for version in ("v2", "v3"):
        result = deployment.deploy(version)
        assert result.rc == 0, result.output[-4000:]
        state[version] = deployment.current()
        assert deployment.serving()["release"] == state[version] != state["v1"]
    assert len({state["v1"], state["v2"], state["v3"]}) == 3
    actions = [(entry["action"], entry["release"]) for entry in deployment.log()]
    assert actions == [("deploy", state["v1"]), ("activate", state["v1"]), ("deploy", state["v2"]), ("activate", state["v2"]),
                       ("deploy", state["v3"]), ("activate", state["v3"])]
    activations = [entry for entry in deployment.log() if entry["action"] == "activate"]
    assert [entry["schema_version"] for entry in activations] == ["0001", "0002", "0002"]
    assert all(' 200 with {"release": "%s", "status": "ok"}' % entry["release"] in entry["health"] for entry in activations), activations
    assert (deployment.root / "releases" / state["v3"] / ".env").resolve() == deployment.root / "shared" / ".env"
    assert oct((deployment.root / "shared" / ".env").stat().st_mode & 0o777) == "0o600"
    assert not list(deployment.root.glob(".deploy-artifact*")), "the copied artifact is removed"
    assert deployment.secret not in first.output + result.output

    # The revision already serves: nothing is deployed, nothing changes.
    before = deployment.snapshot()
    preview = deployment.run("deploy.yml", "--check", "--diff", deploy_artifact=deployment.artifacts["v1"])
    assert preview.rc == 0 and "would deploy 20" in preview.output and "replacing %s" % state["v3"] in preview.output, preview.output[-4000:]
    assert deployment.snapshot() == before
    log = deployment.log()
    again = deployment.deploy("v3")
    assert again.rc == 0, again.output[-4000:]
    assert deployment.current() == state["v3"] and deployment.log() == log
    assert [entry["task"] for entry in again.results if entry["status"] == "changed"] == []


def test_v4_failing_before_the_switch_leaves_v3_serving(deployment: Deployment, state: dict[str, Any]):
    failing = deployment.deploy("v4")
    assert failing.rc != 0
    state["v4"] = next(name for name in deployment.releases() if name not in state.values())
    assert "failed its health check on the side port before the switch" in failing.output, failing.output[-4000:]
    assert "answered 503" in failing.output
    assert deployment.current() == state["v3"] and deployment.serving()["release"] == state["v3"]
    assert deployment.bad(state["v4"])
    assert not (deployment.root / ".deploy.lock").exists()
    assert "RUNNING" not in deployment.supervisorctl("status", "app-candidate").stdout
    marked = [entry for entry in deployment.log() if entry["release"] == state["v4"]]
    assert [entry["action"] for entry in marked] == ["deploy", "bad"] and "503" in marked[-1]["health"]


def test_v5_failing_behind_the_edge_is_switched_back(deployment: Deployment, state: dict[str, Any]):
    failing = deployment.deploy("v5")
    assert failing.rc != 0
    state["v5"] = next(name for name in deployment.releases() if name not in state.values())
    assert "failed after the switch" in failing.output and "Switched back to %s, which is healthy" % state["v3"] in failing.output, \
        failing.output[-4000:]
    assert deployment.current() == state["v3"] and deployment.serving()["release"] == state["v3"]
    assert deployment.bad(state["v5"])
    actions = [(entry["action"], entry["release"]) for entry in deployment.log()][-4:]
    assert actions == [("deploy", state["v5"]), ("activate", state["v5"]), ("rollback", state["v3"]), ("bad", state["v5"])]
    assert not (deployment.root / ".deploy.lock").exists()


def test_two_rollbacks_land_on_v1_whatever_was_written_into_old_releases(deployment: Deployment, state: dict[str, Any]):
    # ansistrano picks the rollback target by mtime: this write would send it to v1 first.
    old = deployment.root / "releases" / state["v1"]
    (old / "log-written-by-cron.txt").write_text("a cron job wrote here\n", encoding="utf-8")
    future = time.time() + 86400
    os.utime(old, (future, future))

    first = deployment.run("rollback.yml")
    assert first.rc == 0, first.output[-4000:]
    assert deployment.current() == state["v2"] and deployment.serving()["release"] == state["v2"]
    assert deployment.bad(state["v3"])
    summary = first.task("launchready.core.deploy : Say what happened")["msg"].splitlines()
    assert summary[0] == "was serving: %s (now marked bad)" % state["v3"], summary
    assert summary[1] == "now serving: %s, schema 0002" % state["v2"], summary
    assert summary[2].startswith("health:      OK - https://%s/healthz 200" % HOST), summary

    # v1 expects schema 0001; v2 migrated the database to 0002.
    before = deployment.snapshot()
    refused = deployment.run("rollback.yml")
    assert refused.rc != 0
    assert "expects database schema 0001, older than the database's 0002" in refused.output, refused.output[-3000:]
    assert deployment.snapshot() == before
    second = deployment.run("rollback.yml", allow_schema_mismatch=True)
    assert second.rc == 0, second.output[-4000:]
    assert "allowed by allow_schema_mismatch" in second.output
    assert deployment.current() == state["v1"] and deployment.serving()["release"] == state["v1"]
    assert deployment.bad(state["v2"]) and not deployment.bad(state["v1"])
    rollbacks = [(entry["release"], entry["previous"]) for entry in deployment.log() if entry["action"] == "rollback"]
    assert rollbacks == [(state["v3"], state["v5"]), (state["v2"], state["v3"]), (state["v1"], state["v2"])]


def test_refused_rollbacks_change_nothing_and_no_request_failed(deployment: Deployment, state: dict[str, Any]):
    before = deployment.snapshot()
    nothing_left = deployment.run("rollback.yml")
    assert nothing_left.rc != 0
    assert "no good release is left before %s" % state["v1"] in nothing_left.output, nothing_left.output[-3000:]
    assert deployment.snapshot() == before

    unknown = deployment.run("rollback.yml", rollback_to="20991231T000000Z-0000000")
    assert unknown.rc != 0
    assert "release 20991231T000000Z-0000000 does not exist" in unknown.output, unknown.output[-3000:]
    assert deployment.snapshot() == before

    load: Load = state.pop("load")
    load.stop()
    assert load.ok > 500, (load.ok, load.failed)
    assert dict(load.failed) == {}, "requests failed during deploys and rollbacks: %s (of %d)" % (dict(load.failed), load.ok)
    assert {state["v1"], state["v2"], state["v3"], state["v5"]} <= set(load.releases), load.releases


def test_a_concurrent_deploy_is_refused_and_a_killed_one_cleaned_up(deployment: Deployment, state: dict[str, Any]):
    slow_deploy = {"deploy_artifact": deployment.artifacts["v6"], "deploy_build_tasks": str(deployment.base / "hooks" / "slow_build.yml")}
    command, environment = deployment.command("deploy.yml", slow_deploy)
    slow = subprocess.Popen(command, cwd=deployment.workdir, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        unfinished: list[Path] = []
        while not unfinished and time.monotonic() < deadline and slow.poll() is None:
            time.sleep(0.5)
            unfinished = [path for path in (deployment.root / "releases").glob("*/DEPLOY_UNFINISHED") if path.parent.name not in state.values()]
        assert unfinished, "the slow deploy never prepared its release"
        v6 = unfinished[0].parent.name
        assert (deployment.root / ".deploy.lock").is_dir()

        before = deployment.snapshot()
        concurrent = deployment.deploy("v7")
        assert concurrent.rc != 0
        assert "another deploy holds the lock" in concurrent.output and "e2e" in concurrent.output, concurrent.output[-3000:]
        rollback = deployment.run("rollback.yml", rollback_to=state["v3"])
        assert rollback.rc != 0 and "another deploy holds the lock" in rollback.output, rollback.output[-3000:]
        assert deployment.snapshot() == before
        assert slow.poll() is None, "the first deploy goes on"
    finally:
        os.killpg(slow.pid, signal.SIGKILL)
        slow.wait(timeout=30)

    taken = deployment.deploy("v7", deploy_force_unlock=True, deploy_keep_releases=1)
    assert taken.rc == 0, taken.output[-4000:]
    v7 = deployment.current()
    assert v7 not in state.values() and deployment.serving()["release"] == v7
    assert "force_unlock: took over the deploy lock" in taken.output
    assert v6 not in deployment.releases(), "the killed run's unfinished release is removed"
    assert deployment.releases() == sorted([v7, state["v1"]]), "keep_releases=1 keeps the current and the previous good release"
    assert not (deployment.root / ".deploy.lock").exists()
    assert not list(deployment.root.glob(".deploy-artifact*"))


def test_a_missing_artifact_changes_nothing(deployment: Deployment):
    before = deployment.snapshot()
    missing = deployment.run("deploy.yml", deploy_artifact=str(deployment.base / "artifacts" / "nowhere"))
    assert missing.rc != 0 and "does not exist on the controller" in missing.output, missing.output[-3000:]
    assert deployment.snapshot() == before
