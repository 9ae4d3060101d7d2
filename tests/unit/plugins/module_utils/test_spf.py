# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SPF: the RFC 7208 grammar, the lookup counter over a fake resolver, flattening.

The cases named after the RFC 7208 test suite (the openspf/pyspf rfc7208-tests scenarios) are
recreated here for record checking: syntax errors, record selection, processing limits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _spf
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW


@dataclass
class FakeAnswer:
    name: str
    rdtype: str
    rcode: str
    values: list[str]
    ttl: int | None = 300
    cname_chain: list[str] = field(default_factory=list)
    error: str = ""


class FakeResolver:
    """Answers from a dict {name: {type: [values]}}; names not listed are NXDOMAIN. Records every question."""

    def __init__(self, records: dict | None = None, rcodes: dict | None = None, cnames: dict | None = None) -> None:
        self.records = {name.lower(): types for name, types in (records or {}).items()}
        self.rcodes = rcodes or {}
        self.cnames = cnames or {}
        self.calls: list[tuple[str, str]] = []

    async def query(self, name: str, rdtype: str) -> FakeAnswer:
        name = name.rstrip(".").lower()
        self.calls.append((name, rdtype))
        if (name, rdtype) in self.rcodes:
            return FakeAnswer(name, rdtype, self.rcodes[(name, rdtype)], [], None)
        chain = []
        target = name
        while target in self.cnames:
            target = self.cnames[target]
            chain.append(target)
        if target not in self.records:
            return FakeAnswer(name, rdtype, "NXDOMAIN", [], None, chain)
        return FakeAnswer(name, rdtype, "NOERROR", list(self.records[target].get(rdtype, [])), 300, chain)


def run(coro):
    return asyncio.run(coro)


def evaluate(records: dict, domain: str = "example.com", **kwargs) -> _spf.SpfEvaluation:
    return run(_spf.evaluate(domain, FakeResolver(records, **kwargs)))


def titles(findings) -> list[str]:
    return [f.title for f in findings]


# --- record selection (RFC 7208 section 4.5) -------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("v=spf1 -all", True),
        ("v=spf1", True),
        ("V=SpF1 +mX -all", True),  # case-insensitive
        ("v=spf1mx", False),  # nospace1: the version must be followed by a space
        ("v=spf10 -all", False),
        ("v=spf1-all", False),
        (" v=spf1 -all", False),
        ("spf2.0/pra -all", False),
        ("google-site-verification=abc", False),
    ],
)
def test_is_spf(text, expected):
    assert _spf.is_spf(text) is expected


def test_multispf_is_a_permerror():
    result = evaluate({"example.com": {"TXT": ["v=spf1 -all", "v=spf1 mx -all", "other"]}})
    assert result.status == "permerror"
    assert result.records_found == 2
    assert "example.com has 2 SPF records" in titles(result.problems)
    assert "RFC 7208 section 4.5" in result.problems[0].evidence


def test_no_spf_record():
    result = evaluate({"example.com": {"TXT": ["v=spf1mx", "hello"]}})
    assert result.status == "none"
    assert result.problems[0].severity == MUST_DO_NOW
    assert result.problems[0].title == "example.com has no SPF record"


def test_txt_timeout_is_a_temperror():
    result = evaluate({}, rcodes={("example.com", "TXT"): "TIMEOUT"})
    assert result.status == "temperror"
    assert "DNS TIMEOUT" in result.problems[0].title


# --- grammar (RFC 7208 sections 4.6, 5, 6, 7, 12) ----------------------------------------------


