# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""email_auth_records: records built per provider, SPF lookups counted from DNS, bad inputs refused, the module over a fake resolver."""

from __future__ import annotations

import asyncio
import json
from functools import cache

import pytest
from ansible.module_utils.testing import patch_module_args
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.launchready.core.plugins.module_utils import _dkim, _email_auth
from ansible_collections.launchready.core.plugins.modules import email_auth_records
from ansible_collections.launchready.core.tests.unit.plugins.module_utils.test_spf import FakeResolver

DOMAIN = "example.com"

# What the providers' includes resolve to in these tests: shaped like the real ones, fewer addresses.
PROVIDER_DNS = {
    "_spf.google.com": {"TXT": ["v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all"]},
    "_netblocks.google.com": {"TXT": ["v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ~all"]},
    "_netblocks2.google.com": {"TXT": ["v=spf1 ip6:2001:4860:4000::/36 ~all"]},
    "_netblocks3.google.com": {"TXT": ["v=spf1 ip4:172.217.0.0/19 ~all"]},
    "spf.protection.outlook.com": {"TXT": ["v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip6:2a01:111:f400::/48 -all"]},
    "amazonses.com": {"TXT": ["v=spf1 ip4:199.255.192.0/22 ip4:54.240.0.0/18 -all"]},
    "mailgun.org": {"TXT": ["v=spf1 include:_spf.mailgun.org include:_spf.eu.mailgun.org ~all"]},
    "_spf.mailgun.org": {"TXT": ["v=spf1 ip4:209.61.151.0/24 ip4:166.78.68.0/22 ~all"]},
    "_spf.eu.mailgun.org": {"TXT": ["v=spf1 ip4:141.193.32.0/23 ~all"]},
    "spf.mandrillapp.com": {"TXT": ["v=spf1 ip4:198.2.128.0/18 ~all"]},
    "sendgrid.net": {"TXT": ["v=spf1 ip4:167.89.0.0/17 ~all"]},
}


