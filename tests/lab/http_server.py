# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP server on loopback for the emulated API (``/client/v4``) and the control API (``/__lab``)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.lab import api as api_module
from tests.lab.api import Api, HttpAnswer
from tests.lab.control import PREFIX as CONTROL_PREFIX
from tests.lab.control import Control


class LabHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: Api, control: Control):
        super().__init__(address, _Handler)
        self.api = api
        self.control = control


class _Handler(BaseHTTPRequestHandler):
    server: LabHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "launchready-lab"

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path == api_module.PREFIX or url.path.startswith(api_module.PREFIX + "/"):
            answer = self.server.api.handle(self.command, url.path, url.query, self.headers, raw_body)
        elif url.path == CONTROL_PREFIX or url.path.startswith(CONTROL_PREFIX + "/"):
            answer = self.server.control.handle(self.command, url.path, raw_body)
        else:
            answer = HttpAnswer(404, {"Content-Type": "application/json"}, json.dumps({"error": "not found"}).encode("utf-8"))
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def log_message(self, format, *args) -> None:  # pylint: disable=redefined-builtin
        """Quiet: the request log lives in the recorder (without headers, which carry the token)."""
