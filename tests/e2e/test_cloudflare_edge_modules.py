# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudflare_zone_settings, cloudflare_rules and cloudflare_origin_certificate through ansible-playbook, against the lab.

Every test gets its own zone (free plan, proxied apex, www and old names) and token. What the
modules write is checked in the emulator, and observed from the outside through the lab edge with
real HTTP and TLS: redirects, HSTS, always-HTTPS, cache status, rate limits, SSL strict with the
installed origin certificate.
"""

from __future__ import annotations

import os
import stat
import uuid

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.playbook import run_playbook
from tests.lab.client import Lab

EDGE_PERMISSIONS = ["zone:read", "zone_settings:edit", "dynamic_url_redirects:edit", "cache_settings:edit", "zone_waf:edit",
                    "ssl_and_certificates:edit"]
SETTINGS_ROUTE = "PATCH /zones/{zone_id}/settings"
ENTRYPOINT_PUT = "PUT /zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint"

PLAYBOOK = """
- name: Edge of one zone
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/launchready.core.cloudflare:
      api_token: "{{ cloudflare_token }}"
      api_base_url: "{{ api_base_url }}"
  tasks:
    - name: Zone settings
      when: settings is defined
      launchready.core.cloudflare_zone_settings:
        zone: "{{ zone }}"
        settings: "{{ settings }}"
        fail_on_uneditable: "{{ fail_on_uneditable | default(false) }}"

    - name: Rules
      when: phase is defined
      launchready.core.cloudflare_rules:
        zone: "{{ zone }}"
        phase: "{{ phase }}"
        rules: "{{ rules | default([]) }}"
        redirect_map: "{{ redirect_map | default(omit) }}"
        state: "{{ state | default('present') }}"

    - name: Origin certificate
      when: certificate is defined
      launchready.core.cloudflare_origin_certificate:
        hostnames: "{{ certificate.hostnames }}"
        private_key_path: "{{ certificate.private_key_path }}"
        certificate_path: "{{ certificate.certificate_path }}"
        validity_days: "{{ certificate.validity_days | default(5475) }}"
