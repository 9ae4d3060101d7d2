# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one HTTP probe: ask URLs from the outside, concurrently, and record what came back.

``HttpProbe.probe(url)`` sends one request and follows the redirect chain by hand, recording every
answer (status, ``Location``, time, the address it came from). It keeps the headers and body of the
first answer, and for an ``https`` URL the TLS facts of its host: the certificate the connection
presented (parsed with ``cryptography``), whether its chain verifies against the trusted CAs, and,
on request, which TLS versions the server accepts.

Requests go over connections that do not verify certificates, so a broken certificate is reported
rather than turned into a failed request; the chain is verified by a separate handshake per host
(with a verifying context, hostname check off: the host name is matched against the certificate's
names here, so the two problems are told apart). TLS versions are tried with one handshake each,
from an ``ssl`` context limited to that version.

``Resolve`` maps ``host:port`` to another ``address:port``, like curl's ``--resolve`` and
``--connect-to``: only the TCP connection goes elsewhere; the URL, the ``Host`` header and the TLS
server name (SNI) stay the real ones, and connections to different names are never shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import importlib.util
import ipaddress
import re
import socket
import ssl
import sys
import time
import traceback
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

try:
    import httpcore
    import httpx
except ImportError:
    httpcore = None  # type: ignore[assignment]
    httpx = None  # type: ignore[assignment]
    HTTPX_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HTTPX_IMPORT_ERROR = None

try:
    from cryptography import x509
except ImportError:
    x509 = None  # type: ignore[assignment]
    CRYPTOGRAPHY_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

USER_AGENT = "launchready.core http_check"
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# A page bigger than this is cut: enough for any HTML page or health answer, and a bound on memory.
MAX_BODY_BYTES = 5 * 1024 * 1024
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
_SSL_VERSIONS = {"1.0": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}
# OpenSSL reasons for a failed version handshake. This machine could not offer the version at all (nothing was asked):
_NOT_OFFERED = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE")
# The server answered in that version, then this machine's own policy stopped (a hardened OpenSSL refuses SHA-1 signatures, small keys):
_SERVER_SPOKE_IT = ("LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED", "DH_KEY_TOO_SMALL", "EE_KEY_TOO_SMALL", "CA_KEY_TOO_SMALL", "CA_MD_TOO_WEAK")
# The server said no: an alert (protocol_version, handshake_failure ...) or an answer in another version.
_SERVER_REFUSED = ("UNSUPPORTED_PROTOCOL", "WRONG_VERSION_NUMBER", "TLSV1_ALERT_", "SSLV3_ALERT_")
_CHARSET_RE = re.compile(r"charset\s*=\s*\"?([\w.:-]+)", re.IGNORECASE)

ACCEPTED = "accepted"
REFUSED = "refused"
UNTESTED = "untested"


class ProbeConfigError(ValueError):
    """An option of the probe (a ``resolve`` entry, a CA bundle) that cannot be used."""


# --- resolve -------------------------------------------------------------------------------------


