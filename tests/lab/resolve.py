# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""curl's ``--resolve`` for httpx: send ``host:port`` to another ``address:port``, keeping the Host
header and the TLS server name (SNI, and the name the certificate is checked against).

    mapping = lab.edge_resolve(["www.launch-demo.test"])   # {"www.launch-demo.test:443": "127.0.0.1:<edge https port>", ...}
    with httpx.Client(transport=ResolveTransport(mapping, verify=ssl_context)) as client:
        client.get("https://www.launch-demo.test/")          # reaches the lab edge, checked as www.launch-demo.test

``Lab.edge_client()`` builds such a client for the edge. Redirects followed by httpx go through the
same mapping, so a redirect chain across names stays on the lab.
"""

from __future__ import annotations

from typing import Any

import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}


class ResolveTransport(httpx.HTTPTransport):
    def __init__(self, mapping: dict[str, str], fallback: dict[int, str] | None = None, **options: Any):
        """``mapping``: ``"host:port" -> "address:port"``; ``fallback``: ``port -> "address:port"`` for any other host."""
        super().__init__(**options)
        self.mapping = {key.lower(): value for key, value in mapping.items()}
        self.fallback = dict(fallback or {})

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or DEFAULT_PORTS.get(request.url.scheme, 80)
        target = self.mapping.get("%s:%d" % (host.lower(), port)) or self.fallback.get(port)
        if target is not None:
            # A new request: httpx keeps the original (and its URL) as the response's request.
            address, _colon, new_port = target.rpartition(":")
            request = httpx.Request(request.method, request.url.copy_with(host=address.strip("[]"), port=int(new_port)),
                                    headers=request.headers, stream=request.stream, extensions=dict(request.extensions, sni_hostname=host))
        return super().handle_request(request)