@cache
def dkim_value(bits: int = 2048) -> str:
    return _dkim.txt_value(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def resolver(extra: dict | None = None, **kwargs) -> FakeResolver:
    return FakeResolver(dict(PROVIDER_DNS, **(extra or {})), **kwargs)


def build(providers=(), spf=None, dkim=(), dmarc=None, dns=None, keep_other_txt=True, fake=None):
    fake = fake or resolver(dns)
    return asyncio.run(_email_auth.build_records(DOMAIN, list(providers), spf or {}, list(dkim), dmarc, fake, keep_other_txt=keep_other_txt))


def by_name(records):
    return {(r["type"], r["name"]): r.get("content", r.get("values")) for r in records}


def test_google_workspace_and_sendgrid_with_monitoring_dmarc():
    fake = resolver({DOMAIN: {"TXT": ["google-site-verification=abc", "v=spf1 include:old.example.net -all"]}})
    result = build(
        [{"name": "google_workspace", "settings": {"dkim_value": dkim_value()}},
         {"name": "sendgrid", "settings": {"host": "u1234567.wl123.sendgrid.net", "return_path": "em1234"}}],
        dmarc={"policy": "none", "rua": ["mailto:dmarc@example.com"]}, fake=fake)
    assert by_name(result.records) == {
        ("TXT", "example.com"): ["v=spf1 include:_spf.google.com ~all", "google-site-verification=abc"],
        ("CNAME", "em1234.example.com"): "u1234567.wl123.sendgrid.net",
        ("TXT", "_dmarc.example.com"): "v=DMARC1; p=none; rua=mailto:dmarc@example.com",
        ("TXT", "google._domainkey.example.com"): dkim_value(),
        ("CNAME", "s1._domainkey.example.com"): "s1.domainkey.u1234567.wl123.sendgrid.net",
        ("CNAME", "s2._domainkey.example.com"): "s2.domainkey.u1234567.wl123.sendgrid.net",
    }
    apex = next(r for r in result.records if r["name"] == DOMAIN)
    assert apex["ttl"] == 3600
    assert apex["comment"] == "launchready email_auth_records: SPF (google_workspace)"
    assert set(apex) == {"type", "name", "values", "ttl", "comment"}  # only keys cloudflare_dns_records takes
    assert result.spf == [{
        "name": "example.com", "record": "v=spf1 include:_spf.google.com ~all", "lookups": 4, "void_lookups": 0, "flattened": [], "parts": [],
        "costs": [{"term": "include:_spf.google.com", "lookups": 4, "source": "google_workspace"}, {"term": "~all", "lookups": 0, "source": ""}],
    }]
    assert result.authorization_records == []
    assert result.warnings == []
    # the includes were resolved, and the TXT sets the records replace were read to keep what is not ours
    assert ("_spf.google.com", "TXT") in fake.calls and ("_netblocks3.google.com", "TXT") in fake.calls
    assert {("example.com", "TXT"), ("_dmarc.example.com", "TXT"), ("google._domainkey.example.com", "TXT")} <= set(fake.calls)


PROVIDER_CASES = {
    "google_workspace": ({}, {("TXT", "example.com"): "v=spf1 include:_spf.google.com ~all"}),
    "microsoft_365": ({"dkim_targets": ["selector1-example-com._domainkey.contoso.onmicrosoft.com",
                                        "selector2-example-com._domainkey.contoso.onmicrosoft.com"]}, {
        ("TXT", "example.com"): "v=spf1 include:spf.protection.outlook.com ~all",
        ("CNAME", "selector1._domainkey.example.com"): "selector1-example-com._domainkey.contoso.onmicrosoft.com",
        ("CNAME", "selector2._domainkey.example.com"): "selector2-example-com._domainkey.contoso.onmicrosoft.com",
    }),
    "amazon_ses": ({"region": "eu-west-1", "mail_from": "bounce", "dkim_tokens": ["tok1", "tok2", "tok3"]}, {
        ("TXT", "example.com"): "v=spf1 ~all",
        ("TXT", "bounce.example.com"): "v=spf1 include:amazonses.com ~all",
        ("MX", "bounce.example.com"): "10 feedback-smtp.eu-west-1.amazonses.com",
        ("CNAME", "tok1._domainkey.example.com"): "tok1.dkim.amazonses.com",
        ("CNAME", "tok2._domainkey.example.com"): "tok2.dkim.amazonses.com",
        ("CNAME", "tok3._domainkey.example.com"): "tok3.dkim.amazonses.com",
    }),
    "sendgrid": ({"host": "U1.wl9.sendgrid.net.", "return_path": "em9", "dkim_selectors": ["k1"]}, {
        ("TXT", "example.com"): "v=spf1 ~all",
        ("CNAME", "em9.example.com"): "u1.wl9.sendgrid.net",
        ("CNAME", "k1._domainkey.example.com"): "k1.domainkey.u1.wl9.sendgrid.net",
    }),
    "mailgun": ({"region": "eu", "dkim_selector": "pic", "dkim_value": "k=rsa; p=" + dkim_value().split("p=")[1], "receiving_mx": True}, {
        ("TXT", "example.com"): "v=spf1 ~all",
        ("TXT", "mg.example.com"): "v=spf1 include:mailgun.org ~all",
        ("TXT", "pic._domainkey.mg.example.com"): "k=rsa; p=" + dkim_value().split("p=")[1],
        ("MX", "mg.example.com"): ["10 mxa.eu.mailgun.org", "10 mxb.eu.mailgun.org"],
    }),
    "postmark": ({"dkim_selector": "20240101123456pm", "dkim_value": dkim_value()}, {
        ("TXT", "example.com"): "v=spf1 ~all",
        ("CNAME", "pm-bounces.example.com"): "pm.mtasv.net",
        ("TXT", "20240101123456pm._domainkey.example.com"): dkim_value(),
    }),
    "resend": ({"dkim_value": "p=" + dkim_value().split("p=")[1]}, {
        ("TXT", "example.com"): "v=spf1 ~all",
        ("TXT", "send.example.com"): "v=spf1 include:amazonses.com ~all",
        ("MX", "send.example.com"): "10 feedback-smtp.us-east-1.amazonses.com",
        ("TXT", "resend._domainkey.example.com"): "p=" + dkim_value().split("p=")[1],
    }),
    "mailchimp_transactional": ({"spf_include": True}, {
        ("TXT", "example.com"): "v=spf1 include:spf.mandrillapp.com ~all",
        ("CNAME", "mte1._domainkey.example.com"): "dkim1.mandrillapp.com",
        ("CNAME", "mte2._domainkey.example.com"): "dkim2.mandrillapp.com",
    }),
}


@pytest.mark.parametrize("provider", sorted(PROVIDER_CASES))
def test_each_provider(provider):
    settings, expected = PROVIDER_CASES[provider]
    result = build([{"name": provider, "settings": settings}])
    assert by_name(result.records) == expected
    assert all(r["comment"].startswith("launchready email_auth_records: ") for r in result.records)


def test_catalog_has_a_case_for_every_provider():
    assert sorted(PROVIDER_CASES) == sorted(email_auth_records.PROVIDERS)


@pytest.mark.parametrize(
    "provider, settings, note",
    [
        ("google_workspace", {}, "google_workspace: DKIM not built"),
        ("microsoft_365", {}, "microsoft_365: DKIM not built"),
        ("amazon_ses", {"mail_from": ""}, "amazon_ses: no custom MAIL FROM domain"),
        ("postmark", {}, "postmark: DKIM not built"),
        ("resend", {}, "resend: DKIM not built"),
        ("mailgun", {}, "mailgun: DKIM not built"),
    ],
)
def test_missing_dashboard_values_are_notes(provider, settings, note):
    result = build([{"name": provider, "settings": settings}], dmarc={"policy": "reject"})
    assert any(n.startswith(note) for n in result.notes), result.notes


def test_generic_dkim_setting_goes_to_the_sending_domain():
    result = build([{"name": "mailgun", "settings": {"dkim": [{"selector": "pdk1", "target": "pdk1._domainkey.abc.dkim1.mgsend.net"}]}}])
    assert by_name(result.records)[("CNAME", "pdk1._domainkey.mg.example.com")] == "pdk1._domainkey.abc.dkim1.mgsend.net"


def test_custom_spf_terms_come_first_and_are_counted():
    spf = {"ip4": ["192.0.2.10", "198.51.100.0/24"], "ip6": ["2001:db8::/32"], "mx": True, "include": ["spf.mandrillapp.com"], "all": "fail"}
    result = build([{"name": "microsoft_365"}], spf=spf, dns={DOMAIN: {"MX": ["10 mx.example.com"]}})
    assert result.spf[0]["record"] == ("v=spf1 ip4:192.0.2.10 ip4:198.51.100.0/24 ip6:2001:db8::/32 mx include:spf.mandrillapp.com "
                                       "include:spf.protection.outlook.com -all")
    assert result.spf[0]["lookups"] == 3


def test_report_authorization_for_an_outside_address():
    result = build(dmarc={"policy": "quarantine", "rua": ["mailto:dmarc@example.com", "mailto:r@reports.example.net"],
                          "ruf": ["mailto:f@sub.example.com"]})
    assert result.authorization_records == [{
        "zone": "reports.example.net", "type": "TXT", "name": "example.com._report._dmarc.reports.example.net", "content": "v=DMARC1",
        "ttl": 3600, "comment": "launchready email_auth_records: lets reports.example.net receive DMARC reports of example.com"}]


def test_own_dkim_keys_and_sizes():
    result = build(dkim=[{"selector": "lr2026a", "value": dkim_value()}, {"selector": "old", "value": dkim_value(1024)},
                         {"selector": "del", "target": "del.keys.example.net."}])
    records = by_name(result.records)
    assert records[("TXT", "lr2026a._domainkey.example.com")] == dkim_value()
    assert records[("CNAME", "del._domainkey.example.com")] == "del.keys.example.net"
    assert result.warnings == ["dkim: the DKIM key for old._domainkey.example.com is RSA 1024 bits; use 2048 bits when it is next rotated "
                               "(RFC 8301 section 3.2)"]


def test_keep_other_txt_false_reads_nothing_of_ours():
    fake = resolver({DOMAIN: {"TXT": ["google-site-verification=abc"]}})
    result = build([{"name": "google_workspace"}], keep_other_txt=False, fake=fake)
    assert by_name(result.records)[("TXT", "example.com")] == "v=spf1 include:_spf.google.com ~all"
    assert (DOMAIN, "TXT") not in fake.calls


def test_kept_txt_never_keeps_an_old_record_of_our_kind():
    fake = resolver({"_dmarc.example.com": {"TXT": ["v=DMARC1; p=none"]}, DOMAIN: {"TXT": ["v=spf1 -all"]}})
    result = build(dmarc={"policy": "reject"}, fake=fake)
    assert by_name(result.records) == {("TXT", "example.com"): "v=spf1 ~all", ("TXT", "_dmarc.example.com"): "v=DMARC1; p=reject"}


# --- refusing to build ---------------------------------------------------------------------------


def refused(**kwargs) -> list[str]:
    with pytest.raises(_email_auth.BuildError) as info:
        build(**kwargs)
    return info.value.errors


def test_unknown_provider_lists_the_known_ones():
    errors = refused(providers=[{"name": "sendgird"}])
    assert errors == ["unknown provider 'sendgird' (known: amazon_ses, google_workspace, mailchimp_transactional, mailgun, microsoft_365, "
                      "postmark, resend, sendgrid; for anything else use spf.include/ip4/ip6 and dkim)"]


@pytest.mark.parametrize(
    "provider, settings, message",
    [
        ("sendgrid", {"host": "u1.wl.sendgrid.net"}, "sendgrid: settings.return_path is required"),
        ("sendgrid", {"host": "u1.wl.sendgrid.net", "return_path": "em1", "colour": "blue"}, "sendgrid: unknown settings colour (known: "),
        ("amazon_ses", {}, "amazon_ses: settings.region (for example eu-west-1) is needed"),
        ("amazon_ses", {"region": "eu-west-1", "dkim_tokens": "tok"}, "amazon_ses: settings.dkim_tokens must be a list"),
        ("microsoft_365", {"dkim_targets": ["one"]}, "microsoft_365: settings.dkim_targets needs the two CNAME targets"),
        ("mailgun", {"sending_domain": "@", "receiving_mx": True}, "mailgun: settings.receiving_mx would replace the MX records of example.com"),
        ("mailgun", {"dkim_value": "p=abc"}, "mailgun: settings.dkim_selector is needed"),
        ("postmark", {"dkim_selector": "x"}, "postmark: settings.dkim_selector and settings.dkim_value go together"),
        ("google_workspace", {"dkim": [{"selector": "x"}]}, "google_workspace: each settings.dkim entry needs a selector and either value"),
        ("google_workspace", {"dkim": [{"selector": "x", "value": "p=", "ttl": 5}]}, "settings.dkim entries take selector, value or target"),
        ("google_workspace", {"dkim_value": "v=DKIM1; p=!!"}, "google_workspace: the DKIM key for google._domainkey.example.com is not usable"),
        ("google_workspace", {"dkim_value": "v=DKIM1; p="}, "p= is empty (revoked)"),
        ("sendgrid", {"host": "not a host", "return_path": "em1"}, "is not a host name"),
    ],
)
def test_bad_provider_settings(provider, settings, message):
    errors = refused(providers=[{"name": provider, "settings": settings}])
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(spf={"ip4": ["192.0.2.300"]}), "SPF at example.com: 'ip4:192.0.2.300': '192.0.2.300' is not an IPv4 address"),
        (dict(spf={"ip4": ["192.0.2.0/33"]}), "/33 is not a valid IPv4 prefix length"),
        (dict(spf={"include": ["nodot"]}), "'include:nodot': 'nodot' does not end with a dot and a top-level label"),
        (dict(dmarc={"policy": "rejct", "rua": ["mailto:d@example.com"]}), "dmarc.policy='rejct' is not a policy"),
        (dict(dmarc={"policy": "reject", "percent": 150}), "dmarc.percent=150 is out of range: pct is an integer from 0 to 100"),
        (dict(dmarc={"policy": "none", "rua": ["dmarc@example.com"]}), "must be a mailto: URI such as mailto:dmarc@example.com"),
        (dict(dkim=[{"selector": "bad_sel", "value": "p=abc"}]), "DKIM selector 'bad_sel' is not a valid DNS label sequence"),
        (dict(dkim=[{"selector": "a", "value": "p=abc", "target": "x.example.net"}]), "dkim entry 'a' needs either value"),
        (dict(dkim=[{"selector": "s1", "value": dkim_value()}],
              providers=[{"name": "sendgrid", "settings": {"host": "u1.wl.sendgrid.net", "return_path": "em1"}}]),
         "sendgrid and dkim both publish a DKIM key at s1._domainkey.example.com"),
    ],
)
def test_bad_inputs(kwargs, message):
    errors = refused(**kwargs)
    assert any(message in e for e in errors), errors


