# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dns_check, the whole module, against in-process nameservers (how answers are judged: test_dns_expectations.py)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.launchready.core.plugins.module_utils import _dns
from ansible_collections.launchready.core.plugins.modules import dns_check
from ansible_collections.launchready.core.tests.unit.plugins.dns_responder import RECORDS, ZONE, responders


@pytest.fixture
def nameservers():
    yield from responders()


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        dns_check.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    return result


LAUNCH = [
    {"name": "@", "type": "A", "content": "192.0.2.10"},
    {"name": "www", "type": "CNAME", "content": "example.test"},
    {"name": "app", "type": "A", "values": ["192.0.2.10"]},
    {"name": "@", "type": "MX", "values": ["10 MX1.example.test.", "20 mx2.example.test"]},
    {"name": "@", "type": "TXT", "values": ["google-site-verification=abc", '"v=spf1 include:_spf.mail.test " "-all"']},
    {"name": "staging", "absent": True},
]


def test_every_record_right_on_every_nameserver(nameservers, capsys):
    one, two = nameservers(), nameservers(chase=False)
    result = run(capsys, zone=ZONE, records=LAUNCH, nameservers=[one.address, two.address])
    assert result["changed"] is False
    assert result["checked"] == 6
    assert result["nameservers"] == [one.address, two.address]
    assert result["summary"] == {"must_do_now": 0, "can_wait": 0, "ok": 6}
    assert [f["title"] for f in result["findings"]] == [
        "example.test A is published on all 2 nameservers",
        "www.example.test CNAME is published on all 2 nameservers",
        "app.example.test A is published on all 2 nameservers",
        "example.test MX is published on all 2 nameservers",
        "example.test TXT is published on all 2 nameservers",
        "staging.example.test does not resolve, as intended",
    ]
    for server in (one, two):
        asked = {(name, rdtype) for _transport, name, rdtype, recursion in server.questions() if not recursion}
        assert {("example.test", "A"), ("www.example.test", "CNAME"), ("app.example.test", "A"), ("example.test", "MX")} <= asked
        assert {("example.test", "TXT"), ("staging.example.test", "A"), ("staging.example.test", "AAAA")} <= asked
        assert all(not recursion for *_rest, recursion in server.questions())


def test_wrong_and_missing_names_are_launch_blockers(nameservers, capsys):
    server = nameservers()
    records = [
        {"name": "app", "type": "A", "content": "203.0.113.5"},
        {"name": "api", "type": "A", "content": "192.0.2.10"},
        {"name": "@", "type": "A", "content": "192.0.2.10"},
    ]
    result = run(capsys, zone=ZONE, records=records, nameservers=[server.address])
    assert "failed" not in result
    assert result["summary"] == {"must_do_now": 2, "can_wait": 0, "ok": 1}
    assert [(f["severity"], f["title"]) for f in result["findings"]] == [
        ("must_do_now", "app.example.test A has the wrong value"),
        ("must_do_now", "api.example.test does not resolve"),
        ("ok", "example.test A is published on its nameserver"),
    ]
    assert result["findings"][0]["evidence"] == "expected 203.0.113.5; %s: CNAME www.example.test -> example.test, 192.0.2.10 (TTL 300)" % server.address


def test_fail_on_must_do_now_fails_with_the_findings(nameservers, capsys):
    server = nameservers()
    records = [{"name": "api", "type": "A", "content": "192.0.2.10"}, {"name": "@", "type": "A", "content": "192.0.2.10"}]
    result = run(capsys, zone=ZONE, records=records, nameservers=[server.address], fail_on="must_do_now")
    assert result["failed"] is True
    assert result["msg"] == "1 DNS finding(s) at or above must_do_now: api.example.test does not resolve"
    assert result["summary"] == {"must_do_now": 1, "can_wait": 0, "ok": 1}
    assert len(result["findings"]) == 2


def test_fail_on_levels_for_a_ttl_oddity(nameservers, capsys):
    server = nameservers()
    records = [{"name": "@", "type": "A", "content": "192.0.2.10", "ttl": 3600}]
    assert "failed" not in run(capsys, zone=ZONE, records=records, nameservers=[server.address], fail_on="must_do_now")
    result = run(capsys, zone=ZONE, records=records, nameservers=[server.address], fail_on="can_wait")
    assert result["failed"] is True
    assert result["summary"] == {"must_do_now": 0, "can_wait": 1, "ok": 0}


def test_a_stale_nameserver_is_found(nameservers, capsys):
    fresh = nameservers(records=[*RECORDS, ("api.example.test", "A", ["192.0.2.20"])])
    stale = nameservers()
    result = run(capsys, zone=ZONE, records=[{"name": "api", "type": "A", "content": "192.0.2.20"}], nameservers=[fresh.address, stale.address])
    (finding,) = result["findings"]
    assert finding["title"] == "api.example.test A is not the same on every nameserver"
    assert finding["evidence"] == "expected 192.0.2.20; %s: 192.0.2.20 (TTL 300); %s: NXDOMAIN" % (fresh.address, stale.address)


def test_check_mode_asks_the_same_questions(nameservers, capsys):
    server = nameservers()
    result = run(capsys, zone=ZONE, records=[{"name": "api", "type": "A", "content": "192.0.2.10"}], nameservers=[server.address], _ansible_check_mode=True)
    assert result["changed"] is False
    assert result["summary"]["must_do_now"] == 1
    assert server.questions() == [("udp", "api.example.test", "A", False)]


