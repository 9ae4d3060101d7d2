# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a playbook with ansible-playbook, the way a user does, and get every task's result back.

    result = run_playbook(PLAYBOOK, {"zone": "example.test", "token": token}, check=True, diff=True)
    assert result.rc == 0 and result.recap["changed"] == 1
    dns = result.task("Publish the records")        # the module's return values

Each run gets a fresh temporary directory holding the playbook, the extra vars (a JSON file
passed with ``-e @file``, so secrets never show on a command line), an ``ansible.cfg`` that
isolates the run from the user's configuration, and ``collections/ansible_collections/
launchready/core``: a symlink to this checkout, so ``launchready.core`` is the code under test.
Modules run with this Python (``ANSIBLE_PYTHON_INTERPRETER=sys.executable``), which has httpx.

Results are collected by a small callback plugin written into that directory: it records the
result of every task (ok, changed, failed, skipped, unreachable) and the play recap in a JSON
file. This works with ansible-core alone, also when a task fails and the play stops, where
registering a variable and copying it out would never run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_ENV = "LAUNCHREADY_E2E_RESULTS"

_CALLBACK = '''
from __future__ import annotations

import json
import os
from collections.abc import Mapping

from ansible.plugins.callback import CallbackBase


def _plain(value):
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "launchready_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.results = []
        self.item_statuses = {}

    @staticmethod
    def _parts(result):
        # ansible-core 2.19 made result, host and task public; older versions have only the _ names.
        outcome = getattr(result, "result", None)
        outcome = _plain(outcome if isinstance(outcome, Mapping) else result._result)
        return outcome, getattr(result, "host", None) or result._host, getattr(result, "task", None) or result._task

    def _record(self, result, status):
        outcome, host, task = self._parts(result)
        if status == "ok" and outcome.get("changed"):
            status = "changed"
        # ansible-core 2.21 drops each loop item's own failed/skipped flags from the task's result; put them back.
        statuses = self.item_statuses.pop((host.get_name(), task._uuid), [])
        for item, item_status in zip(outcome.get("results") or [], statuses):
            if isinstance(item, dict):
                item.setdefault("failed", item_status == "failed")
                item.setdefault("skipped", item_status == "skipped")
        self.results.append({"host": host.get_name(), "task": task.get_name(), "action": task.action, "status": status, "result": outcome})

    def _record_item(self, result, status):
        host, task = self._parts(result)[1:]
        self.item_statuses.setdefault((host.get_name(), task._uuid), []).append(status)

    def v2_runner_item_on_ok(self, result):
        self._record_item(result, "ok")

    def v2_runner_item_on_failed(self, result):
        self._record_item(result, "failed")

    def v2_runner_item_on_skipped(self, result):
        self._record_item(result, "skipped")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        hosts = {host: stats.summarize(host) for host in sorted(stats.processed)}
        with open(os.environ["%s"], "w", encoding="utf-8") as handle:
            json.dump({"hosts": _plain(hosts), "results": self.results}, handle)
''' % RESULTS_ENV

_ANSIBLE_CFG = """[defaults]
stdout_callback = ansible.builtin.default
callbacks_enabled = launchready_results
retry_files_enabled = false
host_key_checking = false
nocows = true
"""


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    recap: dict[str, int] = field(default_factory=dict)  # ok, changed, failed, unreachable, skipped, rescued, ignored
    results: list[dict[str, Any]] = field(default_factory=list)  # per task: host, task, action, status, result

    def task(self, name: str) -> dict[str, Any]:
        """The result of the last run of the task called ``name`` (what ``register`` would hold)."""
        for entry in reversed(self.results):
            if entry["task"] == name:
                return entry["result"]
        raise KeyError("no task %r ran; tasks that ran: %s" % (name, ", ".join(e["task"] for e in self.results)))

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_playbook(
    playbook_text_or_path: str | Path,
    extra_vars: dict[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> Result:
    """Run a playbook (YAML text, or the path of a file) against localhost; see the module docstring.

    ``env`` adds to (or, with a value of ``None``, removes from) the environment ansible-playbook
    runs in. ``CLOUDFLARE_API_TOKEN`` and ``ANSIBLE_*`` variables of the calling process are not
    passed on, so runs do not depend on the caller's shell.
    """
    workdir = Path(tempfile.mkdtemp(prefix="launchready-e2e-"))
    try:
        return _run(workdir, playbook_text_or_path, extra_vars or {}, check, diff, verbosity, env or {}, timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(workdir: Path, playbook, extra_vars, check, diff, verbosity, env, timeout) -> Result:
    collection = workdir / "collections" / "ansible_collections" / "launchready" / "core"
    collection.parent.mkdir(parents=True)
    collection.symlink_to(REPO_ROOT, target_is_directory=True)
    (workdir / "callbacks").mkdir()
    (workdir / "callbacks" / "launchready_results.py").write_text(_CALLBACK, encoding="utf-8")
    (workdir / "ansible.cfg").write_text(_ANSIBLE_CFG, encoding="utf-8")

    if isinstance(playbook, Path) or ("\n" not in str(playbook) and Path(str(playbook)).is_file()):
        playbook_path = Path(playbook).resolve()
    else:
        playbook_path = workdir / "playbook.yml"
        playbook_path.write_text(str(playbook), encoding="utf-8")
    vars_path = workdir / "extra_vars.json"
    vars_path.write_text(json.dumps(extra_vars), encoding="utf-8")
    vars_path.chmod(0o600)
    results_path = workdir / "results.json"

    command = [_ansible_playbook(), str(playbook_path), "-i", "localhost,", "-c", "local", "-e", "@" + str(vars_path)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    if verbosity:
        command.append("-" + "v" * verbosity)

    environment = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_") and key != "CLOUDFLARE_API_TOKEN"}
    environment.update(
        ANSIBLE_CONFIG=str(workdir / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(workdir / "collections"),
        ANSIBLE_CALLBACK_PLUGINS=str(workdir / "callbacks"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(workdir / "tmp"),
        ANSIBLE_REMOTE_TMP=str(workdir / "tmp"),
        **{RESULTS_ENV: str(results_path)},
    )
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value

    completed = subprocess.run(command, cwd=workdir, env=environment, capture_output=True, text=True, timeout=timeout, check=False)
    result = Result(completed.returncode, completed.stdout, completed.stderr)
    if results_path.is_file():
        collected = json.loads(results_path.read_text(encoding="utf-8"))
        result.results = collected["results"]
        totals: dict[str, int] = {}
        for summary in collected["hosts"].values():
            for key, count in summary.items():
                totals[key] = totals.get(key, 0) + count
        totals["failed"] = totals.pop("failures", 0)
        result.recap = totals
    return result


def _ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if not found:
        raise RuntimeError("ansible-playbook is not installed beside %s nor on PATH" % sys.executable)
    return found
