# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_dns_expectations: how dns_check's records option is read and how nameservers' answers are judged."""

from __future__ import annotations

import pytest

from ansible_collections.launchready.core.plugins.module_utils._dns import NOERROR, NXDOMAIN, SERVFAIL, TIMEOUT, Answer, DnsConfigError
from ansible_collections.launchready.core.plugins.module_utils._dns_expectations import (
    Expectation,
    Outcome,
    absolute_name,
    build_expectations,
    check_records,
    evaluate,
)
from ansible_collections.launchready.core.plugins.module_utils._findings import Finding
from ansible_collections.launchready.core.tests.unit.plugins.dns_responder import ZONE, responders


@pytest.fixture
def responder():
    yield from responders()


def record(name, rdtype=None, values=None, content=None, absent=False, ttl=None, severity="must_do_now"):
    return dict(name=name, type=rdtype, values=values, content=content, absent=absent, ttl=ttl, severity=severity)


def expect(name="www.example.test", rdtype="A", values=("192.0.2.10",), absent=False, ttl=None, severity="must_do_now"):
    return Expectation(name, rdtype, frozenset(values) if values is not None else None, absent, ttl, severity)


def answer(values=(), rcode=NOERROR, ttl=300, chain=(), error="", rdtype="A", name="www.example.test"):
    return Answer(name, rdtype, rcode, sorted(values), ttl if values else None, list(chain), error)


# --- reading the records option ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name, full",
    [
        ("@", "example.test"),
        ("", "example.test"),
        ("www", "www.example.test"),
        ("WWW", "www.example.test"),
        ("www.Example.test", "www.example.test"),
        ("example.test", "example.test"),
        ("mail.other.test.", "mail.other.test"),
        ("mail.other.test", "mail.other.test.example.test"),
        ("notexample.test", "notexample.test.example.test"),
    ],
)
def test_names_are_relative_to_the_zone(name, full):
    assert absolute_name("Example.Test.", name) == full


def test_build_expectations_normalises_values():
    expectations = build_expectations(
        ZONE,
        [
            record("@", "mx", values=["20 MX2.example.test.", "10 mx1.example.test"]),
            record("www", "CNAME", content="Example.Test."),
            record("@", "TXT", values=['"v=spf1 " "-all"', "google-site-verification=abc"]),
            record("app", "A"),
            record("staging", absent=True, severity="can_wait"),
        ],
    )
    assert expectations == [
        Expectation("example.test", "MX", frozenset({"10 mx1.example.test", "20 mx2.example.test"}), False, None, "must_do_now"),
        Expectation("www.example.test", "CNAME", frozenset({"example.test"}), False, None, "must_do_now"),
        Expectation("example.test", "TXT", frozenset({"v=spf1 -all", "google-site-verification=abc"}), False, None, "must_do_now"),
        Expectation("app.example.test", "A", None, False, None, "must_do_now"),
        Expectation("staging.example.test", None, None, True, None, "can_wait"),
    ]


@pytest.mark.parametrize(
    "bad, message",
    [
        (record("www"), r"records\[1\] \(www\): type is required unless absent is true"),
        (record("www", "AX"), r"records\[1\] \(www\): unknown record type 'AX'"),
        (record("a..b", "A"), r"records\[1\] \(a..b\): 'a..b.example.test' is not a valid domain name"),
        (record("www", "A", values=["not-an-ip"]), r"records\[1\] \(www\): 'not-an-ip' is not a valid A value"),
        (record("www", "A", values=[]), r"records\[1\] \(www\): values is empty"),
        (record("old", "A", values=["192.0.2.1"], absent=True), r"records\[1\] \(old\): a record that must be absent takes no values"),
        (record("old", absent=True, ttl=60), r"records\[1\] \(old\): a record that must be absent takes no values, content or ttl"),
    ],
)
def test_build_expectations_names_the_record_that_is_wrong(bad, message):
    with pytest.raises(DnsConfigError, match=message):
        build_expectations(ZONE, [record("@", "A", content="192.0.2.10"), bad])


# --- judging answers --------------------------------------------------------------------------


def test_right_on_every_nameserver_is_ok_in_any_order():
    exp = expect(values=("192.0.2.10", "192.0.2.11"))
    finding = evaluate(ZONE, exp, {"ns1": [answer(["192.0.2.11", "192.0.2.10"])], "ns2": [answer(["192.0.2.10", "192.0.2.11"])]})
    assert finding.as_dict() == {
        "stage": "domain_routing",
        "severity": "ok",
        "title": "www.example.test A is published on all 2 nameservers",
        "evidence": "expected 192.0.2.10, 192.0.2.11; ns1, ns2: 192.0.2.10, 192.0.2.11 (TTL 300)",
        "fix": "",
    }