def test_every_input_error_is_reported_before_any_dns_question():
    fake = resolver()
    with pytest.raises(_email_auth.BuildError) as info:
        build([{"name": "sendgird"}, {"name": "amazon_ses"}], dmarc={"policy": "reject", "percent": 150}, fake=fake)
    assert len(info.value.errors) == 3
    assert fake.calls == []


def _heavy(n: int) -> dict:
    return {"p%d.example.net" % i: {"TXT": ["v=spf1 ip4:198.51.%d.0/24 ~all" % i]} for i in range(n)}


def test_spf_needing_11_lookups_is_refused_with_the_cost_of_each_include():
    dns = dict(_heavy(4), **{"deep.example.net": {"TXT": ["v=spf1 include:p0.example.net include:p1.example.net ~all"]}})
    fake = resolver(dns)
    with pytest.raises(_email_auth.BuildError) as info:
        build([{"name": "google_workspace"}, {"name": "mailgun", "settings": {"sending_domain": "@"}}],
              spf={"include": ["deep.example.net", "p2.example.net"]}, fake=fake)
    assert info.value.errors == [
        "SPF at example.com would need 11 DNS lookups, over the limit of 10 (RFC 7208 section 4.6.4): include:deep.example.net (spf) costs 3, "
        "include:p2.example.net (spf) costs 1, include:_spf.google.com (google_workspace) costs 4, "
        "include:mailgun.org (mailgun) costs 3. Drop a provider you no longer use, send through a provider's own MAIL FROM subdomain, "
        "or set spf.flatten: true"]
    assert all(rdtype == "TXT" for _name, rdtype in fake.calls)
    assert (DOMAIN, "TXT") not in fake.calls  # refused before reading what it would have replaced