VALID = [
    "v=spf1 -all",
    "v=spf1",
    "v=spf1   mx    -all   ",  # nospace2: several spaces between terms
    "v=spf1 ip4:192.0.2.0/24 ip4:192.0.2.1 ip6:2001:db8::/32 ip6:::1 -all",
    "v=spf1 ip4:1.2.3.4/0 ip4:1.2.3.4/32 ip6:::1/128 ip6:::1/0",  # cidr4-0, cidr4-32, cidr6-0
    "v=spf1 a a/24 a//64 a/24//64 a:mail.example.com/24 mx mx:example.com//0 -all",
    "v=spf1 a:foo:bar/baz.example.com",  # a-colon-domain: ':' and '/' are macro-literals
    "v=spf1 a:example.com.",  # trailing dot
    "v=spf1 include:_spf.google.com ~all",
    "v=spf1 exists:%{i}._spf.example.com -all",
    "v=spf1 exists:%{l}.example.com.",  # trailing-dot-domain
    "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all",
    "v=spf1 a:%{d2} -all",  # domain-end may be a macro
    "v=spf1 a:%%%_%-.example.com",  # escapes
    "v=spf1 ptr ptr:example.com -all",
    "v=spf1 redirect=_spf.example.com",
    "v=spf1 -all exp=explain._spf.%{d}",
    "v=spf1 -all moo.cow-2_3=ok",  # modifier-charset-good
    "v=spf1 default=-",  # default-modifier-obsolete: an unknown modifier, ignored
    "v=spf1 include=_spf.example.com",  # 'include=' is a modifier named include, unknown, ignored
    "v=spf1 +all",
    "v=spf1 IP4:192.0.2.1 MX INCLUDE:example.net REDIRECT=example.org",  # names are case-insensitive
    "v=spf1 a:xn--bcher-kva.example -all",
    "v=spf1 a:foo-bar.example-com.com -all",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_records(text):
    assert _spf.parse(text).errors == []


INVALID = [
    ("v=spf1 -all.", "all-dot"),
    ("v=spf1 -all:foobar", "all-arg"),
    ("v=spf1 -all/8", "all-cidr"),
    ("v=spf1 -all foobar", "detect-errors-anywhere: an error after all is still an error"),
    ("v=spf1 ip4", "bare-ip4"),
    ("v=spf1 ip4:", "empty ip4"),
    ("v=spf1 ip4:1.2.3.4:8080", "bad-ip4-port"),
    ("v=spf1 ip4:1.2.3", "bad-ip4-short"),
    ("v=spf1 ip4:1.2.3.4/33", "cidr4-33"),
    ("v=spf1 ip4:1.2.3.4/032", "cidr4-032: no leading zeros"),
    ("v=spf1 ip4:1.2.3.4//32", "ip4-dual-cidr"),
    ("v=spf1 ip4:::ffff:1.2.3.4", "ip4-mapped-ip6"),
    ("v=spf1 ip4:01.2.3.4", "qnum with leading zero"),
    ("v=spf1 ip4:256.2.3.4", "octet over 255"),
    ("v=spf1 ip6", "bare-ip6"),
    ("v=spf1 ip6:foo:bar", "ip6-bad1"),
    ("v=spf1 ip6:::1/129", "cidr6-129"),
    ("v=spf1 ip6:::1/33/100", "cidr6-bad"),
    ("v=spf1 ip6:1.2.3.4", "an IPv4 address in ip6"),
    ("v=spf1 a/33", "a-bad-cidr4"),
    ("v=spf1 a//129", "a-bad-cidr6"),
    ("v=spf1 a/24//129", "a-dual-cidr-ip6-err"),
    ("v=spf1 a:", "a-empty-domain"),
    ("v=spf1 a:museum", "a-only-toplabel"),
    ("v=spf1 a:museum.", "a-only-toplabel-trailing-dot"),
    ("v=spf1 a:111.222.33.44", "a-numeric: a numeric top label"),
    ("v=spf1 a:foo.example.1234", "a-bad-toplabel"),
    ("v=spf1 a:example.-com", "a-char-domain"),
    ("v=spf1 a:foo..example.com", "empty label"),
    ("v=spf1 a:%s.example.com" % ("x" * 64), "label longer than 63"),
    ("v=spf1 mx/33", "mx-bad-cidr4"),
    ("v=spf1 mx:", "mx-empty-domain"),
    ("v=spf1 mx:example", "mx-bad-toplab"),
    ("v=spf1 include:", "include-empty-domain"),
    ("v=spf1 include", "include without a domain"),
    ("v=spf1 include:e7.example.com/24", "include-cidr"),
    ("v=spf1 exists:", "exists-empty-domain"),
    ("v=spf1 exists:mail.example.com/24", "exists-cidr"),
    ("v=spf1 ptr/24", "ptr-cidr"),
    ("v=spf1 foo:example.com", "an unknown mechanism"),
    ("v=spf1 'moo'=bar", "modifier-charset-bad1"),
    ("v=spf1 moo.cow/1=bar", "modifier-charset-bad2"),
    ("v=spf1 =example.com", "empty-modifier-name"),
    ("v=spf1 1up=foo", "invalid-modifier: a name must start with a letter"),
    ("v=spf1 redirect=", "redirect with no domain"),
    ("v=spf1 redirect=a.example.com redirect=b.example.com", "redirect-twice"),
    ("v=spf1 -all exp=a.example.com exp=b.example.com", "exp-twice"),
    ("v=spf1 -all foo=%abc", "unknown-modifier-syntax: a bad macro in an unknown modifier"),
    ("v=spf1 exists:%{Q}.example.com", "invalid-macro-char"),
    ("v=spf1 exists:%{c}.example.com", "exp-only-macro-char: %{c} outside exp"),
    ("v=spf1 exists:%{i}%.example.com", "macro-trailing-percent"),
    ("v=spf1 exists:%{i.example.com", "unterminated macro"),
    ("v=spf1 a:exam\tple.com", "control character"),
]


@pytest.mark.parametrize("text, case", INVALID)
def test_syntax_errors(text, case):
    assert _spf.parse(text).errors, case


def test_parse_terms():
    record = _spf.parse("v=spf1 ~a:mail.example.com/24//64 -ip4:192.0.2.0/24 ?mx include:_spf.example.net redirect=x.example exp=e.example")
    assert [(t.name, t.qualifier, t.target, t.cidr4, t.cidr6, t.modifier) for t in record.terms] == [
        ("a", "~", "mail.example.com", 24, 64, False),
        ("ip4", "-", "192.0.2.0", 24, None, False),
        ("mx", "?", None, None, None, False),
        ("include", "+", "_spf.example.net", None, None, False),
        ("redirect", "+", "x.example", None, None, True),
        ("exp", "+", "e.example", None, None, True),
    ]
    assert [t.costs_lookup for t in record.terms] == [True, False, True, True, True, False]


# --- findings on one record ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, title, severity, section",
    [
        ("v=spf1 +all", "SPF record of example.com ends with +all", MUST_DO_NOW, "5.1"),
        ("v=spf1 all", "SPF record of example.com ends with +all", MUST_DO_NOW, "5.1"),
        ("v=spf1 mx ?all", "SPF record of example.com ends with ?all", CAN_WAIT, "8.2"),
        ("v=spf1 mx", "SPF record of example.com has no all mechanism", CAN_WAIT, "4.7"),
        ("v=spf1 -all redirect=_spf.example.com", "SPF record of example.com has both all and redirect", CAN_WAIT, "6.1"),
        ("v=spf1 -all mx", "SPF record of example.com has mechanisms after all", CAN_WAIT, "5.1"),
        ("v=spf1 ptr -all", "SPF record of example.com uses ptr", CAN_WAIT, "5.5"),
        ("v=spf1 default=deny", "SPF record of example.com has modifiers receivers ignore", CAN_WAIT, "6"),
        ("v=spf1 ip4:1.2.3.4/33 -all", "SPF record of example.com has a syntax error", MUST_DO_NOW, "4.6"),
    ],
)
def test_record_findings(text, title, severity, section):
    findings = _spf.record_findings(_spf.parse(text), "example.com")
    match = [f for f in findings if f.title == title]
    assert match, titles(findings)
    assert match[0].severity == severity
    assert match[0].evidence.endswith("(RFC 7208 section %s)" % section)
    assert match[0].fix
    assert match[0].stage == "secrets_env"


