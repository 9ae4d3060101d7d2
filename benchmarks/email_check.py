# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long checking the mail authentication of 50 domains takes, and where two checkers disagree.

(a) launchready.core.email_auth_check: one task for all 50 domains, through ansible-playbook;
(b) checkdmarc (the peer): its SPF, DMARC and MX-record checks, domain after domain, as its own
    command line does, through its Python API.

Both ask only the lab's authoritative DNS on 127.0.0.1, which delays every answer by 30 ms as a
real resolver path would. The lab also serves stand-ins for the providers' zones (google.com,
sendgrid.net, ...), shaped like the real records, so SPF includes are counted and DKIM CNAME
delegations followed through real queries.

checkdmarc's ``--nameserver`` option takes IP addresses (port 53), DNS-over-HTTPS URLs and
``tls://ip:port``, but no plain-DNS port, so it is driven through its Python API with
``nameservers=[dns.nameserver.Do53Nameserver("127.0.0.1", <lab port>)]``, which every one of its
lookups honours (including the ``exp=`` lookups that ignore a ``resolver=`` argument). Its
MTA-STS, SMTP TLS reporting, BIMI, DNSSEC, NS, SOA and MX-host checks (addresses, reverse DNS,
TLSA, STARTTLS) are not run: they are outside what email_auth_check does, and some fetch over HTTPS
or talk SMTP. checkdmarc has no DKIM check, so the DKIM selectors are checked by (a) only.

Every Python process of the run (ansible-playbook, its workers, the module, the peer) gets an
audit hook (a sitecustomize.py on PYTHONPATH) that refuses any connection, datagram or name
lookup that would leave 127.0.0.1 and writes it to a log; the run fails if anything was refused.

The peer is installed from PyPI into benchmarks/.venv-checkdmarc (created here, never committed).
Run from the repository root: ``.venv/bin/python -m benchmarks.email_check [--rounds 3] [--raw results.json]``.
Prints the set-up, one line per tool (best wall and CPU seconds of the rounds), a DKIM summary, one ``DISAGREE`` line per
disagreement with the reason and its RFC section, then ``RESULT ...`` as the last line.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import pathlib
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.e2e.playbook import run_playbook
from tests.lab.client import Lab

ROOT = pathlib.Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "benchmarks" / ".venv-checkdmarc"
PEER_PACKAGE = "checkdmarc==6.0.4"
DNS_DELAY_MS = 30
DOMAIN_COUNT = 50
TASK = "Check mail authentication of every domain"

OURS = """
- name: Mail authentication of the portfolio
  hosts: localhost
  gather_facts: false
  tasks:
    - name: %s
      launchready.core.email_auth_check:
        domains: "{{ domains }}"
        nameservers: ["{{ lab_dns }}"]
""" % TASK

# Runs inside the peer's venv: checkdmarc's SPF, DMARC and MX-record checks, one domain after another.
PEER_DRIVER = r'''
import json, sys, time

import dns.nameserver
from checkdmarc.dmarc import check_dmarc
from checkdmarc.spf import check_spf
from checkdmarc.utils import DNSException, get_mx_record_set


class CountingNameserver(dns.nameserver.Do53Nameserver):
    sent = 0

    def query(self, *args, **kwargs):
        CountingNameserver.sent += 1
        return super().query(*args, **kwargs)


spec = json.load(open(sys.argv[1]))
nameservers = [CountingNameserver(spec["host"], spec["port"])]
results = {}
start = time.monotonic()
for domain in spec["domains"]:
    result = {"spf": check_spf(domain, nameservers=nameservers), "dmarc": check_dmarc(domain, nameservers=nameservers)}
    try:
        result["mx"] = get_mx_record_set(domain, nameservers=nameservers)
    except DNSException as error:
        result["mx"] = {"error": str(error) or type(error).__name__}
    results[domain] = result
checks = time.monotonic() - start
json.dump({"results": results, "checks_seconds": checks, "queries": CountingNameserver.sent}, open(sys.argv[2], "w"), default=str)
'''

# sitecustomize.py for every Python process of the run: nothing may leave 127.0.0.1.
NETWORK_GUARD = r'''
import ipaddress
import os
import sys

_LOG = os.environ.get("LAUNCHREADY_BENCH_NET_LOG")


def _local(host):
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return True  # not an IP socket address (AF_NETLINK and the like)
    host = host.strip("[]").split("%")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: resolving it could ask the system resolver


def _note(line):
    with open(_LOG, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _hook(event, args):
    if not event.startswith("socket."):
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1]
        host = address[0] if isinstance(address, tuple) and address else None
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
        host = args[0]
    elif event == "socket.getnameinfo":
        host = args[0][0] if args[0] else None
    else:
        return
    if not _local(host):
        _note("refused %s %r in pid %d (%s)" % (event, host, os.getpid(), " ".join(sys.orig_argv[:3])))
        raise PermissionError("benchmark network guard: %s %r refused, only 127.0.0.1 may be reached" % (event, host))


if _LOG:
    _note("armed pid %d: %s" % (os.getpid(), " ".join(sys.orig_argv[:3])))
    sys.addaudithook(_hook)
'''