def _split_address(text: str, where: str) -> tuple[str, str]:
    """``[2001:db8::1]:443`` or ``192.0.2.1:443`` or ``name:443`` -> (address, rest); brackets removed."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ProbeConfigError("%s: unclosed [ in %r" % (where, text))
        return text[1:end], text[end + 1 :].lstrip(":")
    address, _sep, rest = text.partition(":")
    return address, rest


def _port(text: str, where: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ProbeConfigError("%s: %r is not a port number" % (where, text)) from None
    if not 0 < port < 65536:
        raise ProbeConfigError("%s: port %d is out of range" % (where, port))
    return port


def _host(text: str) -> str:
    """A host name as it goes on the wire: no brackets, no trailing dot, lowercase, IDNA (``bücher.example`` -> ``xn--bcher-kva.example``)."""
    host = text.strip().strip("[]").rstrip(".").lower()
    if not host.isascii():
        with contextlib.suppress(UnicodeError):  # not a valid IDN: left as given, the connection then fails with a clear error
            host = host.encode("idna").decode("ascii")
    return host


class Resolve:
    """Where to connect for a ``(host, port)``: the mapped ``(address, port)``, or the host itself.

    Entries are ``host:port:address`` (curl's ``--resolve``), ``host:port:address:port`` (curl's
    ``--connect-to``), or dicts with ``host``, ``port``, ``address`` and optional ``address_port``.
    ``*`` as the host maps every name on that port. IPv6 addresses go in brackets in the string form.
    """

    def __init__(self, entries: dict[tuple[str, int], tuple[str, int]] | None = None):
        self.entries = dict(entries or {})

    @classmethod
    def parse(cls, items: list[Any] | None) -> Resolve:
        entries: dict[tuple[str, int], tuple[str, int]] = {}
        for index, item in enumerate(items or []):
            where = "resolve[%d]" % index
            if isinstance(item, str):
                host, rest = _split_address(item.strip(), where)
                port_text, _sep, rest = rest.partition(":")
                if not rest:
                    raise ProbeConfigError("%s: %r is not host:port:address or host:port:address:port" % (where, item))
                address, target_port_text = _split_address(rest, where)
                port = _port(port_text, where)
                target_port = _port(target_port_text, where) if target_port_text else port
            elif isinstance(item, dict):
                unknown = set(item) - {"host", "port", "address", "address_port"}
                missing = {"host", "port", "address"} - set(item)
                if unknown or missing:
                    raise ProbeConfigError(
                        "%s: a dict entry takes host, port, address and optionally address_port%s%s"
                        % (where, "; unknown: " + ", ".join(sorted(unknown)) if unknown else "", "; missing: " + ", ".join(sorted(missing)) if missing else "")
                    )
                host, address = str(item["host"]), str(item["address"])
                port = _port(str(item["port"]), where)
                target_port = _port(str(item["address_port"]), where) if item.get("address_port") is not None else port
            else:
                raise ProbeConfigError("%s: expected a string or a dict, got %s" % (where, type(item).__name__))
            host, address = _host(host), _host(address)
            if not host or not address:
                raise ProbeConfigError("%s: host and address must not be empty in %r" % (where, item))
            entries[(host, port)] = (address, target_port)
        return cls(entries)

    def target(self, host: str, port: int) -> tuple[str, int]:
        host = _host(host)
        return self.entries.get((host, port)) or self.entries.get(("*", port)) or (host, port)


class _ResolvingBackend:
    """An httpcore network backend (duck-typed ``httpcore.AsyncNetworkBackend``) that connects where ``Resolve`` says."""

    def __init__(self, resolve: Resolve):
        self.resolve = resolve
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Any = None) -> Any:
        address, target_port = self.resolve.target(host, port)
        return await self.inner.connect_tcp(address, target_port, timeout=timeout, local_address=local_address, socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        return await self.inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _skip_sniffio_lookups() -> None:
    """Record sniffio as missing when it is, so that importing it fails at once.

    httpcore imports sniffio (an optional dependency) for every lock and event it makes; when it is
    not installed, each of those failed imports searches the whole of sys.path again: a third of
    the CPU time of a check. A ``None`` in sys.modules is Python's documented "not importable".
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def resolving_transport(resolve: Resolve, ssl_context: ssl.SSLContext, connections: int) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, its connection pool connecting through ``resolve``.

    httpx 0.28 hands its pool no network backend (encode/httpx#3180), so the pool it built is
    replaced by an equal one that has ours; the pool keys connections by the URL's host, so names
    mapped to one address still get connections (and SNI) of their own.
    """
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(  # pylint: disable=protected-access
        ssl_context=ssl_context,
        max_connections=connections,
        max_keepalive_connections=connections,
        network_backend=cast("httpcore.AsyncNetworkBackend", _ResolvingBackend(resolve)),
        # A request goes out in more than one write (headers, then body): without this, Nagle's algorithm can hold it for a delayed ACK.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    return transport


# --- what a probe records ------------------------------------------------------------------------


@dataclass
class Hop:
    """One answer of a redirect chain (the first is the answer to the URL asked)."""

    url: str
    status: int | None = None
    location: str | None = None
    elapsed_ms: int = 0
    address: str = ""
    error: str = ""

    def as_dict(self) -> dict:
        return {"url": self.url, "status": self.status, "location": self.location, "elapsed_ms": self.elapsed_ms, "address": self.address, "error": self.error}


@dataclass
class Answer:
    """The first answer in full: status, headers (in order, repeated ones kept) and body (at most MAX_BODY_BYTES)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    truncated: bool = False

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def text(self) -> str:
        found = _CHARSET_RE.search(self.header("content-type") or "")
        try:
            return self.body.decode(found.group(1) if found else "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


@dataclass
class Certificate:
    subject: str
    issuer: str
    dns_names: list[str]
    ip_addresses: list[str]
    not_before: datetime.datetime
    not_after: datetime.datetime

    def days_left(self, now: datetime.datetime | None = None) -> float:
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return (self.not_after - now).total_seconds() / 86400

    def matches(self, host: str) -> bool:
        """Whether the certificate is valid for ``host``: its subjectAltName only, as browsers do (RFC 6125; RFC 9110 4.3.4)."""
        host = _host(host)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return any(_dns_name_matches(name, host) for name in self.dns_names)
        return any(ipaddress.ip_address(value) == address for value in self.ip_addresses)

    def as_dict(self) -> dict:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "dns_names": self.dns_names,
            "ip_addresses": self.ip_addresses,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "days_left": round(self.days_left(), 1),
        }


def _dns_name_matches(pattern: str, host: str) -> bool:
    """A wildcard stands for exactly one whole label, and only as the leftmost one (``*.example.com``)."""
    pattern = pattern.rstrip(".").lower()
    if pattern.startswith("*."):
        head, _dot, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def parse_certificate(der: bytes) -> Certificate:
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = [str(name) for name in san.get_values_for_type(x509.DNSName)]
        ip_addresses = [str(address) for address in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns_names, ip_addresses = [], []
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        not_before=_utc(cert, "not_valid_before"),
        not_after=_utc(cert, "not_valid_after"),
    )


def _utc(cert: Any, name: str) -> datetime.datetime:
    """A validity bound as an aware datetime (``*_utc`` came with cryptography 42; older ones give naive UTC)."""
    aware = getattr(cert, name + "_utc", None)
    return aware if aware is not None else getattr(cert, name).replace(tzinfo=datetime.timezone.utc)


@dataclass
class TlsInfo:
    """The TLS facts of an https URL's host."""

    host: str
    version: str = ""
    cipher: str = ""
    certificate: Certificate | None = None
    chain_verified: bool | None = None
    chain_error: str = ""
    versions: dict[str, str] = field(default_factory=dict)  # "1.0" -> accepted | refused | untested: why

    def as_dict(self) -> dict:
        return {
            "host": self.host,
            "version": self.version,
            "cipher": self.cipher,
            "certificate": self.certificate.as_dict() if self.certificate else None,
            "chain_verified": self.chain_verified,
            "chain_error": self.chain_error,
            "versions": dict(self.versions),
        }


@dataclass
class ProbeResult:
    url: str
    method: str
    hops: list[Hop] = field(default_factory=list)
    answer: Answer | None = None
    tls: TlsInfo | None = None
    # Why the redirect chain stopped before a final answer: "", "loop", "limit" or "error".
    chain_stop: str = ""
    elapsed_ms: int = 0

    @property
    def error(self) -> str:
        """Why the URL itself got no answer (empty when it did)."""
        return self.hops[0].error if self.hops and self.answer is None else ""

    @property
    def redirects(self) -> int:
        return sum(1 for hop in self.hops if hop.status in REDIRECT_STATUSES and hop.location)


# --- the probe -----------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    """An error in words, with the causes httpx and anyio wrap (``All connection attempts failed ([Errno 111] ...)``)."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(texts) < 5:
        text = str(current)
        if text and not any(text in seen for seen in texts):
            texts.append(text)
        current = current.__cause__ or current.__context__
    if not texts:
        return type(exc).__name__
    return texts[0] + "".join(" (%s)" % text for text in texts[1:])


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _version_context(version: str) -> ssl.SSLContext:
    """A context that offers only ``version``, with the old ciphers TLS 1.0 and 1.1 need (OpenSSL security level 0)."""
    context = _unverified_context()
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 and 1.1 are deprecated: that is why servers must refuse them
        context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, _SSL_VERSIONS[version])
    return context