def test_record_too_long():
    text = "v=spf1 " + " ".join("ip4:192.0.2.%d" % i for i in range(40)) + " -all"
    findings = _spf.record_findings(_spf.parse(text), "example.com")
    assert any("bytes long" in f.title and "3.4" in f.evidence for f in findings)


def test_clean_record_has_no_findings():
    assert _spf.record_findings(_spf.parse("v=spf1 include:_spf.google.com ~all"), "example.com") == []


# --- lookup counting (RFC 7208 section 4.6.4) --------------------------------------------------


PROVIDERS = {
    "_spf.google.com": {"TXT": ["v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all"]},
    "_netblocks.google.com": {"TXT": ["v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ~all"]},
    "_netblocks2.google.com": {"TXT": ["v=spf1 ip6:2001:4860:4000::/36 ~all"]},
    "_netblocks3.google.com": {"TXT": ["v=spf1 ip4:172.217.0.0/19 ~all"]},
    "sendgrid.net": {"TXT": ["v=spf1 ip4:167.89.0.0/17 ip4:208.117.48.0/20 ~all"]},
    "mailgun.org": {"TXT": ["v=spf1 include:_spf.mailgun.org ~all"]},
    "_spf.mailgun.org": {"TXT": ["v=spf1 ip4:209.61.151.0/24 ip4:166.78.68.0/22 ~all"]},
    "spf.protection.outlook.com": {"TXT": ["v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 -all"]},
}