# --- the lab's zones ----------------------------------------------------------------------------


def txt(name: str, content: str) -> dict:
    return {"type": "TXT", "name": name, "content": content, "ttl": 300}


def mx(name: str, host: str, priority: int = 10) -> dict:
    return {"type": "MX", "name": name, "content": host, "priority": priority, "ttl": 300}


def cname(name: str, target: str) -> dict:
    return {"type": "CNAME", "name": name, "content": target, "ttl": 300}


def a(name: str, address: str) -> dict:
    return {"type": "A", "name": name, "content": address, "ttl": 300}


class Keys:
    """DKIM public keys made at run time: a few RSA 2048, one RSA 1024, one Ed25519, reused across selectors."""

    def __init__(self) -> None:
        self.rsa = [self._rsa(2048) for _key in range(3)]
        self.weak = self._rsa(1024)
        raw = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.ed25519 = "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode()
        self._next = 0

    @staticmethod
    def _rsa(bits: int) -> str:
        spki = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()

    def next(self) -> str:
        self._next += 1
        return self.rsa[self._next % len(self.rsa)]


SENDGRID_HOST = "u1234.wl1.sendgrid.net"
M365_TENANT = "launchclients.onmicrosoft.com"
INCLUDE = {  # what each provider tells its customers to put in their SPF record
    "google": "include:_spf.google.com",
    "m365": "include:spf.protection.outlook.com",
    "sendgrid": "include:sendgrid.net",
    "mailgun": "include:mailgun.org",
    "ses": "include:amazonses.com",
    "postmark": "include:spf.mtasv.net",
    "mailchimp": "include:servers.mcsv.net",
}


def provider_zones(keys: Keys) -> dict[str, list[dict]]:
    """Stand-ins for the providers' DNS: SPF records shaped like the real ones (the same lookup costs), DKIM delegation targets."""
    return {
        "google.com": [
            txt("_spf.google.com", "v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all"),
            txt("_netblocks.google.com", "v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ip4:66.102.0.0/20 ip4:66.249.80.0/20 ~all"),
            txt("_netblocks2.google.com", "v=spf1 ip6:2001:4860:4000::/36 ip6:2404:6800:4000::/36 ip6:2607:f8b0:4000::/36 ~all"),
            txt("_netblocks3.google.com", "v=spf1 ip4:172.217.0.0/19 ip4:172.217.32.0/20 ip4:108.177.96.0/19 ~all"),
        ],
        "outlook.com": [
            txt("spf.protection.outlook.com", "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/14 ip4:104.47.0.0/17 "
                "ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 include:spfd.protection.outlook.com -all"),
            txt("spfd.protection.outlook.com", "v=spf1 ip4:51.4.72.0/24 ip4:51.5.72.0/24 ip4:51.5.80.0/27 ip4:51.4.80.0/27 -all"),
        ],
        "onmicrosoft.com": [],  # the DKIM keys of each Microsoft 365 domain are added by portfolio()
        "sendgrid.net": [
            txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ip4:208.117.48.0/20 ip4:50.31.32.0/19 ip4:198.37.144.0/20 ~all"),
            txt(SENDGRID_HOST, "v=spf1 include:sendgrid.net ~all"),
            mx(SENDGRID_HOST, "mx.sendgrid.net"),
            txt("s1.domainkey." + SENDGRID_HOST, keys.next()),
            txt("s2.domainkey." + SENDGRID_HOST, keys.next()),
        ],
        "mailgun.org": [
            txt("mailgun.org", "v=spf1 include:_spf.mailgun.org ~all"),
            txt("_spf.mailgun.org", "v=spf1 ip4:209.61.151.0/24 ip4:166.78.68.0/22 include:_spf2.mailgun.org ~all"),
            txt("_spf2.mailgun.org", "v=spf1 ip4:69.72.32.0/20 ip4:104.130.96.0/28 ip4:146.20.112.0/26 ~all"),
        ],
        "amazonses.com": [
            txt("amazonses.com", "v=spf1 ip4:199.255.192.0/22 ip4:199.127.232.0/22 ip4:54.240.0.0/18 ip4:69.169.224.0/20 "
                "ip4:23.249.208.0/20 ip4:23.251.224.0/19 ip4:76.223.176.0/20 -all"),
        ],
        "mtasv.net": [txt("spf.mtasv.net", "v=spf1 ip4:50.31.156.96/27 ip4:104.245.209.192/26 ip4:3.134.147.250 ip4:50.31.205.0/24 -all")],
        "mcsv.net": [
            txt("servers.mcsv.net", "v=spf1 ip4:205.201.128.0/20 ip4:198.2.128.0/18 ip4:148.105.8.0/21 ?all"),
            txt("dkim.mcsv.net", keys.next()),
            txt("dkim2.mcsv.net", keys.next()),
        ],
        # a DMARC report service that accepts reports for any domain (RFC 9990 section 4, wildcard authorization)
        "reportsvc.test": [
            txt("*._report._dmarc.reportsvc.test", "v=DMARC1"),
            txt("_dmarc.reportsvc.test", "v=DMARC1; p=reject; rua=mailto:dmarc@reportsvc.test"),
            mx("reportsvc.test", "mx.reportsvc.test"),
        ],
        # a report address that never agreed to receive anyone's reports
        "noauth-reports.test": [mx("noauth-reports.test", "mx.noauth-reports.test")],
        # a vendor whose domain exists but publishes no SPF record
        "nospf-vendor.test": [a("nospf-vendor.test", "192.0.2.80"), txt("nospf-vendor.test", "site-verification=abc123")],
    }