def _next_method(method: str, status: int) -> str:
    """The method a browser uses for the next hop: 303 turns everything but HEAD into GET, 301/302 turn POST into GET."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def _port_of(parts: Any) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


class HttpProbe:
    """Probe URLs concurrently; use as ``async with HttpProbe(...) as probe: await probe.probe(url)``."""

    def __init__(
        self,
        resolve: Resolve | None = None,
        ca_path: str | None = None,
        timeout: float = 10.0,
        concurrency: int = 20,
        max_redirects: int = 10,
    ):
        if concurrency < 1:
            raise ProbeConfigError("concurrency must be at least 1")
        if max_redirects < 0:
            raise ProbeConfigError("max_redirects must not be negative")
        self.resolve = resolve or Resolve()
        self.timeout = timeout
        self.max_redirects = max_redirects
        try:
            self.verifying_context = ssl.create_default_context(cafile=ca_path)
        except (OSError, ssl.SSLError) as exc:
            raise ProbeConfigError("ca_path %s cannot be read as a PEM CA bundle: %s" % (ca_path, exc)) from None
        self.verifying_context.check_hostname = False  # matched separately (Certificate.matches), to tell the two problems apart
        _skip_sniffio_lookups()
        self._limit = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            transport=resolving_transport(self.resolve, _unverified_context(), concurrency),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )
        self._chain_checks: dict[tuple[str, int], asyncio.Task] = {}
        self._version_checks: dict[tuple[str, int, str], asyncio.Task] = {}

    async def __aenter__(self) -> HttpProbe:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def probe(self, url: str, method: str = "GET", tls_versions: tuple[str, ...] = ()) -> ProbeResult:
        """Ask ``url``, follow its redirects, and for https gather the TLS facts (trying each of ``tls_versions``)."""
        async with self._limit:
            start = time.monotonic()
            result = ProbeResult(url=url, method=method)
            await self._follow(result)
            if result.tls is not None:
                host, port = result.tls.host, _port_of(urlsplit(url))
                verified = await self._once(self._chain_checks, (host, port), functools.partial(self._verify_chain, host, port))
                result.tls.chain_verified, result.tls.chain_error = verified
                for version in tls_versions:
                    start_try = functools.partial(self._try_version, host, port, version)
                    result.tls.versions[version] = await self._once(self._version_checks, (host, port, version), start_try)
            result.elapsed_ms = int((time.monotonic() - start) * 1000)
            return result

    @staticmethod
    async def _once(cache: dict, key: tuple, start: Callable[[], Awaitable[Any]]) -> Any:
        """Run a per-host check once, however many expectations ask for it, at the same time or later."""
        if key not in cache:
            cache[key] = asyncio.ensure_future(start())
        return await cache[key]

    async def _follow(self, result: ProbeResult) -> None:
        url, method = result.url, result.method
        seen = {url}
        while True:
            hop = Hop(url=url)
            result.hops.append(hop)
            started = time.monotonic()
            try:
                response = await self._client.send(self._client.build_request(method, url), stream=True)
            except (httpx.HTTPError, httpx.InvalidURL, OSError, ssl.SSLError) as exc:
                hop.error = _describe(exc)
                if len(result.hops) > 1:
                    result.chain_stop = "error"
                return
            try:
                hop.status, hop.location = response.status_code, response.headers.get("location")
                stream = response.extensions.get("network_stream")
                peer = stream.get_extra_info("server_addr") if stream is not None else None
                hop.address = ("[%s]:%s" if ":" in str(peer[0]) else "%s:%s") % tuple(peer[:2]) if peer else ""
                if result.answer is None:
                    result.answer = Answer(response.status_code, list(response.headers.multi_items()))
                    if urlsplit(url).scheme.lower() == "https":
                        result.tls = self._connection_tls(urlsplit(url).hostname or "", stream)
                body, truncated = await self._read(response, method)
                if len(result.hops) == 1:
                    result.answer.body, result.answer.truncated = body, truncated
            except httpx.HTTPError as exc:
                hop.error = _describe(exc)
                if len(result.hops) > 1:
                    result.chain_stop = "error"
                return
            finally:
                await response.aclose()
                hop.elapsed_ms = int((time.monotonic() - started) * 1000)
            if hop.status not in REDIRECT_STATUSES or not hop.location:
                return
            url, method = urljoin(url, hop.location.strip()), _next_method(method, hop.status)
            if url in seen:
                result.chain_stop = "loop"
                return
            if len(result.hops) > self.max_redirects:
                result.chain_stop = "limit"
                return
            seen.add(url)

    @staticmethod
    async def _read(response: httpx.Response, method: str) -> tuple[bytes, bool]:
        if method == "HEAD":
            return b"", False
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return b"".join(chunks)[:MAX_BODY_BYTES], True
        return b"".join(chunks), False

    @staticmethod
    def _connection_tls(host: str, stream: Any) -> TlsInfo:
        info = TlsInfo(host=_host(host))
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        if ssl_object is not None:
            info.version = ssl_object.version() or ""
            info.cipher = (ssl_object.cipher() or ("",))[0]
            der = ssl_object.getpeercert(binary_form=True)
            if der:
                info.certificate = parse_certificate(der)
        return info

    async def _handshake(self, host: str, port: int, context: ssl.SSLContext) -> str:
        """The version a TLS handshake with ``host:port`` settles on; raises on failure."""
        address, target_port = self.resolve.target(host, port)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, target_port, ssl=context, server_hostname=host, ssl_handshake_timeout=self.timeout), self.timeout
        )
        del reader
        ssl_object = writer.get_extra_info("ssl_object")
        version = ssl_object.version() if ssl_object is not None else ""
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):  # the handshake, not the goodbye, is what was asked
            await asyncio.wait_for(writer.wait_closed(), self.timeout)
        return version or ""

    async def _verify_chain(self, host: str, port: int) -> tuple[bool | None, str]:
        try:
            await self._handshake(host, port, self.verifying_context)
        except ssl.SSLCertVerificationError as exc:
            return False, exc.verify_message or str(exc)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            return None, "the verifying handshake failed: %s" % (_describe(exc) if str(exc) else "timed out")
        return True, ""

    async def _try_version(self, host: str, port: int, version: str) -> str:
        try:
            context = _version_context(version)
        except (ValueError, ssl.SSLError) as exc:
            return "%s: this machine's OpenSSL cannot offer TLS %s (%s)" % (UNTESTED, version, exc)
        try:
            await self._handshake(host, port, context)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError, asyncio.IncompleteReadError):
            return REFUSED  # the server hung up on the ClientHello
        except ssl.SSLError as exc:
            reason = str(getattr(exc, "reason", None) or "")
            if reason in _NOT_OFFERED:
                return "%s: this machine's OpenSSL cannot offer TLS %s (%s)" % (UNTESTED, version, reason)
            if reason in _SERVER_SPOKE_IT:
                return ACCEPTED
            if reason.startswith(_SERVER_REFUSED):
                return REFUSED
            return "%s: the TLS %s handshake failed on this side (%s)" % (UNTESTED, version, _describe(exc))
        except (OSError, asyncio.TimeoutError) as exc:
            return "%s: could not connect (%s)" % (UNTESTED, _describe(exc) if str(exc) else "timed out")
        return ACCEPTED
