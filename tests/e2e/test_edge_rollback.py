# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The edge rollback on the lab: launch.yml saves a snapshot of the zone, a bad evening follows, and
rollback.yml puts the zone back, verified from the outside.

Every test gets its own zone: proxied names behind the edge, a mail host and MX that are not proxied
(so DNS answers show their addresses), launch settings (ssl strict, always-HTTPS, HSTS, TLS 1.2) and,
in two phases, rules this collection owns beside rules made in the dashboard. The snapshot comes from
the snapshot play of launch.yml; the restore from the edge play of rollback.yml, both run with
ansible-playbook. The bad changes are made through the API, as a dashboard user would.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from tests.e2e.playbook import REPO_ROOT, run_playbook
from tests.lab.client import Lab

LAUNCH = REPO_ROOT / "playbooks" / "launch.yml"
ROLLBACK = REPO_ROOT / "playbooks" / "rollback.yml"
PERMISSIONS = ["zone:read", "dns_records:edit", "zone_settings:edit", "dynamic_url_redirects:edit", "cache_settings:edit", "zone_waf:edit"]
CACHE = "http_request_cache_settings"
FIREWALL = "http_request_firewall_custom"
PREVIEW = "Show what the restore changes, before and after (nothing is written yet)"
RESTORE = "Put the zones back as the snapshots have them"
SUMMARY = "Say what the edge rollback did"
HSTS = {"strict_transport_security": {"enabled": True, "max_age": 15552000, "include_subdomains": True, "preload": False, "nosniff": True}}
LAUNCH_SETTINGS = [{"id": "ssl", "value": "strict"}, {"id": "always_use_https", "value": "on"}, {"id": "min_tls_version", "value": "1.2"},
                   {"id": "security_header", "value": HSTS}]
MINE_CACHE = {"ref": "launchready_bypass_static", "description": "Static files bypass the cache while a release settles",
              "expression": 'starts_with(http.request.uri.path, "/static/")', "action": "set_cache_settings", "action_parameters": {"cache": False}}
THEIR_CACHE = {"ref": "dashboard_robots", "description": "made in the dashboard", "expression": 'http.request.uri.path eq "/robots.txt"',
               "action": "set_cache_settings", "action_parameters": {"cache": True}}
MINE_BLOCK = {"ref": "launchready_block_wp", "description": "No WordPress here", "expression": 'http.request.uri.path eq "/wp-login.php"', "action": "block"}
THEIR_BLOCK = {"ref": "dashboard_block", "description": "made in the dashboard", "expression": 'http.request.uri.path eq "/from-dashboard"', "action": "block"}


@pytest.fixture
def zone(lab: Lab):
    """A launched zone: records, launch settings, and owned rules beside the dashboard's in two phases."""
    name = "rollback%s.test" % uuid.uuid4().hex[:10]
    lab.add_zone(name)
    lab.seed_records(name, [
        {"type": "A", "name": "@", "content": "127.0.0.1", "proxied": True, "ttl": 1},
        {"type": "CNAME", "name": "www", "content": name, "proxied": True, "ttl": 1},
        {"type": "A", "name": "mail", "content": "192.0.2.25", "proxied": False, "ttl": 300},
        {"type": "MX", "name": "@", "content": "mail." + name, "priority": 10, "proxied": False, "ttl": 300},
        {"type": "TXT", "name": "@", "content": '"v=spf1 mx -all"', "proxied": False, "ttl": 300},
    ])
    yield name
    lab.delete_zone(name)


@pytest.fixture
def token(lab: Lab, zone: str) -> str:
    token = lab.add_token(PERMISSIONS, zones=[zone])
    zone_id = lab.zone_id(zone)
    assert api(lab, token, "PATCH", "/zones/%s/settings" % zone_id, {"items": LAUNCH_SETTINGS})["success"]
    assert api(lab, token, "PUT", entrypoint(lab, zone, CACHE), {"rules": [THEIR_CACHE, MINE_CACHE]})["success"]
    assert api(lab, token, "PUT", entrypoint(lab, zone, FIREWALL), {"rules": [MINE_BLOCK, THEIR_BLOCK]})["success"]
    return token


def api(lab: Lab, token: str, method: str, path: str, body=None) -> dict:
    response = httpx.request(method, lab.api_base_url + path, json=body, headers={"Authorization": "Bearer " + token}, timeout=30)
    return response.json()