@dataclass
class Domain:
    slug: str
    spf: list[str]  # apex TXT records starting with v=spf1 (0, 1 or 2)
    dmarc: list[str]  # TXT records at _dmarc
    mx: str = "google"  # google, m365, own, none
    dkim: list[str] = field(default_factory=list)  # google, m365, sendgrid, ses, mailchimp, postmark, mailgun, weak, ed25519, own, missing
    extra: list[dict] = field(default_factory=list)  # more records, names relative ("@" is the apex)
    name: str = ""


def spf(*providers: str, tail: str = "~all", more: str = "") -> list[str]:
    terms = [INCLUDE[p] for p in providers] + ([more] if more else []) + ([tail] if tail else [])
    return [" ".join(["v=spf1", *terms])]


def dmarc(tags: str, rua: str = "self") -> list[str]:
    """'v=DMARC1; <tags>; rua=...' with rua at the domain itself (self), the report service (svc), or none."""
    parts = ["v=DMARC1", tags] if tags else ["v=DMARC1"]
    if rua == "self":
        parts.append("rua=mailto:dmarc@{domain}")
    elif rua == "svc":
        parts.append("rua=mailto:reports@reportsvc.test")
    return ["; ".join(parts)]


def portfolio() -> list[Domain]:
    """50 domains of a freelancer's clients: most configured the way providers document, some broken on purpose."""
    domains = [
        Domain("workspace-basic", spf("google"), dmarc("p=none"), dkim=["google"]),
        Domain("workspace-quarantine", spf("google"), dmarc("p=quarantine", "svc"), dkim=["google"]),
        Domain("workspace-strict", spf("google"), dmarc("p=reject; sp=reject; adkim=s; aspf=s"), dkim=["google"]),
        Domain("m365-basic", spf("m365", tail="-all"), dmarc("p=quarantine"), mx="m365", dkim=["m365"]),
        Domain("m365-sendgrid", spf("m365", "sendgrid", tail="-all"), ["v=DMARC1; p=reject; rua=mailto:dmarc@{domain},mailto:reports@reportsvc.test"],
               mx="m365", dkim=["m365", "sendgrid"]),
        Domain("workspace-sendgrid", spf("google", "sendgrid"), dmarc("p=none"), dkim=["google", "sendgrid"],
               extra=[cname("em1234", SENDGRID_HOST)]),
        Domain("workspace-mailgun", spf("google", "mailgun"), dmarc("p=quarantine"), dkim=["google", "mailgun"]),
        Domain("ses-sender", spf("ses", tail="-all"), dmarc("p=reject", "svc"), mx="none", dkim=["ses"]),
        Domain("postmark-app", spf("postmark"), dmarc("p=none"), dkim=["postmark"]),
        Domain("mailchimp-news", spf("google", "mailchimp"), dmarc("p=quarantine; np=reject"), dkim=["google", "mailchimp"]),
        Domain("dmarcbis-testing", spf("google"), dmarc("p=reject; t=y"), dkim=["google"]),
        Domain("dmarcbis-psd-n", spf("m365", tail="-all"), dmarc("p=reject; psd=n"), mx="m365", dkim=["m365"]),
        Domain("ten-lookups", spf("google", "m365", "mailgun", "sendgrid"), dmarc("p=quarantine"), dkim=["google", "sendgrid"]),
        Domain("ip-only", ["v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"], dmarc("p=reject", "svc"), mx="none", dkim=["own"]),
        Domain("a-and-mx", ["v=spf1 a mx -all"], dmarc("p=quarantine"), mx="own", dkim=["own"], extra=[a("@", "192.0.2.20")]),
        Domain("redirect", ["v=spf1 redirect=_spf.{domain}"], dmarc("p=reject"), dkim=["google"],
               extra=[txt("_spf", "v=spf1 include:_spf.google.com ~all")]),
        Domain("own-include", ["v=spf1 include:spf.{domain} ~all"], dmarc("p=none"), dkim=["own"],
               extra=[txt("spf", "v=spf1 ip4:198.51.100.0/24 -all")]),
        Domain("duplicate-include", ["v=spf1 include:_spf.google.com include:_spf.google.com ~all"], dmarc("p=quarantine"), dkim=["google"]),
        Domain("neutral-all", spf("google", tail="?all"), dmarc("p=none"), dkim=["google"]),
        Domain("no-all", spf("sendgrid", tail=""), dmarc("p=none"), dkim=["sendgrid"]),
        Domain("exists-macro", spf("sendgrid", more="exists:%{i}._spf.{domain}"), dmarc("p=quarantine"), dkim=["sendgrid"]),
        Domain("removed-rf-ri", spf("google"), dmarc("p=quarantine; rf=afrf; ri=86400"), dkim=["google"]),
        Domain("removed-pct-50", spf("google"), dmarc("p=quarantine; pct=50"), dkim=["google"]),
        Domain("weak-dkim", spf("mailgun"), dmarc("p=none"), dkim=["weak"]),
        Domain("ed25519-dkim", spf("google"), dmarc("p=reject"), dkim=["google", "ed25519"]),
        Domain("parked", ["v=spf1 -all"], dmarc("p=reject; sp=reject", "svc"), mx="none"),
        Domain("failure-reports", spf("m365", tail="-all"), ["v=DMARC1; p=reject; fo=1; ruf=mailto:dmarc@{domain}; rua=mailto:dmarc@{domain}"],
               mx="m365", dkim=["m365"]),
        Domain("sp-none", spf("google"), dmarc("p=reject; sp=none"), dkim=["google"]),
        Domain("ses-mail-from", spf("google"), dmarc("p=quarantine"), dkim=["google", "ses"],
               extra=[txt("bounce", "v=spf1 include:amazonses.com -all"), mx("bounce", "feedback-smtp.eu-west-1.amazonses.com")]),
        Domain("dkim-selector-gone", spf("sendgrid"), dmarc("p=none"), dkim=["sendgrid", "missing"]),
        # broken on purpose
        Domain("dmarc-none-no-rua", spf("google"), dmarc("p=none", rua=""), dkim=["google"]),
        Domain("dmarc-rua-unauthorized", spf("google"), ["v=DMARC1; p=quarantine; rua=mailto:dmarc@noauth-reports.test"], dkim=["google"]),
        Domain("dmarc-no-p", spf("google"), dmarc(""), dkim=["google"]),
        Domain("dmarc-adkim-typo", spf("google"), dmarc("p=reject; adkim=x"), dkim=["google"]),
        Domain("dmarc-np-typo", spf("google"), dmarc("p=quarantine; np=rejet"), dkim=["google"]),
        Domain("spf-mx-eleven-hosts", spf("sendgrid", more="mx"), dmarc("p=quarantine"), mx="eleven", dkim=["sendgrid"]),
        Domain("too-many-lookups", spf("google", "m365", "mailgun", "sendgrid", more="mx"), dmarc("p=quarantine"), mx="own",
               dkim=["google", "sendgrid"]),
        Domain("too-many-stacked", spf("google", "mailgun", "m365", "mailchimp", "postmark"), dmarc("p=none"),
               dkim=["google", "mailchimp", "postmark"]),
        Domain("two-spf-records", spf("google") + spf("sendgrid"), dmarc("p=quarantine"), dkim=["google", "sendgrid"]),
        Domain("plus-all", spf("sendgrid", tail="+all"), dmarc("p=none"), dkim=["sendgrid"]),
        Domain("void-lookups", spf("sendgrid", more="a:old-mail.{domain} a:relay.{domain} mx:legacy.{domain}"), dmarc("p=quarantine"),
               dkim=["sendgrid"]),
        Domain("include-without-spf", ["v=spf1 include:nospf-vendor.test include:_spf.google.com ~all"], dmarc("p=none"), dkim=["google"]),
        Domain("include-loop", ["v=spf1 include:spf.{domain} ~all"], dmarc("p=quarantine"), dkim=["own"],
               extra=[txt("spf", "v=spf1 ip4:198.51.100.7 include:{domain} ~all")]),
        Domain("ptr-mechanism", ["v=spf1 ptr -all"], dmarc("p=reject"), dkim=["own"]),
        Domain("spf-syntax-error", ["v=spf1 ip4:192.0.2.300 include:_spf.google.com ~all"], dmarc("p=none"), dkim=["google"]),
        Domain("dmarc-pct-150", spf("google"), dmarc("p=quarantine; pct=150"), dkim=["google"]),
        Domain("dmarc-p-typo", spf("google"), dmarc("p=rejct"), dkim=["google"]),
        Domain("dmarc-rua-no-mailto", spf("google"), ["v=DMARC1; p=none; rua=dmarc@{domain}"], dkim=["google"]),
        Domain("dmarc-two-records", spf("google"), dmarc("p=none") + dmarc("p=reject"), dkim=["google"]),
        Domain("dmarc-missing", spf("google"), [], dkim=["google"]),
    ]
    for domain in domains:
        domain.name = domain.slug + ".test"
    return domains


