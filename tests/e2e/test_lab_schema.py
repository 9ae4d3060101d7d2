# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's schema validation (tests/lab/schema.py, schema_checks.py): as strict as jsonschema, and fast.

The compiled checks must answer every body exactly as jsonschema does: the lab's own traffic and
mutants of it are validated twice, by ``OpenApi()`` and by ``OpenApi(compiled=False)`` (jsonschema
alone, the reference), and the two lists of problems must be equal.
"""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.lab.client import Lab
from tests.lab.schema import OpenApi
from tests.lab.schema_checks import CompiledSchemas

PERMISSIONS = ["zone:read", "dns_records:edit", "zone_settings:edit", "dynamic_url_redirects:edit", "cache_settings:edit", "zone_waf:edit"]
RECORDS = "/zones/{zone_id}/dns_records"
# Values a mutant puts in place of any value: other JSON types, out-of-range numbers, bad formats, other record
# types and setting ids (so that a oneOf/anyOf discriminated by ``type`` or ``id`` must pick another branch).
REPLACEMENTS: tuple[Any, ...] = (
    None, True, False, 0, 1, 1.0, 1.5, -1, 29, 86401, 70000, "", "x", "192.0.2.300", "2001:db8::zz", "-bad-.host", "2024-13-01",
    "A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA", "FOO", "a", "ssl", "always_use_https", "min_tls_version",
    "security_header", "on", "strict", "1.2", "block", "redirect", [], ["x"], [1], {}, {"a": 1},
)


@dataclass
class Sample:
    """One body the lab sent or received: a response (status) or a request (path parameters and query)."""

    method: str
    template: str
    body: Any
    status: int = 0
    params: dict[str, str] | None = None
    query: dict[str, list[str]] | None = None

    def problems(self, openapi: OpenApi, body: Any) -> list[str]:
        if self.params is None:
            return openapi.response_errors(self.method, self.template, self.status, body)
        return openapi.request_errors(self.method, self.template, self.params, self.query or {}, body, True)


@pytest.fixture(scope="module")
def reference() -> OpenApi:
    return OpenApi(compiled=False)


@pytest.fixture(scope="module")
def traffic(lab: Lab) -> list[Sample]:
    """Requests and responses of every kind of API call the lab answers, recorded from a fresh zone."""
    name = "schema%s.test" % uuid.uuid4().hex[:8]
    zone_id = lab.add_zone(name)
    openapi = OpenApi()
    samples: list[Sample] = []
    token = lab.add_token(PERMISSIONS, zones=[name])
    api = httpx.Client(base_url=lab.api_base_url, headers={"Authorization": "Bearer " + token}, timeout=30)

    def call(method: str, path: str, **options: Any) -> httpx.Response:
        answer = api.request(method, path, **options)
        relative = urlsplit(str(answer.request.url)).path[len("/client/v4"):]
        template, params = openapi.match(method, relative) or (None, {})
        assert template is not None, path
        if "json" in options:
            samples.append(Sample(method, template, options["json"], params=params, query=parse_qs(answer.request.url.query.decode())))
        samples.append(Sample(method, template, answer.json(), status=answer.status_code))
        return answer

    records = [
        {"type": "A", "name": "www." + name, "content": "127.0.0.1", "ttl": 1, "proxied": True, "comment": "web", "tags": ["owner:web"]},
        {"type": "AAAA", "name": "www." + name, "content": "::1", "ttl": 1, "proxied": True},
        {"type": "CNAME", "name": "app." + name, "content": "www." + name, "ttl": 300},
        {"type": "MX", "name": name, "content": "mx1.example.net", "priority": 10, "ttl": 3600},
        {"type": "TXT", "name": name, "content": "v=spf1 -all", "ttl": 300, "comment": None},
        {"type": "NS", "name": "sub." + name, "content": "ns1.example.net", "ttl": 86400},
        {"type": "SRV", "name": "_sip._tcp." + name, "ttl": 300, "data": {"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.net"}},
        {"type": "CAA", "name": name, "ttl": 300, "data": {"flags": 0, "tag": "issue", "value": "letsencrypt.org"}},
    ]
    with api:
        created = [call("POST", "/zones/%s/dns_records" % zone_id, json=record).json()["result"] for record in records]
        call("POST", "/zones/%s/dns_records" % zone_id, json={"type": "A", "name": "bad." + name, "content": "192.0.2.300", "ttl": 1})
        call("PATCH", "/zones/%s/dns_records/%s" % (zone_id, created[0]["id"]), json={"proxied": False, "ttl": 120})
        call("GET", "/zones/%s/dns_records/%s" % (zone_id, created[1]["id"]))
        call("POST", "/zones/%s/dns_records/batch" % zone_id, json={
            "deletes": [{"id": created[2]["id"]}], "patches": [{"id": created[4]["id"], "content": "v=spf1 mx -all"}],
            "posts": [{"type": "TXT", "name": "_dmarc." + name, "content": "v=DMARC1; p=none", "ttl": 1}]})
        call("GET", "/zones/%s/dns_records" % zone_id, params={"per_page": 5000000, "order": "type"})
        call("GET", "/zones", params={"name": name})
        call("GET", "/zones/%s" % zone_id)
        call("GET", "/zones/%s/settings" % zone_id)
        call("PATCH", "/zones/%s/settings" % zone_id, json={"items": [{"id": "ssl", "value": "strict"}, {"id": "min_tls_version", "value": "1.2"}]})
        call("PATCH", "/zones/%s/settings/security_header" % zone_id, json={"value": {"strict_transport_security": {"enabled": True, "max_age": 31536000}}})
        call("GET", "/zones/%s/settings/always_use_https" % zone_id)
        entrypoint = "/zones/%s/rulesets/phases/%%s/entrypoint" % zone_id
        call("GET", entrypoint % "http_request_cache_settings")
        call("PUT", entrypoint % "http_request_cache_settings", json={"rules": [
            {"ref": "admin", "expression": 'starts_with(http.request.uri.path, "/admin")', "action": "set_cache_settings",
             "action_parameters": {"cache": False}, "description": "never cache admin"}]})
        call("PUT", entrypoint % "http_request_dynamic_redirect", json={"rules": [
            {"ref": "www", "expression": 'http.host eq "%s"' % name, "action": "redirect",
             "action_parameters": {"from_value": {"status_code": 301, "target_url": {"value": "https://www.%s/" % name}}}}]})
        call("PUT", entrypoint % "http_request_firewall_custom", json={"rules": [
            {"ref": "block", "expression": 'http.request.uri.path eq "/wp-login.php"', "action": "block"}]})
        call("GET", entrypoint % "http_request_firewall_custom")
        call("GET", "/user/tokens/verify")
    lab.delete_zone(name)
    return samples


def _one_item_bodies(sample: Sample, limit: int = 6) -> list[Sample]:
    """A list response as bodies of one ``result`` item each (at most ``limit``): mutants stay small."""
    body = sample.body
    if sample.params is not None or not isinstance(body, dict) or not isinstance(body.get("result"), list) or len(body["result"]) < 2:
        return [sample]
    return [Sample(sample.method, sample.template, dict(body, result=[item]), status=sample.status) for item in body["result"][:limit]]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _mutants(body: Any, rng: random.Random, count: int) -> list[Any]:
    """``count`` copies of ``body``, each with one change: a value replaced or removed, or an unknown property added."""
    changes = []
    for path in _paths(body):
        changes += [("replace", path, value) for value in REPLACEMENTS]
        if path:
            changes.append(("remove", path, None))
        changes.append(("add", path, {"unexpected": [None]}))
    mutants = []
    for kind, path, value in rng.sample(changes, min(count, len(changes))):
        if not path and kind == "replace":
            mutants.append(copy.deepcopy(value))
            continue
        mutant = copy.deepcopy(body)
        target: Any = mutant
        for key in path[:-1] if kind != "add" else path:
            target = target[key]
        if kind == "replace":
            target[path[-1]] = copy.deepcopy(value)
        elif kind == "remove":
            del target[path[-1]]
        elif isinstance(target, dict):
            target["x_unexpected"] = copy.deepcopy(value)
        else:
            continue
        mutants.append(mutant)
    return mutants


# Same answers as jsonschema


def test_lab_traffic_is_valid_and_answered_as_jsonschema_answers(lab: Lab, traffic: list[Sample], reference: OpenApi):
    openapi = OpenApi()
    routes = {(sample.method, sample.template, "request" if sample.params is not None else "response") for sample in traffic}
    assert len(routes) >= 20, sorted(routes)
    for sample in traffic:
        assert sample.problems(openapi, sample.body) == sample.problems(reference, sample.body) == [], sample
    assert lab.violations() == []


def test_mutated_bodies_are_answered_as_jsonschema_answers(traffic: list[Sample], reference: OpenApi):
    """Hundreds of one-change mutants of the lab's traffic: the compiled checks refuse exactly what jsonschema refuses."""
    openapi = OpenApi()
    rng = random.Random(20261127)
    verdicts = {"accepted": 0, "refused": 0}
    for small in (one for sample in traffic for one in _one_item_bodies(sample)):
        for mutant in _mutants(small.body, rng, 12):
            expected = small.problems(reference, mutant)
            assert small.problems(openapi, mutant) == expected, (small.method, small.template, small.status, json.dumps(mutant)[:2000])
            verdicts["refused" if expected else "accepted"] += 1
    assert verdicts["refused"] > 300 and verdicts["accepted"] > 80, verdicts


