# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From the edge to the origin, by the zone's SSL mode, answering Cloudflare's 52x errors when that fails.

- ``off`` and ``flexible``: plain HTTP to the origin's HTTP port;
- ``full``: HTTPS to the origin's HTTPS port, any certificate accepted;
- ``strict``: HTTPS, and the certificate must be valid for the host name, unexpired, issued by the
  lab Origin CA (or the lab edge CA, standing for a public CA) and not revoked through the API.

Every lab origin is on loopback: a proxied record whose address is elsewhere (a documentation
address such as 192.0.2.1) cannot be reached (522 at once rather than after Cloudflare's 15 s), and
one that leads to a name outside the lab's zones has no address (530 with error 1016).

Connections are kept alive and reused, one pool per (port, SNI name, mode): a connection checked
for one host name is never used for another.

| status | Cloudflare's name | when |
|---|---|---|
| 521 | Web server is down | the origin refuses the connection |
| 522 | Connection timed out | the origin does not accept in time, or is not on loopback |
| 524 | A timeout occurred | the origin accepts but does not answer in time |
| 525 | SSL handshake failed | the TLS handshake with the origin fails |
| 526 | Invalid SSL certificate | strict mode and the origin's certificate is not valid for the host |
| 530 (1016) | Origin DNS error | the record leads to a name with no address |
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
POOL_SIZE = 8
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
                        "transfer-encoding", "upgrade", "proxy-connection"))


class OriginError(Exception):
    def __init__(self, status: int, title: str, detail: str, code: int | None = None):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code


@dataclass
class OriginAnswer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _Connection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with the visitor's host name as SNI (and, in strict mode, as the name checked)."""

    def __init__(self, port: int, server_name: str, context: ssl.SSLContext):
        super().__init__("127.0.0.1", port, timeout=CONNECT_TIMEOUT, context=context)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # the TCP connection only: the TLS wrapping follows, with our server name
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)  # type: ignore[attr-defined]


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


class Upstream:
    def __init__(self, ports: Callable[[], tuple[int, int]], trust_file: str, revoked: Callable[[], set[int]]):
        """``ports()`` gives the origin's (HTTP port, HTTPS port); ``trust_file`` the CAs strict mode accepts."""
        self.ports = ports
        self.revoked = revoked
        self._lock = threading.Lock()
        self._idle: dict[tuple[int, str, str], list[http.client.HTTPConnection]] = {}
        self._full = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._full.check_hostname = False
        self._full.verify_mode = ssl.CERT_NONE
        self._strict = ssl.create_default_context(cafile=trust_file)

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for pool in pools.values():
            for connection in pool:
                connection.close()

    def fetch(self, mode: str, address: str, host: str, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> OriginAnswer:
        if not is_loopback(address):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise OriginError(530, "Origin DNS error", "%s has no address the edge can use" % address, code=1016) from None
            raise OriginError(522, "Connection timed out", "the origin %s cannot be reached from the lab" % address)
        http_port, https_port = self.ports()
        port = https_port if mode in ("full", "strict") else http_port
        key = (port, host if port == https_port else "", mode if port == https_port else "http")
        for attempt in (0, 1):
            connection = self._take(key) if attempt == 0 else None
            reused = connection is not None
            if connection is None:
                connection = self._new(key)
            connected = reused
            try:
                if not reused:
                    connection.connect()
                    connected = True
                    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
                self._check_certificate(mode, connection)
                connection.sock.settimeout(READ_TIMEOUT)  # type: ignore[union-attr]
                connection.request(method, target, body=body or None, headers=dict(headers))
                response = connection.getresponse()
                payload = response.read()
            except OriginError:
                connection.close()
                raise
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest) as exc:
                connection.close()
                if reused:
                    continue  # a kept-alive connection the origin closed meanwhile: once more on a new one
                raise OriginError(502, "Bad gateway", "the origin closed the connection: %s" % exc) from None
            except Exception as exc:  # pylint: disable=broad-exception-caught
                connection.close()
                raise _origin_error(exc, connected) from None
            kept = [(name, value) for name, value in response.getheaders() if name.lower() not in HOP_BY_HOP]
            answer = OriginAnswer(response.status, response.reason, kept, payload)
            if response.will_close:
                connection.close()
            else:
                self._give_back(key, connection)
            return answer
        raise OriginError(502, "Bad gateway", "the origin keeps closing the connection")

    def _new(self, key: tuple[int, str, str]) -> http.client.HTTPConnection:
        port, server_name, mode = key
        if mode == "http":
            return http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_TIMEOUT)
        return _Connection(port, server_name, self._strict if mode == "strict" else self._full)

    def _check_certificate(self, mode: str, connection: http.client.HTTPConnection) -> None:
        """Strict mode: refuse a certificate revoked through the API (checked on every request, kept-alive or not)."""
        if mode != "strict":
            return
        serial = getattr(connection, "peer_serial", None)
        if serial is None:
            der = connection.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
            serial = x509.load_der_x509_certificate(der).serial_number if der else 0
            connection.peer_serial = serial  # type: ignore[attr-defined]
        if serial in self.revoked():
            raise OriginError(526, "Invalid SSL certificate", "the origin's certificate was revoked")

    def _take(self, key: tuple[int, str, str]) -> http.client.HTTPConnection | None:
        with self._lock:
            pool = self._idle.get(key)
            return pool.pop() if pool else None

    def _give_back(self, key: tuple[int, str, str], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            pool = self._idle.setdefault(key, [])
            if len(pool) < POOL_SIZE:
                pool.append(connection)
                return
        connection.close()

    def forget_connections(self) -> None:
        """Drop every kept-alive connection (after the origin's certificate or address changed)."""
        self.close()


def _origin_error(exc: Exception, connected: bool) -> OriginError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return OriginError(526, "Invalid SSL certificate", "the origin's certificate is not valid: %s" % exc.verify_message)
    if isinstance(exc, ssl.SSLError):
        return OriginError(525, "SSL handshake failed", "TLS with the origin failed: %s" % exc)
    if isinstance(exc, ConnectionRefusedError):
        return OriginError(521, "Web server is down", "the origin refused the connection")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        if connected:
            return OriginError(524, "A timeout occurred", "the origin did not answer in time")
        return OriginError(522, "Connection timed out", "the origin did not accept the connection in time")
    return OriginError(502, "Bad gateway", "the origin's answer could not be read: %s" % exc)