def selectors(domain: Domain) -> list[str]:
    names = {"google": ["google"], "m365": ["selector1", "selector2"], "sendgrid": ["s1", "s2"], "mailchimp": ["k1", "k2"],
             "postmark": ["20240601pm"], "mailgun": ["pic"], "weak": ["krs"], "ed25519": ["ed1"], "own": ["lr2026a"], "missing": ["s3"],
             "ses": [ses_token(domain.name, i) for i in range(3)]}
    return [selector for kind in domain.dkim for selector in names[kind]]


def ses_token(domain: str, index: int) -> str:
    return hashlib.sha256(("%s/%d" % (domain, index)).encode()).hexdigest()[:32]


def domain_records(domain: Domain, keys: Keys, zones: dict[str, list[dict]]) -> list[dict]:
    """The domain's own records; keys behind its CNAME delegations go into the providers' zones."""
    d = domain.name
    records = [txt(d, value.replace("{domain}", d)) for value in domain.spf]
    records += [txt("_dmarc." + d, value.replace("{domain}", d)) for value in domain.dmarc]
    records.append(txt(d, "google-site-verification=%s" % hashlib.sha256(d.encode()).hexdigest()[:20]))
    if domain.mx == "google":
        records += [mx(d, "aspmx.l.google.com", 1), mx(d, "alt1.aspmx.l.google.com", 5)]
    elif domain.mx == "m365":
        records.append(mx(d, "%s.mail.protection.outlook.com" % d.replace(".", "-"), 0))
    elif domain.mx == "own":
        records += [mx(d, "mail." + d), a("mail." + d, "192.0.2.25")]
    elif domain.mx == "eleven":
        records += [mx(d, "mx%02d.%s" % (i, d), i) for i in range(11)]
    for kind in domain.dkim:
        if kind == "google":
            records.append(txt("google._domainkey." + d, keys.next()))
        elif kind == "m365":
            for selector in ("selector1", "selector2"):
                target = "%s-%s._domainkey.%s" % (selector, d.replace(".", "-"), M365_TENANT)
                records.append(cname("%s._domainkey.%s" % (selector, d), target))
                zones["onmicrosoft.com"].append(txt(target, keys.next()))
        elif kind == "sendgrid":
            records += [cname("%s._domainkey.%s" % (s, d), "%s.domainkey.%s" % (s, SENDGRID_HOST)) for s in ("s1", "s2")]
        elif kind == "mailchimp":
            records += [cname("k1._domainkey." + d, "dkim.mcsv.net"), cname("k2._domainkey." + d, "dkim2.mcsv.net")]
        elif kind == "ses":
            for index in range(3):
                token = ses_token(d, index)
                records.append(cname("%s._domainkey.%s" % (token, d), "%s.dkim.amazonses.com" % token))
                zones["amazonses.com"].append(txt("%s.dkim.amazonses.com" % token, keys.next()))
        elif kind == "postmark":
            records.append(txt("20240601pm._domainkey." + d, keys.next()))
        elif kind == "mailgun":
            records.append(txt("pic._domainkey." + d, keys.next()))
        elif kind == "weak":
            records.append(txt("krs._domainkey." + d, keys.weak))
        elif kind == "ed25519":
            records.append(txt("ed1._domainkey." + d, keys.ed25519))
        elif kind == "own":
            records.append(txt("lr2026a._domainkey." + d, keys.next()))
        elif kind == "missing":  # the provider's key behind s3 was never created
            records.append(cname("s3._domainkey." + d, "s3.domainkey." + SENDGRID_HOST))
    for record in domain.extra:
        record = dict(record)
        record["name"] = d if record["name"] == "@" else "%s.%s" % (record["name"], d)
        if record["type"] == "TXT":
            record["content"] = record["content"].replace("{domain}", d)
        records.append(record)
    return records


