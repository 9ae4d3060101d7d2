# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""launchready.core.cloudflare_dns_records through ansible-playbook, against the lab.

Every test gets its own zone and token. API calls are counted by the lab; the zone's state is
checked both in the emulator and with real DNS queries to the lab's authoritative server.
"""

from __future__ import annotations

import uuid

import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.e2e.playbook import run_playbook
from tests.lab.client import Lab

DNS_EDIT = ["zone:read", "dns_records:read", "dns_records:edit"]
BATCH_ROUTE = "POST /zones/{zone_id}/dns_records/batch"

PLAYBOOK = """
- name: DNS records of one zone
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/launchready.core.cloudflare:
      api_token: "{{ cloudflare_token | default(omit) }}"
      api_base_url: "{{ api_base_url }}"
      retries: "{{ retries | default(5) }}"
  tasks:
    - name: Publish the records
      launchready.core.cloudflare_dns_records:
        zone: "{{ zone }}"
        records: "{{ records }}"
        prune: "{{ prune | default(false) }}"
        prune_ignore: "{{ prune_ignore | default([]) }}"
        prune_threshold: "{{ prune_threshold | default(30) }}"
        force: "{{ force | default(false) }}"
"""

DKIM = "v=DKIM1; k=rsa; p=" + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" * 9


def launch_records(zone: str) -> list[dict]:
    return [
        {"type": "A", "name": "@", "content": "127.0.0.1", "proxied": True},
        {"type": "CNAME", "name": "www", "content": zone, "proxied": True},
        {"type": "A", "name": "app", "values": ["192.0.2.10", "192.0.2.11"], "ttl": 300},
        {"type": "AAAA", "name": "app", "content": "2001:DB8:0:0::10", "ttl": 300},
        {"type": "A", "name": "api", "content": "192.0.2.20", "comment": "api origin", "tags": ["team:backend"]},
        {"type": "MX", "name": "@", "values": ["10 mx1.mail.example.net.", {"content": "mx2.mail.example.net", "priority": 20}]},
        {"type": "TXT", "name": "@", "values": ['"v=spf1 include:_spf.mail.example.net -all"', "verify=launch-1234"]},
        {"type": "TXT", "name": "sel1._domainkey", "content": DKIM},
        {"type": "TXT", "name": "_dmarc", "content": "v=DMARC1; p=quarantine; rua=mailto:dmarc@%s" % zone},
        {"type": "CAA", "name": "@", "data": {"flags": 0, "tag": "issue", "value": "letsencrypt.org"}},
        {"type": "SRV", "name": "_sip._tcp", "data": {"priority": 10, "weight": 5, "port": 5060, "target": "sip." + zone}},
    ]


def expected_dns(zone: str) -> dict[tuple[str, str], list[str]]:
    return {
        (zone, "A"): ["127.0.0.1"],  # proxied: the lab edge answers
        ("www." + zone, "A"): ["127.0.0.1"],
        ("app." + zone, "A"): ["192.0.2.10", "192.0.2.11"],
        ("app." + zone, "AAAA"): ["2001:db8::10"],
        ("api." + zone, "A"): ["192.0.2.20"],
        (zone, "MX"): ["10 mx1.mail.example.net", "20 mx2.mail.example.net"],
        (zone, "TXT"): ["v=spf1 include:_spf.mail.example.net -all", "verify=launch-1234"],
        ("sel1._domainkey." + zone, "TXT"): [DKIM],
        ("_dmarc." + zone, "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:dmarc@%s" % zone],
        (zone, "CAA"): ['0 issue "letsencrypt.org"'],
        ("_sip._tcp." + zone, "SRV"): ["10 5 5060 sip.%s" % zone],
    }


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def zone(lab: Lab):
    """A fresh zone for one test (free plan): its name."""
    name = "dns%s.test" % uuid.uuid4().hex[:10]
    lab.add_zone(name)
    yield name
    lab.delete_zone(name)


@pytest.fixture
def token(lab: Lab, zone: str) -> str:
    return lab.add_token(DNS_EDIT, zones=[zone])


def apply(lab: Lab, zone: str, token: str | None, records: list[dict], check=False, diff=False, env=None, **options):
    """Run the playbook; returns (playbook result, module result, the lab's call counts for this run)."""
    extra = dict(options, zone=zone, records=records, api_base_url=lab.api_base_url)
    if token is not None:
        extra["cloudflare_token"] = token
    lab.reset_calls()
    run = run_playbook(PLAYBOOK, extra, check=check, diff=diff, env=env)
    calls = lab.calls()
    assert run.results, "the playbook did not run the task:\n" + run.output
    if token:
        assert token not in run.output, "the API token was printed"
    return run, run.task("Publish the records"), calls


def dig(lab: Lab, name: str, rtype: str) -> list[str]:
    """What the lab's authoritative server answers for ``name``/``rtype``, one text per record, sorted."""
    query = dns.message.make_query(name, rtype)
    answer = dns.query.tcp(query, lab.dns_host, port=lab.dns_port, timeout=10)
    wanted = dns.rdatatype.from_text(rtype)
    texts = []
    for rrset in answer.answer:
        if rrset.rdtype != wanted:
            continue
        for rdata in rrset:
            if rtype == "TXT":
                texts.append(b"".join(rdata.strings).decode("utf-8"))
            elif rtype == "MX":
                texts.append("%d %s" % (rdata.preference, rdata.exchange.to_text(omit_final_dot=True)))
            else:
                texts.append(rdata.to_text().rstrip("."))
    return sorted(texts)


def assert_dns(lab: Lab, expected: dict[tuple[str, str], list[str]]) -> None:
    seen = {key: dig(lab, *key) for key in expected}
    assert seen == expected


def host_records(count: int, content: str = "192.0.2.1") -> list[dict]:
    return [{"type": "A", "name": "h%04d" % i, "content": content} for i in range(count)]


def seed(lab: Lab, zone: str, records: list[dict]) -> dict[str, dict]:
    """Put records in the zone without an API call; returns the stored ones by ``name type content``."""
    stored = lab.seed_records(zone, [dict(record, ttl=record.get("ttl", 1)) for record in records])
    return {"%s %s %s" % (r["name"], r["type"], r["content"]): r for r in stored}


# --- tests ---------------------------------------------------------------------------------


def test_creates_a_zone_from_empty_then_a_second_run_changes_nothing_in_two_calls(lab, zone, token):
    run, result, calls = apply(lab, zone, token, launch_records(zone))
    assert run.rc == 0, run.output
    assert run.recap["changed"] == 1 and run.recap["failed"] == 0
    assert calls["writes"] == 1 and calls["by_route"][BATCH_ROUTE] == 1 and calls["total"] == 3
    assert result["api_calls"] == calls["total"]
    assert len(result["plan"]["creates"]) == 14 and result["plan"]["batches"] == 1
    assert_dns(lab, expected_dns(zone))
    stored = {(r["name"], r["type"], r["content"]): r for r in lab.records(zone)}
    api = stored[("api." + zone, "A", "192.0.2.20")]
    assert (api["comment"], api["tags"], api["ttl"]) == ("api origin", ["team:backend"], 1)

    run, result, calls = apply(lab, zone, token, launch_records(zone))
    assert run.rc == 0 and run.recap["changed"] == 0, run.output
    assert calls["writes"] == 0 and calls["total"] <= 2 and result["api_calls"] == calls["total"]
    assert result["plan"] == {"creates": [], "updates": [], "deletes": [], "batches": 0}


def test_200_records_from_empty_take_at_most_4_calls(lab, zone, token):
    run, _result, calls = apply(lab, zone, token, host_records(200))
    assert run.rc == 0, run.output
    assert calls["total"] <= 4 and calls["by_route"][BATCH_ROUTE] == 1
    assert len(lab.records(zone)) == 200


def test_3500_records_on_a_pro_zone_fit_one_batch(lab):
    zone = "pro%s.test" % uuid.uuid4().hex[:10]
    lab.add_zone(zone, plan="pro")
    try:
        token = lab.add_token(DNS_EDIT, zones=[zone])
        run, result, calls = apply(lab, zone, token, host_records(3500))
        assert run.rc == 0, run.output[-3000:]
        assert result["plan"]["batches"] == 1 and calls["by_route"][BATCH_ROUTE] == 1
        assert calls["total"] <= 1 + 1 + 2  # ceil(3500 / 3500) batches + one list page + 2
        assert len(lab.records(zone)) == 3500
        run, result, calls = apply(lab, zone, token, host_records(3500))
        assert run.recap["changed"] == 0 and calls["total"] == 2
    finally:
        lab.delete_zone(zone)


def test_changing_10_percent_patches_those_records_in_place(lab, zone, token):
    records = host_records(50)
    apply(lab, zone, token, records)
    before = {r["name"]: r for r in lab.records(zone)}
    changed = {5, 12, 23, 31, 44}
    for index in changed:
        records[index] = dict(records[index], content="198.51.100.%d" % index)
    run, result, calls = apply(lab, zone, token, records, diff=True)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    plan = result["plan"]
    assert (len(plan["creates"]), len(plan["updates"]), len(plan["deletes"])) == (0, 5, 0)
    assert calls["by_route"][BATCH_ROUTE] == 1 and calls["total"] == 3
    after = {r["name"]: r for r in lab.records(zone)}
    assert {name: r["id"] for name, r in after.items()} == {name: r["id"] for name, r in before.items()}
    for index in range(50):
        name = "h%04d.%s" % (index, zone)
        assert after[name]["content"] == ("198.51.100.%d" % index if index in changed else "192.0.2.1")
        assert (after[name]["modified_on"] == before[name]["modified_on"]) == (index not in changed)
    assert sorted(result["diff"]["after"]) == sorted("h%04d.%s A" % (index, zone) for index in changed)
    assert dig(lab, "h0012." + zone, "A") == ["198.51.100.12"] and dig(lab, "h0013." + zone, "A") == ["192.0.2.1"]


def test_fields_left_out_are_not_clobbered(lab, zone, token):
    ids = seed(lab, zone, [
        {"type": "A", "name": "www", "content": "192.0.2.1", "proxied": True, "comment": "set by hand", "tags": ["owner:ops"]},
        {"type": "TXT", "name": "@", "content": "v=spf1 -all", "ttl": 3600},
    ])
    run, _result, calls = apply(lab, zone, token, [
        {"type": "A", "name": "www", "content": "192.0.2.1"},
        {"type": "TXT", "name": "@", "content": '"v=spf1" " -all"'},
    ])
    assert run.recap["changed"] == 0 and calls["writes"] == 0, run.output
    assert {r["id"]: r for r in lab.records(zone)} == {r["id"]: r for r in ids.values()}


def test_prune_keeps_what_prune_ignore_names(lab, zone, token):
    seed(lab, zone, [
        {"type": "A", "name": "www", "content": "192.0.2.1"},
        {"type": "TXT", "name": "_acme-challenge", "content": "token-1"},
        {"type": "TXT", "name": "_acme-challenge.www", "content": "token-2"},
        {"type": "A", "name": "db.internal", "content": "10.0.0.5"},
        {"type": "TXT", "name": "@", "content": "old-verification"},
        {"type": "A", "name": "stale", "content": "192.0.2.99"},
        {"type": "CNAME", "name": "old-shop", "content": "shops.example.net"},
    ])
    run, result, calls = apply(
        lab, zone, token, [{"type": "A", "name": "www", "content": "192.0.2.1"}],
        prune=True, prune_ignore=["_acme-challenge*", "*.internal", "txt:@"], prune_threshold=50,
    )
    assert run.rc == 0, run.output
    assert sorted((d["name"], d["reason"]) for d in result["plan"]["deletes"]) == [("old-shop." + zone, "pruned"), ("stale." + zone, "pruned")]
    assert calls["writes"] == 1
    assert sorted((r["name"], r["type"]) for r in lab.records(zone)) == sorted([
        ("www." + zone, "A"), ("_acme-challenge." + zone, "TXT"), ("_acme-challenge.www." + zone, "TXT"),
        ("db.internal." + zone, "A"), (zone, "TXT"),
    ])
    assert dig(lab, "stale." + zone, "A") == [] and dig(lab, "db.internal." + zone, "A") == ["10.0.0.5"]


def test_the_prune_threshold_refuses_with_zero_writes_unless_forced(lab, zone, token):
    seed(lab, zone, host_records(20))
    run, result, calls = apply(lab, zone, token, host_records(12), prune=True)
    assert run.rc != 0 and run.recap["failed"] == 1
    assert "refusing to delete 8 of the zone's 20 records (40%, more than prune_threshold 30%)" in result["msg"]
    assert len(result["plan"]["deletes"]) == 8
    assert calls["writes"] == 0 and len(lab.records(zone)) == 20

    run, result, calls = apply(lab, zone, token, host_records(12), prune=True, force=True)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["writes"] == 1 and len(lab.records(zone)) == 12
    assert dig(lab, "h0015." + zone, "A") == []


def test_check_mode_writes_nothing_and_reports_the_plan_the_real_run_carries_out(lab, zone, token):
    seed(lab, zone, [
        {"type": "A", "name": "app", "content": "192.0.2.10"},
        {"type": "A", "name": "app", "content": "192.0.2.99"},
        {"type": "TXT", "name": "@", "content": "old"},
        {"type": "A", "name": "legacy", "content": "192.0.2.50"},
    ])
    before = lab.records(zone)
    desired = [*launch_records(zone), {"type": "A", "name": "legacy", "state": "absent"}]
    checked, checked_result, calls = apply(lab, zone, token, desired, check=True, diff=True)
    assert checked.rc == 0 and checked.recap["changed"] == 1, checked.output
    assert calls["writes"] == 0 and lab.records(zone) == before
    plan = checked_result["plan"]
    # app: 192.0.2.10 gets its TTL, 192.0.2.99 becomes 192.0.2.11; the old TXT becomes one of the new values
    assert sorted((u["name"], tuple(u["changes"])) for u in plan["updates"]) == [
        ("app." + zone, ("content", "ttl")), ("app." + zone, ("ttl",)), (zone, ("content",)),
    ]
    assert [d["reason"] for d in plan["deletes"]] == ["absent"]
    assert "--- before" in checked.stdout and "+++ after" in checked.stdout

    applied, applied_result, calls = apply(lab, zone, token, desired, diff=True)
    assert applied.rc == 0, applied.output
    assert applied_result["plan"] == plan and applied_result["diff"] == checked_result["diff"]
    assert calls["writes"] == 1
    assert_dns(lab, expected_dns(zone))
    assert dig(lab, "legacy." + zone, "A") == []


def test_rate_limits_and_server_errors_are_survived_and_the_zone_ends_exact(lab, zone, token):
    # Certain faults on the list and on the batch, then a seeded share of every call.
    lab.inject_fault(route="GET /zones/{zone_id}/dns_records", status=429, retry_after=1, count=1)
    lab.inject_fault(route=BATCH_ROUTE, status=503, count=1)
    lab.inject_fault(route="*", status=429, retry_after=1, ratio=0.3, seed=11)
    lab.inject_fault(route="*", status=502, ratio=0.3, seed=12)
    records = launch_records(zone) + host_records(30)
    run, result, calls = apply(lab, zone, token, records, retries=10)
    lab.clear_faults()
    assert run.rc == 0, run.output
    assert result["api_calls"] == calls["total"]
    assert calls["by_route"]["GET /zones/{zone_id}/dns_records"] >= 2 and calls["by_route"][BATCH_ROUTE] >= 2
    assert calls["writes"] == calls["by_route"][BATCH_ROUTE]
    expected = expected_dns(zone)
    expected.update({("h%04d.%s" % (i, zone), "A"): ["192.0.2.1"] for i in range(30)})
    assert_dns(lab, expected)
    assert len(lab.records(zone)) == 44

    run, result, calls = apply(lab, zone, token, records)
    assert run.recap["changed"] == 0 and calls["writes"] == 0, run.output


@pytest.mark.parametrize(
    "records, message",
    [
        ([{"type": "A", "name": "www", "content": "192.0.2.256"}], "records[0] (A www): '192.0.2.256' is not a valid IPv4 address"),
        ([{"type": "SPF", "name": "@", "content": "v=spf1 -all"}], "records[0] (SPF @): unknown or unsupported type 'SPF'"),
        ([{"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 30}], "ttl must be 1 (automatic) or from 60 to 86400 seconds, not 30"),
        ([{"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 100000}], "ttl must be from 1 to 86400, not 100000"),
    ],
)
def test_bad_records_fail_clearly_before_any_api_call(lab, zone, token, records, message):
    run, result, calls = apply(lab, zone, token, [{"type": "A", "name": "ok", "content": "192.0.2.1"}, *records])
    assert run.rc != 0 and run.recap["failed"] == 1
    assert message.replace("records[0]", "records[1]") in result["msg"]
    assert calls["total"] == 0 and lab.records(zone) == []


def test_a_missing_token_fails_before_any_api_call(lab, zone):
    run, result, calls = apply(lab, zone, None, host_records(1))
    assert run.rc != 0 and "missing required arguments: api_token" in result["msg"]
    assert calls["total"] == 0


def test_the_token_can_come_from_the_environment(lab, zone, token):
    run, _result, calls = apply(lab, zone, None, host_records(1), env={"CLOUDFLARE_API_TOKEN": token})
    assert run.rc == 0 and calls["writes"] == 1, run.output
    assert token not in run.output


def test_a_wrong_token_fails_clearly_with_zero_writes(lab, zone):
    wrong = "wrong-" + uuid.uuid4().hex
    run, result, calls = apply(lab, zone, wrong, host_records(1))
    assert run.rc != 0
    assert "GET /zones failed with HTTP 401: 9109 Invalid access token" in result["msg"], result["msg"]
    assert "Check that api_token is valid" in result["msg"]
    assert calls["writes"] == 0 and wrong not in run.output


def test_a_token_without_access_to_the_zone_sees_no_zone(lab, zone):
    elsewhere = lab.add_token(DNS_EDIT, zones=["launch-demo.test"])
    run, result, calls = apply(lab, zone, elsewhere, host_records(1))
    assert run.rc != 0 and "zone %s not found" % zone in result["msg"]
    assert calls["writes"] == 0


def test_a_zone_that_does_not_exist_fails_clearly_with_zero_writes(lab, token):
    run, result, calls = apply(lab, "nowhere-%s.test" % uuid.uuid4().hex[:8], token, host_records(1))
    assert run.rc != 0 and "not found: it is not in the account, or the API token cannot see it" in result["msg"]
    assert calls["writes"] == 0


def test_a_rejected_batch_names_the_record_and_leaves_the_zone_as_it_was(lab, zone, token):
    seed(lab, zone, [{"type": "A", "name": "www", "content": "192.0.2.1"}])
    before = lab.records(zone)
    # A CAA property tag Cloudflare does not offer passes the local checks (any RFC 8659 tag does); the API refuses it.
    records = [*host_records(3), {"type": "CAA", "name": "@", "data": {"flags": 0, "tag": "policy", "value": "none"}}]
    run, result, calls = apply(lab, zone, token, records)
    assert run.rc != 0 and calls["writes"] == 1
    assert "batch 1 of 1 was rejected" in result["msg"]
    assert 'Caused by: create CAA %s 0 policy "none"' % zone in result["msg"]
    assert "Cloudflare applies a batch all-or-nothing, so none of its 4 changes were applied; the zone is as it was" in result["msg"]
    assert lab.records(zone) == before
