# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m tests.lab serve``: run the lab in the foreground until SIGTERM or SIGINT.

It serves the Cloudflare API emulator and control API (HTTP), authoritative DNS, the edge (HTTP
and HTTPS) and the origin (gunicorn running origin_app/, and its TLS front).

With ``--exit-with-pid PID`` it also stops when that process is gone, so a test run that dies
does not leave its lab behind.

Binds free ports on 127.0.0.1, then writes ``endpoints.json`` into the state directory (and
rewrites it when zones come and go); removes it again on a clean stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Any

from tests.lab import config as lab_config
from tests.lab.api import PREFIX as API_PREFIX
from tests.lab.api import Api
from tests.lab.config import ENDPOINTS_FILE, STATE_FILE
from tests.lab.control import PREFIX as CONTROL_PREFIX
from tests.lab.control import Control
from tests.lab.dns_server import DnsServer
from tests.lab.edge import Edge
from tests.lab.faults import FaultInjector
from tests.lab.http_server import LabHTTPServer
from tests.lab.origin import Origin
from tests.lab.pki import LabPki
from tests.lab.process import alive
from tests.lab.recorder import Recorder
from tests.lab.schema import OpenApi
from tests.lab.state import LabState, write_json_atomic

HOST = "127.0.0.1"


def serve(state_dir: Path, config_path: Path | None = None, owner_pid: int | None = None) -> int:
    """Serve until SIGTERM/SIGINT, or until process ``owner_pid`` (when given) is gone."""
    config = lab_config.load(config_path)
    state_dir.mkdir(parents=True, exist_ok=True)
    state = LabState(config, state_dir / STATE_FILE)
    state.load_or_reset()
    recorder, faults = Recorder(), FaultInjector()
    state.pki = LabPki(state_dir)
    origin = Origin(state_dir, state.pki, HOST)
    origin.start()
    edge = Edge(state, state.pki, origin.ports, HOST)
    edge.start()

    dns = DnsServer(state, config["edge"], HOST)
    dns_port = dns.start()
    endpoints: dict[str, Any] = {}
    control = Control(state, recorder, faults, lambda: dict(endpoints, zones=state.zone_ids()), edge=edge, origin=origin)
    http = LabHTTPServer((HOST, 0), Api(state, OpenApi(), recorder, faults), control)
    base = "http://%s:%d" % (HOST, http.server_address[1])
    endpoints.update({
        "pid": os.getpid(),
        "api_base_url": base + API_PREFIX,
        "control_url": base + CONTROL_PREFIX,
        "dns": {"host": HOST, "port": dns_port},
        "edge": edge.endpoints(config["edge"]),
        "origin": {"http_port": origin.http_port, "https_port": origin.https_port, "ca_file": str(state.pki.origin_ca.cert_file)},
        "state_file": str(state.state_file),
    })
    endpoints_file = state_dir / ENDPOINTS_FILE

    def write_endpoints(current: LabState) -> None:
        write_json_atomic(endpoints_file, dict(endpoints, zones=current.zone_ids()))

    state.listeners.append(write_endpoints)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop.set())
    threading.Thread(target=http.serve_forever, args=(0.1,), name="lab-http", daemon=True).start()
    write_endpoints(state)
    try:
        while not stop.wait(0.5):
            if owner_pid is not None and not alive(owner_pid):
                break
    finally:
        stopping_origin = threading.Thread(target=origin.stop, name="lab-origin-stop")  # gunicorn takes the longest
        stopping_origin.start()
        http.shutdown()
        http.server_close()
        edge.stop()
        dns.stop()
        stopping_origin.join()
        state.save()
        with contextlib.suppress(OSError):
            endpoints_file.unlink()
    return 0