def entrypoint(lab: Lab, zone: str, phase: str) -> str:
    return "/zones/%s/rulesets/phases/%s/entrypoint" % (lab.zone_id(zone), phase)


def rules_of(lab: Lab, token: str, zone: str, phase: str) -> list[dict]:
    answer = api(lab, token, "GET", entrypoint(lab, zone, phase))
    return answer["result"]["rules"] if answer["success"] else []


def settings_of(lab: Lab, token: str, zone: str) -> dict:
    return {item["id"]: item["value"] for item in api(lab, token, "GET", "/zones/%s/settings" % lab.zone_id(zone))["result"]}


def records_of(lab: Lab, token: str, zone: str) -> list[dict]:
    return api(lab, token, "GET", "/zones/%s/dns_records?per_page=5000" % lab.zone_id(zone))["result"]


def dig(lab: Lab, name: str, rtype: str) -> tuple[str, list[str]]:
    """The lab nameserver's answer: its rcode and one text per record of ``rtype``, sorted."""
    answer = dns.query.tcp(dns.message.make_query(name, rtype), lab.dns_host, port=lab.dns_port, timeout=10)
    wanted = dns.rdatatype.from_text(rtype)
    texts = [rdata.to_text().rstrip(".") for rrset in answer.answer if rrset.rdtype == wanted for rdata in rrset]
    return dns.rcode.to_text(answer.rcode()), sorted(texts)


def variables(lab: Lab, zone: str, token: str, state_dir: Path, **extra) -> dict:
    return dict(extra, domain_routing_zone=zone, launchready_cloudflare_api_token=token, launchready_cloudflare_api_base_url=lab.api_base_url,
                launchready_state_dir=str(state_dir))


def snapshot(lab: Lab, zone: str, token: str, state_dir: Path) -> dict:
    """The snapshot play of launch.yml (only it: --tags edge_snapshot); the module's result."""
    run = run_playbook(LAUNCH, variables(lab, zone, token, state_dir), env={"ANSIBLE_RUN_TAGS": "edge_snapshot"})
    assert run.rc == 0 and run.recap["failed"] == 0, run.output
    assert token not in run.output, "the API token was printed"
    exported = run.task("Export each zone's records, settings and owned rules to the state folder")["results"]
    assert [result["item"] for result in exported] == [zone]
    return exported[0]


def rollback(lab: Lab, zone: str, token: str, state_dir: Path, check: bool = False, diff: bool = False, **extra):
    """The edge play of rollback.yml (only it: --tags rollback_edge); (the run, the lab's calls)."""
    lab.reset_calls()
    run = run_playbook(ROLLBACK, variables(lab, zone, token, state_dir, **extra), check=check, diff=diff, env={"ANSIBLE_RUN_TAGS": "rollback_edge"})
    calls = lab.calls()
    assert token not in run.output, "the API token was printed"
    return run, calls


def only(run, task: str) -> dict:
    """The result of the one item of a looped task."""
    results = run.task(task)["results"]
    assert len(results) == 1, results
    return results[0]


def bad_evening(lab: Lab, zone: str, token: str) -> None:
    """Through the API, as in the dashboard: a wrong address, a deleted name and MX, a stray record, HTTPS and HSTS off, rules broken."""
    zone_id = lab.zone_id(zone)
    by_name = {(r["type"], r["name"]): r for r in records_of(lab, token, zone)}
    body = {
        "deletes": [{"id": by_name[("CNAME", "www." + zone)]["id"]}, {"id": by_name[("MX", zone)]["id"]}],
        "patches": [{"id": by_name[("A", "mail." + zone)]["id"], "content": "198.51.100.66"},
                    {"id": by_name[("A", zone)]["id"], "content": "127.0.0.9"}],
        "posts": [{"type": "A", "name": "phish." + zone, "content": "203.0.113.66", "ttl": 300, "proxied": False}],
    }
    assert api(lab, token, "POST", "/zones/%s/dns_records/batch" % zone_id, body)["success"]
    assert api(lab, token, "PATCH", "/zones/%s/settings" % zone_id, {"items": [
        {"id": "always_use_https", "value": "off"}, {"id": "security_header", "value": {"strict_transport_security": {"enabled": False}}}]})["success"]
    cache = rules_of(lab, token, zone, CACHE)
    mine = next(rule for rule in cache if rule["ref"] == MINE_CACHE["ref"])
    mine["action_parameters"] = {"cache": True}
    assert api(lab, token, "PUT", entrypoint(lab, zone, CACHE), {"rules": [strip(rule) for rule in cache]})["success"]
    firewall = [strip(rule) for rule in rules_of(lab, token, zone, FIREWALL) if rule["ref"] != MINE_BLOCK["ref"]]
    late = {"ref": "dashboard_late", "description": "added after the snapshot", "expression": 'http.request.uri.path eq "/late"', "action": "block"}
    assert api(lab, token, "PUT", entrypoint(lab, zone, FIREWALL), {"rules": [*firewall, late]})["success"]


