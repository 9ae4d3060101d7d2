# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_dns against the in-process authoritative DNS responder of tests/unit/plugins/dns_responder.py."""

from __future__ import annotations

import asyncio

import dns.rcode
import pytest

from ansible_collections.launchready.core.plugins.module_utils._dns import (
    NOERROR,
    NXDOMAIN,
    REFUSED,
    SERVFAIL,
    TIMEOUT,
    AsyncResolver,
    DnsConfigError,
    authoritative_nameservers,
    normalize_name,
    normalize_rdtype,
    normalize_value,
    parse_nameserver,
)
from ansible_collections.launchready.core.tests.unit.plugins.dns_responder import OTHER_ZONE, RECORDS, ZONE, responders


@pytest.fixture
def responder():
    yield from responders()


def query(nameservers, name, rdtype, **kwargs):
    return asyncio.run(AsyncResolver(nameservers, **kwargs).query(name, rdtype))


def test_a_record_is_answered_authoritatively_without_recursion(responder):
    server = responder()
    answer = query([server.address], "Example.Test.", "a")
    assert (answer.name, answer.rdtype, answer.rcode, answer.values, answer.ttl, answer.cname_chain, answer.error) == (
        "example.test", "A", NOERROR, ["192.0.2.10"], 300, [], ""
    )
    assert server.questions() == [("udp", "example.test", "A", False)]


def test_values_are_normalised(responder):
    server = responder()
    mx = query([server.address], ZONE, "MX")
    txt = query([server.address], ZONE, "TXT")
    aaaa = query([server.address], "v6.example.test", "AAAA")
    ns = query([server.address], ZONE, "NS")
    assert mx.values == ["10 mx1.example.test", "20 mx2.example.test"]
    assert txt.values == ["google-site-verification=abc", "v=spf1 include:_spf.mail.test -all"]
    assert aaaa.values == ["2001:db8::1"]
    assert ns.values == ["ns1.example.test", "ns2.example.test"]


def test_truncated_udp_answer_is_asked_again_over_tcp(responder):
    server = responder(truncate={"big.example.test"})
    answer = query([server.address], "big.example.test", "TXT")
    assert answer.rcode == NOERROR
    assert len(answer.values) == 12
    assert server.questions() == [("udp", "big.example.test", "TXT", False), ("tcp", "big.example.test", "TXT", False)]


def test_nxdomain_and_nodata_are_told_apart(responder):
    server = responder()
    missing = query([server.address], "nope.example.test", "A")
    nodata = query([server.address], "txt-only.example.test", "A")
    assert (missing.rcode, missing.values, missing.ttl) == (NXDOMAIN, [], None)
    assert (nodata.rcode, nodata.values, nodata.ttl, nodata.error) == (NOERROR, [], None, "")


def test_cname_chain_given_in_one_response(responder):
    server = responder()
    answer = query([server.address], "app.example.test", "A")
    assert (answer.rcode, answer.values, answer.cname_chain) == (NOERROR, ["192.0.2.10"], ["www.example.test", "example.test"])
    assert server.questions() == [("udp", "app.example.test", "A", False)]


def test_cname_chain_followed_across_queries_when_the_server_stops(responder):
    server = responder(chase=False)
    answer = query([server.address], "app.example.test", "A")
    assert (answer.rcode, answer.values, answer.cname_chain) == (NOERROR, ["192.0.2.10"], ["www.example.test", "example.test"])
    assert [q[1] for q in server.questions()] == ["app.example.test", "www.example.test", "example.test"]


def test_cname_to_another_zone_is_asked_of_the_same_servers(responder):
    served = responder(records=[*RECORDS, *OTHER_ZONE], zones=(ZONE, "other.test"))
    refused = responder()
    answer = query([served.address], "outside.example.test", "A")
    assert (answer.rcode, answer.values, answer.cname_chain) == (NOERROR, ["198.51.100.7"], ["edge.other.test"])
    stranger = query([refused.address], "outside.example.test", "A")
    assert (stranger.rcode, stranger.values, stranger.cname_chain) == (REFUSED, [], ["edge.other.test"])