def test_counts_nested_includes_and_costs_per_term():
    records = dict(PROVIDERS, **{"example.com": {"TXT": ["v=spf1 ip4:192.0.2.1 include:_spf.google.com include:sendgrid.net include:mailgun.org ~all"]}})
    result = evaluate(records)
    assert result.status == "valid"
    assert result.lookups == 4 + 1 + 2
    assert result.costs == [("ip4:192.0.2.1", 0), ("include:_spf.google.com", 4), ("include:sendgrid.net", 1),
                            ("include:mailgun.org", 2), ("~all", 0)]
    assert [c.via for c in result.tree.children] == ["include:_spf.google.com", "include:sendgrid.net", "include:mailgun.org"]
    assert result.tree.children[0].lookups == 3
    assert result.problems == []
    assert result.costs_text() == "include:_spf.google.com costs 4, include:sendgrid.net costs 1, include:mailgun.org costs 2"


def _chain(n: int) -> dict:
    """example.com includes i1 ... in, each of which has an ip4 only."""
    records = {"i%d.example.net" % i: {"TXT": ["v=spf1 ip4:192.0.2.%d -all" % i]} for i in range(1, n + 1)}
    records["example.com"] = {"TXT": ["v=spf1 " + " ".join("include:i%d.example.net" % i for i in range(1, n + 1)) + " -all"]}
    return records


def test_include_at_limit():
    result = evaluate(_chain(10))
    assert result.lookups == 10
    assert result.status == "valid"


def test_include_over_limit():
    result = evaluate(_chain(11))
    assert result.lookups == 11
    assert result.status == "permerror"
    problem = next(p for p in result.problems if "DNS lookups" in p.title)
    assert problem.title == "SPF of example.com needs 11 DNS lookups (limit 10)"
    assert "include:i11.example.net costs 1" in problem.evidence
    assert "RFC 7208 section 4.6.4" in problem.evidence


def test_mech_at_and_over_limit():
    base = "v=spf1 a mx a:a.example.com a:b.example.com mx:m.example.com exists:e.example.com ptr a:c.example.com a:d.example.com %s -all"
    records = {name: {"A": ["192.0.2.1"], "MX": ["10 mx.example.com"]} for name in
               ("example.com", "a.example.com", "b.example.com", "c.example.com", "d.example.com", "e.example.com", "f.example.com",
                "m.example.com")}
    records["example.com"]["TXT"] = [base % "a:f.example.com"]
    assert evaluate(records).lookups == 10
    records["example.com"]["TXT"] = [base % "a:f.example.com mx"]
    result = evaluate(records)
    assert result.lookups == 11
    assert result.status == "permerror"