def strip(rule: dict) -> dict:
    return {key: value for key, value in rule.items() if key not in ("version", "last_updated")}


def edge(lab: Lab, zone: str) -> dict:
    """What a visitor sees at the edge."""
    lab.purge_edge_cache(zone)
    with lab.edge_client() as web:
        plain = web.get("http://%s/healthz?probe=1" % zone)
        secure = web.get("https://%s/healthz" % zone)
        static = [web.get("https://%s/static/app.css" % zone).headers.get("cf-cache-status") for _attempt in (1, 2)]
        return {
            "http": (plain.status_code, plain.headers.get("location")),
            "https": secure.status_code,
            "hsts": secure.headers.get("strict-transport-security"),
            "www": web.get("https://www.%s/healthz" % zone).status_code if dig(lab, "www." + zone, "A")[1] else None,
            "wp-login": web.get("https://%s/wp-login.php" % zone).status_code,
            "dashboard": web.get("https://%s/from-dashboard" % zone).status_code,
            "static cache": static,
        }


def test_a_bad_evening_is_undone_by_the_rollback_and_verified_from_the_outside(lab, zone, token, tmp_path):
    state_dir = tmp_path / "state"
    launched = {"http": (301, "https://%s/healthz?probe=1" % zone), "https": 200, "hsts": "max-age=15552000; includeSubDomains", "www": 200,
                "wp-login": 403, "dashboard": 403, "static cache": ["BYPASS", "BYPASS"]}
    assert edge(lab, zone) == launched
    dns_launched = {("mail", "A"): ("NOERROR", ["192.0.2.25"]), ("@", "MX"): ("NOERROR", ["10 mail.%s" % zone]),
                    ("www", "A"): ("NOERROR", ["127.0.0.1"]), ("phish", "A"): ("NXDOMAIN", [])}

    def dns_now():
        return {(name, rtype): dig(lab, zone if name == "@" else "%s.%s" % (name, zone), rtype) for name, rtype in dns_launched}

    assert dns_now() == dns_launched

    saved = snapshot(lab, zone, token, state_dir)
    path = Path(saved["snapshot"]["path"])
    assert path.parent == state_dir / "snapshots" and path.name.startswith(zone + "-") and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text(encoding="utf-8")
    assert saved["snapshot"]["rules"] == {"http_request_dynamic_redirect": 0, CACHE: 1, "http_ratelimit": 0, FIREWALL: 1}
    their_cache = next(rule for rule in rules_of(lab, token, zone, CACHE) if rule["ref"] == THEIR_CACHE["ref"])
    their_block = next(rule for rule in rules_of(lab, token, zone, FIREWALL) if rule["ref"] == THEIR_BLOCK["ref"])

    bad_evening(lab, zone, token)
    broken = edge(lab, zone)
    assert broken["http"] == (200, None) and broken["hsts"] is None and broken["www"] is None
    assert broken["wp-login"] == 404 and broken["static cache"] == ["MISS", "HIT"] and broken["dashboard"] == 403
    dns_broken = dns_now()
    assert dns_broken[("mail", "A")] == ("NOERROR", ["198.51.100.66"]) and dns_broken[("@", "MX")][1] == []
    assert dns_broken[("www", "A")] == ("NXDOMAIN", []) and dns_broken[("phish", "A")] == ("NOERROR", ["203.0.113.66"])
    settings_broken = settings_of(lab, token, zone)

    # The preview: --check --diff shows every change and writes nothing.
    run, calls = rollback(lab, zone, token, state_dir, check=True, diff=True, rollback_edge=True)
    assert run.rc == 0 and run.recap["failed"] == 0, run.output
    assert calls["writes"] == 0 and calls["total"] == 7, run.output  # zone, records, settings, four phases
    preview = only(run, PREVIEW)
    assert preview["changed"] is True and preview["snapshot"]["path"] == str(path)
    assert (preview["records"]["created"], preview["records"]["updated"], preview["records"]["deleted"]) == (2, 2, 1)
    assert sorted(c["id"] for c in preview["settings"]["changes"]) == ["always_use_https", "security_header"]
    assert [d["before_header"] for d in preview["diff"]] == ["%s %s" % (zone, what) for what in (
        "DNS records", "zone settings", "rules of http_request_cache_settings", "rules of http_request_firewall_custom")]
    shown = run.stdout  # --diff prints each object's before and after
    for header in ("DNS records", "zone settings", "rules of %s" % CACHE, "rules of %s" % FIREWALL):
        assert "--- before: %s %s\n+++ after: %s %s" % (zone, header, zone, header) in shown
    assert "phish.%s A" % zone in shown and '-            "value": "198.51.100.66"\n+            "value": "192.0.2.25"' in shown
    assert '-    "always_use_https": "off",\n+    "always_use_https": "on",' in shown
    assert only(run, RESTORE)["skipped"] is True
    assert only(run, SUMMARY)["msg"][0].startswith("Would restore %s from %s" % (zone, path.name))
    assert dns_now() == dns_broken and settings_of(lab, token, zone) == settings_broken

    # The rollback.
    run, calls = rollback(lab, zone, token, state_dir, rollback_edge=True)
    assert run.rc == 0 and run.recap["failed"] == 0, run.output
    restored = only(run, RESTORE)
    assert restored["changed"] is True and restored["snapshot"]["path"] == str(path)
    # One batch, one settings write, one PUT per changed phase; the preview's reads and the restore's.
    assert calls["writes"] == 4 and calls["total"] == 7 + 7 + 4, calls
    assert calls["by_route"]["POST /zones/{zone_id}/dns_records/batch"] == 1 and calls["by_route"]["PATCH /zones/{zone_id}/settings"] == 1
    summary = only(run, SUMMARY)["msg"]
    assert summary[0].startswith("Restored %s from %s" % (zone, path.name))
    assert summary[1] == "DNS records: 2 created, 2 updated, 1 deleted; settings: always_use_https, security_header; rules: %s, %s." % (CACHE, FIREWALL)

    assert dns_now() == dns_launched
    settings = settings_of(lab, token, zone)
    assert (settings["always_use_https"], settings["ssl"], settings["min_tls_version"]) == ("on", "strict", "1.2")
    assert settings["security_header"] == HSTS
    assert edge(lab, zone) == launched
    cache, firewall = rules_of(lab, token, zone, CACHE), rules_of(lab, token, zone, FIREWALL)
    assert [r["ref"] for r in cache] == [THEIR_CACHE["ref"], MINE_CACHE["ref"]] and cache[0] == their_cache  # untouched: same id and version
    assert [r["ref"] for r in firewall] == [MINE_BLOCK["ref"], THEIR_BLOCK["ref"], "dashboard_late"] and firewall[1] == their_block

    # Nothing left to do: reads only.
    run, calls = rollback(lab, zone, token, state_dir, rollback_edge=True)
    assert run.rc == 0 and run.recap["changed"] == 0 and calls["writes"] == 0, run.output
    assert only(run, SUMMARY)["msg"][0].startswith("Nothing to roll back: %s already matches" % zone)