SYNTHETIC: dict[str, Any] = {"components": {"schemas": {
    "tree": {"type": "object", "required": ["name"],
             "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/components/schemas/tree"}}}},
    "numbers": {"properties": {"int": {"type": "integer"}, "num": {"type": "number", "minimum": 1, "exclusiveMinimum": True, "maximum": 10},
                               "choice": {"enum": [1, "1", None, 2.5]}, "shape": {"enum": [[], {"a": 1}]}, "flag": {"enum": [True]},
                               "half": {"multipleOf": 0.5}}},
    "strict": {"type": "object", "properties": {"a": {}}, "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False,
               "minProperties": 1, "maxProperties": 2},
    "pairs": {"type": "array", "items": [{"type": "string"}, {"type": "number"}], "uniqueItems": True, "minItems": 1, "maxItems": 3},
    "text": {"type": ["string", "null"], "minLength": 2, "maxLength": 8, "pattern": "^1", "format": "ipv4"},
    # Discriminated by "kind", with a branch that does not constrain it: {"kind": "cat"} matches two branches.
    "pets": {"oneOf": [{"$ref": "#/components/schemas/cat"}, {"$ref": "#/components/schemas/dog"},
                       {"type": "object", "properties": {"kind": {"type": "string"}, "wild": {"enum": [True]}}, "required": ["wild"]}]},
    "cat": {"allOf": [{"required": ["kind"]}, {"properties": {"kind": {"enum": ["cat"]}, "lives": {"type": "integer"}}}]},
    "dog": {"required": ["kind", "bark"], "properties": {"kind": {"$ref": "#/components/schemas/dog_kind"}, "bark": {"type": "boolean"}}},
    "dog_kind": {"enum": ["dog", "wolf"]},
    "any_pet": {"anyOf": [{"$ref": "#/components/schemas/cat"}, {"$ref": "#/components/schemas/dog"}], "not": {"required": ["banned"]}},
    "uncompiled": {"dependencies": {"a": ["b"]}},
}}}
INSTANCES: list[Any] = [
    None, True, False, 0, 1, 1.0, 1.5, 2, 10, 10.5, -3, "", "1", "1.", "wolf", "10.0.0.1", "10.0.0.300", "a.b.c.d", "100.100.100.100",
    [], ["x"], ["x", 1], ["x", "x"], [1, 1], [1, True], ["x", 1, None, 2],
    {"name": "n"}, {"name": "n", "children": [{"name": "c", "children": []}]}, {"name": "n", "children": [{"name": "c", "children": [{}]}]},
    {"kind": "cat"}, {"kind": "cat", "wild": True}, {"kind": "dog", "bark": True}, {"kind": "wolf", "bark": 1}, {"kind": "wolf"},
    {"kind": "cat", "lives": 1.0}, {"kind": 5, "wild": True}, {"wild": True}, {"kind": "cat", "banned": 1},
    {"a": 1}, {"x-1": "s"}, {"x-1": 1}, {"b": 1}, {"a": 1, "x-2": "t", "x-3": "u"},
    {"int": 1}, {"int": 1.0}, {"int": True}, {"num": 1}, {"num": 1.01}, {"num": 10}, {"num": 10.5}, {"num": False},
    {"choice": 1}, {"choice": True}, {"choice": 1.0}, {"choice": "1"}, {"choice": None}, {"choice": []}, {"choice": 0}, {"choice": False},
    {"choice": 2.5}, {"shape": []}, {"shape": ()}, {"shape": {"a": 1}}, {"shape": {"a": True}}, {"shape": {"a": 1.0}}, {"flag": True}, {"flag": 1},
    {"half": 1.5}, {"half": 1.3}, {"half": 2},
]


