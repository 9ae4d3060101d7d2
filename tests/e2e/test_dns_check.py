# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""launchready.core.dns_check and the domain_routing role through ansible-playbook, against the lab.

Records are seeded with the lab's control API (no Cloudflare call), then checked with real DNS
queries to the lab's authoritative server; the role publishes through the Cloudflare emulator.
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.playbook import run_playbook
from tests.lab.client import Lab

DNS_EDIT = ["zone:read", "dns_records:read", "dns_records:edit"]
LONG_TXT = "v=DKIM1; k=rsa; p=" + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" * 8

CHECK = """
- name: DNS check
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the records
      launchready.core.dns_check:
        zone: "{{ zone }}"
        nameservers: "{{ nameservers }}"
        records: "{{ records }}"
        fail_on: "{{ fail_on | default('never') }}"
"""

ROLE = """
- name: Stage 2 - domain and routing
  hosts: localhost
  gather_facts: false
  roles:
    - role: launchready.core.domain_routing
"""

VERIFY = """
- name: Verify stage 2
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Verify the DNS records
      ansible.builtin.include_role:
        name: launchready.core.domain_routing
        tasks_from: verify
"""


@pytest.fixture
def zone(lab: Lab):
    name = "t%s.test" % uuid.uuid4().hex[:10]
    lab.add_zone(name)
    yield name
    lab.delete_zone(name)


def seed(lab: Lab, zone: str) -> None:
    lab.seed_records(
        zone,
        [
            {"type": "A", "name": zone, "content": "192.0.2.10", "ttl": 300, "proxied": False},
            {"type": "CNAME", "name": "www." + zone, "content": zone, "ttl": 300, "proxied": False},
            {"type": "A", "name": "app." + zone, "content": "192.0.2.20", "proxied": True},
            {"type": "A", "name": "api." + zone, "content": "192.0.2.30", "ttl": 300, "proxied": False},
            {"type": "MX", "name": zone, "content": "mx2.mail.example.net", "priority": 20, "ttl": 300},
            {"type": "MX", "name": zone, "content": "mx1.mail.example.net", "priority": 10, "ttl": 300},
            {"type": "TXT", "name": "sel1._domainkey." + zone, "content": LONG_TXT, "ttl": 300},
            {"type": "CNAME", "name": "loop-a." + zone, "content": "loop-b." + zone, "ttl": 300},
            {"type": "CNAME", "name": "loop-b." + zone, "content": "loop-a." + zone, "ttl": 300},
        ],
    )


def check(lab: Lab, zone: str, records: list[dict], **extra):
    return run_playbook(CHECK, {"zone": zone, "nameservers": ["%s:%d" % (lab.dns_host, lab.dns_port)], "records": records, **extra})


def titles(findings: list[dict]) -> list[tuple[str, str]]:
    return [(finding["severity"], finding["title"]) for finding in findings]


def test_published_records_are_ok(lab: Lab, zone: str):
    seed(lab, zone)
    records = [
        {"name": "@", "type": "A", "content": "192.0.2.10", "ttl": 300},
        {"name": "www", "type": "CNAME", "content": zone + "."},
        {"name": "www", "type": "A", "content": "192.0.2.10"},
        {"name": "app", "type": "A", "content": lab.edge["ipv4"]},
        {"name": "app", "type": "AAAA", "content": lab.edge["ipv6"]},
        {"name": "@", "type": "MX", "values": ["10 mx1.mail.example.net", "20 MX2.mail.example.net."]},
        {"name": "sel1._domainkey", "type": "TXT", "content": LONG_TXT},
        {"name": "staging", "absent": True},
    ]
    result = check(lab, zone, records)
    assert result.rc == 0, result.output
    outcome = result.task("Check the records")
    assert outcome["changed"] is False
    assert outcome["checked"] == 8
    assert outcome["summary"] == {"must_do_now": 0, "can_wait": 0, "ok": 8}
    assert outcome["nameservers"] == ["127.0.0.1:%d" % lab.dns_port]
    assert titles(outcome["findings"]) == [
        ("ok", "%s A is published on its nameserver" % zone),
        ("ok", "www.%s CNAME is published on its nameserver" % zone),
        ("ok", "www.%s A is published on its nameserver" % zone),
        ("ok", "app.%s A is published on its nameserver" % zone),
        ("ok", "app.%s AAAA is published on its nameserver" % zone),
        ("ok", "%s MX is published on its nameserver" % zone),
        ("ok", "sel1._domainkey.%s TXT is published on its nameserver" % zone),
        ("ok", "staging.%s does not resolve, as intended" % zone),
    ]
    # The chain is followed and shown; a proxied name answers with the edge, not the origin.
    assert outcome["findings"][2]["evidence"] == "expected 192.0.2.10; 127.0.0.1:%d: CNAME %s, 192.0.2.10 (TTL 300)" % (lab.dns_port, zone)
    assert "192.0.2.20" not in outcome["findings"][3]["evidence"]