def test_false_a_limit_repeated_terms_each_count():
    records = {"example.com": {"TXT": ["v=spf1 " + "a " * 11 + "-all"], "A": ["192.0.2.1"]}}
    result = evaluate(records)
    assert result.lookups == 11
    assert result.status == "permerror"


def test_redirect_counts_and_is_followed():
    records = {"example.com": {"TXT": ["v=spf1 mx redirect=_spf.example.com"], "MX": ["10 mx.example.com"]},
               "_spf.example.com": {"TXT": ["v=spf1 include:sendgrid.net -all"]}, **PROVIDERS}
    result = evaluate(records)
    assert result.lookups == 3
    assert result.costs == [("mx", 1), ("redirect=_spf.example.com", 2)]


def test_redirect_ignored_when_all_present():
    records = {"example.com": {"TXT": ["v=spf1 -all redirect=_spf.example.com"]}}
    result = evaluate(records)
    assert result.lookups == 0
    assert result.tree.children == []


def test_mechanisms_after_all_are_not_counted():
    result = evaluate({"example.com": {"TXT": ["v=spf1 -all include:a.example.net include:b.example.net"]}})
    assert result.lookups == 0


def test_include_loop():
    records = {"example.com": {"TXT": ["v=spf1 include:a.example.net -all"]},
               "a.example.net": {"TXT": ["v=spf1 include:b.example.net -all"]},
               "b.example.net": {"TXT": ["v=spf1 include:a.example.net -all"]}}
    result = evaluate(records)
    assert result.status == "permerror"
    loop = next(p for p in result.problems if "loops" in p.title)
    assert loop.title == "SPF of example.com loops through a.example.net"
    assert "example.com -> include:a.example.net -> include:b.example.net -> include:a.example.net" in loop.evidence


def test_redirect_loop():
    result = evaluate({"example.com": {"TXT": ["v=spf1 redirect=example.com"]}})
    assert result.status == "permerror"
    assert any("loops through example.com" in t for t in titles(result.problems))


def test_include_none_is_a_permerror():
    records = {"example.com": {"TXT": ["v=spf1 include:missing.example.net include:nospf.example.net -all"]},
               "nospf.example.net": {"TXT": ["hello"]}}
    result = evaluate(records)
    assert result.status == "permerror"
    problems = [p for p in result.problems if "has no SPF record" in p.title]
    assert [p.title for p in problems] == ["SPF of example.com: include:missing.example.net has no SPF record",
                                           "SPF of example.com: include:nospf.example.net has no SPF record"]
    assert all("RFC 7208 section 5.2" in p.evidence for p in problems)
    assert result.void_lookups == 1  # NXDOMAIN is void; a TXT answer without SPF is not


def test_redirect_none_is_a_permerror():
    result = evaluate({"example.com": {"TXT": ["v=spf1 redirect=missing.example.net"]}})
    assert result.status == "permerror"
    assert "RFC 7208 section 6.1" in next(p for p in result.problems if "no SPF record" in p.title).evidence


def test_include_of_domain_with_two_records():
    records = {"example.com": {"TXT": ["v=spf1 include:a.example.net -all"]}, "a.example.net": {"TXT": ["v=spf1 -all", "v=spf1 mx -all"]}}
    result = evaluate(records)
    assert result.status == "permerror"
    assert "SPF of example.com: a.example.net has 2 SPF records" in titles(result.problems)


def test_include_syntax_error_is_reported_with_its_path():
    records = {"example.com": {"TXT": ["v=spf1 include:a.example.net -all"]}, "a.example.net": {"TXT": ["v=spf1 ip4:1.2.3.4/33 -all"]}}
    result = evaluate(records)
    assert result.status == "permerror"
    problem = next(p for p in result.problems if "syntax error" in p.title)
    assert problem.title == "SPF record of a.example.net has a syntax error"
    assert "example.com -> include:a.example.net" in problem.evidence


def test_include_temperror():
    records = {"example.com": {"TXT": ["v=spf1 include:a.example.net -all"]}}
    result = evaluate(records, rcodes={("a.example.net", "TXT"): "SERVFAIL"})
    assert result.status == "temperror"
    assert "SPF of example.com could not be checked: DNS SERVFAIL" in titles(result.problems)