# --- running both -------------------------------------------------------------------------------


def ensure_peer() -> pathlib.Path:
    python = PEER_VENV / "bin" / "python"
    installed = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('checkdmarc'))"], capture_output=True,
                               text=True, check=False) if python.exists() else None
    if installed is None or installed.stdout.strip() != PEER_PACKAGE.split("==")[1]:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PEER_PACKAGE], check=True)
    return python


@dataclass
class Spent:
    wall: float = 0.0
    cpu: float = 0.0  # user + system seconds of the processes the run started (the lab's own are not counted)


@contextlib.contextmanager
def measured():
    spent = Spent()
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    yield spent
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent.wall = time.monotonic() - start
    spent.cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def run_ours(lab: Lab, domains: list[Domain], guard_env: dict[str, str]) -> tuple[Spent, dict]:
    extra = {"lab_dns": "%s:%d" % (lab.dns_host, lab.dns_port),
             "domains": [{"name": d.name, "dkim": [{"selector": s} for s in selectors(d)]} for d in domains]}
    with measured() as spent:
        run = run_playbook(OURS, extra, env=guard_env)
    if run.rc != 0:
        raise SystemExit("email_auth_check failed:\n%s" % run.output[-3000:])
    return spent, run.task(TASK)


def run_peer(python: pathlib.Path, lab: Lab, domains: list[Domain], guard_env: dict[str, str], workdir: pathlib.Path) -> tuple[Spent, dict]:
    (workdir / "peer.py").write_text(PEER_DRIVER, encoding="utf-8")
    (workdir / "peer-in.json").write_text(json.dumps({"host": lab.dns_host, "port": lab.dns_port, "domains": [d.name for d in domains]}),
                                          encoding="utf-8")
    env = dict(os.environ, **guard_env)
    with measured() as spent:
        done = subprocess.run([str(python), "peer.py", "peer-in.json", "peer-out.json"], cwd=workdir, env=env, capture_output=True,
                              text=True, check=False)
    if done.returncode != 0:
        raise SystemExit("checkdmarc run failed:\n%s\n%s" % (done.stdout[-3000:], done.stderr[-3000:]))
    return spent, json.loads((workdir / "peer-out.json").read_text(encoding="utf-8"))


