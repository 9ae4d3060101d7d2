# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Cloudflare API v4 emulator: the pipeline every ``/client/v4`` request goes through.

1. match the path against the OpenAPI templates (unknown: 7003/7000);
2. injected faults for that route (delay, then 429/5xx);
3. token authentication (9106, 6003/6111, 9109), then JSON parsing (6007);
4. the zone of a ``{zone_id}`` route (unknown: 7003) and the token's reach and permission (9109, 10000);
5. the request against the OpenAPI document: a violation is recorded and answered 400, with
   Cloudflare's own error when the handler finds one in a dry run, else 9207;
6. the route handler;
7. the response against the OpenAPI document (a violation here is a bug in the emulator);
8. the call is counted under ``METHOD /template`` and logged.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tests.lab import api_certificates, api_dns, api_rulesets, api_settings, api_tokens, api_zones, auth, errors
from tests.lab.errors import ApiError
from tests.lab.faults import Fault, FaultInjector
from tests.lab.recorder import UNROUTED, Recorder
from tests.lab.routing import Context, Reply, Route
from tests.lab.schema import OpenApi
from tests.lab.state import LabState

PREFIX = "/client/v4"
ROUTE_MODULES = (api_zones, api_dns, api_settings, api_rulesets, api_certificates, api_tokens)
RATE_LIMIT_MESSAGE = "Please wait and consider throttling your request speed"
# Cloudflare documents no code for its internal errors; 9999 is the lab's, so nobody mistakes it for a real one.
LAB_SERVER_ERROR = 9999
_EDGE_ERROR_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><title>api.cloudflare.com | %(status)d: %(reason)s</title></head>
<body><h1>Error %(status)d</h1><p>%(reason)s</p><p>Cloudflare Ray ID: 0000000000000000 (launchready lab)</p></body></html>
"""


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


class Api:
    def __init__(self, state: LabState, openapi: OpenApi, recorder: Recorder, faults: FaultInjector):
        self.state = state
        self.openapi = openapi
        self.recorder = recorder
        self.faults = faults
        self.routes: dict[tuple[str, str], Route] = {}
        for module in ROUTE_MODULES:
            for route in module.ROUTES:
                self.routes[(route.method, route.template)] = route

    def handle(self, method: str, path: str, query_string: str, headers: Mapping[str, str], raw_body: bytes) -> HttpAnswer:
        query = parse_qs(query_string, keep_blank_values=True)
        has_body = bool(raw_body.strip())
        try:
            body = json.loads(raw_body) if has_body else None
            malformed = False
        except ValueError:
            body, malformed = raw_body.decode("utf-8", "replace"), True
        relative = path[len(PREFIX):] or "/"
        matched = self.openapi.match(method, relative)
        template, params = matched if matched else (None, {})

        answer = self._answer(method, path, template, params, query, headers, body, has_body, malformed)
        logged_query = {key: values[-1] if len(values) == 1 else values for key, values in query.items()}
        self.recorder.record_call(method, path, logged_query, body, answer.status, template)
        return answer

    def _answer(self, method: str, path: str, template: str | None, params: dict[str, str], query: dict[str, list[str]],
                headers: Mapping[str, str], body: Any, has_body: bool, malformed: bool) -> HttpAnswer:
        fault = self.faults.fire("%s %s" % (method, template or UNROUTED))
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                return self._fault_answer(fault, method, path, template)
        try:
            route = self.routes.get((method, template or ""))
            if route is None or template is None:
                raise errors.no_route(path)
            token = auth.authenticate(headers, self.state)
            if malformed:
                raise ApiError(400, errors.MALFORMED_JSON, "Malformed JSON in request body")
            ctx = Context(self.state, token, params, query, body)
            if "zone_id" in params:
                zone = self.state.zone_by_id(params["zone_id"])
                if zone is None:
                    raise errors.no_route(path)
                ctx.zone = zone
            auth.require(token, route.permission_for(params), ctx.zone or None)
            problems = self.openapi.request_errors(method, template, params, query, body, has_body)
            if problems:
                self.recorder.add_violation("request", method, path, template, problems)
                ctx.dry_run = True
                route.handler(ctx)
                raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.")
            reply = route.handler(ctx)
        except ApiError as exc:
            reply = Reply(exc.body(), status=exc.status)
        except Exception:  # pylint: disable=broad-exception-caught
            # Any other exception is a bug in the emulator: answer like a server error and make the test fail.
            self.recorder.add_violation("emulator-error", method, path, template, [traceback.format_exc()])
            reply = Reply(errors.failure([{"code": LAB_SERVER_ERROR, "message": "Internal Server Error"}]), status=500)
        return self._json_answer(reply, method, path, template)

    def _json_answer(self, reply: Reply, method: str, path: str, template: str | None) -> HttpAnswer:
        if template is not None:
            problems = self.openapi.response_errors(method, template, reply.status, reply.body)
            if problems:
                self.recorder.add_violation("response", method, path, template, problems, status=reply.status)
        headers = {"Content-Type": "application/json"}
        headers.update(reply.headers)
        return HttpAnswer(reply.status, headers, json.dumps(reply.body).encode("utf-8"))

    def _fault_answer(self, fault: Fault, method: str, path: str, template: str | None) -> HttpAnswer:
        status = int(fault.status or 500)
        if status == 429:
            body = errors.failure([{"code": errors.RATE_LIMITED, "message": RATE_LIMIT_MESSAGE}])
            return self._json_answer(Reply(body, 429, {"Retry-After": str(fault.retry_after)}), method, path, template)
        if status == 500:
            body = errors.failure([{"code": LAB_SERVER_ERROR, "message": "Internal Server Error"}])
            return self._json_answer(Reply(body, 500), method, path, template)
        # 502 and 503 come from Cloudflare's edge in front of the API: an HTML page, not the JSON envelope.
        reason = {502: "Bad gateway", 503: "Service temporarily unavailable"}[status]
        page = _EDGE_ERROR_PAGE % {"status": status, "reason": reason}
        return HttpAnswer(status, {"Content-Type": "text/html; charset=UTF-8"}, page.encode("utf-8"))