def test_compiled_checks_follow_draft_4_on_tricky_schemas():
    """Recursive $ref, enum equality (True is not 1), integer vs 1.0, exclusive bounds, additionalProperties with
    patternProperties, tuple items, uniqueItems, formats, discriminated oneOf/anyOf with an unconstrained branch."""
    checker = FormatChecker()
    registry = Registry().with_resource("urn:synthetic", Resource.from_contents(SYNTHETIC, default_specification=DRAFT4))
    compiled = CompiledSchemas(SYNTHETIC, checker)
    assert compiled.check("#/components/schemas/uncompiled") is None, "a keyword it does not compile leaves the schema to jsonschema"
    outcomes = set()
    for name in SYNTHETIC["components"]["schemas"]:
        check = compiled.check("#/components/schemas/" + name)
        if check is None:
            continue
        validator = Draft4Validator({"$ref": "urn:synthetic#/components/schemas/" + name}, registry=registry, format_checker=checker)
        for instance in INSTANCES:
            expected = validator.is_valid(instance)
            assert check(instance) is expected, (name, instance, expected)
            outcomes.add((name, expected))
    assert len(outcomes) == 2 * (len(SYNTHETIC["components"]["schemas"]) - 1), "every schema both accepts and refuses something"


# Bad bodies are still refused