def test_cname_to_a_missing_name_is_nxdomain_with_the_chain(responder):
    server = responder()
    answer = query([server.address], "dangling.example.test", "A")
    assert (answer.rcode, answer.values, answer.cname_chain) == (NXDOMAIN, [], ["gone.example.test"])


def test_asking_for_the_cname_itself_does_not_follow_it(responder):
    server = responder()
    answer = query([server.address], "www.example.test", "CNAME")
    assert (answer.rcode, answer.values, answer.cname_chain) == (NOERROR, ["example.test"], [])


# chase: the server finds the loop and answers SERVFAIL with the chain in one response; otherwise one question per hop.
@pytest.mark.parametrize("chase, questions", [(True, 1), (False, 2)])
def test_cname_loop_is_reported_not_followed_forever(responder, chase, questions):
    server = responder(chase=chase)
    answer = query([server.address], "loop-a.example.test", "A", attempts=1)
    assert answer.rcode == SERVFAIL
    assert answer.cname_chain == ["loop-b.example.test", "loop-a.example.test"]
    assert answer.error == "CNAME loop: loop-a.example.test -> loop-b.example.test -> loop-a.example.test"
    assert len(server.questions()) == questions
    itself = query([server.address], "self.example.test", "A")
    assert (itself.rcode, itself.error) == (SERVFAIL, "CNAME loop: self.example.test -> self.example.test")


def test_timeout_is_an_answer_not_an_exception(responder):
    server = responder(silent={"slow.example.test"})
    answer = query([server.address], "slow.example.test", "A", timeout=0.2, attempts=2)
    assert (answer.rcode, answer.values, answer.ttl) == (TIMEOUT, [], None)
    assert answer.error == "%s: no answer within 0.2s" % server.address
    assert server.questions() == [("udp", "slow.example.test", "A", False)] * 2


def test_servfail_and_refused_are_reported(responder):
    server = responder(rcodes={"broken.example.test": dns.rcode.SERVFAIL})
    assert query([server.address], "broken.example.test", "A", attempts=1).rcode == SERVFAIL
    assert query([server.address], "elsewhere.invalid", "A", attempts=1).rcode == REFUSED


def test_next_server_is_asked_when_the_first_fails(responder):
    bad = responder(rcodes={"example.test": dns.rcode.SERVFAIL})
    good = responder()
    answer = query([bad.address, good.address], ZONE, "A", attempts=1)
    assert (answer.rcode, answer.values) == (NOERROR, ["192.0.2.10"])
    assert len(bad.questions()) == 1 and len(good.questions()) == 1


def test_a_closed_port_is_a_timeout_with_the_reason(responder):
    server = responder()
    port = server.port
    server.close()
    answer = query(["127.0.0.1:%d" % port], ZONE, "A", timeout=0.3, attempts=1)
    assert answer.rcode == TIMEOUT
    assert answer.error.startswith("127.0.0.1:%d: " % port)


def test_authoritative_nameservers_lists_ns_names(responder):
    server = responder()
    resolver = AsyncResolver([server.address])
    assert asyncio.run(authoritative_nameservers(ZONE, resolver)) == ["ns1.example.test", "ns2.example.test"]
    assert asyncio.run(authoritative_nameservers("missing.example.test", resolver)) == []


def test_concurrent_queries_share_one_resolver(responder):
    server = responder(chase=False)
    resolver = AsyncResolver([server.address])

    async def many():
        return await asyncio.gather(*(resolver.query(name, "A") for name in ("example.test", "www.example.test", "app.example.test", "nope.example.test")))

    answers = asyncio.run(many())
    assert [(a.name, a.rcode, a.values) for a in answers] == [
        ("example.test", NOERROR, ["192.0.2.10"]),
        ("www.example.test", NOERROR, ["192.0.2.10"]),
        ("app.example.test", NOERROR, ["192.0.2.10"]),
        ("nope.example.test", NXDOMAIN, []),
    ]