# --- comparing ----------------------------------------------------------------------------------

ASPECTS = ("spf", "dmarc", "mx")
_CITED = re.compile(r"\((RFC [^()]*)\)$")

# Why the two disagree, for the causes seen so far: (aspect, what ours found or what differs, explanation).
WHY = (
    ("spf", re.compile(r"ends with \+all"),
     "+all is valid syntax (RFC 7208 section 5.1), so checkdmarc passes the record; it also gives every host on the internet an SPF "
     "pass, which ours treats as a launch blocker"),
    ("spf", re.compile(r"void lookups differ.*\bptr\b"),
     "a ptr term looks up the PTR names of the connecting IP (RFC 7208 section 5.5), unknowable when checking a record; checkdmarc "
     "queries the A records of the ptr domain instead and counts that empty answer as a void lookup (RFC 7208 section 4.6.4), "
     "ours counts ptr as one lookup and no void lookup"),
    ("dmarc", re.compile(r": no rua$"),
     "rua is optional (RFC 9989 section 4.7), so checkdmarc only warns; with p=none and no rua the record neither enforces nor "
     "reports anything, which ours treats as a launch blocker"),
    ("dmarc", re.compile(r"are not authorized$"),
     "receivers send no reports to an outside domain that publishes no <domain>._report._dmarc authorization (RFC 9990 section 4, "
     "RFC 7489 section 7.1); checkdmarc warns, ours blocks because the reports are silently lost"),
    ("dmarc", re.compile(r"no p= tag$"),
     "without a p tag and without a valid rua, RFC 7489 receivers apply no DMARC processing at all (RFC 7489 section 6.6.3), "
     "so ours blocks; checkdmarc follows RFC 9989, where a missing p means p=none, and only warns. With a valid rua both read "
     "the record as p=none (ours: can wait)"),
    ("dmarc", re.compile(r"^verdicts differ no blocker v=DMARC1; p=(?!(?:none|quarantine|reject)\b)[^;]*;.*\brua="),
     "a p that is not a policy, with a valid rua, is read as p=none (RFC 7489 section 6.6.3, policy discovery step 6: receivers "
     "act as if the record said p=none and keep sending reports), so ours ranks it can wait like p=none and asks for the policy "
     "meant; checkdmarc rejects the whole record for the invalid tag value"),
    ("dmarc", re.compile(r"is not an alignment mode$"),
     "RFC 9989 section 4.8 discards an invalid tag value in favour of the default, so checkdmarc warns and reads adkim=r; ours "
     "asks for a fix because the owner asked for an alignment mode and silently gets relaxed"),
    ("dmarc", re.compile(r"pct=\S+ is out of range$"),
     "RFC 9989 removed pct, so checkdmarc only warns that it was removed and never validates its value; ours validates it "
     "against RFC 7489 section 6.3 (0 to 100) and blocks, although the same section says a value with a syntax error is "
     "discarded in favour of the default (pct=100), so under either RFC the policy applies in full"),
)


