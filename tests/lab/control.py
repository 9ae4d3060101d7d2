# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control API under ``/__lab``: what tests use to arrange the world and to look at what happened.

JSON in and out, no authentication, never schema-checked, never counted as an API call:

- ``GET /__lab/health``; ``GET /__lab/endpoints``
- ``GET|DELETE /__lab/calls``: counters by route (DELETE also clears the request log); ``GET /__lab/requests``
- ``GET|DELETE /__lab/violations``
- ``GET|POST|DELETE /__lab/faults`` (see faults.py for a rule's shape)
- ``GET|POST /__lab/zones`` ``{"name", "plan"}``; ``DELETE /__lab/zones/<name>``;
  ``GET|PUT /__lab/zones/<name>/records`` (PUT replaces all records with a list of Cloudflare-shaped ones)
- ``POST /__lab/tokens`` ``{"value", "status", "permissions", "zones"}``
- ``PUT /__lab/dns_delay`` ``{"ms": 30}``
- ``POST /__lab/reset``: back to the configuration's zones, records and tokens (and a fresh edge and origin)

The edge and the origin (edge.py, origin.py):

- ``GET /__lab/edge``: ports and CA file; ``GET|DELETE /__lab/edge/log``: the edge's request log
  (``scheme, method, host, target, status, cache, origin_status, client_ip, ray``)
- ``DELETE /__lab/edge/cache`` (``{"zone": "<name>"}`` for one zone); ``DELETE /__lab/edge/ratelimits``
- ``PUT /__lab/edge/certificate_days`` ``{"days": 5}``: validity of the edge certificates made from now on
- ``GET /__lab/origin``; ``PUT /__lab/origin/flags`` ``{"stale_preview_links", "mixed_content", "slow_ms"}``
- ``PUT|DELETE /__lab/origin/certificate`` ``{"cert_pem", "key_pem"}`` or ``{"cert_file", "key_file"}``
- ``PUT|DELETE /__lab/origin/upstream`` ``{"port": N}``
- ``POST /__lab/origin_ca/certificates`` ``{"hostnames": [...], "days": 30}`` -> ``{"cert_pem", "key_pem"}``
  (a certificate from the lab Origin CA without going through the API)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.lab import faults as fault_rules
from tests.lab.api import HttpAnswer
from tests.lab.errors import ApiError
from tests.lab.faults import FaultInjector
from tests.lab.recorder import Recorder
from tests.lab.state import LabState

if TYPE_CHECKING:
    from tests.lab.edge import Edge
    from tests.lab.origin import Origin

PREFIX = "/__lab"


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Control:
    def __init__(self, state: LabState, recorder: Recorder, faults: FaultInjector, endpoints: Callable[[], dict[str, Any]],
                 edge: Edge | None = None, origin: Origin | None = None):
        self.state = state
        self.recorder = recorder
        self.faults = faults
        self.endpoints = endpoints
        self.edge = edge
        self.origin = origin

    def handle(self, method: str, path: str, raw_body: bytes) -> HttpAnswer:
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            return _json(400, {"error": "the body is not JSON"})
        parts = [part for part in path[len(PREFIX):].split("/") if part]
        try:
            status, result = self._dispatch(method, parts, body)
        except ControlError as exc:
            return _json(exc.status, {"error": str(exc)})
        except ApiError as exc:
            return _json(400, {"error": exc.error["message"], "cloudflare_error": exc.error})
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(status, result)

    def _dispatch(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        head = parts[0] if parts else ""
        if (method, parts) == ("GET", ["health"]):
            return 200, {"ok": True}
        if (method, parts) == ("GET", ["endpoints"]):
            return 200, self.endpoints()
        if head == "calls" and len(parts) == 1:
            return self._calls(method)
        if (method, parts) == ("GET", ["requests"]):
            return 200, self.recorder.requests()
        if head == "violations" and len(parts) == 1:
            return self._violations(method)
        if head == "faults" and len(parts) == 1:
            return self._faults(method, body)
        if head == "zones":
            return self._zones(method, parts[1:], body)
        if (method, parts) == ("POST", ["tokens"]):
            return self._add_token(body)
        if (method, parts) == ("PUT", ["dns_delay"]):
            if not isinstance(body, dict) or not isinstance(body.get("ms"), (int, float)):
                raise ControlError(400, 'send {"ms": <milliseconds>}')
            self.state.set_dns_delay(int(body["ms"]))
            return 200, {"ms": self.state.dns_delay_ms}
        if (method, parts) == ("POST", ["reset"]):
            self.state.reset()
            if self.edge is not None and self.origin is not None:
                self.edge.reset()
                self.origin.reset()
            return 200, {"zones": self.state.zone_ids()}
        if head == "edge" and self.edge is not None:
            return self._edge(self.edge, method, parts[1:], body)
        if head in ("origin", "origin_ca") and self.origin is not None:
            return self._origin(self.origin, method, parts, body)
        raise ControlError(404, "no control route %s /__lab/%s" % (method, "/".join(parts)))

    def _calls(self, method: str) -> tuple[int, Any]:
        if method == "GET":
            return 200, self.recorder.calls()
        if method == "DELETE":
            self.recorder.reset_calls()
            return 200, self.recorder.calls()
        raise ControlError(405, "GET or DELETE")

    def _violations(self, method: str) -> tuple[int, Any]:
        if method == "GET":
            return 200, self.recorder.violations()
        if method == "DELETE":
            self.recorder.clear_violations()
            return 200, []
        raise ControlError(405, "GET or DELETE")

    def _faults(self, method: str, body: Any) -> tuple[int, Any]:
        if method == "GET":
            return 200, self.faults.list()
        if method == "POST":
            self.faults.add(fault_rules.parse(body))
            return 201, self.faults.list()
        if method == "DELETE":
            self.faults.clear()
            return 200, []
        raise ControlError(405, "GET, POST or DELETE")

    def _zones(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if not rest:
            if method == "GET":
                return 200, self.state.zone_ids()
            if method == "POST":
                if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                    raise ControlError(400, 'send {"name": "<zone>", "plan": "free"}')
                zone = self.state.add_zone(body["name"], body.get("plan", "free"), body.get("name_servers"))
                return 201, {key: zone[key] for key in ("id", "name", "plan", "name_servers")}
            raise ControlError(405, "GET or POST")
        name = rest[0].lower().rstrip(".")
        if name not in self.state.zone_ids():
            raise ControlError(404, "no zone %s" % name)
        if len(rest) == 1 and method == "DELETE":
            self.state.delete_zone(name)
            return 200, {"deleted": name}
        if rest[1:] == ["records"]:
            zone_id = self.state.zone_ids()[name]
            if method == "GET":
                return 200, self.state.list_records(zone_id)
            if method == "PUT":
                if not isinstance(body, list):
                    raise ControlError(400, "send a JSON list of records")
                return 200, self.state.seed_records(name, body)
        raise ControlError(404, "no control route %s /__lab/zones/%s" % (method, "/".join(rest)))

    def _edge(self, edge: Edge, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if (method, rest) == ("GET", []):
            return 200, self.endpoints().get("edge", {})
        if rest == ["log"] and method in ("GET", "DELETE"):
            if method == "DELETE":
                edge.clear_log()
            return 200, edge.log()
        if (method, rest) == ("DELETE", ["cache"]):
            zone = (body or {}).get("zone") if isinstance(body, dict) else None
            if zone is not None and zone not in self.state.zone_ids():
                raise ControlError(404, "no zone %s" % zone)
            return 200, {"purged": edge.cache.purge(self.state.zone_ids()[zone] if zone else None)}
        if (method, rest) == ("DELETE", ["ratelimits"]):
            edge.limiter.reset()
            return 200, {"reset": True}
        if (method, rest) == ("PUT", ["certificate_days"]):
            days = body.get("days") if isinstance(body, dict) else None
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                raise ControlError(400, 'send {"days": <whole number of days, 1 or more>}')
            self.state.pki.set_edge_leaf_days(days)
            edge.tls.forget()
            return 200, {"days": days}
        raise ControlError(404, "no control route %s /__lab/edge/%s" % (method, "/".join(rest)))

    def _origin(self, origin: Origin, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        if (method, parts) == ("GET", ["origin"]):
            return 200, origin.describe()
        if (method, parts) == ("PUT", ["origin", "flags"]):
            if not isinstance(body, dict):
                raise ControlError(400, 'send {"stale_preview_links": false, ...}')
            return 200, origin.set_flags(body)
        if parts == ["origin", "certificate"] and method in ("PUT", "DELETE"):
            if method == "DELETE":
                origin.default_certificate()
            else:
                cert_text, key_text = _pem_pair(body)
                origin.install_certificate(cert_text, key_text)
            if self.edge is not None:
                self.edge.upstream.forget_connections()
            return 200, origin.describe()
        if parts == ["origin", "upstream"] and method in ("PUT", "DELETE"):
            port = body.get("port") if isinstance(body, dict) else None
            if method == "PUT" and (not isinstance(port, int) or not 0 < port < 65536):
                raise ControlError(400, 'send {"port": <TCP port on 127.0.0.1>}')
            origin.set_upstream(port if method == "PUT" else None)
            if self.edge is not None:
                self.edge.upstream.forget_connections()
            return 200, origin.describe()
        if (method, parts) == ("POST", ["origin_ca", "certificates"]):
            hostnames = body.get("hostnames") if isinstance(body, dict) else None
            days = body.get("days", 365) if isinstance(body, dict) else 365
            if not isinstance(hostnames, list) or not hostnames or not all(isinstance(name, str) for name in hostnames) or not isinstance(days, int):
                raise ControlError(400, 'send {"hostnames": ["app.example.test"], "days": 30}')
            cert_text, key_text = self.state.pki.origin_leaf(hostnames, days)
            return 201, {"cert_pem": cert_text, "key_pem": key_text}
        raise ControlError(404, "no control route %s /__lab/%s" % (method, "/".join(parts)))

    def _add_token(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise ControlError(400, 'send {"value": ..., "status": "active", "permissions": [...], "zones": ["*"]}')
        token = self.state.add_token(body["value"], body.get("status", "active"), body.get("permissions"), body.get("zones"))
        return 201, {key: token[key] for key in ("id", "status", "permissions", "zones")}


def _pem_pair(body: Any) -> tuple[str, str]:
    """(certificate, key) PEM text from ``{"cert_pem", "key_pem"}`` or from the files ``{"cert_file", "key_file"}`` name."""
    if isinstance(body, dict) and isinstance(body.get("cert_pem"), str) and isinstance(body.get("key_pem"), str):
        return body["cert_pem"], body["key_pem"]
    if isinstance(body, dict) and isinstance(body.get("cert_file"), str) and isinstance(body.get("key_file"), str):
        try:
            return Path(body["cert_file"]).read_text(encoding="ascii"), Path(body["key_file"]).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ControlError(400, "cannot read the certificate or key: %s" % exc) from None
    raise ControlError(400, 'send {"cert_pem", "key_pem"} or {"cert_file", "key_file"}')


def _json(status: int, payload: Any) -> HttpAnswer:
    return HttpAnswer(status, {"Content-Type": "application/json"}, json.dumps(payload).encode("utf-8"))
