# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""email_auth_check: SPF, DMARC, DKIM and MX findings per domain, many domains at once, over a fake resolver."""

from __future__ import annotations

import asyncio
import json
from functools import cache

import pytest
from ansible.module_utils.testing import patch_module_args
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.launchready.core.plugins.module_utils import _dkim, _dns, _email_auth
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK
from ansible_collections.launchready.core.plugins.modules import email_auth_check
from ansible_collections.launchready.core.tests.unit.plugins.dns_responder import responders
from ansible_collections.launchready.core.tests.unit.plugins.module_utils.test_spf import FakeAnswer, FakeResolver


@cache
def key(kind: str = "rsa", bits: int = 2048):
    return _dkim.generate("ed25519") if kind == "ed25519" else rsa.generate_private_key(public_exponent=65537, key_size=bits)


def healthy(domain: str) -> dict:
    """A domain that does everything right: SPF through SendGrid, DMARC reject, an own key and a CNAME-delegated one, MX."""
    return {
        domain: {"TXT": ["v=spf1 ip4:192.0.2.1 include:sendgrid.net -all", "google-site-verification=x"], "MX": ["10 mx.%s" % domain]},
        "_dmarc." + domain: {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@%s" % domain]},
        "lr2026a._domainkey." + domain: {"TXT": [_dkim.txt_value(key())]},
    }


SHARED = {
    "sendgrid.net": {"TXT": ["v=spf1 ip4:167.89.0.0/17 ~all"]},
    "s1.domainkey.u1.wl.sendgrid.net": {"TXT": [_dkim.txt_value(key("rsa", 2048))]},
}


class AuthoritativeFake(FakeResolver):
    """Like an authoritative server: a CNAME out of the domain is answered without its target's records."""

    async def query(self, name, rdtype):
        name = name.rstrip(".").lower()
        if name in self.cnames:
            self.calls.append((name, rdtype))
            return FakeAnswer(name, rdtype, "REFUSED", [], None, [self.cnames[name]])
        return await super().query(name, rdtype)


def check(records: dict, domain: str = "example.com", dkim=(), check_mx=True, cnames=None, rcodes=None, fake=None):
    """Checks ``domain`` as the module does without nameservers; ``fake`` plays the system resolver and the domain's nameservers."""
    if fake is None:
        records = dict(SHARED, **records)
        records[domain] = dict(records.get(domain, {}), NS=["ns1.example.net"])
        fake = AuthoritativeFake(records, cnames=cnames, rcodes=rcodes)
    router = _email_auth.AuthoritativeRouter(fake, lambda servers: fake, [domain])
    return asyncio.run(_email_auth.check_domain({"name": domain, "dkim": list(dkim), "check_mx": check_mx}, _email_auth.CachingResolver(router)))


def summary(result) -> list[tuple[str, str]]:
    return [(f.severity, f.title) for f in result.findings]


def find(result, fragment: str):
    match = [f for f in result.findings if fragment in f.title]
    assert match, summary(result)
    return match[0]


def test_a_healthy_domain_is_all_ok():
    result = check(healthy("example.com"), dkim=[{"selector": "lr2026a", "private_key": _dkim.private_pem(key()).decode()}, {"selector": "s1"}],
                   cnames={"s1._domainkey.example.com": "s1.domainkey.u1.wl.sendgrid.net"})
    assert sorted(summary(result)) == sorted([
        (OK, "SPF of example.com is valid"),
        (OK, "DMARC record of example.com is valid"),
        (OK, "DKIM key lr2026a._domainkey.example.com is published"),
        (OK, "DKIM key s1._domainkey.example.com is published"),
        (OK, "example.com has MX records"),
    ])
    assert result.spf["lookups"] == 1 and result.spf["status"] == "valid"
    assert result.dmarc["policy"] == "reject" and result.dmarc["organizational_domain"] == "example.com"
    assert result.dkim == [
        {"selector": "lr2026a", "name": "lr2026a._domainkey.example.com", "cname": None, "records": [_dkim.txt_value(key())],
         "key_type": "rsa", "bits": 2048, "revoked": False, "matches_local_key": True},
        {"selector": "s1", "name": "s1._domainkey.example.com", "cname": "s1.domainkey.u1.wl.sendgrid.net",
         "records": [_dkim.txt_value(key("rsa", 2048))], "key_type": "rsa", "bits": 2048, "revoked": False},
    ]
    assert "CNAME to s1.domainkey.u1.wl.sendgrid.net" in find(result, "s1._domainkey").evidence
    assert all(f.stage == "secrets_env" for f in result.findings)
    assert all("RFC" in f.evidence for f in result.findings)


@pytest.mark.parametrize(
    "change, title, severity",
    [
        ({"TXT": ["v=spf1 -all", "v=spf1 mx -all"]}, "example.com has 2 SPF records", MUST_DO_NOW),
        ({"TXT": ["v=spf1 +all"]}, "SPF record of example.com ends with +all", MUST_DO_NOW),
        ({"TXT": ["v=spf1 ip4:192.0.2.1 ?all"]}, "SPF record of example.com ends with ?all", CAN_WAIT),
        ({"TXT": ["v=spf1 ip4:192.0.2.1"]}, "SPF record of example.com has no all mechanism", CAN_WAIT),
        ({"TXT": ["v=spf1 ptr -all"]}, "SPF record of example.com uses ptr", CAN_WAIT),
        ({"TXT": ["v=spf1 ip4:192.0.2.1/40 -all"]}, "SPF record of example.com has a syntax error", MUST_DO_NOW),
        ({"TXT": ["hello"]}, "example.com has no SPF record", MUST_DO_NOW),
        ({"TXT": ["v=spf1 include:loop1.example.net -all"]}, "SPF of example.com loops through loop1.example.net", MUST_DO_NOW),
        ({"TXT": ["v=spf1 " + " ".join("a:h%d.example.com" % i for i in range(11)) + " -all"]}, "SPF of example.com needs 11 DNS lookups (limit 10)",
         MUST_DO_NOW),
        ({"TXT": ["v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com -all"]}, "SPF of example.com has 3 void lookups (limit 2)", MUST_DO_NOW),
        ({"TXT": ["v=spf1 -all", "v=DMARC1; p=reject"]}, "DMARC record of example.com is at the wrong name", MUST_DO_NOW),
    ],
)
def test_spf_findings(change, title, severity):
    records = healthy("example.com")
    records["example.com"] = dict(records["example.com"], **change)
    records.update({"h%d.example.com" % i: {"A": ["192.0.2.9"]} for i in range(11)})
    records["loop1.example.net"] = {"TXT": ["v=spf1 include:loop2.example.net -all"]}
    records["loop2.example.net"] = {"TXT": ["v=spf1 include:loop1.example.net -all"]}
    result = check(records)
    found = find(result, title)
    assert found.severity == severity
    assert ("RFC 7208 section" if "SPF" in title else "RFC 9989 section") in found.evidence
    if severity == MUST_DO_NOW and "SPF" in title:
        assert (OK, "SPF of example.com is valid") not in summary(result)


@pytest.mark.parametrize(
    "dmarc, title, severity",
    [
        (["v=DMARC1; p=rejct; rua=mailto:d@example.com"], "p=rejct is not a policy, so receivers read it as p=none", CAN_WAIT),
        (["v=DMARC1; p=rejct"], "p=rejct is not a policy", MUST_DO_NOW),
        (["v=DMARC1; p=reject; pct=150"], "pct=150 is out of range", MUST_DO_NOW),
        (["v=DMARC1; p=none; rua=dmarc@example.com"], "rua entry dmarc@example.com is not a report address", MUST_DO_NOW),
        (["v=DMARC1; p=none; rua=mailto:d@example.com", "v=DMARC1; p=reject"], "example.com has 2 DMARC records", MUST_DO_NOW),
        (["v=DMARC1; p=reject; ri=86400; rf=afrf"], "ri is no longer part of DMARC", CAN_WAIT),
        (["v=DMARC1; p=none; rua=mailto:d@example.com"], "policy is p=none (monitoring only)", CAN_WAIT),
    ],
)
def test_dmarc_findings(dmarc, title, severity):
    records = healthy("example.com")
    records["_dmarc.example.com"] = {"TXT": dmarc}
    found = find(check(records), title)
    assert found.severity == severity


def test_no_dmarc_record():
    records = healthy("example.com")
    del records["_dmarc.example.com"]
    found = find(check(records), "example.com has no DMARC record")
    assert found.severity == MUST_DO_NOW and "RFC 9989 section 4.10" in found.evidence


def test_subdomain_inherits_the_parent_policy():
    records = healthy("example.com")
    records["mail.example.com"] = {"TXT": ["v=spf1 include:sendgrid.net -all"], "MX": ["10 mx.example.com"]}
    result = check(records, domain="mail.example.com")
    found = find(result, "mail.example.com has no DMARC record of its own")
    assert found.severity == OK
    assert result.dmarc["inherited_from"] == "example.com" and result.dmarc["policy"] == "reject"


def test_outside_report_destination_must_authorize():
    records = healthy("example.com")
    records["_dmarc.example.com"] = {"TXT": ["v=DMARC1; p=reject; rua=mailto:agg@reports.example.net; ruf=mailto:f@forensic.example.org"]}
    records["_dmarc.reports.example.net"] = {"TXT": ["v=DMARC1; p=none; rua=mailto:x@reports.example.net"]}
    result = check(records)
    rua = find(result, "DMARC reports of example.com to reports.example.net are not authorized")
    assert rua.severity == MUST_DO_NOW
    assert "example.com._report._dmarc.reports.example.net" in rua.evidence and "RFC 9990 section 4" in rua.evidence
    assert find(result, "to forensic.example.org are not authorized").severity == CAN_WAIT
    records["example.com._report._dmarc.reports.example.net"] = {"TXT": ["v=DMARC1"]}
    records["example.com._report._dmarc.forensic.example.org"] = {"TXT": ["v=DMARC1;"]}
    result = check(records)
    assert not [f for f in result.findings if "not authorized" in f.title]
    assert (OK, "DMARC record of example.com is valid") in summary(result)


def test_report_address_inside_the_organizational_domain_needs_no_authorization():
    records = healthy("example.com")
    records["_dmarc.example.com"] = {"TXT": ["v=DMARC1; p=reject; rua=mailto:agg@reports.example.com"]}
    fake = AuthoritativeFake(dict(SHARED, **records))
    result = check(records, fake=fake)
    assert (OK, "DMARC record of example.com is valid") in summary(result)
    assert not any("_report._dmarc" in name for name, _rdtype in fake.calls)


@pytest.mark.parametrize(
    "selector_records, title, severity",
    [
        ({}, "DKIM key lr2026a._domainkey.example.com is not published", MUST_DO_NOW),
        ({"TXT": ["v=DKIM1; p="]}, "DKIM key lr2026a._domainkey.example.com is revoked", MUST_DO_NOW),
        ({"TXT": [_dkim.txt_value(key("rsa", 1024))]}, "DKIM key lr2026a._domainkey.example.com is RSA 1024 bits", CAN_WAIT),
        ({"TXT": [_dkim.txt_value(key()), _dkim.txt_value(key("ed25519"))]}, "DKIM selector lr2026a of example.com has 2 key records", MUST_DO_NOW),
        ({"TXT": ["v=DKIM1; k=rsa; p=bm90IGEga2V5"]}, "DKIM key lr2026a._domainkey.example.com is invalid", MUST_DO_NOW),
        ({"TXT": [_dkim.txt_value(key("ed25519"))]}, "DKIM key lr2026a._domainkey.example.com is published", OK),
    ],
)
def test_dkim_findings(selector_records, title, severity):
    records = healthy("example.com")
    records["lr2026a._domainkey.example.com"] = selector_records
    found = find(check(records, dkim=[{"selector": "lr2026a"}]), title)
    assert found.severity == severity


def test_dkim_local_key_mismatch(tmp_path):
    path = tmp_path / "other.pem"
    path.write_bytes(_dkim.private_pem(key("ed25519")))
    result = check(healthy("example.com"), dkim=[{"selector": "lr2026a", "private_key_path": str(path)}])
    found = find(result, "DKIM key lr2026a._domainkey.example.com does not match the local private key")
    assert found.severity == MUST_DO_NOW
    assert (OK, "DKIM key lr2026a._domainkey.example.com is published") not in summary(result)
    assert result.dkim[0]["matches_local_key"] is False


def test_dkim_local_key_unreadable(tmp_path):
    result = check(healthy("example.com"), dkim=[{"selector": "lr2026a", "private_key_path": str(tmp_path / "missing.pem")}])
    assert find(result, "local DKIM key for lr2026a._domainkey.example.com cannot be read").severity == MUST_DO_NOW


def test_dkim_cname_to_nowhere():
    result = check(healthy("example.com"), dkim=[{"selector": "s2"}], cnames={"s2._domainkey.example.com": "s2.domainkey.gone.example.net"})
    found = find(result, "DKIM key s2._domainkey.example.com is not published")
    assert "(CNAME to s2.domainkey.gone.example.net)" in found.evidence


def test_a_cname_into_another_zone_is_followed_to_the_target():
    records = healthy("example.com")
    records["_dmarc.example.com"] = {}
    records["_dmarc.example.net"] = {"TXT": ["v=DMARC1; p=quarantine; rua=mailto:d@example.com"]}
    result = check(records, cnames={"_dmarc.example.com": "_dmarc.example.net"})
    assert result.dmarc["policy"] == "quarantine"
    assert (OK, "DMARC record of example.com is valid") in summary(result)


def test_a_cname_loop_across_zones_ends():
    fake = AuthoritativeFake({"a.example.com": {"NS": ["ns1.example.net"]}, "b.example.com": {"NS": ["ns1.example.net"]}},
                             cnames={"x.a.example.com": "x.b.example.com", "x.b.example.com": "x.a.example.com"})
    router = _email_auth.AuthoritativeRouter(fake, lambda servers: fake, ["a.example.com", "b.example.com"])
    answer = asyncio.run(router.query("x.a.example.com", "TXT"))
    assert answer.rcode == "SERVFAIL" and "x.a.example.com -> x.b.example.com -> x.a.example.com" in answer.error


@pytest.mark.parametrize(
    "mx, title, severity",
    [
        (["0 ."], "example.com accepts no mail (null MX)", OK),
        (["0 "], "example.com accepts no mail (null MX)", OK),
        (["0 .", "10 mx.example.com"], "example.com mixes a null MX with other MX records", MUST_DO_NOW),
        ([], "example.com has no MX record", CAN_WAIT),
    ],
)
def test_mx(mx, title, severity):
    records = healthy("example.com")
    records["example.com"] = dict(records["example.com"], MX=mx)
    found = find(check(records), title)
    assert found.severity == severity and "RFC" in found.evidence


def test_mx_check_can_be_skipped():
    records = healthy("example.com")
    records["example.com"] = dict(records["example.com"], MX=[])
    result = check(records, check_mx=False)
    assert result.mx is None and not [f for f in result.findings if "MX" in f.title]


def test_dns_failures_are_reported_not_raised():
    rcodes = {("_dmarc.example.com", "TXT"): "TIMEOUT", ("example.com", "MX"): "SERVFAIL", ("lr2026a._domainkey.example.com", "TXT"): "TIMEOUT"}
    result = check(healthy("example.com"), dkim=[{"selector": "lr2026a"}], rcodes=rcodes)
    assert find(result, "DMARC of example.com could not be checked").severity == MUST_DO_NOW
    assert find(result, "MX of example.com could not be checked").severity == MUST_DO_NOW
    assert find(result, "DKIM selector lr2026a of example.com could not be checked").severity == MUST_DO_NOW


def test_resolver_exceptions_become_servfail():
    class Broken:
        async def query(self, name, rdtype):
            raise RuntimeError("boom")

    result = check({}, fake=Broken())
    assert find(result, "SPF of example.com could not be checked: DNS SERVFAIL").severity == MUST_DO_NOW


# --- the module --------------------------------------------------------------------------------


def run_module(capsys, monkeypatch, fake, **args):
    made = []

    def factory(servers, timeout):
        made.append((servers, timeout))
        return fake

    monkeypatch.setattr(email_auth_check, "AsyncResolver", factory)
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        email_auth_check.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    return result, made


def test_module_checks_many_domains_concurrently(capsys, monkeypatch):
    class Slow(AuthoritativeFake):
        active = peak = 0

        async def query(self, name, rdtype):
            Slow.active += 1
            Slow.peak = max(Slow.peak, Slow.active)
            await asyncio.sleep(0.005)
            Slow.active -= 1
            return await super().query(name, rdtype)

    records = dict(SHARED)
    for i in range(30):
        records.update(healthy("d%d.example" % i))
    fake = Slow(records)
    domains = [{"name": "D%d.example." % i, "dkim": [{"selector": "lr2026a"}]} for i in range(30)]
    result, made = run_module(capsys, monkeypatch, fake, domains=domains, nameservers=["127.0.0.1:5353"], query_timeout=1.5)
    assert made == [(["127.0.0.1:5353"], 1.5)]
    assert result["summary"] == {"must_do_now": 0, "can_wait": 0, "ok": 120}
    assert sorted(result["domains"]) == sorted("d%d.example" % i for i in range(30))
    assert result["nameservers"]["d0.example"] == ["127.0.0.1:5353"]
    assert Slow.peak >= 30
    assert fake.calls.count(("sendgrid.net", "TXT")) == 1  # asked once for all 30 domains
    assert result["queries"] == len(set(fake.calls))


def test_module_finds_the_authoritative_nameservers(capsys, monkeypatch):
    records = healthy("example.com")
    records["example.com"]["NS"] = ["ada.ns.example.net", "bob.ns.example.net"]
    fake = AuthoritativeFake(dict(SHARED, **records))
    result, made = run_module(capsys, monkeypatch, fake, domains=[{"name": "example.com"}])
    assert made == [(None, 3.0), (["ada.ns.example.net", "bob.ns.example.net"], 3.0)]
    assert result["nameservers"] == {"example.com": ["ada.ns.example.net", "bob.ns.example.net"]}


def test_module_fail_on(capsys, monkeypatch):
    records = healthy("example.com")
    records["_dmarc.example.com"] = {"TXT": ["v=DMARC1; p=none; rua=mailto:d@example.com"]}
    fake = AuthoritativeFake(dict(SHARED, **records))
    result, _made = run_module(capsys, monkeypatch, fake, domains=[{"name": "example.com"}], nameservers=["ns"], fail_on="must_do_now")
    assert "failed" not in result
    result, _made = run_module(capsys, monkeypatch, fake, domains=[{"name": "example.com"}], nameservers=["ns"], fail_on="can_wait")
    assert result["failed"] is True
    assert result["msg"] == ("1 mail authentication finding(s) at or above can_wait: "
                             "DMARC record of example.com: policy is p=none (monitoring only)")
    assert result["findings"][0]["severity"] == CAN_WAIT


def test_module_keeps_private_keys_out_of_the_result(capsys, monkeypatch):
    pem = _dkim.private_pem(key()).decode()
    fake = AuthoritativeFake(dict(SHARED, **healthy("example.com")))
    result, _made = run_module(capsys, monkeypatch, fake, domains=[{"name": "example.com", "dkim": [{"selector": "lr2026a", "private_key": pem}]}],
                               nameservers=["ns"])
    assert "PRIVATE KEY" not in json.dumps(result)
    assert result["domains"]["example.com"]["dkim"][0]["matches_local_key"] is True


def test_module_refuses_a_domain_twice(capsys, monkeypatch):
    result, _made = run_module(capsys, monkeypatch, FakeResolver(), domains=[{"name": "a.example"}, {"name": "A.example."}])
    assert result["failed"] is True and result["msg"] == "domain a.example is listed twice"


# --- the module against real nameservers (the in-process responder) ------------------------------

SOA = "ns1.{0}. hostmaster.{0}. 1 7200 3600 1209600 300"


@pytest.fixture
def responder():
    yield from responders()


def test_module_follows_cnames_out_of_the_domain_to_their_own_nameservers(capsys, monkeypatch, responder):
    """_dmarc and an SPF include CNAMEd to a provider's zone, which the domain's own nameservers refuse to answer for."""
    own = responder(zones=("mail.test",), records=[
        ("mail.test", "SOA", [SOA.format("mail.test")]),
        ("mail.test", "TXT", ['"v=spf1 include:_spf.mail.test -all"']),
        ("mail.test", "MX", ["10 mx.mail.test."]),
        ("_dmarc.mail.test", "CNAME", ["mail-test._dmarc.provider.test."]),
        ("_spf.mail.test", "CNAME", ["spf.provider.test."]),
    ])
    provider = responder(zones=("provider.test",), records=[
        ("provider.test", "SOA", [SOA.format("provider.test")]),
        ("mail-test._dmarc.provider.test", "TXT", ['"v=DMARC1; p=reject; rua=mailto:agg@provider.test"']),
        ("mail.test._report._dmarc.provider.test", "TXT", ['"v=DMARC1"']),
        ("spf.provider.test", "TXT", ['"v=spf1 ip4:192.0.2.0/24 -all"']),
    ])

    class System:
        """The system resolver: finds the NS of mail.test, asks the provider's servers for its names, knows nothing else."""

        def __init__(self, timeout):
            self.provider = _dns.AsyncResolver([provider.address], timeout=timeout)

        async def query(self, name, rdtype):
            if name == "mail.test" and rdtype == "NS":
                return _dns.Answer(name, rdtype, "NOERROR", [own.address], 300, [])
            if name == "provider.test" or name.endswith(".provider.test"):
                return await self.provider.query(name, rdtype)
            return _dns.Answer(name, rdtype, "NXDOMAIN", [], None, [])

    def factory(servers, timeout):
        return System(timeout) if servers is None else _dns.AsyncResolver(servers, timeout=timeout)

    monkeypatch.setattr(email_auth_check, "AsyncResolver", factory)
    with patch_module_args({"domains": [{"name": "mail.test"}], "query_timeout": 1.0}), pytest.raises(SystemExit):
        email_auth_check.main()
    result = json.loads(capsys.readouterr().out)
    assert result["summary"] == {"must_do_now": 0, "can_wait": 0, "ok": 3}, result["findings"]
    assert result["nameservers"] == {"mail.test": [own.address]}
    domain = result["domains"]["mail.test"]
    assert domain["dmarc"]["policy"] == "reject"
    assert domain["spf"]["status"] == "valid"
    # the domain's own servers were asked for the targets (and refused them) before the provider's servers were
    assert sorted({(name, rdtype) for _transport, name, rdtype, _rd in own.questions() if name.endswith("provider.test")}) == [
        ("mail-test._dmarc.provider.test", "TXT"), ("spf.provider.test", "TXT")]
    assert ("udp", "spf.provider.test", "TXT", False) in provider.questions()