def test_system_resolver_sets_recursion_desired(responder, monkeypatch):
    server = responder()

    class FakeSystemResolver:
        def __init__(self, configure=True):
            assert configure
            self.nameservers = ["127.0.0.1"]
            self.nameserver_ports = {"127.0.0.1": server.port}
            self.port = 53

    monkeypatch.setattr("dns.resolver.Resolver", FakeSystemResolver)
    resolver = AsyncResolver()
    assert resolver.nameservers == ["127.0.0.1"]
    answer = asyncio.run(resolver.query(ZONE, "A"))
    assert answer.values == ["192.0.2.10"]
    assert server.questions() == [("udp", "example.test", "A", True)]


def test_nameserver_given_by_name_is_looked_up_through_the_system_resolver(responder, monkeypatch):
    system = responder(records=[*RECORDS, ("ns1.example.test", "A", ["127.0.0.1"])])
    authoritative = responder()

    class FakeSystemResolver:
        def __init__(self, configure=True):
            self.nameservers = ["127.0.0.1"]
            self.nameserver_ports = {"127.0.0.1": system.port}
            self.port = 53

    monkeypatch.setattr("dns.resolver.Resolver", FakeSystemResolver)
    answer = query(["NS1.example.test:%d" % authoritative.port], ZONE, "A")
    assert answer.values == ["192.0.2.10"]
    assert sorted(q[1:] for q in system.questions()) == [("ns1.example.test", "A", True), ("ns1.example.test", "AAAA", True)]
    assert authoritative.questions() == [("udp", "example.test", "A", False)]


@pytest.mark.parametrize(
    "spec, host, port",
    [
        ("192.0.2.1", "192.0.2.1", 53),
        ("127.0.0.1:5353", "127.0.0.1", 5353),
        ("[::1]:5353", "::1", 5353),
        ("[2001:db8::1]", "2001:db8::1", 53),
        ("2001:db8::1", "2001:db8::1", 53),
        ("Ns1.Example.com.", "ns1.example.com", 53),
    ],
)
def test_parse_nameserver(spec, host, port):
    server = parse_nameserver(spec)
    assert (server.host, server.port, server.label) == (host, port, spec)


@pytest.mark.parametrize("spec", ["", ":53", "[::1", "[::1]53", "host:0", "host:99999", "host:dns"])
def test_parse_nameserver_rejects(spec):
    with pytest.raises(DnsConfigError):
        parse_nameserver(spec)


@pytest.mark.parametrize(
    "rdtype, text, expected",
    [
        ("A", "192.0.2.1", "192.0.2.1"),
        ("aaaa", "2001:DB8:0:0::1", "2001:db8::1"),
        ("CNAME", "Example.COM.", "example.com"),
        ("MX", "10 MX.example.com", "10 mx.example.com"),
        ("SRV", "1 2 443 Sip.Example.com.", "1 2 443 sip.example.com"),
        ("TXT", "v=spf1 include:_spf.google.com ~all", "v=spf1 include:_spf.google.com ~all"),
        ("TXT", '"v=spf1 " "-all"', "v=spf1 -all"),
        ("CAA", '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
    ],
)
def test_normalize_value(rdtype, text, expected):
    assert normalize_value(rdtype, text) == expected


@pytest.mark.parametrize("rdtype, text", [("A", "not-an-address"), ("MX", "mx.example.com"), ("AAAA", "192.0.2.1"), ("TXT", '"unclosed')])
def test_normalize_value_rejects(rdtype, text):
    with pytest.raises(DnsConfigError):
        normalize_value(rdtype, text)


def test_normalize_name_and_type():
    assert normalize_name("WWW.Example.Test.") == "www.example.test"
    assert normalize_name("bücher.example") == "xn--bcher-kva.example"
    assert normalize_rdtype(" aaaa") == "AAAA"
    with pytest.raises(DnsConfigError, match="not a valid domain name"):
        normalize_name("a..b")
    with pytest.raises(DnsConfigError, match="unknown record type 'AX'"):
        normalize_rdtype("AX")


def test_bad_name_or_type_raise_config_errors():
    resolver = AsyncResolver(["127.0.0.1:9"])
    with pytest.raises(DnsConfigError):
        asyncio.run(resolver.query("a" * 64 + ".example.test", "A"))
    with pytest.raises(DnsConfigError):
        asyncio.run(resolver.query("example.test", "NOPE"))