def test_cname_chain_shows_in_the_evidence():
    finding = evaluate(ZONE, expect(), {"ns1": [answer(["192.0.2.10"], chain=["example.test"])]})
    assert finding.severity == "ok"
    assert finding.evidence == "expected 192.0.2.10; ns1: CNAME example.test, 192.0.2.10 (TTL 300)"


def test_any_value_when_none_is_expected():
    assert evaluate(ZONE, expect(values=None), {"ns1": [answer(["198.51.100.1"])]}).severity == "ok"
    missing = evaluate(ZONE, expect(values=None), {"ns1": [answer(rcode=NXDOMAIN)]})
    assert (missing.severity, missing.title) == ("must_do_now", "www.example.test does not resolve")
    assert missing.evidence == "expected any A record; ns1: NXDOMAIN"
    assert missing.fix.startswith("Publish an A record for www.example.test in zone example.test")


def test_missing_everywhere_is_a_launch_blocker():
    finding = evaluate(ZONE, expect(), {"ns1": [answer(rcode=NXDOMAIN)], "ns2": [answer(rcode=NXDOMAIN)]})
    assert finding.severity == "must_do_now"
    assert finding.title == "www.example.test does not resolve"
    assert finding.evidence == "expected 192.0.2.10; ns1, ns2: NXDOMAIN"
    assert finding.fix.startswith("Publish www.example.test A 192.0.2.10 in zone example.test")


def test_no_record_of_another_type_is_named_by_type():
    exp = expect(name="example.test", rdtype="MX", values=("10 mx.example.test",))
    finding = evaluate(ZONE, exp, {"ns1": [answer(rdtype="MX")]})
    assert finding.title == "example.test has no MX record"
    assert finding.evidence == "expected 10 mx.example.test; ns1: no MX record"


def test_wrong_value_is_a_launch_blocker_with_the_record_severity():
    exp = expect(severity="can_wait")
    finding = evaluate(ZONE, exp, {"ns1": [answer(["198.51.100.7"])]})
    assert (finding.severity, finding.title) == ("can_wait", "www.example.test A has the wrong value")
    assert finding.evidence == "expected 192.0.2.10; ns1: 198.51.100.7 (TTL 300)"
    assert finding.fix.startswith("Publish www.example.test A 192.0.2.10 in zone example.test, and only that.")


def test_an_extra_value_is_wrong():
    finding = evaluate(ZONE, expect(), {"ns1": [answer(["192.0.2.10", "192.0.2.99"])]})
    assert finding.title == "www.example.test A has the wrong value"


def test_nameservers_that_disagree():
    finding = evaluate(ZONE, expect(), {"ns1": [answer(["192.0.2.10"])], "ns2": [answer(rcode=NXDOMAIN)]})
    assert (finding.severity, finding.title) == ("must_do_now", "www.example.test A is not the same on every nameserver")
    assert finding.evidence == "expected 192.0.2.10; ns1: 192.0.2.10 (TTL 300); ns2: NXDOMAIN"


def test_unanswered_nameserver():
    finding = evaluate(ZONE, expect(), {"ns1": [answer(["192.0.2.10"])], "ns2": [answer(rcode=TIMEOUT, error="ns2: no answer within 3s")]})
    assert (finding.severity, finding.title) == ("must_do_now", "www.example.test A could not be checked on every nameserver")
    assert finding.evidence == "expected 192.0.2.10; ns1: 192.0.2.10 (TTL 300); ns2: TIMEOUT (ns2: no answer within 3s)"


def test_cname_loop_is_its_own_finding():
    looped = answer(rcode=SERVFAIL, chain=["b.example.test", "www.example.test"], error="CNAME loop: www.example.test -> b.example.test -> www.example.test")
    finding = evaluate(ZONE, expect(), {"ns1": [looped]})
    assert (finding.severity, finding.title) == ("must_do_now", "www.example.test is a CNAME loop")
    assert "CNAME loop: www.example.test -> b.example.test -> www.example.test" in finding.evidence