"""

HSTS = {"strict_transport_security": {"enabled": True, "max_age": 15552000, "include_subdomains": True, "nosniff": True}}
LAUNCH_SETTINGS = {
    "ssl": "strict",
    "always_use_https": True,
    "min_tls_version": 1.2,
    "tls_1_3": True,
    "automatic_https_rewrites": True,
    "security_header": HSTS,
    "security_level": "medium",
    "browser_check": True,
    "brotli": True,
    "early_hints": True,
    "opportunistic_encryption": True,
}


@pytest.fixture
def zone(lab: Lab):
    """A fresh free zone whose apex, www and old names are proxied to the lab origin."""
    name = "edge%s.test" % uuid.uuid4().hex[:10]
    lab.add_zone(name)
    lab.seed_records(name, [
        {"type": "A", "name": "@", "content": "127.0.0.1", "proxied": True, "ttl": 1},
        {"type": "CNAME", "name": "www", "content": name, "proxied": True, "ttl": 1},
        {"type": "A", "name": "old", "content": "127.0.0.1", "proxied": True, "ttl": 1},
    ])
    yield name
    lab.delete_zone(name)


@pytest.fixture
def token(lab: Lab, zone: str) -> str:
    return lab.add_token(EDGE_PERMISSIONS, zones=[zone])


def apply(lab: Lab, zone: str, token: str, task: str, check=False, diff=False, **extra):
    """Run the playbook; (playbook result, the task's result, the lab's call counts for this run)."""
    extra_vars = dict(extra, zone=zone, cloudflare_token=token, api_base_url=lab.api_base_url)
    lab.reset_calls()
    run = run_playbook(PLAYBOOK, extra_vars, check=check, diff=diff)
    calls = lab.calls()
    assert token not in run.output, "the API token was printed"
    return run, run.task(task), calls


def api(lab: Lab, token: str, method: str, path: str, body=None) -> dict:
    """A direct API call (to arrange or read state the way a dashboard user would)."""
    response = httpx.request(method, lab.api_base_url + path, json=body, headers={"Authorization": "Bearer " + token}, timeout=30)
    return response.json()


def settings_of(lab: Lab, token: str, zone: str) -> dict:
    return {item["id"]: item["value"] for item in api(lab, token, "GET", "/zones/%s/settings" % lab.zone_id(zone))["result"]}


def ruleset_of(lab: Lab, token: str, zone: str, phase: str) -> list[dict]:
    answer = api(lab, token, "GET", "/zones/%s/rulesets/phases/%s/entrypoint" % (lab.zone_id(zone), phase))
    return answer["result"]["rules"] if answer["success"] else []


# --- zone settings ---------------------------------------------------------------------------


def test_zone_settings_are_applied_observed_at_the_edge_and_a_second_run_changes_nothing(lab, zone, token):
    with lab.edge_client() as web:
        assert web.get("http://%s/healthz" % zone).status_code == 200  # a new zone: no always-HTTPS, no HSTS
        assert "strict-transport-security" not in web.get("https://%s/healthz" % zone).headers

    run, result, calls = apply(lab, zone, token, "Zone settings", diff=True, settings=LAUNCH_SETTINGS)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["writes"] == 1 and calls["by_route"][SETTINGS_ROUTE] == 1 and calls["total"] == 3 == result["api_calls"]
    assert sorted(c["id"] for c in result["changes"]) == ["always_use_https", "early_hints", "min_tls_version", "security_header", "ssl"]
    assert result["findings"] == []
    stored = settings_of(lab, token, zone)
    assert (stored["ssl"], stored["always_use_https"], stored["min_tls_version"]) == ("strict", "on", "1.2")
    assert stored["security_header"]["strict_transport_security"] == {"enabled": True, "max_age": 15552000, "include_subdomains": True,
                                                                      "preload": False, "nosniff": True}

    with lab.edge_client() as web:
        plain = web.get("http://%s/members?q=a" % zone)
        assert plain.status_code == 301 and plain.headers["location"] == "https://%s/members?q=a" % zone
        secure = web.get("https://%s/healthz" % zone)  # ssl strict: the edge checks the origin's Origin CA certificate
        assert secure.status_code == 200
        assert secure.headers["strict-transport-security"] == "max-age=15552000; includeSubDomains"

    run, result, calls = apply(lab, zone, token, "Zone settings", diff=True, settings=LAUNCH_SETTINGS)
    assert run.rc == 0 and run.recap["changed"] == 0, run.output
    assert calls["writes"] == 0 and calls["total"] == 2 and result["changes"] == []


def test_zone_settings_check_mode_writes_nothing(lab, zone, token):
    before = settings_of(lab, token, zone)
    run, result, calls = apply(lab, zone, token, "Zone settings", check=True, diff=True, settings=LAUNCH_SETTINGS)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["writes"] == 0 and result["settings"]["ssl"] == "strict"
    assert result["diff"]["before"]["ssl"] == "flexible" and result["diff"]["after"]["ssl"] == "strict"
    assert settings_of(lab, token, zone) == before


def test_a_plan_gated_setting_is_reported_not_failed(lab, zone, token):
    run, result, calls = apply(lab, zone, token, "Zone settings", settings={"polish": "lossless", "webp": True, "ssl": "full"})
    assert run.rc == 0 and run.recap["failed"] == 0, run.output
    assert [f["title"] for f in result["findings"]] == ["Zone setting polish cannot be changed on this zone's plan",
                                                        "Zone setting webp cannot be changed on this zone's plan"]
    assert {f["severity"] for f in result["findings"]} == {"can_wait"} and {f["stage"] for f in result["findings"]} == {"edge_security"}
    assert "polish cannot be changed" in run.output  # the warning
    assert calls["writes"] == 1 and settings_of(lab, token, zone)["ssl"] == "full"

    run, result, calls = apply(lab, zone, token, "Zone settings", settings={"polish": "lossless", "ssl": "strict"}, fail_on_uneditable=True)
    assert run.rc != 0 and run.recap["failed"] == 1 and calls["writes"] == 0
    assert "polish" in result["msg"] and settings_of(lab, token, zone)["ssl"] == "full"


@pytest.mark.parametrize("settings, message", [
    ({"always_https": True}, "unknown zone setting always_https; the settings this module knows are:"),
    ({"ssl": "strictest"}, "ssl: 'strictest' (text) is not accepted; ssl accepts one of off, flexible, full, strict"),
    ({"min_tls_version": "TLS 1.2"}, "min_tls_version accepts one of 1.0, 1.1, 1.2, 1.3"),
    ({"security_header": {"strict_transport_security": {"max_age": "forever"}}}, "security_header: "),
])
def test_bad_settings_fail_clearly_before_any_call(lab, zone, token, settings, message):
    run, result, calls = apply(lab, zone, token, "Zone settings", settings=settings)
    assert run.rc != 0 and run.recap["failed"] == 1
    assert message in result["msg"] and calls["total"] == 0


# --- rules -------------------------------------------------------------------------------------

CACHE = "http_request_cache_settings"
CACHE_RULES = [
    {"ref": "bypass_private", "description": "Admin, auth, API and signed-in pages are never cached",
     "expression": 'starts_with(http.request.uri.path, "/admin") or starts_with(http.request.uri.path, "/api/")'
                   ' or http.request.uri.path eq "/login" or http.cookie contains "session="',
     "action_parameters": {"cache": False}},
    {"ref": "cache_static", "expression": 'starts_with(http.request.uri.path, "/static/")',
     "action_parameters": {"cache": True, "edge_ttl": {"mode": "override_origin", "default": 3600}}},
]
THEIRS = [
    {"ref": "dashboard_first", "description": "made in the dashboard", "expression": 'http.request.uri.path eq "/robots.txt"',
     "action": "set_cache_settings", "action_parameters": {"cache": True}},
    {"ref": "dashboard_second", "expression": 'http.request.uri.path eq "/favicon.ico"', "action": "set_cache_settings",
     "action_parameters": {"cache": True}, "enabled": False},
]


def seed_their_rules(lab, zone, token):
    answer = api(lab, token, "PUT", "/zones/%s/rulesets/phases/%s/entrypoint" % (lab.zone_id(zone), CACHE), {"rules": THEIRS})
    assert answer["success"], answer
    return [(r["id"], r["ref"]) for r in answer["result"]["rules"]]


def test_cache_rules_keep_unmanaged_rules_in_order_and_are_observed_at_the_edge(lab, zone, token):
    theirs = seed_their_rules(lab, zone, token)
    run, result, calls = apply(lab, zone, token, "Rules", diff=True, phase=CACHE, rules=CACHE_RULES)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["writes"] == 1 and calls["by_route"][ENTRYPOINT_PUT] == 1 and calls["total"] == 3
    assert [a["ref"] for a in result["added"]] == ["launchready_bypass_private", "launchready_cache_static"]
    rules = ruleset_of(lab, token, zone, CACHE)
    assert [(r["id"], r["ref"]) for r in rules[:2]] == theirs
    assert [r["ref"] for r in rules] == ["dashboard_first", "dashboard_second", "launchready_bypass_private", "launchready_cache_static"]
    assert rules[1]["enabled"] is False and rules[0]["description"] == "made in the dashboard"
    assert all(r["version"] == "1" for r in rules[:2])  # sent back unchanged: same version

    lab.purge_edge_cache(zone)
    with lab.edge_client() as web:
        admin = [web.get("https://%s/admin" % zone).headers.get("cf-cache-status") for attempt in (1, 2)]
        static = [web.get("https://%s/static/app.css" % zone).headers.get("cf-cache-status") for attempt in (1, 2)]
    assert admin == ["BYPASS", "BYPASS"] and static == ["MISS", "HIT"]

    run, result, calls = apply(lab, zone, token, "Rules", diff=True, phase=CACHE, rules=CACHE_RULES)
    assert run.rc == 0 and run.recap["changed"] == 0, run.output
    assert calls["writes"] == 0 and calls["total"] == 2


def test_rules_check_mode_writes_nothing(lab, zone, token):
    seed_their_rules(lab, zone, token)
    before = ruleset_of(lab, token, zone, CACHE)
    run, result, calls = apply(lab, zone, token, "Rules", check=True, diff=True, phase=CACHE, rules=CACHE_RULES)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["writes"] == 0 and len(result["added"]) == 2
    assert [r["ref"] for r in result["diff"]["after"]["rules"]][:2] == ["dashboard_first", "dashboard_second"]
    assert ruleset_of(lab, token, zone, CACHE) == before


def test_state_absent_removes_only_the_owned_rules(lab, zone, token):
    seed_their_rules(lab, zone, token)
    apply(lab, zone, token, "Rules", phase=CACHE, rules=CACHE_RULES)
    run, result, calls = apply(lab, zone, token, "Rules", phase=CACHE, state="absent")
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["writes"] == 1 and result["rules"] == []
    assert [r["ref"] for r in result["removed"]] == ["launchready_bypass_private", "launchready_cache_static"]
    assert [r["ref"] for r in ruleset_of(lab, token, zone, CACHE)] == ["dashboard_first", "dashboard_second"]


def test_a_rate_limit_answers_429_past_the_threshold_and_login_still_works(lab, zone, token):
    rule = {"ref": "login", "description": "Slow down password guessing",
            "expression": 'http.request.uri.path eq "/login"', "action": "block",
            "ratelimit": {"period": 10, "requests_per_period": 5, "mitigation_timeout": 10}}
    run, result, calls = apply(lab, zone, token, "Rules", phase="http_ratelimit", rules=[rule])
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["writes"] == 1 and [r["ref"] for r in result["rules"]] == ["launchready_login"]
    lab.reset_rate_limits()
    client_ip = {"X-Lab-Client-IP": "198.51.100.%d" % (uuid.uuid4().int % 200 + 1)}
    with lab.edge_client() as web:
        statuses = [web.get("https://%s/login" % zone, headers=client_ip).status_code for attempt in range(6)]
        other = web.get("https://%s/login" % zone, headers={"X-Lab-Client-IP": "203.0.113.9"}).status_code
    assert statuses == [200] * 5 + [429] and other == 200


def test_a_redirect_map_answers_in_one_hop_and_a_second_run_changes_nothing(lab, zone, token):
    redirect_map = {"canonical": zone, "aliases": ["www." + zone, "old." + zone],
                    "paths": [{"from": "/pricing-old", "to": "/pricing"}, {"from": "old.%s/team" % zone, "to": "https://www.%s/about" % zone}]}
    run, result, calls = apply(lab, zone, token, "Rules", phase="http_request_dynamic_redirect", redirect_map=redirect_map)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["writes"] == 1
    old_team = "launchready_redirect_old_%s_team" % zone.replace(".", "_")
    assert [a["ref"] for a in result["added"]] == ["launchready_redirect_pricing_old", old_team, "launchready_redirect_alias"]
    with lab.edge_client() as web:
        for url, location in [
            ("https://www.%s/members?q=a" % zone, "https://%s/members?q=a" % zone),
            ("http://www.%s/" % zone, "https://%s/" % zone),
            ("https://old.%s/pricing-old/?utm=x" % zone, "https://%s/pricing?utm=x" % zone),
            ("http://%s/pricing-old" % zone, "https://%s/pricing" % zone),
            ("https://old.%s/team" % zone, "https://%s/about" % zone),
        ]:
            answer = web.get(url)
            assert (answer.status_code, answer.headers.get("location")) == (301, location), url
            assert web.get(location).status_code != 301, "more than one hop: " + location
        assert web.get("https://%s/pricing" % zone).status_code != 301  # the canonical host is not redirected
        assert web.get("https://%s/healthz" % zone).status_code == 200

    run, result, calls = apply(lab, zone, token, "Rules", check=True, phase="http_request_dynamic_redirect", redirect_map=redirect_map)
    assert run.rc == 0 and run.recap["changed"] == 0 and calls["writes"] == 0, run.output
    run, result, calls = apply(lab, zone, token, "Rules", phase="http_request_dynamic_redirect", redirect_map=redirect_map)
    assert run.recap["changed"] == 0 and calls["writes"] == 0 and calls["total"] == 2


@pytest.mark.parametrize("options, message, zero_calls", [
    ({"phase": CACHE, "rules": [dict(CACHE_RULES[0], expression='starts_with(http.request.uri.path, "/admin"')]},
     "rules[0] (ref bypass_private): the expression is not valid: unbalanced '(': it is never closed", True),
    ({"phase": CACHE, "rules": [dict(CACHE_RULES[0], expression='http.request.uri.path eq "/admin')]},
     "rules[0] (ref bypass_private): the expression is not valid: unterminated string", True),
    ({"phase": CACHE, "rules": [dict(CACHE_RULES[0], expression='http.request.path eq "/admin"')]},
     "unknown field 'http.request.path'", True),
    ({"phase": "http_request_dynamic_redirect", "redirect_map": {"canonical": "{{ zone }}", "paths": [
        {"from": "/a", "to": "/b"}, {"from": "/b", "to": "/c"}, {"from": "/c", "to": "/a"}]}},
     "redirect loop in the redirect map: https://{zone}/a -> https://{zone}/b -> https://{zone}/c -> https://{zone}/a", True),
    ({"phase": "http_request_dynamic_redirect", "redirect_map": {"canonical": "{{ zone }}", "aliases": ["www.elsewhere.test"]}},
     "redirect sources outside the zone {zone} never reach its rules: www.elsewhere.test", True),
])
def test_bad_rules_fail_clearly_with_no_write(lab, zone, token, options, message, zero_calls):
    seed_their_rules(lab, zone, token)
    before = ruleset_of(lab, token, zone, CACHE)
    run, result, calls = apply(lab, zone, token, "Rules", **options)
    assert run.rc != 0 and run.recap["failed"] == 1
    assert message.format(zone=zone) in result["msg"]
    assert calls["writes"] == 0 and (calls["total"] == 0 or not zero_calls)
    assert ruleset_of(lab, token, zone, CACHE) == before


# --- origin certificate --------------------------------------------------------------------------


def test_an_origin_certificate_is_installed_serves_ssl_strict_and_is_renewed_only_when_needed(lab, zone, token, tmp_path):
    certificate = {"hostnames": [zone, "*." + zone], "private_key_path": str(tmp_path / "origin.key"),
                   "certificate_path": str(tmp_path / "origin.pem"), "validity_days": 365}

    run, result, calls = apply(lab, zone, token, "Origin certificate", check=True, certificate=certificate)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["total"] == 0 and not (tmp_path / "origin.key").exists()
    assert result["renewed_because"] == ["no_private_key", "no_certificate"]

    run, result, calls = apply(lab, zone, token, "Origin certificate", diff=True, certificate=certificate)
    assert run.rc == 0 and run.recap["changed"] == 1, run.output
    assert calls["by_route"] == {"POST /certificates": 1} and calls["writes"] == 1
    assert stat.S_IMODE(os.stat(tmp_path / "origin.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "origin.pem").st_mode) == 0o644
    cert = x509.load_pem_x509_certificate((tmp_path / "origin.pem").read_bytes())
    ca = x509.load_pem_x509_certificate(lab.origin_ca_file.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert result["certificate_id"] == str(cert.serial_number) and sorted(result["hostnames"]) == sorted([zone, "*." + zone])
    key_before = (tmp_path / "origin.key").read_bytes()
    assert b"PRIVATE KEY" not in run.output.encode()

    # The edge, in SSL mode strict, accepts the origin with this certificate.
    apply(lab, zone, token, "Zone settings", settings={"ssl": "strict"})
    lab.install_origin_certificate(cert_file=tmp_path / "origin.pem", key_file=tmp_path / "origin.key")
    try:
        with lab.edge_client() as web:
            assert web.get("https://%s/healthz" % zone).status_code == 200
            assert web.get("https://www.%s/healthz" % zone).status_code == 200
    finally:
        lab.default_origin_certificate()

    run, result, calls = apply(lab, zone, token, "Origin certificate", certificate=certificate)
    assert run.rc == 0 and run.recap["changed"] == 0 and calls["total"] == 0, run.output
    assert result["renewed_because"] == []

    certificate["hostnames"] = [zone, "*." + zone, "www." + zone]
    run, result, calls = apply(lab, zone, token, "Origin certificate", certificate=certificate)
    assert run.rc == 0 and run.recap["changed"] == 1 and calls["total"] == 1, run.output
    assert result["renewed_because"] == ["hostnames_changed"] and result["key_replaced"] is False
    assert (tmp_path / "origin.key").read_bytes() == key_before
    renewed = x509.load_pem_x509_certificate((tmp_path / "origin.pem").read_bytes())
    assert renewed.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_an_origin_certificate_for_a_name_outside_the_token_fails_and_writes_nothing(lab, zone, token, tmp_path):
    certificate = {"hostnames": ["elsewhere.test"], "private_key_path": str(tmp_path / "origin.key"),
                   "certificate_path": str(tmp_path / "origin.pem")}
    run, result, calls = apply(lab, zone, token, "Origin certificate", certificate=certificate)
    assert run.rc != 0 and run.recap["failed"] == 1
    assert "requesting the certificate failed: POST /certificates failed with HTTP 403" in result["msg"]
    assert calls["by_route"] == {"POST /certificates": 1}  # the one refused request, nothing else
    assert not (tmp_path / "origin.key").exists() and not (tmp_path / "origin.pem").exists()
