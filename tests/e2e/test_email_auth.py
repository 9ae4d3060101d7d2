# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mail authentication end to end against the lab: keys generated, records built, published, checked.

The lab stands in for the providers too: zones ``google.com`` and ``sendgrid.net`` carry SPF
records shaped like the real ones and SendGrid's delegated DKIM keys, so SPF lookups are counted
and CNAME-delegated DKIM is followed through real DNS queries to the lab's nameserver.
"""

from __future__ import annotations

import base64
import uuid

import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.playbook import run_playbook
from tests.lab.client import Lab, LabError

DNS_EDIT = ["zone:read", "dns_records:read", "dns_records:edit"]
SENDGRID_HOST = "u1234.wl1.sendgrid.net"

PLAYBOOK = """
- name: Mail authentication of one domain
  hosts: localhost
  gather_facts: false
  tasks:
    - name: DKIM keys
      launchready.core.dkim_key:
        domain: "{{ zone }}"
        key_types: [rsa, ed25519]
        private_key_dir: "{{ key_dir }}"
      register: dkim

    - name: Build the records
      launchready.core.email_auth_records:
        domain: "{{ zone }}"
        providers: "{{ providers }}"
        dkim: "{{ dkim.dkim_records }}"
        spf: "{{ spf | default({}) }}"
        dmarc: "{{ dmarc }}"
        nameservers: ["{{ lab_dns }}"]
      register: mail

    - name: Publish the records
      launchready.core.cloudflare_dns_records:
        zone: "{{ zone }}"
        api_token: "{{ cloudflare_token }}"
        api_base_url: "{{ api_base_url }}"
        records: "{{ mail.records }}"

    - name: Check from the outside
      launchready.core.email_auth_check:
        domains:
          - name: "{{ zone }}"
            dkim: "{{ selectors }}"
        nameservers: ["{{ lab_dns }}"]
        fail_on: must_do_now
"""

CHECK_ONLY = """
- name: Check only
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check from the outside
      launchready.core.email_auth_check:
        domains: [{name: "{{ zone }}"}]
        nameservers: ["{{ lab_dns }}"]