def test_flatten_brings_the_record_under_the_limit_and_warns():
    dns = dict(_heavy(8))
    result = build([{"name": "google_workspace"}], spf={"include": ["p%d.example.net" % i for i in range(8)], "flatten": True}, dns=dns)
    spf = result.spf[0]
    assert spf["flattened"] == ["include:p%d.example.net" % i for i in range(8)] + ["include:_spf.google.com"]
    assert spf["lookups"] == 0
    assert spf["record"].startswith("v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ip4:172.217.0.0/19 ip4:198.51.0.0/21")
    assert spf["record"].endswith("ip6:2001:4860:4000::/36 ~all")
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("SPF at example.com was flattened from 12 to 0 lookups")
    assert "run this task again regularly" in result.warnings[0]


def test_flatten_splits_a_long_record_and_keeps_what_cannot_be_flattened():
    dns = {"big.example.net": {"TXT": ["v=spf1 " + " ".join("ip4:203.0.%d.%d" % (i // 200, 1 + (i % 200) * 1) for i in range(0, 120, 2)) + " ~all"]},
           "macro.example.net": {"TXT": ["v=spf1 exists:%{i}._spf.macro.example.net ~all"]}, **_heavy(9)}
    includes = ["big.example.net", "macro.example.net"] + ["p%d.example.net" % i for i in range(9)]
    result = build(spf={"include": includes, "flatten": True}, dns=dns)
    spf = result.spf[0]
    assert "include:macro.example.net" not in spf["flattened"]
    assert spf["parts"] and all(len(part["record"]) <= 450 for part in spf["parts"])
    assert spf["record"] == "v=spf1 " + " ".join("include:_spf%d.example.com" % (i + 1) for i in range(len(spf["parts"]))) + \
        " include:macro.example.net ~all"
    assert spf["lookups"] == len(spf["parts"]) + 2
    assert {c["term"]: c["source"] for c in spf["costs"]} == dict(
        {"include:_spf%d.example.com" % (i + 1): "flattened" for i in range(len(spf["parts"]))}, **{"include:macro.example.net": "spf", "~all": ""})
    records = by_name(result.records)
    for part in spf["parts"]:
        assert records[("TXT", part["name"])] == part["record"]


def test_void_and_missing_includes_are_refused():
    errors = refused(spf={"include": ["missing.example.net"], "a": True})
    assert any("include:missing.example.net has no SPF record" in e and "RFC 7208 section 5.2" in e for e in errors), errors


def test_dns_failure_while_counting_is_refused():
    fake = resolver(rcodes={("_spf.google.com", "TXT"): "TIMEOUT"})
    with pytest.raises(_email_auth.BuildError) as info:
        build([{"name": "google_workspace"}], fake=fake)
    assert "could not be checked: DNS TIMEOUT" in info.value.errors[0]


def test_dns_failure_reading_existing_txt_is_refused():
    fake = resolver(rcodes={("example.com", "TXT"): "SERVFAIL"})
    with pytest.raises(_email_auth.BuildError) as info:
        build([{"name": "google_workspace"}], fake=fake)
    assert info.value.errors[0].startswith("could not read the TXT records already at example.com (SERVFAIL")


# --- the module --------------------------------------------------------------------------------


def warnings(result) -> list[str]:
    """Warnings as text, whether ansible-core returns strings or (2.19+) structured events."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def run_module(capsys, monkeypatch, fake, **args):
    made = []

    def factory(servers, timeout):
        made.append((servers, timeout))
        return fake

    monkeypatch.setattr(email_auth_records, "AsyncResolver", factory)
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        email_auth_records.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    return result, made


def test_module_builds_records(capsys, monkeypatch):
    fake = resolver({DOMAIN: {"TXT": ["google-site-verification=abc"]}})
    result, made = run_module(capsys, monkeypatch, fake, domain="Example.COM.", providers=[{"name": "google_workspace"}],
                              dmarc={"policy": "none", "rua": ["mailto:dmarc@example.com"], "percent": 100},
                              nameservers=["127.0.0.1:5353"], ttl=300, _ansible_check_mode=True)
    assert made == [(["127.0.0.1:5353"], 3.0)]
    assert result["changed"] is False
    assert by_name(result["records"]) == {
        ("TXT", "example.com"): ["v=spf1 include:_spf.google.com ~all", "google-site-verification=abc"],
        ("TXT", "_dmarc.example.com"): "v=DMARC1; p=none; pct=100; rua=mailto:dmarc@example.com",
    }
    assert {r["ttl"] for r in result["records"]} == {300}
    assert result["dmarc"] == {"name": "_dmarc.example.com", "record": "v=DMARC1; p=none; pct=100; rua=mailto:dmarc@example.com"}
    assert warnings(result) == ["dmarc.percent (pct) was removed by RFC 9989 and newer receivers ignore it; prefer dmarc.testing (t=y)"]
    assert result["notes"][0].startswith("google_workspace: DKIM not built")


def test_module_without_nameservers_asks_the_authoritative_servers(capsys, monkeypatch):
    fake = resolver({DOMAIN: {"NS": ["ns1.example.net", "ns2.example.net"], "TXT": ["keep=me"]}})
    result, made = run_module(capsys, monkeypatch, fake, domain=DOMAIN)
    assert made == [(None, 3.0), (["ns1.example.net", "ns2.example.net"], 3.0)]
    assert by_name(result["records"]) == {("TXT", "example.com"): ["v=spf1 ~all", "keep=me"]}


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(providers=[{"name": "sendgird"}]), "value of name must be one of: amazon_ses, google_workspace, mailchimp_transactional, mailgun, "
                                                 "microsoft_365, postmark, resend, sendgrid, got: sendgird"),
        (dict(dmarc={"policy": "rejct"}), "value of policy must be one of: none, quarantine, reject, got: rejct"),
        (dict(dmarc={"policy": "reject", "percent": 150}), "Nothing was built for example.com: dmarc.percent=150 is out of range"),
        (dict(dmarc={"policy": "none", "rua": ["dmarc@example.com"]}), "must be a mailto: URI such as mailto:dmarc@example.com"),
        (dict(dkim=[{"selector": "a"}]), "one of the following is required: value, target"),
    ],
)
def test_module_refuses_bad_input(capsys, monkeypatch, args, message):
    fake = resolver()
    result, _made = run_module(capsys, monkeypatch, fake, domain=DOMAIN, **args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert "records" not in result
    assert fake.calls == []


def test_module_refuses_eleven_lookups(capsys, monkeypatch):
    fake = resolver(_heavy(11))
    result, _made = run_module(capsys, monkeypatch, fake, domain=DOMAIN, spf={"include": ["p%d.example.net" % i for i in range(11)]},
                               nameservers=["127.0.0.1"])
    assert result["failed"] is True
    assert result["msg"].startswith("Nothing was built for example.com: SPF at example.com would need 11 DNS lookups, over the limit of 10")
    assert "include:p10.example.net (spf) costs 1" in result["msg"]
    assert result["errors"] and "records" not in result
