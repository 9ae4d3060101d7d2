# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The origin the lab runs: the demo app (origin_app/) under gunicorn, and a TLS front for it.

- **HTTP** (``http_port``): gunicorn itself (threaded workers, keep-alive), started by the lab on
  a socket the lab bound (``--bind fd://N``: no port race). gunicorn's logs go to
  ``<state dir>/origin/``. Without gunicorn installed, a standard-library WSGI server stands in.
- **HTTPS** (``https_port``): the lab terminates TLS and passes the bytes on to gunicorn, like the
  nginx in front of a real app server. Its certificate, by default, is one the lab's Origin CA
  issues for whatever name the client asks for (SNI), so SSL mode ``strict`` works for every
  zone; a test installs its own certificate and key (``PUT /__lab/origin/certificate``) to see
  what a wrong one does, and removes it again (``DELETE``) to go back to the default.
- **Flags** (``PUT /__lab/origin/flags``): the launch problems the app shows (stale preview links,
  mixed content, slowness), written to the file the app reads on each request.
- **Upstream** (``PUT /__lab/origin/upstream {"port": N}``): both the edge and the TLS front go
  to another HTTP server on 127.0.0.1:N (e.g. the app as the deploy role runs it); ``DELETE``
  goes back to the lab's gunicorn.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.lab.config import LAB_DIR
from tests.lab.pki import LabPki, server_context
from tests.lab.state import write_json_atomic

DEFAULT_FLAGS = {"stale_preview_links": True, "mixed_content": True, "slow_ms": 0}
APP_ENV = {"APP_RELEASE": "lab", "SECRET_KEY": "lab-session-key-not-a-secret", "WEBHOOK_SECRET": "lab-webhook-secret-not-a-secret",
           "API_TOKEN": "lab-api-token-not-a-secret"}
RELAY_IDLE = 60.0
STOP_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the gunicorn child: get SIGTERM when the lab dies, even by SIGKILL (Linux only; elsewhere nothing)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Origin:
    def __init__(self, state_dir: Path, pki: LabPki, host: str = "127.0.0.1"):
        self.directory = state_dir / "origin"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.host = host
        self.flags_file = self.directory / "flags.json"
        self._lock = threading.Lock()
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._installed: ssl.SSLContext | None = None
        self._upstream_port: int | None = None
        self._process: subprocess.Popen | None = None
        self._fallback: socketserver.BaseServer | None = None
        self._app_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._app_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._app_socket.bind((host, 0))
        self._app_socket.listen(128)
        self.http_port = self._app_socket.getsockname()[1]
        self.front = _TlsFront((host, 0), self)
        self.https_port = self.front.server_address[1]
        self.set_flags(DEFAULT_FLAGS)

    # Life cycle

    def start(self) -> None:
        """Start gunicorn and the TLS front. Call it from the lab's main thread: the child's parent-death
        signal fires when the thread that started it ends."""
        try:
            import gunicorn  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        except ImportError:
            self._start_fallback()
        else:
            self._start_gunicorn()
        threading.Thread(target=self.front.serve_forever, args=(0.1,), name="lab-origin-tls", daemon=True).start()

    def _start_gunicorn(self) -> None:
        app_dir = LAB_DIR / "origin_app"
        self._app_socket.set_inheritable(True)
        env = dict(os.environ, ORIGIN_FLAGS_FILE=str(self.flags_file), **APP_ENV)
        command = [sys.executable, "-m", "gunicorn", "-c", str(app_dir / "gunicorn.conf.py"), "--bind", "fd://%d" % self._app_socket.fileno(),
                   "--chdir", str(LAB_DIR), "--no-control-socket", "--access-logfile", str(self.directory / "access.log"),
                   "--error-logfile", str(self.directory / "error.log"), "--pid", str(self.directory / "gunicorn.pid"),
                   "origin_app.wsgi:application"]
        # preexec_fn only sets the parent-death signal; the lab starts no threads that could hold locks before this point.
        self._process = subprocess.Popen(  # pylint: disable=subprocess-popen-preexec-fn
            command, env=env, cwd=str(LAB_DIR), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(self._app_socket.fileno(),), preexec_fn=_die_with_parent)

    def _start_fallback(self) -> None:
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer  # pylint: disable=import-outside-toplevel

        os.environ.update(APP_ENV, ORIGIN_FLAGS_FILE=str(self.flags_file))
        sys.path.insert(0, str(LAB_DIR))
        from origin_app.wsgi import application  # pylint: disable=import-outside-toplevel,import-error

        class _Quiet(WSGIRequestHandler):
            def log_message(self, format, *args) -> None:  # pylint: disable=redefined-builtin
                """Quiet, like the rest of the lab."""

        class _Server(socketserver.ThreadingMixIn, WSGIServer):
            daemon_threads = True

        server = _Server((self.host, 0), _Quiet, bind_and_activate=False)
        server.socket.close()
        server.socket = self._app_socket
        server.server_address = self._app_socket.getsockname()
        server.setup_environ()
        server.set_app(application)
        self._fallback = server
        threading.Thread(target=server.serve_forever, args=(0.1,), name="lab-origin-wsgiref", daemon=True).start()

    def stop(self) -> None:
        self.front.shutdown()
        self.front.server_close()
        if self._fallback is not None:
            self._fallback.shutdown()
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGQUIT)  # gunicorn: quick shutdown
            try:
                self._process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._app_socket.close()

    @property
    def gunicorn_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # What the edge and the control API use

    def ports(self) -> tuple[int, int]:
        """(HTTP port, HTTPS port) the edge connects to."""
        with self._lock:
            return self._upstream_port or self.http_port, self.https_port

    def upstream_port(self) -> int:
        with self._lock:
            return self._upstream_port or self.http_port

    def set_upstream(self, port: int | None) -> None:
        with self._lock:
            self._upstream_port = port

    def flags(self) -> dict[str, Any]:
        return json.loads(self.flags_file.read_text(encoding="utf-8"))

    def set_flags(self, flags: dict[str, Any]) -> dict[str, Any]:
        unknown = set(flags) - set(DEFAULT_FLAGS)
        if unknown:
            raise ValueError("unknown origin flags: %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(DEFAULT_FLAGS)))
        current = dict(DEFAULT_FLAGS)
        if self.flags_file.exists():
            current.update(self.flags())
        current.update(flags)
        write_json_atomic(self.flags_file, current)
        return current

    def install_certificate(self, cert_pem: str, key_text: str) -> None:
        """Serve this certificate (with its chain, if given after it) and key for every name; ValueError if they do not load."""
        try:
            context = server_context(cert_pem, key_text, self.directory)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError("the certificate and key do not load: %s" % exc) from None
        with self._lock:
            self._installed = context

    def default_certificate(self) -> None:
        with self._lock:
            self._installed = None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            installed = self._installed is not None
        return {"http_port": self.http_port, "https_port": self.https_port, "upstream_port": self.upstream_port(),
                "certificate": "installed" if installed else "default", "flags": self.flags(), "gunicorn_pid": self.gunicorn_pid,
                "ca_file": str(self.pki.origin_ca.cert_file)}

    def reset(self) -> None:
        self.default_certificate()
        self.set_upstream(None)
        write_json_atomic(self.flags_file, dict(DEFAULT_FLAGS))

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        name = (server_name or "origin.lab.test").lower()
        with self._lock:
            if self._installed is not None:
                return self._installed
            found = self._contexts.get(name)
        if found is None:
            found = server_context(*self.pki.origin_leaf([name]), self.directory)
            with self._lock:
                self._contexts[name] = found
        return found


class _TlsFront(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], origin: Origin):
        super().__init__(address, _Relay)
        self.origin = origin
        # Starts with a certificate for a client without SNI; the callback swaps in the one for the name asked.
        self.context = server_context(*origin.pki.origin_leaf(["origin.lab.test"]), origin.directory)
        self.context.sni_callback = self._pick

    def _pick(self, sock: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext) -> None:
        sock.context = self.origin.context_for(server_name)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: failed handshakes (a client refusing the certificate) are expected."""


class _Relay(socketserver.BaseRequestHandler):
    server: _TlsFront

    def handle(self) -> None:
        self.request.settimeout(10)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            client = self.server.context.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            with socket.create_connection(("127.0.0.1", self.server.origin.upstream_port()), timeout=10) as upstream:
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                _pump(client, upstream)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.close()


def _pump(client: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Copy bytes both ways in one thread (an SSL socket must not be read and written from two threads)."""
    client.settimeout(RELAY_IDLE)
    upstream.settimeout(RELAY_IDLE)
    while True:
        if client.pending():
            ready = [client]
        else:
            ready, _writable, _errors = select.select([client, upstream], [], [], RELAY_IDLE)
            if not ready:
                return
        for source in ready:
            data = source.recv(65536)
            if not data:
                return
            (upstream if source is client else client).sendall(data)