"""


def rsa_txt_value(key) -> str:
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()


def provider_records(sendgrid_keys: dict[str, str]) -> dict[str, list[dict]]:
    return {
        "google.com": [
            {"type": "TXT", "name": "_spf.google.com",
             "content": "v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all"},
            {"type": "TXT", "name": "_netblocks.google.com", "content": "v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ~all"},
            {"type": "TXT", "name": "_netblocks2.google.com", "content": "v=spf1 ip6:2001:4860:4000::/36 ~all"},
            {"type": "TXT", "name": "_netblocks3.google.com", "content": "v=spf1 ip4:172.217.0.0/19 ~all"},
        ],
        "sendgrid.net": [
            {"type": "TXT", "name": "sendgrid.net", "content": "v=spf1 ip4:167.89.0.0/17 ~all"},
            {"type": "TXT", "name": SENDGRID_HOST, "content": "v=spf1 include:sendgrid.net ~all"},
            {"type": "MX", "name": SENDGRID_HOST, "content": "mx.sendgrid.net", "priority": 10},
        ] + [{"type": "TXT", "name": "%s.domainkey.%s" % (selector, SENDGRID_HOST), "content": value} for selector, value in sendgrid_keys.items()],
    }


def zone_exists(lab: Lab, name: str) -> bool:
    try:
        lab.zone_id(name)
    except LabError:
        return False
    return True


@pytest.fixture(scope="module")
def providers(lab: Lab):
    """Lab zones standing in for Google's and SendGrid's DNS; returns the SendGrid DKIM private keys."""
    keys = {s: rsa.generate_private_key(public_exponent=65537, key_size=2048) for s in ("s1", "s2")}
    zones = provider_records({s: rsa_txt_value(k) for s, k in keys.items()})
    # tests/lab/config.json already has these zones (for the demo): add to their records, then put them back
    configured = {name: lab.records(name) for name in zones if zone_exists(lab, name)}
    for name, records in zones.items():
        if name not in configured:
            lab.add_zone(name)
        there = {(r["type"], r["name"], r["content"]) for r in configured.get(name, [])}
        added = [dict(r, ttl=300) for r in records if (r["type"], r["name"], r["content"]) not in there]
        lab.seed_records(name, configured.get(name, []) + added)
    yield keys
    for name in zones:
        if name in configured:
            lab.seed_records(name, configured[name])
        else:
            lab.delete_zone(name)


@pytest.fixture
def zone(lab: Lab, providers):
    name = "mail%s.test" % uuid.uuid4().hex[:10]
    lab.add_zone(name)
    # what the zone has before: the mailbox provider's MX and a site verification record
    lab.seed_records(name, [{"type": "MX", "name": name, "content": "aspmx.l.google.com", "priority": 1, "ttl": 300},
                            {"type": "TXT", "name": name, "content": "google-site-verification=launch-demo", "ttl": 300}])
    yield name
    lab.delete_zone(name)


def lab_dns(lab: Lab) -> str:
    return "%s:%d" % (lab.dns_host, lab.dns_port)


def dig(lab: Lab, name: str, rtype: str) -> list[str]:
    answer = dns.query.tcp(dns.message.make_query(name, rtype), lab.dns_host, port=lab.dns_port, timeout=10)
    wanted = dns.rdatatype.from_text(rtype)
    texts = []
    for rrset in answer.answer:
        if rrset.rdtype == wanted:
            for rdata in rrset:
                texts.append(b"".join(rdata.strings).decode() if rtype == "TXT" else rdata.to_text().rstrip("."))
    return sorted(texts)


def extra(lab: Lab, zone: str, tmp_path, **kwargs) -> dict:
    values = {
        "zone": zone,
        "key_dir": str(tmp_path / "keys"),
        "providers": [{"name": "google_workspace"},
                      {"name": "sendgrid", "settings": {"host": SENDGRID_HOST, "return_path": "em1234"}}],
        "dmarc": {"policy": "none", "rua": ["mailto:dmarc@%s" % zone]},
        "lab_dns": lab_dns(lab),
        "api_base_url": lab.api_base_url,
        "cloudflare_token": lab.add_token(DNS_EDIT, zones=[zone]),
        "selectors": [],
    }
    values.update(kwargs)
    return values


def selectors_for(run_result) -> list[dict]:
    keys = run_result.task("DKIM keys")["keys"]
    return [{"selector": k["selector"], "private_key_path": k["path"]} for k in keys] + [{"selector": "s1"}, {"selector": "s2"}]


def test_built_published_and_checked(lab, zone, tmp_path):
    # first pass generates the keys; the check needs their selectors, so give them on a second run
    values = extra(lab, zone, tmp_path)
    first = run_playbook(PLAYBOOK, values)
    assert first.rc == 0, first.output[-4000:]
    values["selectors"] = selectors_for(first)
    lab.reset_calls()
    run = run_playbook(PLAYBOOK, values)
    assert run.rc == 0, run.output[-4000:]
    assert values["cloudflare_token"] not in run.output
    assert "PRIVATE KEY" not in run.output
    assert run.recap["changed"] == 0, "a second run changes nothing"
    assert lab.calls()["writes"] == 0

    mail = run.task("Build the records")
    spf = mail["spf"][0]
    assert spf["record"] == "v=spf1 include:_spf.google.com ~all" and spf["lookups"] == 4
    # published: the SPF set keeps the verification record already there
    assert dig(lab, zone, "TXT") == ["google-site-verification=launch-demo", "v=spf1 include:_spf.google.com ~all"]
    assert dig(lab, zone, "MX") == ["1 aspmx.l.google.com"]
    assert dig(lab, "_dmarc." + zone, "TXT") == ["v=DMARC1; p=none; rua=mailto:dmarc@%s" % zone]
    assert dig(lab, "s1._domainkey." + zone, "CNAME") == ["s1.domainkey.%s" % SENDGRID_HOST]
    assert dig(lab, "em1234." + zone, "CNAME") == [SENDGRID_HOST]
    keys = run.task("DKIM keys")["keys"]
    for key in keys:
        assert dig(lab, key["dns_name"], "TXT") == [key["dns_value"]]

    check = run.task("Check from the outside")
    assert check["summary"]["must_do_now"] == 0, check["findings"]
    titles = {(f["severity"], f["title"]) for f in check["findings"]}
    assert ("ok", "SPF of %s is valid" % zone) in titles
    assert ("can_wait", "DMARC record of %s: policy is p=none (monitoring only)" % zone) in titles
    assert ("ok", "%s has MX records" % zone) in titles
    for selector in [k["selector"] for k in keys] + ["s1", "s2"]:
        assert ("ok", "DKIM key %s._domainkey.%s is published" % (selector, zone)) in titles
    report = check["domains"][zone]
    assert [d.get("matches_local_key") for d in report["dkim"] if d["selector"].startswith("lr")] == [True, True]
    assert {d["selector"]: d["cname"] for d in report["dkim"]}["s1"] == "s1.domainkey.%s" % SENDGRID_HOST
    assert report["spf"]["lookups"] == 4


def test_dkim_round_trip_through_the_lab(lab, zone, tmp_path, providers):
    """A message signed with each generated key verifies against the keys the lab's DNS serves (dkimpy, test-only)."""
    dkim = pytest.importorskip("dkim")
    pytest.importorskip("nacl")
    run = run_playbook(PLAYBOOK, extra(lab, zone, tmp_path))
    assert run.rc == 0, run.output[-4000:]

    def lab_txt(name, timeout=5):
        answer = dns.query.tcp(dns.message.make_query(name.decode().rstrip("."), "TXT"), lab.dns_host, port=lab.dns_port, timeout=timeout)
        for rrset in answer.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(rrset[0].strings)
        return None

    message = ("From: Launch <hello@%s>\r\nTo: member@example.net\r\nSubject: Your receipt\r\n"
               "Message-ID: <1@%s>\r\n\r\nThanks for your payment.\r\n" % (zone, zone)).encode()
    for key in run.task("DKIM keys")["keys"]:
        with open(key["path"], "rb") as handle:
            pem = handle.read()
        if key["key_type"] == "ed25519":
            private = serialization.load_pem_private_key(pem, password=None)
            seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
            signature = dkim.sign(message, key["selector"].encode(), zone.encode(), base64.b64encode(seed),
                                  signature_algorithm=b"ed25519-sha256", include_headers=[b"from", b"to", b"subject"])
        else:
            signature = dkim.sign(message, key["selector"].encode(), zone.encode(), pem, include_headers=[b"from", b"to", b"subject"])
        assert dkim.verify(signature + message, dnsfunc=lab_txt), key["selector"]
        assert not dkim.verify(signature + message.replace(b"payment", b"refund"), dnsfunc=lab_txt)
    # and a SendGrid-delegated key, followed through its CNAME by the verifier's resolver
    sendgrid_pem = providers["s1"].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signature = dkim.sign(message, b"s1", zone.encode(), sendgrid_pem, include_headers=[b"from"])

    def following(name, timeout=5):
        target = dig(lab, name.decode().rstrip("."), "CNAME")
        return lab_txt((target[0] if target else name.decode()).encode(), timeout)

    assert dkim.verify(signature + message, dnsfunc=following)


