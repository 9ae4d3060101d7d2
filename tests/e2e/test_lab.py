# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Self-tests of the lab: real HTTP to the Cloudflare emulator, real DNS queries over UDP and TCP."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from tests.lab import process
from tests.lab.client import Lab, LabError

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_DNS = ["zone:read", "dns_records:read", "dns_records:edit"]


# Helpers


@pytest.fixture
def zone(lab: Lab):
    """A fresh free zone for one test: (name, id)."""
    name = "t%s.test" % uuid.uuid4().hex[:10]
    zone_id = lab.add_zone(name)
    yield name, zone_id
    lab.delete_zone(name)


@pytest.fixture
def api(lab: Lab):
    """An httpx client on the emulator with a fresh token that may edit DNS in every zone."""
    token = lab.add_token(ALL_DNS)
    with httpx.Client(base_url=lab.api_base_url, headers={"Authorization": "Bearer " + token}, timeout=30) as client:
        yield client


def records_url(zone_id: str, record_id: str = "") -> str:
    return "/zones/%s/dns_records%s" % (zone_id, "/" + record_id if record_id else "")


def create(api: httpx.Client, zone_id: str, **record) -> dict:
    record.setdefault("ttl", 1)
    answer = api.post(records_url(zone_id), json=record)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def error_codes(answer: httpx.Response) -> list[int]:
    body = answer.json()
    assert body["success"] is False and body["result"] is None
    return [error["code"] for error in body["errors"]] + [link["code"] for error in body["errors"] for link in error.get("error_chain", [])]


def query(lab: Lab, name: str, rdtype: str, tcp: bool = False, **options) -> dns.message.Message:
    message = dns.message.make_query(name, rdtype, **options)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(message, lab.dns_host, port=lab.dns_port, timeout=5)