def test_wait_follows_propagation_with_backoff(nameservers, capsys):
    server = nameservers()
    timer = threading.Timer(1.5, server.publish, ("api.example.test", "A", ["192.0.2.30"]))
    timer.start()
    started = time.monotonic()
    result = run(capsys, zone=ZONE, records=[{"name": "api", "type": "A", "content": "192.0.2.30"}], nameservers=[server.address], wait=True, wait_timeout=20)
    elapsed = time.monotonic() - started
    timer.join()
    assert result["summary"] == {"must_do_now": 0, "can_wait": 0, "ok": 1}
    # asked at 0 s, 1 s (not yet there), then 3 s: backoff of 1 then 2 seconds
    assert len(server.questions()) == 3
    assert 2.5 < elapsed < 6


def test_wait_gives_up_at_the_timeout(nameservers, capsys):
    server = nameservers()
    started = time.monotonic()
    records = [{"name": "api", "type": "A", "content": "192.0.2.30"}]
    result = run(capsys, zone=ZONE, records=records, nameservers=[server.address], wait=True, wait_timeout=2, fail_on="must_do_now")
    elapsed = time.monotonic() - started
    assert result["failed"] is True
    assert 1.9 < elapsed < 4
    assert len(server.questions()) == 3


def test_without_wait_it_asks_once(nameservers, capsys):
    server = nameservers()
    run(capsys, zone=ZONE, records=[{"name": "api", "type": "A", "content": "192.0.2.30"}], nameservers=[server.address], wait_timeout=20)
    assert len(server.questions()) == 1


def test_nameservers_come_from_the_zone_ns_records(nameservers, capsys, monkeypatch):
    authoritative = nameservers()
    recursive = nameservers(records=[*RECORDS, ("ns1.example.test", "A", ["127.0.0.1"]), ("ns2.example.test", "A", ["127.0.0.1"])])

    class SystemResolver:
        def __init__(self, configure=True):
            self.nameservers = ["127.0.0.1"]
            self.nameserver_ports = {"127.0.0.1": recursive.port}
            self.port = 53

    parse = _dns.parse_nameserver

    def on_test_port(spec):
        server = parse(spec)
        return server if server.is_address else _dns._Server(server.label, server.host, authoritative.port, False)

    monkeypatch.setattr("dns.resolver.Resolver", SystemResolver)
    monkeypatch.setattr(_dns, "parse_nameserver", on_test_port)
    result = run(capsys, zone=ZONE, records=[{"name": "@", "type": "A", "content": "192.0.2.10"}])
    assert result["nameservers"] == ["ns1.example.test", "ns2.example.test"]
    assert result["findings"][0]["title"] == "example.test A is published on all 2 nameservers"
    assert ("udp", "example.test", "NS", True) in recursive.questions()
    assert authoritative.questions() == [("udp", "example.test", "A", False)] * 2


def test_a_zone_without_nameservers(nameservers, capsys, monkeypatch):
    recursive = nameservers()

    class SystemResolver:
        def __init__(self, configure=True):
            self.nameservers = ["127.0.0.1"]
            self.nameserver_ports = {"127.0.0.1": recursive.port}
            self.port = 53

    monkeypatch.setattr("dns.resolver.Resolver", SystemResolver)
    result = run(capsys, zone="nowhere.example.test", records=[{"name": "@", "type": "A"}])
    assert result["nameservers"] == []
    assert result["findings"] == [
        {
            "stage": "domain_routing",
            "severity": "must_do_now",
            "title": "nowhere.example.test A could not be checked: nowhere.example.test has no nameservers",
            "evidence": "the system resolver found no NS records for nowhere.example.test",
            "fix": "Delegate nowhere.example.test at the registrar to the DNS provider's nameservers (Cloudflare lists them on the zone's overview).",
        }
    ]


def test_bad_input_fails_before_asking(nameservers, capsys):
    server = nameservers()
    result = run(capsys, zone=ZONE, records=[{"name": "www", "type": "MX", "content": "mx.example.test"}], nameservers=[server.address])
    assert result["failed"] is True
    assert result["msg"].startswith("records[0] (www): 'mx.example.test' is not a valid MX value")
    assert server.questions() == []
    bad_server = run(capsys, zone=ZONE, records=[{"name": "www", "type": "A"}], nameservers=["127.0.0.1:99999"])
    assert bad_server["msg"] == "nameserver '127.0.0.1:99999': port must be a number from 1 to 65535"


def test_values_and_content_are_exclusive(capsys):
    result = run(capsys, zone=ZONE, records=[{"name": "www", "type": "A", "content": "192.0.2.1", "values": ["192.0.2.1"]}], nameservers=["127.0.0.1:9"])
    assert result["failed"] is True
    assert "mutually exclusive: values|content" in result["msg"]


def test_missing_dnspython_is_reported(capsys, monkeypatch):
    monkeypatch.setattr(dns_check, "HAS_DNSPYTHON", False)
    monkeypatch.setattr(dns_check, "DNSPYTHON_IMPORT_ERROR", "Traceback: No module named 'dns'")
    result = run(capsys, zone=ZONE, records=[{"name": "www", "type": "A"}])
    assert result["failed"] is True
    assert result["msg"].startswith("Failed to import the required Python library (dnspython)")


def test_names_in_answers_are_compared_without_case_or_dot(nameservers, capsys):
    server = nameservers(records=[*RECORDS, ("shout.example.test", "CNAME", ["WWW.EXAMPLE.TEST."])])
    result = run(capsys, zone=ZONE, records=[{"name": "Shout", "type": "CNAME", "content": "www.Example.Test"}], nameservers=[server.address])
    assert result["summary"]["ok"] == 1