def test_void_at_limit():
    records = {"example.com": {"TXT": ["v=spf1 a:none1.example.com mx:none2.example.com ip4:192.0.2.1 -all"]}}
    result = evaluate(records)
    assert result.void_lookups == 2
    assert result.status == "valid"


def test_void_over_limit():
    records = {"example.com": {"TXT": ["v=spf1 a:none1.example.com mx:none2.example.com exists:none3.example.com -all"]},
               "none2.example.com": {"TXT": ["not mx"]}}  # exists but NODATA for MX: void too
    result = evaluate(records)
    assert result.void_lookups == 3
    assert result.status == "permerror"
    assert "SPF of example.com has 3 void lookups (limit 2)" in titles(result.problems)


def test_void_lookups_in_includes_count():
    records = {"example.com": {"TXT": ["v=spf1 a:none1.example.com include:a.example.net -all"]},
               "a.example.net": {"TXT": ["v=spf1 a:none2.example.net a:none3.example.net -all"]}}
    result = evaluate(records)
    assert result.void_lookups == 3
    assert result.status == "permerror"


def test_a_with_only_ipv6_is_not_void():
    records = {"example.com": {"TXT": ["v=spf1 a:v6.example.com -all"]}, "v6.example.com": {"AAAA": ["2001:db8::1"]}}
    assert evaluate(records).void_lookups == 0


def test_mx_limit():
    mx = ["10 mx%d.example.com" % i for i in range(11)]
    result = evaluate({"example.com": {"TXT": ["v=spf1 mx -all"], "MX": mx}})
    assert result.status == "permerror"
    assert "SPF of example.com: mx names 11 mail servers" in titles(result.problems)
    result = evaluate({"example.com": {"TXT": ["v=spf1 mx -all"], "MX": mx[:10]}})
    assert result.status == "valid"


def test_null_mx_in_mx_mechanism():
    result = evaluate({"example.com": {"TXT": ["v=spf1 mx -all"], "MX": ["0 ."]}})
    assert result.status == "valid"
    assert result.tree.addresses["mx"] == []


def test_macro_include_counts_one_and_is_not_followed():
    resolver = FakeResolver({"example.com": {"TXT": ["v=spf1 include:%{d}._spf.example.net exists:%{i}.x.example.net -all"]}})
    result = run(_spf.evaluate("example.com", resolver))
    assert result.lookups == 2
    assert resolver.calls == [("example.com", "TXT")]
    assert any("cannot be followed" in p.title and p.severity == CAN_WAIT for p in result.problems)


def test_ptr_counts_without_a_query():
    resolver = FakeResolver({"example.com": {"TXT": ["v=spf1 ptr -all"]}})
    result = run(_spf.evaluate("example.com", resolver))
    assert result.lookups == 1
    assert resolver.calls == [("example.com", "TXT")]


def test_given_txt_values_are_not_queried_again():
    resolver = FakeResolver(PROVIDERS)
    result = run(_spf.evaluate("Example.COM.", resolver, ["v=spf1 include:sendgrid.net -all", "other"]))
    assert result.domain == "example.com"
    assert result.lookups == 1
    assert resolver.calls == [("sendgrid.net", "TXT")]


def test_includes_are_queried_concurrently():
    class SlowResolver(FakeResolver):
        active = 0
        peak = 0

        async def query(self, name, rdtype):
            SlowResolver.active += 1
            SlowResolver.peak = max(SlowResolver.peak, SlowResolver.active)
            await asyncio.sleep(0.01)
            SlowResolver.active -= 1
            return await super().query(name, rdtype)

    run(_spf.evaluate("example.com", SlowResolver(_chain(5)), None))
    assert SlowResolver.peak >= 5