def answer_texts(response: dns.message.Message, rdtype: str) -> list[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return sorted(rdata.to_text() for rrset in response.answer if rrset.rdtype == wanted for rdata in rrset)


# Envelope, zones, auth


def test_zone_lookup_by_name_and_id_uses_the_real_envelope(lab: Lab, api: httpx.Client):
    listed = api.get("/zones", params={"name": "launch-demo.test"})
    assert listed.status_code == 200
    body = listed.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    assert [zone["name"] for zone in body["result"]] == ["launch-demo.test"]
    assert body["result_info"] == {"page": 1, "per_page": 20, "count": 1, "total_count": 1, "total_pages": 1}
    zone_id = body["result"][0]["id"]
    assert zone_id == lab.zone_id("launch-demo.test")

    one = api.get("/zones/%s" % zone_id).json()["result"]
    assert one["name_servers"] == ["ada.ns.lab.test", "bob.ns.lab.test"]
    assert one["plan"]["legacy_id"] == "free" and one["status"] == "active"
    assert api.get("/zones", params={"name": "nope.test"}).json()["result"] == []


def test_auth_errors_answer_like_cloudflare(lab: Lab, zone):
    name, zone_id = zone
    url = lab.api_base_url + records_url(zone_id)
    missing = httpx.get(url)
    assert missing.status_code == 400 and error_codes(missing) == [9106]
    for malformed in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer has spaces in it", "Bearer " + "a" * 12):
        answer = httpx.get(url, headers={"Authorization": malformed})
        assert answer.status_code == 400 and error_codes(answer) == [6003, 6111], malformed
    unknown = httpx.get(url, headers={"Authorization": "Bearer " + "x" * 40})
    assert unknown.status_code == 401 and error_codes(unknown) == [9109]
    disabled = lab.add_token(ALL_DNS, status="disabled")
    answer = httpx.get(url, headers={"Authorization": "Bearer " + disabled})
    assert answer.status_code == 401 and error_codes(answer) == [9109]

    read_only = lab.add_token(["zone:read", "dns_records:read"], zones=[name])
    headers = {"Authorization": "Bearer " + read_only}
    assert httpx.get(url, headers=headers).status_code == 200
    refused = httpx.post(url, headers=headers, json={"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 1})
    assert refused.status_code == 403 and error_codes(refused) == [10000]

    elsewhere = lab.add_token(ALL_DNS, zones=["launch-demo.test"])
    headers = {"Authorization": "Bearer " + elsewhere}
    out_of_reach = httpx.get(url, headers=headers)
    assert out_of_reach.status_code == 403 and error_codes(out_of_reach) == [9109]
    assert httpx.get(lab.api_base_url + "/zones", params={"name": name}, headers=headers).json()["result"] == []
    assert lab.records(name) == []


def test_unknown_routes_and_zones_are_7003(api: httpx.Client):
    answer = api.get("/zones/%s/dns_records" % ("0" * 32))
    assert answer.status_code == 400 and error_codes(answer) == [7003, 7000]
    answer = api.get("/no/such/route")
    assert answer.status_code == 400 and error_codes(answer) == [7003, 7000]


# DNS records API


def test_record_crud_returns_cloudflare_shaped_records(lab: Lab, api: httpx.Client, zone):
    name, zone_id = zone
    record = create(api, zone_id, type="A", name="WWW", content="192.0.2.10", ttl=300, comment="web")
    assert record["name"] == "www." + name
    assert record["proxiable"] is True and record["proxied"] is False and record["ttl"] == 300
    assert record["tags"] == [] and record["comment"] == "web" and record["meta"]
    assert record["created_on"] == record["modified_on"]

    assert api.get(records_url(zone_id, record["id"])).json()["result"] == record
    patched = api.patch(records_url(zone_id, record["id"]), json={"content": "192.0.2.11"}).json()["result"]
    assert patched["content"] == "192.0.2.11" and patched["ttl"] == 300 and patched["comment"] == "web"
    assert patched["created_on"] == record["created_on"]
    put = api.put(records_url(zone_id, record["id"]), json={"type": "A", "name": "www." + name, "content": "192.0.2.12", "ttl": 1})
    assert put.json()["result"]["comment"] is None, "PUT resets the fields it leaves out"
    deleted = api.delete(records_url(zone_id, record["id"]))
    assert deleted.json()["result"] == {"id": record["id"]}
    gone = api.get(records_url(zone_id, record["id"]))
    assert gone.status_code == 404 and error_codes(gone) == [81044]
    assert lab.records(name) == []


def test_mx_srv_caa_records_carry_priority_and_data(api: httpx.Client, zone):
    name, zone_id = zone
    mx = create(api, zone_id, type="MX", name="@", content="mail.example.net", priority=10)
    assert mx["priority"] == 10 and mx["name"] == name
    srv = create(api, zone_id, type="SRV", name="_sip._tcp", data={"priority": 5, "weight": 10, "port": 5060, "target": "sip.example.net"})
    assert srv["content"] == "10 5060 sip.example.net" and srv["priority"] == 5
    caa = create(api, zone_id, type="CAA", name="@", data={"flags": 0, "tag": "issue", "value": "letsencrypt.org"})
    assert caa["content"] == '0 issue "letsencrypt.org"'


def test_proxied_records_get_automatic_ttl_and_only_proxiable_types_may_be_proxied(api: httpx.Client, zone):
    _name, zone_id = zone
    record = create(api, zone_id, type="A", name="app", content="127.0.0.1", ttl=3600, proxied=True)
    assert record["proxied"] is True and record["ttl"] == 1
    txt = api.post(records_url(zone_id), json={"type": "TXT", "name": "app", "content": "hello", "ttl": 1, "proxied": True})
    assert txt.status_code == 400 and error_codes(txt) == [9041]
    assert create(api, zone_id, type="TXT", name="app", content="hello")["proxiable"] is False


@pytest.mark.parametrize(("body", "codes"), [
    ({"type": "A", "name": "a", "content": "192.0.2.300"}, [9005]),
    ({"type": "A", "name": "a", "content": "www.example.net"}, [9005]),
    ({"type": "AAAA", "name": "a", "content": "192.0.2.1"}, [9006]),
    ({"type": "A", "name": "a", "content": "192.0.2.1", "ttl": 30}, [1004, 9021]),
    ({"type": "CNAME", "name": "a", "content": "a.{zone}"}, [9007]),
    ({"type": "A", "name": "bad name!", "content": "192.0.2.1"}, [1004, 9000]),
])
def test_invalid_records_get_cloudflare_error_codes(lab: Lab, api: httpx.Client, zone, body, codes):
    body = dict(body, content=body["content"].replace("{zone}", zone[0]), ttl=body.get("ttl", 1))
    answer = api.post(records_url(zone[1]), json=body)
    assert answer.status_code == 400 and error_codes(answer) == codes
    assert lab.records(zone[0]) == []


def test_ttl_out_of_schema_range_is_refused_and_recorded_as_violation(lab: Lab, api: httpx.Client, zone):
    answer = api.post(records_url(zone[1]), json={"type": "A", "name": "a", "content": "192.0.2.1", "ttl": 90000})
    assert answer.status_code == 400 and error_codes(answer) == [1004, 9021]
    violations = lab.violations()
    assert [violation["kind"] for violation in violations] == ["request"]
    assert "/ttl" in violations[0]["problems"][0]
    lab.clear_violations()


def test_identical_record_is_81058(api: httpx.Client, zone):
    _name, zone_id = zone
    create(api, zone_id, type="TXT", name="x", content="v=spf1 -all")
    again = api.post(records_url(zone_id), json={"type": "TXT", "name": "x", "content": "v=spf1 -all", "ttl": 300})
    assert again.status_code == 400 and error_codes(again) == [81058]
    create(api, zone_id, type="TXT", name="x", content="another value")


def test_cname_cannot_share_its_name(api: httpx.Client, zone):
    _name, zone_id = zone
    create(api, zone_id, type="A", name="web", content="192.0.2.1")
    cname = api.post(records_url(zone_id), json={"type": "CNAME", "name": "web", "content": "example.net", "ttl": 1})
    assert cname.status_code == 400 and error_codes(cname) == [81053]
    create(api, zone_id, type="CNAME", name="alias", content="example.net")
    for body in ({"type": "A", "name": "alias", "content": "192.0.2.1"}, {"type": "TXT", "name": "alias", "content": "x"}):
        answer = api.post(records_url(zone_id), json=dict(body, ttl=1))
        assert answer.status_code == 400 and error_codes(answer) == [81054]


def test_list_paginates_and_filters(lab: Lab, api: httpx.Client, zone):
    name, zone_id = zone
    lab.seed_records(name, [{"type": "A", "name": "h%03d" % index, "content": "192.0.2.%d" % (index % 250 + 1), "ttl": 1} for index in range(250)]
                     + [{"type": "TXT", "name": "h007", "content": "x", "ttl": 1}])
    seen = []
    for page in (1, 2, 3):
        body = api.get(records_url(zone_id), params={"type": "A", "page": page}).json()
        assert body["result_info"] == {"page": page, "per_page": 100, "count": 100 if page < 3 else 50, "total_count": 250, "total_pages": 3}
        seen += [record["id"] for record in body["result"]]
    assert len(set(seen)) == 250
    beyond = api.get(records_url(zone_id), params={"page": 9, "per_page": 50}).json()
    assert beyond["result"] == [] and beyond["result_info"]["total_pages"] == 6 and beyond["result_info"]["total_count"] == 251
    by_name = api.get(records_url(zone_id), params={"name": "h007." + name}).json()["result"]
    assert sorted(record["type"] for record in by_name) == ["A", "TXT"]
    by_both = api.get(records_url(zone_id), params={"name": "h007." + name, "type": "TXT"}).json()["result"]
    assert [record["content"] for record in by_both] == ["x"]
    starts = api.get(records_url(zone_id), params={"name.startswith": "h24", "per_page": 5000000}).json()
    assert starts["result_info"]["count"] == 10

    bad = api.get(records_url(zone_id), params={"per_page": 0})
    assert bad.status_code == 400
    assert [violation["route"] for violation in lab.violations()] == ["/zones/{zone_id}/dns_records"]
    lab.clear_violations()


def test_request_breaking_the_schema_is_refused_and_recorded(lab: Lab, zone):
    token = lab.add_token(ALL_DNS)
    url = lab.api_base_url + records_url(zone[1])
    headers = {"Authorization": "Bearer " + token}
    for body in ({"type": "A", "name": "a", "content": "192.0.2.1"},  # no ttl: the schema requires it
                 {"type": "FOO", "name": "a", "content": "x", "ttl": 1},
                 {"type": "A", "name": "a", "content": ["192.0.2.1"], "ttl": 1}):
        answer = httpx.post(url, headers=headers, json=body)
        assert answer.status_code == 400 and error_codes(answer) == [9207], body
    malformed = httpx.post(url, headers=dict(headers, **{"Content-Type": "application/json"}), content=b"{not json")
    assert malformed.status_code == 400 and error_codes(malformed) == [6007]
    violations = lab.violations()
    assert len(violations) == 3 and {violation["kind"] for violation in violations} == {"request"}
    assert lab.records(zone[0]) == [], "a refused request changes nothing"
    lab.clear_violations()


# Batch


def test_batch_runs_deletes_patches_puts_posts_in_that_order(lab: Lab, api: httpx.Client, zone):
    name, zone_id = zone
    seeded = {record["name"].split(".")[0]: record for record in lab.seed_records(name, [
        {"type": "A", "name": "old", "content": "192.0.2.1", "ttl": 1},
        {"type": "A", "name": "web", "content": "192.0.2.2", "ttl": 1},
        {"type": "TXT", "name": "note", "content": "first", "ttl": 1},
    ])}
    lab.reset_calls()
    body = {
        # Each post only succeeds if the operations of the earlier kinds already ran:
        "posts": [{"type": "CNAME", "name": "old", "content": "example.net", "ttl": 1},   # needs the delete
                  {"type": "A", "name": "web", "content": "192.0.2.2", "ttl": 1},       # needs the patch
                  {"type": "TXT", "name": "note", "content": "first", "ttl": 1}],       # needs the put
        "puts": [{"id": seeded["note"]["id"], "type": "TXT", "name": "note", "content": "second", "ttl": 300}],
        "patches": [{"id": seeded["web"]["id"], "content": "192.0.2.3"}],
        "deletes": [{"id": seeded["old"]["id"]}],
    }
    answer = api.post(records_url(zone_id) + "/batch", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert [record["id"] for record in result["deletes"]] == [seeded["old"]["id"]]
    assert result["patches"][0]["content"] == "192.0.2.3"
    assert result["puts"][0]["content"] == "second" and result["puts"][0]["ttl"] == 300
    assert [record["type"] for record in result["posts"]] == ["CNAME", "A", "TXT"]
    assert len(lab.records(name)) == 5
    assert lab.calls()["by_route"] == {"POST /zones/{zone_id}/dns_records/batch": 1}


def test_batch_failure_rolls_everything_back_and_names_the_entry(lab: Lab, api: httpx.Client, zone):
    name, zone_id = zone
    before = lab.seed_records(name, [{"type": "A", "name": "keep", "content": "192.0.2.1", "ttl": 1},
                                     {"type": "A", "name": "dup", "content": "192.0.2.9", "ttl": 1}])
    body = {
        "deletes": [{"id": before[0]["id"]}],
        "posts": [{"type": "A", "name": "new1", "content": "192.0.2.5", "ttl": 1},
                  {"type": "A", "name": "new2", "content": "192.0.2.6", "ttl": 1},
                  {"type": "A", "name": "dup", "content": "192.0.2.9", "ttl": 1}],
    }
    answer = api.post(records_url(zone_id) + "/batch", json=body)
    assert answer.status_code == 400 and error_codes(answer) == [81058]
    assert answer.json()["errors"][0]["source"] == {"pointer": "/posts/2"}
    assert lab.records(name) == before
    missing = api.post(records_url(zone_id) + "/batch", json={"patches": [{"id": "f" * 32, "content": "192.0.2.7"}]})
    assert missing.status_code == 404 and error_codes(missing) == [81044]
    assert missing.json()["errors"][0]["source"] == {"pointer": "/patches/0"}


def test_batch_size_is_limited_by_plan(lab: Lab, api: httpx.Client, zone):
    posts = [{"type": "A", "name": "n%d" % index, "content": "192.0.2.1", "ttl": 1} for index in range(201)]
    too_big = api.post(records_url(zone[1]) + "/batch", json={"posts": posts})
    assert too_big.status_code == 400 and error_codes(too_big) == [1004, 1004]
    assert lab.records(zone[0]) == []
    assert api.post(records_url(zone[1]) + "/batch", json={"posts": posts[:200]}).status_code == 200

    pro = "pro%s.test" % uuid.uuid4().hex[:8]
    pro_id = lab.add_zone(pro, plan="pro")
    try:
        assert api.post(records_url(pro_id) + "/batch", json={"posts": posts}).status_code == 200
    finally:
        lab.delete_zone(pro)


# Faults, counting, request log


def test_rate_limit_fault_answers_429_with_retry_after(lab: Lab, api: httpx.Client, zone):
    route = "GET /zones/{zone_id}/dns_records"
    lab.inject_fault(route=route, status=429, retry_after=7, count=2)
    lab.reset_calls()
    for _attempt in range(2):
        limited = api.get(records_url(zone[1]))
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
        assert error_codes(limited) == [971]
        assert limited.json()["errors"][0]["message"] == "Please wait and consider throttling your request speed"
    assert api.get(records_url(zone[1])).status_code == 200
    assert lab.calls()["by_route"] == {route: 3}


def test_server_error_and_slow_faults(lab: Lab, api: httpx.Client, zone):
    url = records_url(zone[1])
    lab.inject_fault(route="*", status=503, count=1)
    unavailable = api.get(url)
    assert unavailable.status_code == 503 and unavailable.headers["Content-Type"].startswith("text/html")
    lab.inject_fault(route="GET /zones/{zone_id}/dns_records", status=500, count=1)
    assert api.get(url).status_code == 500
    lab.inject_fault(route="GET /zones/{zone_id}/dns_records", delay=0.4, count=1)
    started = time.monotonic()
    assert api.get(url).status_code == 200
    assert time.monotonic() - started >= 0.4

    outcomes = []
    for _round in range(2):
        lab.clear_faults()
        lab.inject_fault(route="GET /zones/{zone_id}/dns_records", status=502, ratio=0.5, seed=42)
        outcomes.append([api.get(url).status_code for _call in range(20)])
    assert outcomes[0] == outcomes[1], "a seeded ratio repeats"
    assert set(outcomes[0]) == {200, 502}


def test_calls_are_counted_by_route_and_logged_without_headers(lab: Lab, api: httpx.Client, zone):
    _name, zone_id = zone
    lab.reset_calls()
    api.get("/zones", params={"name": zone[0]})
    record = create(api, zone_id, type="A", name="a", content="192.0.2.1")
    api.post(records_url(zone_id) + "/batch", json={"deletes": [{"id": record["id"]}]})
    calls = lab.calls()
    assert calls["total"] == 3 and calls["writes"] == 2
    assert calls["by_route"] == {"GET /zones": 1, "POST /zones/{zone_id}/dns_records": 1, "POST /zones/{zone_id}/dns_records/batch": 1}
    log = lab.requests()
    assert [entry["route"] for entry in log] == list(calls["by_route"])
    assert log[0]["query"] == {"name": zone[0]} and log[0]["status"] == 200 and log[0]["path"] == "/client/v4/zones"
    assert log[1]["body"]["content"] == "192.0.2.1"
    assert "Bearer" not in repr(log)
    lab.reset_calls()
    assert lab.calls() == {"total": 0, "writes": 0, "by_route": {}} and lab.requests() == []


# DNS


def test_dns_apex_has_soa_and_the_zone_name_servers(lab: Lab, zone):
    name, _zone_id = zone
    soa = query(lab, name, "SOA")
    assert soa.rcode() == dns.rcode.NOERROR and soa.flags & dns.flags.AA
    assert answer_texts(soa, "SOA")[0].startswith("ada.ns.lab.test. ")
    ns = query(lab, name, "NS", tcp=True)
    assert answer_texts(ns, "NS") == ["ada.ns.lab.test.", "bob.ns.lab.test."]


def test_dns_nxdomain_nodata_and_refused(lab: Lab, zone):
    name, _zone_id = zone
    lab.seed_records(name, [{"type": "A", "name": "a.deep", "content": "192.0.2.1", "ttl": 120}])
    found = query(lab, "a.deep." + name, "A")
    assert answer_texts(found, "A") == ["192.0.2.1"] and found.answer[0].ttl == 120
    for nodata in (query(lab, "a.deep." + name, "TXT"), query(lab, "deep." + name, "A")):
        assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
        assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    missing = query(lab, "nothing." + name, "A")
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.flags & dns.flags.AA
    assert missing.authority[0].rdtype == dns.rdatatype.SOA
    outside = query(lab, "www.example.com", "A")
    assert outside.rcode() == dns.rcode.REFUSED and not outside.flags & dns.flags.AA


def test_dns_follows_cname_chains_inside_the_zone(lab: Lab, zone):
    name, _zone_id = zone
    lab.seed_records(name, [
        {"type": "CNAME", "name": "www", "content": "app." + name, "ttl": 1},
        {"type": "CNAME", "name": "app", "content": "origin." + name, "ttl": 1},
        {"type": "A", "name": "origin", "content": "192.0.2.7", "ttl": 1},
        {"type": "CNAME", "name": "ext", "content": "elsewhere.example.net", "ttl": 1},
        {"type": "CNAME", "name": "dangling", "content": "missing." + name, "ttl": 1},
    ])
    chain = query(lab, "www." + name, "A")
    assert [rrset.rdtype for rrset in chain.answer] == [dns.rdatatype.CNAME, dns.rdatatype.CNAME, dns.rdatatype.A]
    assert answer_texts(chain, "A") == ["192.0.2.7"] and chain.answer[0].ttl == 300
    external = query(lab, "ext." + name, "A")
    assert external.rcode() == dns.rcode.NOERROR and answer_texts(external, "CNAME") == ["elsewhere.example.net."]
    dangling = query(lab, "dangling." + name, "A")
    assert dangling.rcode() == dns.rcode.NXDOMAIN and answer_texts(dangling, "CNAME") == ["missing.%s." % name]


def test_dns_serves_mx_srv_caa_and_wildcards(lab: Lab, zone):
    name, _zone_id = zone
    lab.seed_records(name, [
        {"type": "MX", "name": "@", "content": "mail.example.net", "priority": 10, "ttl": 1},
        {"type": "SRV", "name": "_sip._tcp", "data": {"priority": 1, "weight": 2, "port": 5060, "target": "sip.example.net"}, "ttl": 1},
        {"type": "CAA", "name": "@", "data": {"flags": 0, "tag": "issue", "value": "letsencrypt.org"}, "ttl": 1},
        {"type": "A", "name": "*.apps", "content": "192.0.2.8", "ttl": 1},
    ])
    assert answer_texts(query(lab, name, "MX"), "MX") == ["10 mail.example.net."]
    assert answer_texts(query(lab, "_sip._tcp." + name, "SRV"), "SRV") == ["1 2 5060 sip.example.net."]
    assert answer_texts(query(lab, name, "CAA"), "CAA") == ['0 issue "letsencrypt.org"']
    wild = query(lab, "anything.apps." + name, "A")
    assert answer_texts(wild, "A") == ["192.0.2.8"] and wild.answer[0].name.to_text() == "anything.apps.%s." % name


def test_dns_splits_long_txt_and_reads_quoted_strings(lab: Lab, zone):
    name, _zone_id = zone
    long_value = "v=DKIM1; k=rsa; p=" + "A" * 582
    lab.seed_records(name, [{"type": "TXT", "name": "long", "content": long_value, "ttl": 1},
                            {"type": "TXT", "name": "quoted", "content": '"first part" "second \\"part\\""', "ttl": 1}])
    strings = query(lab, "long." + name, "TXT", tcp=True).answer[0][0].strings
    assert [len(piece) for piece in strings] == [255, 255, 90] and b"".join(strings).decode() == long_value
    quoted = query(lab, "quoted." + name, "TXT").answer[0][0].strings
    assert quoted == (b"first part", b'second "part"')


def test_dns_truncates_large_udp_answers_and_tcp_gets_them_whole(lab: Lab, zone):
    name, _zone_id = zone
    lab.seed_records(name, [{"type": "TXT", "name": "big", "content": "record %02d " % index + "x" * 90, "ttl": 1} for index in range(12)])
    truncated = query(lab, "big." + name, "TXT")
    assert truncated.flags & dns.flags.TC
    edns_small = query(lab, "big." + name, "TXT", use_edns=0, payload=1000)
    assert edns_small.flags & dns.flags.TC
    edns_large = query(lab, "big." + name, "TXT", use_edns=0, payload=4096)
    assert not edns_large.flags & dns.flags.TC and len(edns_large.answer[0]) == 12
    message = dns.message.make_query("big." + name, "TXT")
    response, used_tcp = dns.query.udp_with_fallback(message, lab.dns_host, port=lab.dns_port, timeout=5)
    assert used_tcp and not response.flags & dns.flags.TC and len(response.answer[0]) == 12


def test_dns_answers_proxied_names_with_the_edge(lab: Lab, zone):
    name, _zone_id = zone
    lab.seed_records(name, [
        {"type": "A", "name": "app", "content": "192.0.2.50", "proxied": True, "ttl": 1},
        {"type": "CNAME", "name": "www", "content": "app." + name, "proxied": True, "ttl": 1},
        {"type": "A", "name": "direct", "content": "192.0.2.51", "ttl": 1},
    ])
    assert answer_texts(query(lab, "app." + name, "A"), "A") == [lab.edge["ipv4"]]
    assert answer_texts(query(lab, "app." + name, "AAAA"), "AAAA") == [lab.edge["ipv6"]]
    flattened = query(lab, "www." + name, "A")
    assert answer_texts(flattened, "A") == [lab.edge["ipv4"]] and answer_texts(flattened, "CNAME") == []
    assert answer_texts(query(lab, "direct." + name, "A"), "A") == ["192.0.2.51"]


def test_dns_follows_api_changes_live_and_can_be_slowed(lab: Lab, api: httpx.Client, zone):
    name, zone_id = zone
    record = create(api, zone_id, type="A", name="live", content="192.0.2.60")
    assert answer_texts(query(lab, "live." + name, "A"), "A") == ["192.0.2.60"]
    api.patch(records_url(zone_id, record["id"]), json={"content": "192.0.2.61"})
    assert answer_texts(query(lab, "live." + name, "A", tcp=True), "A") == ["192.0.2.61"]
    api.delete(records_url(zone_id, record["id"]))
    assert query(lab, "live." + name, "A").rcode() == dns.rcode.NXDOMAIN

    lab.set_dns_delay(300)
    try:
        started = time.monotonic()
        query(lab, name, "SOA")
        assert time.monotonic() - started >= 0.3
    finally:
        lab.set_dns_delay(0)


# Lifecycle


def test_state_survives_a_restart(tmp_path: Path):
    own = Lab.start(tmp_path / "lab")
    try:
        zone_id = own.add_zone("restart.test", plan="pro")
        token = own.add_token(ALL_DNS, zones=["restart.test"])
        headers = {"Authorization": "Bearer " + token}
        created = httpx.post(own.api_base_url + records_url(zone_id), headers=headers,
                             json={"type": "A", "name": "kept", "content": "192.0.2.70", "ttl": 120}).json()["result"]
        own.restart()
        listed = httpx.get(own.api_base_url + records_url(zone_id), headers=headers)
        assert listed.status_code == 200 and listed.json()["result"] == [created]
        assert own.zone_id("restart.test") == zone_id
        assert answer_texts(query(own, "kept.restart.test", "A"), "A") == ["192.0.2.70"]
        assert own.violations() == []
    finally:
        own.stop()


def test_reset_returns_to_the_configured_zones(tmp_path: Path):
    config = {"zones": [{"name": "configured.test", "plan": "free"}], "tokens": []}
    own = Lab.start(tmp_path / "lab", config=config)
    try:
        own.add_zone("extra.test")
        own.seed_records("configured.test", [{"type": "A", "name": "x", "content": "192.0.2.1", "ttl": 1}])
        own.reset()
        assert own.records("configured.test") == []
        with pytest.raises(LabError, match=r"no zone extra\.test"):
            own.zone_id("extra.test")
    finally:
        own.stop()


def test_command_line_up_status_down(tmp_path: Path):
    state_dir = tmp_path / "cli"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tests.lab", *args, "--state-dir", str(state_dir)],
                              cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60, check=False)

    up = run("up")
    try:
        assert up.returncode == 0, up.stderr
        assert '"api_base_url"' in up.stdout and (state_dir / "endpoints.json").exists()
        assert run("status").returncode == 0
        assert run("up").returncode == 0, "up is idempotent"
    finally:
        down = run("down")
    assert down.stdout.strip() == "stopped"
    assert run("status").returncode == 1
    assert not (state_dir / "endpoints.json").exists()


def test_a_lab_started_from_python_stops_when_its_owner_exits(tmp_path: Path):
    script = "from tests.lab.client import Lab; print(Lab.start(%r).pid)" % str(tmp_path / "orphan")
    owner = subprocess.run([sys.executable, "-c", script], cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60, check=True)
    pid = int(owner.stdout.strip())
    deadline = time.monotonic() + 10
    while process.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process.alive(pid)
    assert not (tmp_path / "orphan" / "endpoints.json").exists()
