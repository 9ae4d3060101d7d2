# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS at the edge: which certificate and which protocol versions a connection gets.

The server name is read from the ClientHello *before* the handshake (peeking at the socket, not
consuming it), because the zone's ``min_tls_version`` must decide the handshake itself: OpenSSL
fixes the protocol version before Python's SNI callback runs, and a context swapped in there
keeps the old limits. So each connection is wrapped with the context made for its host name:
the edge CA's leaf for that name, minimum version from ``min_tls_version``, TLS 1.3 only when
``tls_1_3`` is on. An older handshake is refused with a ``protocol_version`` alert, as
Cloudflare refuses it. A name that is not proxied gets no certificate: the handshake fails.

TLS 1.0 and 1.1 need OpenSSL's security level 0, so every edge context allows them unless the
zone's minimum is higher.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from tests.lab.pki import LabPki, server_context

PEEK_TIMEOUT = 5.0
MAX_HELLO = 16384 + 5
VERSIONS = {"1.0": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}


class NotTls(Exception):
    """The client did not start with a TLS ClientHello."""


def tls_version(name: str) -> ssl.TLSVersion:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 and 1.1 are deprecated, which is why zones refuse them
        return getattr(ssl.TLSVersion, VERSIONS[name])


def peek_server_name(sock: socket.socket, timeout: float = PEEK_TIMEOUT) -> str | None:
    """The SNI host name of the ClientHello waiting on ``sock`` (None without one); NotTls if it is no ClientHello."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(MAX_HELLO, socket.MSG_PEEK)
        if len(data) >= 5:
            if data[0] != 0x16:
                raise NotTls("not a TLS handshake record")
            wanted = 5 + struct.unpack("!H", data[3:5])[0]
            if len(data) >= wanted:
                return _server_name(data[5:wanted])
        if not data or time.monotonic() >= deadline:
            raise NotTls("incomplete ClientHello")
        time.sleep(0.005)


def _server_name(hello: bytes) -> str | None:
    try:
        if hello[0] != 1:
            raise NotTls("not a ClientHello")
        position = 4 + 2 + 32  # handshake header, client_version, random
        position += 1 + hello[position]  # session id
        position += 2 + struct.unpack("!H", hello[position:position + 2])[0]  # cipher suites
        position += 1 + hello[position]  # compression methods
        end = position + 2 + struct.unpack("!H", hello[position:position + 2])[0]
        position += 2
        while position + 4 <= end:
            kind, length = struct.unpack("!HH", hello[position:position + 4])
            position += 4
            if kind == 0:  # server_name: list length, name type 0 (host_name), name length, name
                name_length = struct.unpack("!H", hello[position + 3:position + 5])[0]
                return hello[position + 5:position + 5 + name_length].decode("ascii").lower().rstrip(".")
            position += length
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise NotTls("malformed ClientHello: %s" % exc) from None
    return None


class EdgeTls:
    """Makes (and keeps) one server context per (host name, minimum version, TLS 1.3 on/off)."""

    def __init__(self, pki: LabPki, workdir: Path):
        self.pki = pki
        self.workdir = workdir
        self._lock = threading.Lock()
        self._contexts: dict[tuple[str, str, bool], ssl.SSLContext] = {}

    def forget(self) -> None:
        with self._lock:
            self._contexts.clear()

    def context(self, host: str, min_version: str, tls_1_3: bool) -> ssl.SSLContext:
        key = (host, min_version, tls_1_3)
        with self._lock:
            found = self._contexts.get(key)
        if found is not None:
            return found
        cert_pem, key_text = self.pki.edge_leaf(host)
        context = server_context(cert_pem, key_text, self.workdir)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = tls_version(min_version)
        context.maximum_version = ssl.TLSVersion.TLSv1_3 if tls_1_3 else ssl.TLSVersion.TLSv1_2
        if min_version == "1.3" and not tls_1_3:
            context.maximum_version = ssl.TLSVersion.TLSv1_3
        with self._lock:
            self._contexts[key] = context
        return context

    def accept(self, sock: socket.socket, policy: Callable[[str], tuple[str, bool] | None]) -> tuple[ssl.SSLSocket, str]:
        """Handshake on a fresh connection; ``policy(host)`` gives (min_tls_version, tls_1_3) for a proxied host, else None."""
        host = peek_server_name(sock)
        found = policy(host) if host else None
        if host is None or found is None:
            raise NotTls("no certificate for %s" % (host or "a client without SNI"))
        context = self.context(host, *found)
        sock.settimeout(PEEK_TIMEOUT)
        tls = context.wrap_socket(sock, server_side=True)
        return tls, host
