# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-process HTTP and HTTPS servers on 127.0.0.1 for the http_check tests, with a throwaway PKI.

    pki = Pki(tmp_path)                                   # a CA made now, its bundle in pki.ca_file
    site = Site.start(tls=pki.leaf(["www.example.test"]))  # or Site.start() for plain HTTP
    site.route("/old", 301, [("Location", "https://www.example.test/new")])
    site.requests()   # every request: method, path, Host header, TLS server name (SNI)
    site.stop()

Each server answers from its routes (``host`` narrows a route to one Host header) and 404 for the
rest; a route's ``body`` may be a callable of the request, for answers that depend on it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass
class Leaf:
    """A server certificate and key in one PEM file (chain included), ready for load_cert_chain."""

    chain_file: Path
    names: list[str]
    not_after: datetime.datetime


class Pki:
    """A CA made for one test; ``leaf()`` issues server certificates from it (or from a stranger CA)."""

    def __init__(self, directory: Path, name: str = "Test Root CA"):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(days=1))
            .not_valid_after(_now() + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                              key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = directory / ("%s.pem" % name.replace(" ", "-").lower())
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._count = 0

    def leaf(self, names: list[str], days: float = 90, ips: list[str] | None = None, expired: bool = False) -> Leaf:
        """A certificate for ``names`` (and ``ips``), valid ``days`` from now (or expired yesterday)."""
        key = ec.generate_private_key(ec.SECP256R1())
        not_before = _now() - datetime.timedelta(days=30 if expired else 1)
        not_after = _now() - datetime.timedelta(days=1) if expired else _now() + datetime.timedelta(days=days)
        alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips or []]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names or ips or ["leaf"])[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self._count += 1
        chain_file = self.directory / ("leaf-%d-%s.pem" % (self._count, os.getpid()))
        chain_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + _key_pem(key))
        return Leaf(chain_file, names, not_after)


@dataclass
class Route:
    status: int
    headers: list[tuple[str, str]]
    body: bytes | Callable[[dict], bytes]


@dataclass
class Site:
    """One server; ``url(path, host)`` builds its URLs, ``requests()`` tells what it was asked."""

    server: ThreadingHTTPServer
    scheme: str
    routes: dict[tuple[str | None, str], Route] = field(default_factory=dict)
    seen: list[dict] = field(default_factory=list)
    handshakes: int = 0  # TLS handshakes that succeeded
    handshakes_refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, tls: Leaf | None = None, min_version: str | None = None) -> Site:
        """Serve HTTP, or HTTPS with ``tls``; ``min_version`` (``1.0`` ... ``1.3``) is the oldest TLS version the server accepts."""
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls.chain_file))
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                versions = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
                context.minimum_version = versions[min_version or "1.2"]
            context.sni_callback = _remember_server_name
        server = _Server(("127.0.0.1", 0), _Handler, context)
        site = cls(server, "https" if context else "http")
        server.site = site
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return site

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.port

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return "%s://%s:%d%s" % (self.scheme, host, self.port, path)

    def route(self, path: str, status: int = 200, headers: list[tuple[str, str]] | None = None,
              body: bytes | str | Callable[[dict], bytes] = b"", host: str | None = None) -> None:
        self.routes[(host, path)] = Route(status, list(headers or []), body.encode("utf-8") if isinstance(body, str) else body)

    def requests(self) -> list[dict]:
        return list(self.seen)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _remember_server_name(ssl_socket, server_name, _context):
    ssl_socket.sni_seen = server_name


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: Site

    def __init__(self, address, handler, context: ssl.SSLContext | None):
        self.context = context
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        # Headers and body go out in separate writes: without this, Nagle's algorithm holds the body for a delayed ACK (40 ms).
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(5)
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self.site.lock:
                self.site.handshakes_refused += 1
            return
        with self.site.lock:
            self.site.handshakes += 1
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        """Quiet: clients that hang up early are part of the tests."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """No logging to stderr."""

    def _answer(self) -> None:
        site = self.server.site
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        request = {
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "sni": getattr(self.connection, "sni_seen", None),
            "user_agent": self.headers.get("User-Agent"),
            "body": self.rfile.read(length) if length else b"",
        }
        with site.lock:
            site.seen.append(request)
        route = site.routes.get((host, self.path)) or site.routes.get((None, self.path)) or Route(404, [("Content-Type", "text/plain")], b"not found")
        body = route.body(request) if callable(route.body) else route.body
        self.send_response(route.status)
        for name, value in route.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _answer