def test_wrong_value_and_missing_name_are_launch_blockers(lab: Lab, zone: str):
    seed(lab, zone)
    records = [
        {"name": "api", "type": "A", "content": "192.0.2.99"},
        {"name": "admin", "type": "A", "content": "192.0.2.10"},
        {"name": "loop-a", "type": "A"},
        {"name": "@", "type": "A", "content": "192.0.2.10", "ttl": 3600},
        {"name": "@", "type": "A", "content": "192.0.2.10"},
    ]
    result = check(lab, zone, records)
    assert result.rc == 0, result.output
    outcome = result.task("Check the records")
    assert outcome["summary"] == {"must_do_now": 3, "can_wait": 1, "ok": 1}
    assert titles(outcome["findings"]) == [
        ("must_do_now", "api.%s A has the wrong value" % zone),
        ("must_do_now", "admin.%s does not resolve" % zone),
        ("must_do_now", "loop-a.%s is a CNAME loop" % zone),
        ("can_wait", "%s A has a TTL other than 3600" % zone),
        ("ok", "%s A is published on its nameserver" % zone),
    ]
    assert outcome["findings"][0]["evidence"] == "expected 192.0.2.99; 127.0.0.1:%d: 192.0.2.30 (TTL 300)" % lab.dns_port
    assert outcome["findings"][1]["evidence"] == "expected 192.0.2.10; 127.0.0.1:%d: NXDOMAIN" % lab.dns_port


def test_fail_on_must_do_now_fails_the_task(lab: Lab, zone: str):
    seed(lab, zone)
    records = [{"name": "@", "type": "A", "content": "192.0.2.10"}, {"name": "admin", "type": "A", "content": "192.0.2.10"}]
    result = check(lab, zone, records, fail_on="must_do_now")
    assert result.rc == 2, result.output
    assert result.recap["failed"] == 1
    assert [r["task"] for r in result.results if r["status"] == "failed"] == ["Check the records"]
    outcome = result.task("Check the records")
    assert outcome["msg"] == "1 DNS finding(s) at or above must_do_now: admin.%s does not resolve" % zone
    assert outcome["summary"] == {"must_do_now": 1, "can_wait": 0, "ok": 1}
    assert "fatal: [localhost]" in result.output


def role_vars(lab: Lab, zone: str, token: str) -> dict:
    return {
        "launchready_cloudflare_api_token": token,
        "launchready_cloudflare_api_base_url": lab.api_base_url,
        "domain_routing_zone": zone,
        "domain_routing_nameservers": ["%s:%d" % (lab.dns_host, lab.dns_port)],
        "domain_routing_edge_ipv4": [lab.edge["ipv4"]],
        "domain_routing_edge_ipv6": [lab.edge["ipv6"]],
        "domain_routing_wait_timeout": 20,
        "domain_routing_subdomains": [
            {"name": "@", "addresses": ["192.0.2.10", "2001:db8::10"]},
            {"name": "www", "cname": "@"},
            {"name": "app", "addresses": ["192.0.2.10"]},
            {"name": "api", "addresses": ["192.0.2.11"], "proxied": False, "ttl": 300},
            {"name": "help", "cname": "acme.helpdesk.example.net", "proxied": False},
        ],
        "domain_routing_extra_records": [
            {"type": "MX", "name": "@", "values": ["10 mx1.mail.example.net", {"content": "mx2.mail.example.net", "priority": 20}]},
            {"type": "TXT", "name": "@", "values": ["v=spf1 include:_spf.mail.example.net -all", "verify=launch-1234"]},
            {"type": "CAA", "name": "@", "data": {"flags": 0, "tag": "issue", "value": "letsencrypt.org"}},
            {"type": "A", "name": "staging", "state": "absent"},
        ],
    }


def findings_of(result) -> list[dict]:
    return result.task("launchready.core.domain_routing : Add the DNS findings to the launch findings")["ansible_facts"]["launchready_findings"]


def test_role_publishes_then_verifies_every_name(lab: Lab, zone: str):
    token = lab.add_token(DNS_EDIT, zones=[zone])
    lab.seed_records(zone, [{"type": "A", "name": "staging." + zone, "content": "192.0.2.66", "ttl": 300}])
    variables = role_vars(lab, zone, token)

    preview = run_playbook(ROLE, variables, check=True)
    assert preview.rc == 0, preview.output
    assert [r["content"] for r in lab.records(zone)] == ["192.0.2.66"]
    assert {f["severity"] for f in findings_of(preview)} == {"must_do_now"}

    first = run_playbook(ROLE, variables)
    assert first.rc == 0, first.output
    assert first.recap["changed"] == 1
    assert token not in first.output
    findings = findings_of(first)
    assert titles(findings) == [
        ("ok", "%s A is published on its nameserver" % zone),
        ("ok", "%s AAAA is published on its nameserver" % zone),
        ("ok", "www.%s A is published on its nameserver" % zone),
        ("ok", "www.%s AAAA is published on its nameserver" % zone),
        ("ok", "app.%s A is published on its nameserver" % zone),
        ("ok", "app.%s AAAA is published on its nameserver" % zone),
        ("ok", "api.%s A is published on its nameserver" % zone),
        ("ok", "help.%s CNAME is published on its nameserver" % zone),
        ("ok", "%s MX is published on its nameserver" % zone),
        ("ok", "%s TXT is published on its nameserver" % zone),
        ("ok", "%s CAA is published on its nameserver" % zone),
        ("ok", "staging.%s has no A record, as intended" % zone),
    ]

    lab.reset_calls()
    second = run_playbook(ROLE, variables)
    assert second.rc == 0, second.output
    assert second.recap["changed"] == 0
    assert lab.calls()["writes"] == 0
    assert {f["severity"] for f in findings_of(second)} == {"ok"}


