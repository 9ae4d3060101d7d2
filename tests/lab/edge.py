# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The edge: HTTP and HTTPS on 127.0.0.1 for the zones' proxied names, in front of the origin.

Each request is answered from the emulator's live state, as Cloudflare would, in this order:

1. the Host header names a proxied record (else 530 with error 1001: the edge serves nothing for
   names that are not proxied; over HTTPS the handshake already failed, see edge_tls.py);
2. SSL mode ``off``: HTTPS is answered with a 301 to the same URL over HTTP;
3. redirect rules (``http_request_dynamic_redirect``): the first matching rule answers its
   redirect, static (``target_url.value``) or dynamic (``target_url.expression``, ``concat()``),
   with ``status_code`` (default 301) and the query string kept when ``preserve_query_string``;
4. ``always_use_https``: a 301 from http:// to https://;
5. custom rules (``http_request_firewall_custom``): ``block`` answers 403 (or the rule's own
   response), challenges answer 403 with ``cf-mitigated: challenge``, ``skip`` ends the phase;
6. rate limiting rules (``http_ratelimit``, see edge_limits.py): 429 past the threshold;
7. cache rules (``http_request_cache_settings``) and the cache (edge_cache.py), then the origin by
   the zone's SSL mode (edge_upstream.py);
8. ``automatic_https_rewrites`` (on by default): in HTML served over HTTPS, ``src`` and ``href``
   URLs ``http://<a name the edge proxies>`` are rewritten to https://.

Every answer carries ``server: cloudflare`` and a ``cf-ray``; HTTPS answers carry the HSTS header of
``security_header`` when it is enabled (and ``X-Content-Type-Options: nosniff`` when asked);
answers that went through the cache logic carry ``cf-cache-status``. The origin gets
``X-Forwarded-For``, ``X-Forwarded-Proto``, ``CF-Connecting-IP``, ``CF-Ray`` and ``CF-Visitor``.

A test can act as another client with the lab-only request header ``X-Lab-Client-IP``.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import re
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.lab import edge_cache, edge_limits, rules_language
from tests.lab.edge_cache import CacheSettings, EdgeCache, Entry
from tests.lab.edge_limits import RateLimiter
from tests.lab.edge_tls import EdgeTls, NotTls
from tests.lab.edge_upstream import HOP_BY_HOP, OriginError, Upstream
from tests.lab.pki import LabPki, pem
from tests.lab.state import EdgeRoute, LabState

