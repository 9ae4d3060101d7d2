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
- ``POST /__lab/reset``: back to the configuration's zones, records and tokens
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.lab import faults as fault_rules
from tests.lab.api import HttpAnswer
from tests.lab.errors import ApiError
from tests.lab.faults import FaultInjector
from tests.lab.recorder import Recorder
from tests.lab.state import LabState

PREFIX = "/__lab"


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Control:
    def __init__(self, state: LabState, recorder: Recorder, faults: FaultInjector, endpoints: Callable[[], dict[str, Any]]):
        self.state = state
        self.recorder = recorder
        self.faults = faults
        self.endpoints = endpoints

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
            return 200, {"zones": self.state.zone_ids()}
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

    def _add_token(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            raise ControlError(400, 'send {"value": ..., "status": "active", "permissions": [...], "zones": ["*"]}')
        token = self.state.add_token(body["value"], body.get("status", "active"), body.get("permissions"), body.get("zones"))
        return 201, {key: token[key] for key in ("id", "status", "permissions", "zones")}


def _json(status: int, payload: Any) -> HttpAnswer:
    return HttpAnswer(status, {"Content-Type": "application/json"}, json.dumps(payload).encode("utf-8"))
