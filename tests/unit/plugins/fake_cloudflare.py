# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scripted fake of the Cloudflare API's HTTP layer, for the unit tests of every Cloudflare module.

A test lists the calls it expects, in order, each with its answer; the fake asserts that
every request matches the next expected call (method, path, query, JSON body, Bearer token)
and fails on any call that was not expected. ``assert_done()`` checks nothing expected is
left over. Only HTTP is faked: the real ``CloudflareClient`` runs on top of it.

    fake = FakeCloudflare(token)
    fake.zone_lookup("example.com", ZONE_ID)
    fake.list_records(ZONE_ID, [record("1", "A", "www.example.com", "192.0.2.1")])
    result = run_module(monkeypatch, capsys, cloudflare_dns_records, args, fake)
    fake.assert_done()
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx
import pytest
from ansible.module_utils import basic

from ansible_collections.launchready.core.plugins.module_utils._cloudflare import PER_PAGE_DNS_RECORDS, PER_PAGE_ZONES, CloudflareClient

BASE_URL = "https://api.cloudflare.com/client/v4"
ANY = object()  # matches any query or body
NO_BODY = object()  # the request must have no body


def fake_token() -> str:
    return "cf-" + secrets.token_urlsafe(30)


def zone_id() -> str:
    return secrets.token_hex(16)


def record(record_id: str, rtype: str, name: str, content: str | None = None, ttl: int = 1, proxied: bool = False, **extra) -> dict:
    """A DNS record shaped as the API lists it."""
    item = {
        "id": record_id,
        "type": rtype,
        "name": name,
        "content": content,
        "ttl": ttl,
        "proxied": proxied,
        "proxiable": rtype in ("A", "AAAA", "CNAME"),
        "comment": None,
        "tags": [],
        "created_on": "2024-01-01T00:00:00Z",
        "modified_on": "2024-01-01T00:00:00Z",
    }
    item.update(extra)
    return item


def envelope(result=None, success: bool = True, errors: list | None = None, messages: list | None = None, result_info: dict | None = None) -> dict:
    body = {"success": success, "errors": errors or [], "messages": messages or [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


@dataclass
class Expected:
    method: str
    path: str
    params: object = None  # dict of the query, None for no query, ANY
    json: object = NO_BODY  # the JSON body, NO_BODY, ANY
    status: int = 200
    body: object = None  # the answer: a dict (JSON) or str/bytes (raw)
    headers: dict = field(default_factory=dict)
    error: Exception | None = None  # raised instead of answering (connection failures)


@dataclass
class Seen:
    method: str
    path: str
    params: dict
    json: object
    headers: dict


class FakeCloudflare:
    def __init__(self, token: str | None = None, base_url: str = BASE_URL) -> None:
        self.token = token
        self.base_path = httpx.URL(base_url).path.rstrip("/")
        self.expected: deque[Expected] = deque()
        self.calls: list[Seen] = []

    # -- scripting -----------------------------------------------------------------------

    def expect(self, method: str, path: str, params=None, json=NO_BODY, status: int = 200, result=None, result_info=None,
               errors=None, messages=None, body=None, headers=None, error: Exception | None = None) -> FakeCloudflare:
        if body is None and error is None:
            success = 200 <= status < 300 and not errors
            body = envelope(result, success, errors, messages, result_info)
        self.expected.append(Expected(method, path, params, json, status, body, headers or {}, error))
        return self

    def zone_lookup(self, name: str, zone: str, plan: str = "free") -> FakeCloudflare:
        return self.expect(
            "GET", "/zones", params={"name": name, "page": "1", "per_page": str(PER_PAGE_ZONES)},
            result=[zone_object(name, zone, plan)], result_info={"page": 1, "per_page": PER_PAGE_ZONES, "count": 1, "total_count": 1, "total_pages": 1},
        )

    def zone_get(self, name: str, zone: str, plan: str = "free") -> FakeCloudflare:
        return self.expect("GET", "/zones/%s" % zone, result=zone_object(name, zone, plan))

    def list_records(self, zone: str, records: list[dict], per_page: int = PER_PAGE_DNS_RECORDS) -> FakeCloudflare:
        """The zone's records, in as many pages as ``per_page`` makes."""
        pages = max(1, -(-len(records) // per_page))
        for page in range(1, pages + 1):
            chunk = records[(page - 1) * per_page:page * per_page]
            self.expect(
                "GET", "/zones/%s/dns_records" % zone, params={"page": str(page), "per_page": str(PER_PAGE_DNS_RECORDS)},
                result=chunk, result_info={"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(records), "total_pages": pages},
            )
        return self

    def batch(self, zone: str, body, result: dict | None = None, **kwargs) -> FakeCloudflare:
        return self.expect("POST", "/zones/%s/dns_records/batch" % zone, json=body, result=result if result is not None else {}, **kwargs)

    # -- the transport -------------------------------------------------------------------

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self.base_path and path.startswith(self.base_path):
            path = path[len(self.base_path):]
        params = dict(parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True))
        content = request.content
        sent = json.loads(content) if content else NO_BODY
        self.calls.append(Seen(request.method, path, params, sent, dict(request.headers)))
        where = "call %d: %s %s %s %s" % (len(self.calls), request.method, path, params, "" if sent is NO_BODY else json.dumps(sent, sort_keys=True))
        assert self.expected, "unexpected API call, none was left to expect: " + where
        expected = self.expected.popleft()
        assert (request.method, path) == (expected.method, expected.path), "expected %s %s, got %s" % (expected.method, expected.path, where)
        if expected.params is not ANY:
            assert params == (expected.params or {}), "query of %s: expected %s" % (where, expected.params)
        if expected.json is not ANY:
            assert sent == expected.json, "body of %s:\nexpected %s" % (where, json.dumps(expected.json, sort_keys=True, default=str))
        if self.token is not None:
            assert request.headers.get("authorization") == "Bearer " + self.token, "%s: wrong or missing Bearer token" % where
        if expected.error is not None:
            raise expected.error
        if isinstance(expected.body, (dict, list)):
            return httpx.Response(expected.status, json=expected.body, headers=expected.headers)
        return httpx.Response(expected.status, content=expected.body or b"", headers=expected.headers)

    # -- checks --------------------------------------------------------------------------

    def assert_done(self) -> None:
        left = ["%s %s" % (e.method, e.path) for e in self.expected]
        assert not left, "expected API calls never made: %s" % ", ".join(left)

    @property
    def writes(self) -> int:
        return sum(1 for call in self.calls if call.method != "GET")


def zone_object(name: str, zone: str, plan: str = "free") -> dict:
    return {
        "id": zone,
        "name": name,
        "status": "active",
        "plan": {"id": secrets.token_hex(16), "name": "%s Website" % plan.title(), "legacy_id": plan},
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
    }


class Sleeps(list):
    """Stands in for time.sleep: records every wait, waits for nothing."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def use_fake(monkeypatch, fake: FakeCloudflare) -> Sleeps:
    """Make every CloudflareClient created from now on talk to ``fake`` and not really sleep."""
    sleeps = Sleeps()
    monkeypatch.setattr(CloudflareClient, "transport", fake.transport)
    monkeypatch.setattr(CloudflareClient, "sleep", sleeps)
    return sleeps


def run_module(monkeypatch, capsys, module, args: dict, fake: FakeCloudflare, check_mode: bool = False, diff: bool = False) -> dict:
    """Run ``module.main()`` with ``args`` against ``fake``; returns its JSON result (``failed`` set on failure)."""
    use_fake(monkeypatch, fake)
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    if hasattr(basic, "_ANSIBLE_PROFILE"):
        monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)