def test_role_verification_alone_finds_a_removed_name(lab: Lab, zone: str):
    token = lab.add_token(DNS_EDIT, zones=[zone])
    variables = role_vars(lab, zone, token)
    assert run_playbook(ROLE, variables).rc == 0
    lab.seed_records(zone, [r for r in lab.records(zone) if not r["name"].startswith("api.")])

    lab.reset_calls()
    verify = run_playbook(VERIFY, {k: v for k, v in variables.items() if k != "launchready_cloudflare_api_token"})
    assert verify.rc == 2, verify.output
    assert lab.calls()["total"] == 0
    blockers = [f for f in findings_of(verify) if f["severity"] != "ok"]
    assert titles(blockers) == [("must_do_now", "api.%s does not resolve" % zone)]
    failed = [r["task"] for r in verify.results if r["status"] == "failed"]
    assert failed == ["launchready.core.domain_routing : Ask every authoritative nameserver for every expected record"]


def test_role_check_diff_shows_before_and_after_of_every_changed_set(lab: Lab, zone: str):
    token = lab.add_token(DNS_EDIT, zones=[zone])
    lab.seed_records(
        zone,
        [
            {"type": "A", "name": "api." + zone, "content": "192.0.2.99", "ttl": 300, "proxied": False},
            {"type": "A", "name": "staging." + zone, "content": "192.0.2.66", "ttl": 300, "proxied": False},
        ],
    )
    lab.reset_calls()

    preview = run_playbook(ROLE, role_vars(lab, zone, token), check=True, diff=True)
    assert preview.rc == 0, preview.output
    assert lab.calls()["writes"] == 0
    assert sorted(r["content"] for r in lab.records(zone)) == ["192.0.2.66", "192.0.2.99"]
    diff = preview.task("launchready.core.domain_routing : Make the Cloudflare zone's records match the subdomain plan and the extra records")["diff"]
    # An updated set, a deleted set and a created set, each with its before and its after.
    assert diff["before"]["api.%s A" % zone] == [{"proxied": False, "ttl": 300, "value": "192.0.2.99"}]
    assert diff["after"]["api.%s A" % zone] == [{"proxied": False, "ttl": 300, "value": "192.0.2.11"}]
    assert diff["before"]["staging.%s A" % zone] == [{"proxied": False, "ttl": 300, "value": "192.0.2.66"}]
    assert diff["after"]["staging.%s A" % zone] == []
    assert diff["before"]["help.%s CNAME" % zone] == []
    assert diff["after"]["help.%s CNAME" % zone] == [{"proxied": False, "ttl": 1, "value": "acme.helpdesk.example.net"}]
    # What the user reads: the default callback's unified diff of those sets.
    shown = preview.stdout
    assert "--- before\n+++ after\n" in shown
    assert '-            "value": "192.0.2.99"\n+            "value": "192.0.2.11"\n' in shown
    assert '-            "value": "192.0.2.66"\n' in shown
    assert '+    "help.%s CNAME": [\n' % zone in shown
    assert '+            "value": "acme.helpdesk.example.net"\n' in shown


def test_role_never_shows_the_token_even_at_vvv_with_diff(lab: Lab, zone: str):
    token = lab.add_token(DNS_EDIT, zones=[zone])
    published = run_playbook(ROLE, role_vars(lab, zone, token), diff=True, verbosity=3)
    assert published.rc == 0, published.output
    # The run printed the diff, and with ansible-core 2.19 the module's arguments (token masked); 2.21 no longer prints them at -vvv.
    assert '"api_token": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in published.stdout or '"api_token"' not in published.stdout
    assert "--- before\n+++ after\n" in published.stdout
    assert token not in published.stdout
    assert token not in published.stderr

    read_only = lab.add_token(["zone:read"], zones=[zone])
    refused = run_playbook(ROLE, role_vars(lab, zone, read_only), diff=True, verbosity=3)
    assert refused.rc == 2, refused.output
    assert [r["task"] for r in refused.results if r["status"] == "failed"] == [
        "launchready.core.domain_routing : Make the Cloudflare zone's records match the subdomain plan and the extra records"
    ]
    assert "failed with HTTP 403" in refused.task(
        "launchready.core.domain_routing : Make the Cloudflare zone's records match the subdomain plan and the extra records"
    )["msg"]
    assert read_only not in refused.stdout
    assert read_only not in refused.stderr