def test_a_given_snapshot_is_restored_not_the_newest(lab, zone, token, tmp_path):
    state_dir = tmp_path / "state"
    first = snapshot(lab, zone, token, state_dir)
    zone_id = lab.zone_id(zone)
    assert api(lab, token, "PATCH", "/zones/%s/settings" % zone_id, {"items": [{"id": "min_tls_version", "value": "1.3"}]})["success"]
    second = snapshot(lab, zone, token, state_dir)
    assert sorted(os.listdir(state_dir / "snapshots")) == sorted(Path(s["snapshot"]["path"]).name for s in (first, second))

    run, calls = rollback(lab, zone, token, state_dir, rollback_edge=True)
    assert run.rc == 0 and calls["writes"] == 0 and only(run, PREVIEW)["snapshot"]["path"] == second["snapshot"]["path"], run.output

    run, calls = rollback(lab, zone, token, state_dir, edge_snapshot=Path(first["snapshot"]["path"]).name)
    assert run.rc == 0 and run.recap["failed"] == 0, run.output
    assert only(run, RESTORE)["snapshot"]["path"] == first["snapshot"]["path"] and calls["writes"] == 1
    assert only(run, RESTORE)["settings"]["changes"] == [{"id": "min_tls_version", "before": "1.3", "after": "1.2"}]
    assert settings_of(lab, token, zone)["min_tls_version"] == "1.2"


