# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Starting, finding and stopping the lab process (used by ``python -m tests.lab`` and by client.Lab)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.lab.config import DEFAULT_CONFIG, ENDPOINTS_FILE, LOG_FILE, REPO_ROOT

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class LabProcessError(RuntimeError):
    pass


def read_endpoints(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / ENDPOINTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path("/proc/%d/stat" % pid).read_text(encoding="utf-8")
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def answers(endpoints: dict[str, Any], timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(endpoints["control_url"] + "/health", timeout=timeout) as response:
            return response.status == 200
    except (OSError, KeyError, ValueError):
        return False


def running(state_dir: Path) -> dict[str, Any] | None:
    """The endpoints of the lab running for ``state_dir``, or None."""
    endpoints = read_endpoints(state_dir)
    if endpoints and alive(int(endpoints.get("pid", 0))) and answers(endpoints):
        return endpoints
    return None


def start(state_dir: Path, config_path: Path | None = None, owner_pid: int | None = None) -> tuple[dict[str, Any], subprocess.Popen | None]:
    """Start the lab in the background (or find it already running); returns its endpoints and the child, if started.

    With ``owner_pid`` the lab stops by itself once that process is gone.
    """
    state_dir = state_dir.resolve()
    existing = running(state_dir)
    if existing:
        return existing, None
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        (state_dir / ENDPOINTS_FILE).unlink()
    config_path = (config_path or DEFAULT_CONFIG).resolve()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.lab", "serve", "--state-dir", str(state_dir), "--config", str(config_path)]
    if owner_pid is not None:
        command += ["--exit-with-pid", str(owner_pid)]
    with open(state_dir / LOG_FILE, "ab") as log:
        child = subprocess.Popen(command, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise LabProcessError("the lab exited with status %s while starting:\n%s" % (child.returncode, log_tail(state_dir)))
        endpoints = read_endpoints(state_dir)
        if endpoints and endpoints.get("pid") == child.pid and answers(endpoints):
            return endpoints, child
        time.sleep(0.05)
    child.kill()
    child.wait()
    raise LabProcessError("the lab did not answer within %d seconds:\n%s" % (START_TIMEOUT, log_tail(state_dir)))


def stop(state_dir: Path, child: subprocess.Popen | None = None) -> bool:
    """Stop the lab of ``state_dir``; False if none was running."""
    state_dir = state_dir.resolve()
    endpoints = read_endpoints(state_dir)
    if not endpoints:
        return False
    pid = int(endpoints["pid"])
    was_running = alive(pid)
    if was_running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while alive(pid) and time.monotonic() < deadline:
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=0.05)
            else:
                time.sleep(0.05)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(OSError):
        (state_dir / ENDPOINTS_FILE).unlink()
    return was_running


def log_tail(state_dir: Path, lines: int = 40) -> str:
    try:
        return "\n".join((state_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