_REMOVE = object()


def _record(**changes: Any) -> dict[str, Any]:
    record = {"id": uuid.uuid4().hex, "name": "www.example.test", "type": "A", "content": "192.0.2.1", "proxiable": True, "proxied": True,
              "ttl": 1, "comment": None, "tags": [], "settings": {}, "meta": {"auto_added": False, "source": "primary"},
              "created_on": "2026-11-27T22:33:39.449181Z", "modified_on": "2026-11-27T22:33:39.449181Z"}
    record.update(changes)
    return {key: value for key, value in record.items() if value is not _REMOVE}


def _listing(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": records,
            "result_info": {"page": 1, "per_page": 5000000, "count": len(records), "total_count": len(records), "total_pages": 1}}


@pytest.mark.parametrize("changes, problem", [
    ({"id": _REMOVE}, "response body at /result/1: 'id' is a required property"),
    ({"created_on": _REMOVE}, "response body at /result/1: 'created_on' is a required property"),  # readOnly: required in answers
    ({"proxied": "yes"}, "response body at /result/1/proxied: 'yes' is not of type 'boolean'"),
    ({"content": "192.0.2.300"}, "response body at /result/1/content: '192.0.2.300' is not a 'ipv4'"),
    ({"type": "AAAA"}, "response body at /result/1/content: '192.0.2.1' is not a 'ipv6'"),
    ({"meta": "auto"}, "response body at /result/1/meta: 'auto' is not of type 'object'"),
    ({"settings": {"ipv4_only": "yes"}}, "response body at /result/1/settings/ipv4_only: 'yes' is not of type 'boolean'"),
    ({"tags": "owner:web"}, "response body at /result/1/tags: 'owner:web' is not of type 'array'"),
    ({"comment": 5}, "response body at /result/1/comment: 5 is not of type 'string', 'null'"),  # nullable, not anything
    ({"ttl": 10}, "response body at /result/1/ttl: 10 is not valid under any of the given schemas"),
    ({"modified_on": "yesterday"}, "response body at /result/1/modified_on: 'yesterday' is not a 'date-time'"),
    ({"type": "FOO"}, "response body at /result/1/type: 'FOO' is not one of the types"),
])
def test_bad_records_in_a_listing_are_refused(reference: OpenApi, changes: dict[str, Any], problem: str):
    openapi = OpenApi()
    good = _listing([_record(), _record(type="TXT", content="v=spf1 -all", proxiable=False, proxied=False)] * 20)
    assert openapi.response_errors("GET", RECORDS, 200, good) == []
    bad = _listing([_record(), _record(**changes), _record(type="AAAA", content="2001:db8::1")])
    problems = openapi.response_errors("GET", RECORDS, 200, bad)
    assert problems and problems[0].startswith(problem), problems
    assert problems == reference.response_errors("GET", RECORDS, 200, bad)