CLIENT_IP_HEADER = "X-Lab-Client-IP"
LOG_SIZE = 2000
IDLE_TIMEOUT = 60
CHALLENGES = ("challenge", "js_challenge", "managed_challenge")
_INSECURE_URL = re.compile(rb"""(\b(?:src|href)\s*=\s*["']?)http://([A-Za-z0-9.-]+)""")
_ERROR_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><title>%(host)s | %(status)d: %(title)s</title></head>
<body><h1>%(heading)s</h1><p>%(detail)s</p>
<p>Cloudflare Ray ID: %(ray)s &bull; Performance &amp; security by Cloudflare (launchready lab)</p></body></html>
"""


@dataclass
class EdgeRequest:
    scheme: str
    method: str
    host: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str


@dataclass
class EdgeAnswer:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reason: str = ""
    cache_status: str | None = None
    origin_status: int | None = None


def error_answer(status: int, title: str, detail: str, host: str, ray: str, code: int | None = None,
                 headers: list[tuple[str, str]] | None = None) -> EdgeAnswer:
    heading = "Error %d" % code if code else "Error %d" % status
    page = _ERROR_PAGE % {"host": html.escape(host), "status": status, "title": html.escape(title),
                          "heading": "%s: %s" % (heading, html.escape(title)), "detail": html.escape(detail), "ray": ray}
    return EdgeAnswer(status, [("Content-Type", "text/html; charset=UTF-8"), ("Cache-Control", "private, max-age=0, no-store, no-cache")]
                      + (headers or []), page.encode("utf-8"), reason=title)


def redirect_answer(status: int, location: str) -> EdgeAnswer:
    body = ("<html><head><title>%d</title></head><body><center><h1>%d</h1></center><hr><center>cloudflare</center></body></html>\n"
            % (status, status)).encode("ascii")
    return EdgeAnswer(status, [("Location", location), ("Content-Type", "text/html")], body)


def hsts_headers(settings: dict[str, Any]) -> list[tuple[str, str]]:
    hsts = settings["security_header"]["strict_transport_security"]
    if not hsts.get("enabled"):
        return []
    value = "max-age=%d" % int(hsts.get("max_age", 0))
    if hsts.get("include_subdomains"):
        value += "; includeSubDomains"
    if hsts.get("preload"):
        value += "; preload"
    headers = [("Strict-Transport-Security", value)]
    if hsts.get("nosniff"):
        headers.append(("X-Content-Type-Options", "nosniff"))
    return headers


class Edge:
    def __init__(self, state: LabState, pki: LabPki, origin_ports: Callable[[], tuple[int, int]], host: str = "127.0.0.1"):
        self.state = state
        self.pki = pki
        self.tls = EdgeTls(pki, pki.directory)
        self.cache = EdgeCache()
        self.limiter = RateLimiter()
        trust = pki.directory / "strict-trust.pem"
        trust.write_text(pem(pki.origin_ca.cert) + pem(pki.edge_ca.cert), encoding="ascii")
        self.upstream = Upstream(origin_ports, str(trust), state.revoked_serials)
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self._log_lock = threading.Lock()
        self._filters: dict[str, Callable[[dict[str, Any]], bool]] = {}
        self._values: dict[str, Callable[[dict[str, Any]], str]] = {}
        self.http = _EdgeServer((host, 0), self, https=False)
        self.https = _EdgeServer((host, 0), self, https=True)

    @property
    def ca_file(self) -> Path:
        return self.pki.edge_ca.cert_file

    def endpoints(self, config_edge: dict[str, str]) -> dict[str, Any]:
        return dict(config_edge, http_port=self.http.server_address[1], https_port=self.https.server_address[1], ca_file=str(self.ca_file))

    def start(self) -> None:
        for server, name in ((self.http, "lab-edge-http"), (self.https, "lab-edge-https")):
            threading.Thread(target=server.serve_forever, args=(0.1,), name=name, daemon=True).start()

    def stop(self) -> None:
        for server in (self.http, self.https):
            server.shutdown()
            server.server_close()
        self.upstream.close()

    def reset(self) -> None:
        """Forget cached answers, rate counters, kept-alive origin connections and the request log."""
        self.cache.purge()
        self.limiter.reset()
        self.upstream.forget_connections()
        self.clear_log()

    # Request log (control API)

    def log(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    # TLS

    def tls_policy(self, host: str) -> tuple[str, bool] | None:
        route = self.state.proxied_route(host)
        if route is None:
            return None
        return route.settings["min_tls_version"], route.settings["tls_1_3"] != "off"

    # Answering

    def answer(self, request: EdgeRequest) -> EdgeAnswer:
        ray = "%s-%s" % (secrets.token_hex(8), edge_limits.COLO)
        route = self.state.proxied_route(request.host)
        if route is None:
            answer = error_answer(530, "DNS resolution error", "%s is not served by this edge (no proxied DNS record)." % request.host,
                                  request.host, ray, code=1001)
        else:
            try:
                answer = self._pipeline(route, request, ray)
            except OriginError as exc:
                answer = error_answer(exc.status, exc.title, exc.detail, request.host, ray, code=exc.code)
            if request.scheme == "https":
                answer.headers += hsts_headers(route.settings)
        answer.headers += [("cf-ray", ray)]
        if answer.cache_status:
            answer.headers.append(("cf-cache-status", answer.cache_status))
        with self._log_lock:
            self._log.append({"time": time.time(), "scheme": request.scheme, "method": request.method, "host": request.host,
                              "target": request.target, "status": answer.status, "cache": answer.cache_status,
                              "origin_status": answer.origin_status, "client_ip": request.client_ip, "ray": ray})
        return answer

    def _pipeline(self, route: EdgeRoute, request: EdgeRequest, ray: str) -> EdgeAnswer:
        settings = route.settings
        fields = rules_language.fields(request.scheme, request.host, request.target, request.method, dict(request.headers), request.client_ip)
        uri = fields["http.request.uri"]
        if settings["ssl"] == "off" and request.scheme == "https":
            return redirect_answer(301, "http://%s%s" % (request.host, uri))
        redirect = self._redirect(route, fields)
        if redirect is not None:
            return redirect
        if settings["always_use_https"] == "on" and request.scheme == "http" and settings["ssl"] != "off":
            return redirect_answer(301, "https://%s%s" % (request.host, uri))
        stopped = self._firewall(route, fields, request.host, ray) or self._rate_limit(route, fields, request.host, ray)
        if stopped is not None:
            return stopped
        cache_settings = CacheSettings()
        for rule in self._matching(route, "http_request_cache_settings", fields):
            cache_settings.apply(rule.get("action_parameters") or {})
        return self._https_rewrites(self._fetch(route, request, fields, cache_settings, ray), request, settings)

    def _matching(self, route: EdgeRoute, phase: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
        rules = (route.rulesets.get(phase) or {}).get("rules", [])
        return [rule for rule in rules if rule.get("enabled", True) and self._filter(rule["expression"])(fields)]

    def _filter(self, expression: str) -> Callable[[dict[str, Any]], bool]:
        found = self._filters.get(expression)
        if found is None:
            found = self._filters[expression] = rules_language.compile_filter(expression)
        return found

    def _redirect(self, route: EdgeRoute, fields: dict[str, Any]) -> EdgeAnswer | None:
        for rule in self._matching(route, "http_request_dynamic_redirect", fields):
            if rule.get("action") != "redirect":
                continue
            parameters = rule["action_parameters"]["from_value"]
            target = parameters["target_url"]
            if "value" in target:
                location = target["value"]
            else:
                compiled = self._values.get(target["expression"])
                if compiled is None:
                    compiled = self._values[target["expression"]] = rules_language.compile_value(target["expression"])
                location = compiled(fields)
            if parameters.get("preserve_query_string") and fields["http.request.uri.query"]:
                location += ("&" if "?" in location else "?") + fields["http.request.uri.query"]
            return redirect_answer(int(parameters.get("status_code", 301)), location)
        return None

    def _firewall(self, route: EdgeRoute, fields: dict[str, Any], host: str, ray: str) -> EdgeAnswer | None:
        for rule in self._matching(route, "http_request_firewall_custom", fields):
            action = rule.get("action")
            if action == "skip":
                return None
            if action == "block":
                return _custom_response(rule) or error_answer(403, "Sorry, you have been blocked",
                                                              "This website is using a security service to protect itself.", host, ray)
            if action in CHALLENGES:
                return _challenge(host, ray)
        return None

    def _rate_limit(self, route: EdgeRoute, fields: dict[str, Any], host: str, ray: str) -> EdgeAnswer | None:
        for rule in self._matching(route, "http_ratelimit", fields):
            if not isinstance(rule.get("ratelimit"), dict):
                continue
            remaining = self.limiter.hit(edge_limits.counter_key(route.zone_id, rule, fields), rule["ratelimit"])
            if remaining is None or rule.get("action") == "log":
                continue
            if rule.get("action") in CHALLENGES:
                return _challenge(host, ray)
            retry = [("Retry-After", str(max(1, math.ceil(remaining))))]
            custom = _custom_response(rule)
            if custom is not None:
                custom.status = int(((rule.get("action_parameters") or {}).get("response") or {}).get("status_code", 429))
                custom.headers += retry
                return custom
            return error_answer(429, "You are being rate limited", "The owner of this website has banned you temporarily from accessing it.",
                                host, ray, code=1015, headers=retry)
        return None

    def _fetch(self, route: EdgeRoute, request: EdgeRequest, fields: dict[str, Any], cache_settings: CacheSettings, ray: str) -> EdgeAnswer:
        verdict = edge_cache.eligibility(request.method, fields["http.request.uri.path"], cache_settings)
        key = (request.scheme, request.host, fields["http.request.uri"])
        stale = False
        if verdict == "eligible":
            entry, fresh = self.cache.get(key)
            if entry is not None and fresh:
                age = int(time.monotonic() - entry.stored)
                return EdgeAnswer(entry.status, [*entry.headers, ("Age", str(age))], b"" if request.method == "HEAD" else entry.body,
                                  entry.reason, cache_status="HIT")
            stale = entry is not None
        headers = [(name, value) for name, value in request.headers
                   if name.lower() not in HOP_BY_HOP and name.lower() not in ("host", "content-length", CLIENT_IP_HEADER.lower())]
        forwarded = ", ".join(value for name, value in request.headers if name.lower() == "x-forwarded-for")
        headers = [(name, value) for name, value in headers if name.lower() != "x-forwarded-for"]
        headers += [("Host", request.host), ("X-Forwarded-For", "%s, %s" % (forwarded, request.client_ip) if forwarded else request.client_ip),
                    ("X-Forwarded-Proto", request.scheme), ("CF-Connecting-IP", request.client_ip), ("CF-Ray", ray),
                    ("CF-Visitor", json.dumps({"scheme": request.scheme}))]
        origin = self.upstream.fetch(route.settings["ssl"], route.origin, request.host, request.method, request.target, headers, request.body)
        kept = [(name, value) for name, value in origin.headers if name.lower() not in ("content-length", "server", "date")]
        status = verdict
        if verdict == "eligible":
            ttl = edge_cache.edge_ttl(origin.status, kept, cache_settings)
            if ttl is None:
                status = "BYPASS"
            else:
                status = "EXPIRED" if stale else "MISS"
                if request.method == "GET":
                    self.cache.put(key, Entry(origin.status, origin.reason, list(kept), origin.body, time.monotonic(), ttl, route.zone_id))
        return EdgeAnswer(origin.status, kept, origin.body, origin.reason, cache_status=status, origin_status=origin.status)

    def _https_rewrites(self, answer: EdgeAnswer, request: EdgeRequest, settings: dict[str, Any]) -> EdgeAnswer:
        """Automatic HTTPS Rewrites: in HTML served over HTTPS, ``src``/``href`` URLs ``http://<proxied name>`` become https://.

        Cloudflare rewrites the URLs it knows to work over HTTPS; for the lab those are the names it proxies.
        """
        content_type = next((value for name, value in answer.headers if name.lower() == "content-type"), "")
        if request.scheme != "https" or settings["automatic_https_rewrites"] != "on" or not content_type.startswith("text/html"):
            return answer

        def upgrade(found: re.Match[bytes]) -> bytes:
            host = found.group(2).decode("ascii", "replace").lower()
            return found.group(1) + b"https://" + found.group(2) if self.state.proxied_route(host) else found.group(0)

        answer.body = _INSECURE_URL.sub(upgrade, answer.body)
        return answer


def _custom_response(rule: dict[str, Any]) -> EdgeAnswer | None:
    response = (rule.get("action_parameters") or {}).get("response")
    if not isinstance(response, dict):
        return None
    return EdgeAnswer(int(response.get("status_code", 403)), [("Content-Type", str(response.get("content_type", "text/plain")))],
                      str(response.get("content", "")).encode("utf-8"))


def _challenge(host: str, ray: str) -> EdgeAnswer:
    answer = error_answer(403, "Just a moment...", "Checking if the site connection is secure (the lab does not serve the challenge itself).",
                          host, ray)
    answer.headers.append(("cf-mitigated", "challenge"))
    return answer


class _EdgeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], edge: Edge, https: bool):
        super().__init__(address, _Handler)
        self.edge = edge
        self.https = https

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle and delayed ACKs cost 40 ms an answer.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.https:
            super().finish_request(request, client_address)
            return
        try:
            tls, _host = self.edge.tls.accept(request, self.edge.tls_policy)
        except (NotTls, ssl.SSLError, OSError):
            return
        try:
            tls.settimeout(IDLE_TIMEOUT)
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that goes away mid-answer is not the lab's problem."""


class _Handler(BaseHTTPRequestHandler):
    server: _EdgeServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def version_string(self) -> str:
        return "cloudflare"

    def do_GET(self) -> None:
        self._answer()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _answer(self) -> None:
        body = self._body()
        host = host_of(self.headers.get("Host") or "")
        client_ip = self.headers.get(CLIENT_IP_HEADER) or self.client_address[0]
        request = EdgeRequest("https" if self.server.https else "http", self.command, host, self.path,
                              list(self.headers.items()), body, client_ip)
        answer = self.server.edge.answer(request)
        self.send_response(answer.status, answer.reason or None)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def log_message(self, format, *args) -> None:  # pylint: disable=redefined-builtin
        """Quiet: the edge keeps its own request log (control API ``/__lab/edge/log``)."""


def host_of(value: str) -> str:
    """The host name of a Host header (without port, brackets or trailing dot), lowercased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")]
    return value.split(":", 1)[0].rstrip(".")
