# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long a deploy and a rollback take, and how many requests fail meanwhile, against the lab.

playbooks/deploy.yml and playbooks/rollback.yml run as a user runs them (ansible-playbook, one
`app` host: this machine, pipelining on) on a deploy root of their own: the lab's origin app
(tests/lab/origin_app) in versions made here, under supervisord and gunicorn on free ports, behind
the lab's edge. One untimed deploy starts the app server; then five deploys (v1 to v5) and five
rollbacks (back to v0, one release at a time) are timed, while a thread asks the edge about 50
times a second. Run from the repository root: `.venv/bin/python -m benchmarks.deploy`.

Prints one line per run, then `RESULT deploy_s=X rollback_s=Y failed_requests=N` as the last line
(medians of the five runs; failed requests over the whole load: any error or non-200 answer).
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from tests.lab.client import Lab

ROOT = pathlib.Path(__file__).resolve().parent.parent
ORIGIN_APP = ROOT / "tests" / "lab" / "origin_app"
ZONE = "deploy.bench.test"
HOST = "app." + ZONE
RUNS = 5
LOAD_RATE = 50
LOAD_LIMIT = 1800.0

ANSIBLE_CFG = """[defaults]
stdout_callback = ansible.builtin.default
retry_files_enabled = false
nocows = true

[connection]
pipelining = true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Load:
    """About LOAD_RATE requests a second to the edge, in a thread; counts answers per status and release."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.answers: Counter[str] = Counter()
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load", daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_LIMIT
        due = time.monotonic()
        with self.lab.edge_client(timeout=10) as web:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    status = web.get("https://%s/" % HOST).status_code
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    self.answers[type(exc).__name__] += 1
                    self.failed += 1
                else:
                    self.answers[str(status)] += 1
                    self.failed += status != 200
                due += 1.0 / LOAD_RATE
                self._stop.wait(max(0.0, due - time.monotonic()))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def make_artifact(folder: pathlib.Path, version: str) -> str:
    shutil.copytree(ORIGIN_APP, folder / "origin_app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (folder / "origin_app" / "VERSION").write_text(version + "\n", encoding="utf-8")
    return str(folder) + "/"


def setup(lab: Lab, base: pathlib.Path) -> dict:
    root = base / "srv"
    port, side_port = free_port(), free_port()
    inventory = base / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text("all:\n  children:\n    app:\n      hosts:\n        localhost:\n          ansible_connection: local\n"
                                         "          ansible_python_interpreter: %s\n" % sys.executable, encoding="utf-8")
    settings = {
        "deploy_root": str(root), "deploy_service_manager": "supervisord", "deploy_python": sys.executable,
        "deploy_app_module": "origin_app.wsgi:application", "deploy_port": port, "deploy_side_port": side_port,
        "deploy_gunicorn_graceful_timeout": 5, "deploy_health_json": {"status": "ok"}, "deploy_health_release_key": "release",
        "deploy_public_url": "https://%s/healthz" % HOST,
        "deploy_public_resolve": ["*:80:127.0.0.1:%d" % lab.edge_http_port, "*:443:127.0.0.1:%d" % lab.edge_https_port],
        "deploy_public_ca_path": str(lab.edge_ca_file),
        "deploy_env_values": {"production": {"SECRET_KEY": secrets.token_urlsafe(16)}},
        "deploy_deployer": "bench",
        # Every release stays a rollback target for the five rollbacks.
        "deploy_keep_releases": 2 * RUNS + 2,
    }
    (inventory / "group_vars" / "all" / "main.yml").write_text(json.dumps(settings, indent=1), encoding="utf-8")
    (base / "ansible.cfg").write_text(ANSIBLE_CFG, encoding="utf-8")
    lab.add_zone(ZONE)
    lab.seed_records(ZONE, [{"type": "A", "name": "app", "content": "127.0.0.1", "proxied": True, "ttl": 1}])
    lab.set_origin_upstream(port)
    artifacts = [make_artifact(base / "artifacts" / ("v%d" % index), "2.0.%d" % index) for index in range(RUNS + 1)]
    return {"base": base, "root": root, "inventory": inventory, "artifacts": artifacts}


FLOOR = """
- name: As many module runs as a deploy or a rollback makes, doing nothing
  hosts: app
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
      loop: "{{ range(tasks | int) | list }}"
"""


def run(setting: dict, playbook: str, label: str, *extra: str) -> tuple[float, float]:
    """Run one playbook; return (wall seconds, CPU seconds of everything it started)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(setting["base"] / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_LOCAL_TEMP=str(setting["base"] / "tmp"))
    path = playbook if os.path.isabs(playbook) else str(ROOT / "playbooks" / playbook)
    command = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), path, "-i", str(setting["inventory"]), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(command, cwd=setting["base"], env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit("%s failed:\n%s\n%s" % (label, done.stdout[-4000:], done.stderr[-2000:]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    current = os.readlink(setting["root"] / "current").split("/")[-1] if (setting["root"] / "current").is_symlink() else "-"
    print("%-16s wall_s=%-7.2f cpu_s=%-7.2f now serving %s" % (label, wall, cpu, current), flush=True)
    return wall, cpu


def main() -> None:
    if not (ROOT / ".collections" / "ansible_collections" / "launchready" / "core").exists():
        raise SystemExit("run `make link` first: playbooks find launchready.core through .collections")
    print("load average before: %s" % " ".join("%.2f" % value for value in os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory(prefix="lr-bench-deploy-") as tmp:
        lab = Lab.start(pathlib.Path(tmp) / "lab")
        setting = None
        try:
            setting = setup(lab, pathlib.Path(tmp))
            run(setting, "deploy.yml", "warm-up v0", "-e", "deploy_artifact=%s" % setting["artifacts"][0])
            with Load(lab) as load:
                deploys = [run(setting, "deploy.yml", "deploy v%d" % index, "-e", "deploy_artifact=%s" % setting["artifacts"][index])
                           for index in range(1, RUNS + 1)]
                rollbacks = [run(setting, "rollback.yml", "rollback %d" % index) for index in range(1, RUNS + 1)]
            floor = pathlib.Path(tmp) / "floor.yml"
            floor.write_text(FLOOR, encoding="utf-8")
            # What ansible-playbook costs here for that many module runs, whatever they do.
            floors = {count: run(setting, str(floor), "floor %d pings" % count, "-e", "tasks=%d" % count) for count in (5, 1)}
            requests = sum(load.answers.values())
            print("load: %d requests through the edge (%.0f a second), answers %s" % (
                requests, requests / max(1.0, sum(wall for wall, _cpu in deploys + rollbacks)), dict(load.answers)), flush=True)
        finally:
            if setting and (setting["root"] / "server" / "supervisord.conf").exists():
                subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(setting["root"] / "server" / "supervisord.conf"), "shutdown"],
                               capture_output=True, check=False)
            lab.stop()
    print("load average after: %s" % " ".join("%.2f" % value for value in os.getloadavg()), flush=True)
    print("median deploy: wall %.2f s, cpu %.2f s; median rollback: wall %.2f s, cpu %.2f s" % (
        statistics.median(wall for wall, _cpu in deploys), statistics.median(cpu for _wall, cpu in deploys),
        statistics.median(wall for wall, _cpu in rollbacks), statistics.median(cpu for _wall, cpu in rollbacks)))
    print("ansible-playbook alone: 5 module runs (a deploy's on the host) %.2f s, 1 (a rollback's) %.2f s" % (floors[5][0], floors[1][0]))
    print("RESULT deploy_s=%.2f rollback_s=%.2f failed_requests=%d" % (
        statistics.median(wall for wall, _cpu in deploys), statistics.median(wall for wall, _cpu in rollbacks), load.failed))


if __name__ == "__main__":
    main()