def test_requests_keep_their_own_rules(reference: OpenApi):
    """A request is checked without ``format`` and without the readOnly properties in ``required``; ``nullable`` holds."""
    openapi = OpenApi()
    params = {"zone_id": "0" * 32}
    for body, refused in [
        ({"type": "A", "name": "a", "content": "192.0.2.300", "ttl": 1}, False),  # a bad address is Cloudflare's 9005, not the schema's
        ({"type": "A", "name": "a", "content": "192.0.2.1", "ttl": 1, "comment": None}, False),
        ({"type": "A", "name": "a", "content": "192.0.2.1", "ttl": 1, "proxied": "yes"}, True),
        ({"type": "A", "name": "a", "content": "192.0.2.1"}, True),
        ({"type": "MX", "name": "a", "content": "mx.example.net", "ttl": 1, "priority": -1}, True),
    ]:
        problems = openapi.request_errors("POST", RECORDS, params, {}, body, True)
        assert bool(problems) is refused and problems == reference.request_errors("POST", RECORDS, params, {}, body, True), body
    rule = {"expression": "ssl", "action": "block"}  # no version, id or last_updated: the server sets them
    entrypoint = "/zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint"
    assert openapi.request_errors("PUT", entrypoint, dict(params, ruleset_phase="http_request_firewall_custom"), {}, {"rules": [rule]}, True) == []
    assert openapi.request_errors("GET", RECORDS, params, {"per_page": ["0"]}, None, False) == [
        "query parameter per_page: at /: 0 is less than the minimum of 1"]


def test_refused_request_over_http_is_recorded(lab: Lab):
    name = "schema%s.test" % uuid.uuid4().hex[:8]
    zone_id = lab.add_zone(name)
    token = lab.add_token(["zone:read", "dns_records:edit"], zones=[name])
    try:
        answer = httpx.post(lab.api_base_url + "/zones/%s/dns_records" % zone_id, headers={"Authorization": "Bearer " + token},
                            json={"type": "A", "name": "www." + name, "content": "127.0.0.1", "ttl": 1, "proxied": "yes"})
        assert answer.status_code == 400 and [error["code"] for error in answer.json()["errors"]] == [9207]
        violations = lab.violations()
        assert [violation["kind"] for violation in violations] == ["request"]
        assert "/proxied: 'yes' is not of type 'boolean'" in violations[0]["problems"][0]
        assert lab.records(name) == []
    finally:
        lab.clear_violations()
        lab.delete_zone(name)


# Fast


def test_listing_a_thousand_records_validates_fast(lab: Lab):
    """About 0.02 s of CPU for 1,000 records on the 2-core machine (jsonschema alone took about 2 s); the bound is 0.5 s."""
    name = "schema%s.test" % uuid.uuid4().hex[:8]
    zone_id = lab.add_zone(name)
    token = lab.add_token(["zone:read", "dns_records:read"], zones=[name])
    kinds = [{"type": "A", "content": "192.0.2.%d", "proxied": True}, {"type": "AAAA", "content": "2001:db8::%x"},
             {"type": "CNAME", "content": "origin%d.example.net"}, {"type": "TXT", "content": "site-verification=%08d"},
             {"type": "MX", "content": "mx%d.example.net", "priority": 10}]
    seeds = []
    for index in range(1000):
        kind = dict(kinds[index % len(kinds)])
        kind["content"] = kind["content"] % (index % 250 + 1)
        seeds.append(dict(kind, name="host%04d.%s" % (index, name), ttl=1 if kind.get("proxied") else 300))
    try:
        lab.seed_records(name, seeds)
        started = time.monotonic()
        answer = httpx.get(lab.api_base_url + RECORDS.replace("{zone_id}", zone_id), params={"per_page": 5000000},
                           headers={"Authorization": "Bearer " + token}, timeout=60)
        wall = time.monotonic() - started
        assert answer.status_code == 200 and len(answer.json()["result"]) == 1000
        assert wall < 10, "the lab took %.1f s to list 1,000 records" % wall
        body = answer.json()
        openapi = OpenApi()
        started = time.thread_time()
        assert openapi.response_errors("GET", RECORDS, 200, body) == []
        spent = time.thread_time() - started
        assert spent < 0.5, "validating 1,000 records took %.3f s of CPU" % spent
    finally:
        lab.delete_zone(name)