def test_ttl_other_than_expected_can_wait():
    finding = evaluate(ZONE, expect(ttl=3600), {"ns1": [answer(["192.0.2.10"], ttl=300)]})
    assert (finding.severity, finding.title) == ("can_wait", "www.example.test A has a TTL other than 3600")
    assert finding.evidence == "expected 192.0.2.10 (TTL 3600); ns1: 192.0.2.10 (TTL 300)"


def test_absent_name():
    exp = expect(name="staging.example.test", rdtype=None, values=None, absent=True)
    gone = evaluate(ZONE, exp, {"ns1": [answer(rcode=NXDOMAIN), answer(rcode=NXDOMAIN, rdtype="AAAA")]})
    assert (gone.severity, gone.title) == ("ok", "staging.example.test does not resolve, as intended")
    assert gone.evidence == "expected no A, AAAA or CNAME record; ns1: NXDOMAIN; NXDOMAIN"
    still = evaluate(ZONE, exp, {"ns1": [answer(rcode=NXDOMAIN, chain=["gone.example.test"]), answer(rcode=NXDOMAIN, rdtype="AAAA")]})
    assert (still.severity, still.title) == ("must_do_now", "staging.example.test still resolves but must not")
    assert still.fix.startswith("Delete the A, AAAA and CNAME records of staging.example.test in zone example.test")


def test_absent_type():
    exp = expect(name="example.test", rdtype="TXT", values=None, absent=True)
    assert evaluate(ZONE, exp, {"ns1": [answer(rdtype="TXT")]}).title == "example.test has no TXT record, as intended"
    still = evaluate(ZONE, exp, {"ns1": [answer(["old"], rdtype="TXT")]})
    assert (still.severity, still.title) == ("must_do_now", "example.test TXT still exists but must not")


# --- the outcome of a check -------------------------------------------------------------------


def test_outcome_result_ranks_findings_and_fail_on_names_blockers_in_record_order():
    outcome = Outcome(
        [
            Finding("domain_routing", "can_wait", "a TTL", "evidence a", "fix a"),
            Finding("domain_routing", "ok", "fine", "evidence b"),
            Finding("domain_routing", "must_do_now", "missing", "evidence c", "fix c"),
        ],
        ["ns1", "ns2"],
    )
    result = outcome.as_result()
    assert result == {
        "changed": False,
        "findings": [
            {"stage": "domain_routing", "severity": "must_do_now", "title": "missing", "evidence": "evidence c", "fix": "fix c"},
            {"stage": "domain_routing", "severity": "can_wait", "title": "a TTL", "evidence": "evidence a", "fix": "fix a"},
            {"stage": "domain_routing", "severity": "ok", "title": "fine", "evidence": "evidence b", "fix": ""},
        ],
        "summary": {"must_do_now": 1, "can_wait": 1, "ok": 1},
        "checked": 3,
        "nameservers": ["ns1", "ns2"],
    }
    assert outcome.failure("never") == ""
    assert outcome.failure("must_do_now") == "1 DNS finding(s) at or above must_do_now: missing"
    assert outcome.failure("can_wait") == "2 DNS finding(s) at or above can_wait: a TTL; missing"
    assert Outcome([Finding("domain_routing", "ok", "fine", "evidence")], []).failure("can_wait") == ""


def test_check_records_normalises_the_zone_and_asks_only_about_the_records(responder):
    server = responder()
    outcome = check_records(" Example.Test. ", [record("www", "A", content="192.0.2.10"), record("api", "A")], nameservers=[server.address])
    assert outcome.nameservers == [server.address]
    assert [(f.severity, f.title) for f in outcome.findings] == [
        ("ok", "www.example.test A is published on its nameserver"),
        ("must_do_now", "api.example.test does not resolve"),
    ]
    assert outcome.findings[1].fix.startswith("Publish an A record for api.example.test in zone example.test (")
    assert sorted(server.questions()) == [("udp", "api.example.test", "A", False), ("udp", "www.example.test", "A", False)]


def test_check_records_refuses_bad_input_before_asking(responder):
    server = responder()
    with pytest.raises(DnsConfigError, match=r"records\[0\] \(www\): 'mx.example.test' is not a valid MX value"):
        check_records(ZONE, [record("www", "MX", content="mx.example.test")], nameservers=[server.address])
    with pytest.raises(DnsConfigError, match="port must be a number from 1 to 65535"):
        check_records(ZONE, [record("www", "A")], nameservers=["127.0.0.1:99999"])
    assert server.questions() == []