def aspect_of(title: str) -> str:
    for word, aspect in (("DMARC", "dmarc"), ("DKIM", "dkim"), ("SPF", "spf"), ("MX", "mx")):
        if word in title:
            return aspect
    return "other"


def cited(finding: dict) -> str:
    match = _CITED.search(finding["evidence"])
    return match.group(1) if match else "no RFC cited"


@dataclass
class View:
    """What one checker says about one aspect of one domain."""

    verdict: str  # "fail" (the domain must change something now) or "pass"
    said: str  # the words behind the verdict
    details: dict = field(default_factory=dict)


def ours_view(report: dict, aspect: str) -> View:
    blockers = [f for f in report["findings"] if f["severity"] == "must_do_now" and aspect_of(f["title"]) == aspect]
    said = "; ".join("%s (%s)" % (f["title"], cited(f)) for f in blockers) or "no blocker"
    details: dict = {}
    if aspect == "spf" and report["spf"] and report["spf"].get("record") and report["spf"]["status"] == "valid":
        details = {"lookups": report["spf"]["lookups"], "void lookups": report["spf"]["void_lookups"]}
    elif aspect == "dmarc" and not blockers and report["dmarc"].get("policy"):
        details = {"policy": report["dmarc"]["policy"]}
    elif aspect == "mx":
        details = {"mx": mx_kind(bool(report["mx"]["records"]), bool(report["mx"].get("null_mx")), bool(blockers))}
    return View("fail" if blockers else "pass", said, details)


def mx_kind(records: bool, null: bool, mixed: bool) -> str:
    return "null MX mixed with MX" if mixed else "null MX" if null else "MX" if records else "no MX"


def peer_view(result: dict, aspect: str) -> View:
    part = result[aspect]
    if aspect == "mx":
        if "error" in part:
            return View("fail", part["error"])
        mixed = any("alongside" in w for w in part["warnings"])
        return View("pass", "; ".join(part["warnings"]) or "no warning",
                    {"mx": mx_kind(bool(part["record_count"]), part["null_mx"], mixed)})
    warnings = "; ".join(part.get("warnings") or []) or "no warning"
    if not part["valid"]:
        return View("fail", "%s (warnings: %s)" % (part.get("error"), warnings))
    details: dict = {}
    if aspect == "spf":
        details = {"lookups": part["dns_lookups"], "void lookups": part["void_dns_lookups"]}
    elif aspect == "dmarc":
        details = {"policy": part["tags"]["p"]["value"]}
    return View("pass", "valid (warnings: %s)" % warnings, details)


def disagreements(domains: list[Domain], ours: dict, peer: dict) -> list[str]:
    """One line per domain and aspect where the verdicts, lookup counts, policy or MX kind differ."""
    lines = []
    for domain in domains:
        for aspect in ASPECTS:
            mine, theirs = ours_view(ours["domains"][domain.name], aspect), peer_view(peer["results"][domain.name], aspect)
            differences = []
            if mine.verdict != theirs.verdict:
                differences.append("verdicts differ")
            for key in sorted(set(mine.details) & set(theirs.details)):
                if mine.details[key] != theirs.details[key]:
                    differences.append("%s differ: ours %s, checkdmarc %s" % (key, mine.details[key], theirs.details[key]))
            if not differences:
                continue
            record = " | ".join(domain.spf if aspect == "spf" else domain.dmarc if aspect == "dmarc" else [domain.mx])
            clue = "%s %s %s" % ("; ".join(differences), mine.said, record.replace("{domain}", domain.name))
            why = next((text for where, pattern, text in WHY if where == aspect and pattern.search(
                mine.said.split(" (RFC")[0] if mine.verdict == "fail" and "verdicts differ" in differences else clue)), None)
            lines.append("DISAGREE %s %s: %s; ours %s: %s; checkdmarc %s: %s; why: %s" % (
                domain.name, aspect, "; ".join(differences), mine.verdict, mine.said, theirs.verdict, theirs.said,
                why or "not explained yet, read both verdicts"))
    return lines


def dkim_summary(ours: dict) -> str:
    selectors_seen = [s for report in ours["domains"].values() for s in report["dkim"]]
    findings = [f for report in ours["domains"].values() for f in report["findings"] if aspect_of(f["title"]) == "dkim"]
    counts = {severity: sum(1 for f in findings if f["severity"] == severity) for severity in ("ok", "can_wait", "must_do_now")}
    delegated = sum(1 for s in selectors_seen if s.get("cname"))
    return ("DKIM, ours only (checkdmarc has no DKIM check): %d selectors, %d through a CNAME delegation; %d ok, %d can wait, %d must do now"
            % (len(selectors_seen), delegated, counts["ok"], counts["can_wait"], counts["must_do_now"]))