def test_without_rollback_edge_the_play_does_nothing(lab, zone, token, tmp_path):
    snapshot(lab, zone, token, tmp_path / "state")
    run, calls = rollback(lab, zone, token, tmp_path / "state")
    assert run.rc == 0 and run.recap["failed"] == 0 and calls["total"] == 0, run.output
    assert {entry["status"] for entry in run.results} <= {"skipped"}


@pytest.mark.parametrize("extra, message", [
    ({"rollback_edge": True}, "no snapshot of {zone} in "),
    ({"edge_snapshot": "missing.json"}, "missing.json does not exist"),
])
def test_a_missing_snapshot_fails_clearly_and_changes_nothing(lab, zone, token, tmp_path, extra, message):
    run, calls = rollback(lab, zone, token, tmp_path / "state", **extra)
    assert run.rc != 0 and run.recap["failed"] == 1
    assert message.format(zone=zone) in only(run, PREVIEW)["msg"] and calls["writes"] == 0


def test_a_snapshot_of_another_zone_is_refused(lab, zone, token, tmp_path):
    saved = snapshot(lab, zone, token, tmp_path / "state")
    data = json.loads(Path(saved["snapshot"]["path"]).read_text(encoding="utf-8"))
    data["zone"]["name"] = "elsewhere.test"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data), encoding="utf-8")
    run, calls = rollback(lab, zone, token, tmp_path / "state", edge_snapshot=str(other))
    assert run.rc != 0 and calls["writes"] == 0
    assert "is a snapshot of elsewhere.test, not of %s: nothing was changed" % zone in only(run, PREVIEW)["msg"]


def test_the_old_domains_of_the_redirect_map_are_saved_and_rolled_back_too(lab, zone, token, tmp_path):
    old = "old%s.test" % uuid.uuid4().hex[:10]
    lab.add_zone(old)
    try:
        lab.seed_records(old, [{"type": "A", "name": "@", "content": "127.0.0.1", "proxied": True, "ttl": 1}])
        both = lab.add_token(PERMISSIONS, zones=[zone, old])
        extra = {"domain_routing_redirect_map": {"old_domains": [{"zone": old}]}}
        run = run_playbook(LAUNCH, variables(lab, zone, both, tmp_path / "state", **extra), env={"ANSIBLE_RUN_TAGS": "edge_snapshot"})
        assert run.rc == 0, run.output
        saved = run.task("Export each zone's records, settings and owned rules to the state folder")["results"]
        assert [result["item"] for result in saved] == [zone, old]
        assert sorted(name.split("-2")[0] for name in os.listdir(tmp_path / "state" / "snapshots")) == sorted([zone, old])

        old_id = lab.zone_id(old)
        assert api(lab, both, "PATCH", "/zones/%s/settings" % old_id, {"items": [{"id": "always_use_https", "value": "on"}]})["success"]
        run, calls = rollback(lab, zone, both, tmp_path / "state", rollback_edge=True, **extra)
        assert run.rc == 0 and calls["writes"] == 1, run.output
        outcomes = {result["item"]["item"]: result for result in run.task(RESTORE)["results"]}
        assert outcomes[zone]["skipped"] is True and outcomes[old]["settings"]["changes"][0]["id"] == "always_use_https"
        assert settings_of(lab, both, old)["always_use_https"] == "off"
        with lab.edge_client() as web:
            assert web.get("http://%s/healthz" % old).status_code == 200  # always-HTTPS is off again
    finally:
        lab.delete_zone(old)