def test_as_dict_is_plain_data():
    result = evaluate(dict(PROVIDERS, **{"example.com": {"TXT": ["v=spf1 include:mailgun.org -all"]}}))
    data = result.as_dict()
    assert data["lookups"] == 2 and data["lookup_limit"] == 10
    assert data["tree"]["children"][0]["children"][0]["domain"] == "_spf.mailgun.org"
    assert data["tree"]["costs"] == [{"term": "include:mailgun.org", "lookups": 2}, {"term": "-all", "lookups": 0}]


# --- building and flattening -------------------------------------------------------------------


def test_build_dedupes_and_ends_with_all():
    assert _spf.build(["include:a.example", "ip4:192.0.2.1", "INCLUDE:a.example"], "-") == "v=spf1 include:a.example ip4:192.0.2.1 -all"
    assert _spf.build([], "~") == "v=spf1 ~all"


def _tree(records: dict, domain: str = "example.com"):
    resolver = FakeResolver(records)
    return resolver, run(_spf.evaluate(domain, resolver))


def test_pass_networks_of_nested_includes():
    records = dict(PROVIDERS, **{"example.com": {"TXT": ["v=spf1 include:_spf.google.com -all"]}})
    resolver, result = _tree(records)
    networks = run(_spf.pass_networks(resolver, result.tree.children[0]))
    assert networks == ["35.190.247.0/24", "64.233.160.0/19", "2001:4860:4000::/36", "172.217.0.0/19"]
    assert _spf.collapse(networks) == ["ip4:35.190.247.0/24", "ip4:64.233.160.0/19", "ip4:172.217.0.0/19", "ip6:2001:4860:4000::/36"]


def test_pass_networks_resolves_a_and_mx():
    records = {"example.com": {"TXT": ["v=spf1 include:p.example.net -all"]},
               "p.example.net": {"TXT": ["v=spf1 a mx:m.example.net/24 ~all"], "A": ["192.0.2.7"]},
               "m.example.net": {"MX": ["10 mx1.example.net", "20 mx2.example.net"]},
               "mx1.example.net": {"A": ["198.51.100.1"]}, "mx2.example.net": {"A": ["198.51.100.200"], "AAAA": ["2001:db8::2"]}}
    resolver, result = _tree(records)
    networks = run(_spf.pass_networks(resolver, result.tree.children[0]))
    assert sorted(networks) == ["192.0.2.7/32", "198.51.100.1/24", "198.51.100.200/24", "2001:db8::2/128"]
    assert _spf.collapse(networks) == ["ip4:192.0.2.7", "ip4:198.51.100.0/24", "ip6:2001:db8::2"]


@pytest.mark.parametrize(
    "included",
    [
        "v=spf1 ip4:192.0.2.0/24 +all",
        "v=spf1 -ip4:192.0.2.1 ip4:192.0.2.0/24 -all",
        "v=spf1 exists:%{i}.x.example.net -all",
        "v=spf1 ptr -all",
        "v=spf1 include:%{d}.example.net -all",
    ],
)
def test_not_flattenable(included):
    records = {"example.com": {"TXT": ["v=spf1 include:p.example.net -all"]}, "p.example.net": {"TXT": [included]}}
    resolver, result = _tree(records)
    with pytest.raises(_spf.NotFlattenable):
        run(_spf.pass_networks(resolver, result.tree.children[0]))


def test_pass_networks_follow_redirect():
    records = {"example.com": {"TXT": ["v=spf1 include:p.example.net -all"]},
               "p.example.net": {"TXT": ["v=spf1 ip4:192.0.2.1 redirect=q.example.net"]},
               "q.example.net": {"TXT": ["v=spf1 ip4:192.0.2.2 -all"]}}
    resolver, result = _tree(records)
    assert run(_spf.pass_networks(resolver, result.tree.children[0])) == ["192.0.2.1", "192.0.2.2"]


def test_chunk_terms_respects_size():
    terms = ["ip4:198.51.100.%d" % i for i in range(100)]
    chunks = _spf.chunk_terms(terms)
    assert sum(len(c) for c in chunks) == 100
    assert all(len(" ".join(["v=spf1", *c])) <= _spf.RECORD_SIZE_LIMIT for c in chunks)
    assert len(chunks) > 1