def timeouts(ours: dict, peer: dict) -> list[str]:
    """DNS timeouts would make the timings meaningless: the lab answers every question."""
    found = ["ours: %s" % f["title"] for r in ours["domains"].values() for f in r["findings"] if "TIMEOUT" in f["evidence"]]
    for name, result in peer["results"].items():
        for aspect in ASPECTS:
            text = json.dumps(result[aspect])
            if "timed out" in text or "LifetimeTimeout" in text:
                found.append("checkdmarc: %s %s" % (name, aspect))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tool, alternating; the best wall time of each counts")
    parser.add_argument("--raw", type=pathlib.Path, help="write both tools' full results of the last round to this JSON file")
    args = parser.parse_args()
    peer_python = ensure_peer()
    keys = Keys()
    domains = portfolio()
    if len(domains) != DOMAIN_COUNT or len({d.name for d in domains}) != DOMAIN_COUNT:
        raise SystemExit("the portfolio must hold %d distinct domains" % DOMAIN_COUNT)
    ours_runs: list[Spent] = []
    peer_runs: list[Spent] = []
    with tempfile.TemporaryDirectory(prefix="lr-bench-mail-") as tmp:
        tmpdir = pathlib.Path(tmp)
        guard = tmpdir / "guard"
        guard.mkdir()
        (guard / "sitecustomize.py").write_text(NETWORK_GUARD, encoding="utf-8")
        net_log = tmpdir / "network.log"
        guard_env = {"PYTHONPATH": str(guard), "LAUNCHREADY_BENCH_NET_LOG": str(net_log)}
        lab = Lab.start(tmpdir / "lab", config={"zones": [], "tokens": []})  # only the zones seeded below
        try:
            zones = provider_zones(keys)
            own = {d.name: domain_records(d, keys, zones) for d in domains}
            for name, records in [*zones.items(), *own.items()]:
                lab.add_zone(name)
                lab.seed_records(name, records)
            lab.set_dns_delay(DNS_DELAY_MS)
            for _round in range(max(1, args.rounds)):  # alternate, keep the best of each: the machine may be busy with other work
                spent, ours = run_ours(lab, domains, guard_env)
                ours_runs.append(spent)
                spent, peer = run_peer(peer_python, lab, domains, guard_env, tmpdir)
                peer_runs.append(spent)
        finally:
            lab.stop()
        log = net_log.read_text(encoding="utf-8").splitlines() if net_log.exists() else []

    refused = [line for line in log if line.startswith("refused")]
    armed = [line for line in log if line.startswith("armed")]
    if refused:
        raise SystemExit("something tried to leave 127.0.0.1:\n" + "\n".join(refused))
    if not any("AnsiballZ_email_auth_check" in line for line in armed) or not any("peer.py" in line for line in armed):
        raise SystemExit("the network guard did not reach the module or the peer:\n" + "\n".join(armed))
    slow = timeouts(ours, peer)
    if slow:
        raise SystemExit("DNS questions timed out, the timings mean nothing:\n" + "\n".join(slow))

    ours_best, peer_best = min(ours_runs, key=lambda r: r.wall), min(peer_runs, key=lambda r: r.wall)
    selector_count = sum(len(selectors(d)) for d in domains)
    print("lab DNS on 127.0.0.1, every answer delayed %d ms; %d domains, %d DKIM selectors; network guard armed in %d processes, "
          "nothing refused; load average %.1f on %d cores" % (DNS_DELAY_MS, len(domains), selector_count, len(armed), os.getloadavg()[0], os.cpu_count() or 1))
    print("ours  launchready.core.email_auth_check, 1 task via ansible-playbook: best %.2f s (cpu %.2f s) of %s; %d distinct DNS questions"
          % (ours_best.wall, ours_best.cpu, ", ".join("%.2f" % r.wall for r in ours_runs), ours["queries"]))
    print("peer  %s SPF, DMARC and MX records, domain after domain: best %.2f s (cpu %.2f s) of %s, checks alone %.2f s; %d DNS queries"
          % (PEER_PACKAGE, peer_best.wall, peer_best.cpu, ", ".join("%.2f" % r.wall for r in peer_runs), peer["checks_seconds"],
             peer["queries"]))
    if args.raw:
        args.raw.write_text(json.dumps({"ours": ours, "checkdmarc": peer}, indent=1, sort_keys=True), encoding="utf-8")
    print(dkim_summary(ours))
    lines = disagreements(domains, ours, peer)
    for line in lines:
        print(line)
    print("RESULT domains=%d speedup=%.1f disagreements=%d" % (len(domains), peer_best.wall / ours_best.wall, len(lines)))


if __name__ == "__main__":
    main()