@pytest.fixture(scope="module")
def heavy_senders(lab: Lab):
    """Seven more senders with an SPF record each: with Google's four lookups, eleven."""
    lab.add_zone("senders-e2e.test")
    senders = [{"type": "TXT", "name": "p%d.senders-e2e.test" % i, "content": "v=spf1 ip4:192.0.2.%d -all" % i, "ttl": 300} for i in range(7)]
    lab.seed_records("senders-e2e.test", senders)
    yield
    lab.delete_zone("senders-e2e.test")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"providers": [{"name": "sendgird"}]}, "value of name must be one of: amazon_ses, google_workspace"),
        ({"dmarc": {"policy": "rejct", "rua": []}}, "value of policy must be one of: none, quarantine, reject, got: rejct"),
        ({"dmarc": {"policy": "quarantine", "percent": 150}}, "dmarc.percent=150 is out of range"),
        ({"dmarc": {"policy": "none", "rua": ["dmarc@example.com"]}}, "must be a mailto: URI such as mailto:dmarc@example.com"),
        ({"spf": {"include": ["p%d.senders-e2e.test" % i for i in range(7)]}},
         "SPF at {zone} would need 11 DNS lookups, over the limit of 10 (RFC 7208 section 4.6.4): include:p0.senders-e2e.test (spf) costs 1"),
    ],
)
def test_bad_input_publishes_nothing(lab, zone, tmp_path, heavy_senders, change, message):
    before = lab.records(zone)
    lab.reset_calls()
    run = run_playbook(PLAYBOOK, extra(lab, zone, tmp_path, **change))
    assert run.rc != 0
    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == ["Build the records"]
    assert message.format(zone=zone) in failed[0]["result"]["msg"]
    assert "Publish the records" not in [r["task"] for r in run.results]
    assert lab.calls()["total"] == 0
    assert lab.records(zone) == before


def test_check_finds_what_is_broken(lab, zone, tmp_path):
    lab.seed_records(zone, [
        {"type": "TXT", "name": zone, "content": "v=spf1 include:_spf.google.com -all", "ttl": 300},
        {"type": "TXT", "name": zone, "content": "v=spf1 +all", "ttl": 300},
        {"type": "TXT", "name": "_dmarc." + zone, "content": "v=DMARC1; p=rejct; pct=150; rua=dmarc@%s" % zone, "ttl": 300},
        {"type": "MX", "name": zone, "content": "mx." + zone, "priority": 10, "ttl": 300},
    ])
    run = run_playbook(CHECK_ONLY, {"zone": zone, "lab_dns": lab_dns(lab)})
    assert run.rc == 0, run.output[-3000:]
    check = run.task("Check from the outside")
    titles = {(f["severity"], f["title"]) for f in check["findings"]}
    assert ("must_do_now", "%s has 2 SPF records" % zone) in titles
    assert ("must_do_now", "DMARC record of %s: p=rejct is not a policy" % zone) in titles
    assert ("must_do_now", "DMARC record of %s: pct=150 is out of range" % zone) in titles
    assert ("must_do_now", "DMARC record of %s: rua entry dmarc@%s is not a report address" % (zone, zone)) in titles
    assert ("ok", "%s has MX records" % zone) in titles
    assert all("RFC" in f["evidence"] for f in check["findings"])
