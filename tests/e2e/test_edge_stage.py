# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stages 2 and 3 at the edge through their roles (domain_routing's redirect map, edge_security), against the lab.

One zone set-up serves the module (a launch takes a minute): a free zone whose records the roles
publish, an old domain (a zone of its own, apex and www proxied), rules of the zone's own in the
redirect and cache phases, and a token that reaches both zones. The zone is first launched in
check mode (nothing may be written), then for real, then once more (nothing may change). What the
roles wrote is read back from the emulator and observed from the outside, through the lab edge
over real HTTP and TLS (curl's --resolve for httpx, the lab's edge CA). Bad inputs then run
against the same zone: each must fail with a clear message and no write.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import ssl
import stat
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from tests.e2e.playbook import REPO_ROOT, Result, run_playbook
from tests.lab.client import Lab

PERMISSIONS = ["zone:read", "dns_records:edit", "zone_settings:edit", "dynamic_url_redirects:edit", "cache_settings:edit", "zone_waf:edit",
               "ssl_and_certificates:edit"]
REDIRECT, CACHE, RATELIMIT, FIREWALL = "http_request_dynamic_redirect", "http_request_cache_settings", "http_ratelimit", "http_request_firewall_custom"
NEVER_CACHED = ["HIT", "STALE", "UPDATING", "REVALIDATED"]
ABUSE_NET_CLIENT = "198.51.100.7"


def playbook(*roles: str) -> str:
    return "".join(f"""
- name: Stage {role}
  hosts: localhost
  gather_facts: false
  roles:
    - role: launchready.core.{role}
""" for role in roles)


LAUNCH = playbook("domain_routing", "edge_security")


@dataclass
class Site:
    lab: Lab
    zone: str
    old: str
    token: str
    tls_dir: Path
    check: Result
    check_writes: int
    first: Result
    first_writes: int
    second: Result | None = None
    second_writes: int = -1

    def vars(self, **overrides: Any) -> dict[str, Any]:
        zone, lab = self.zone, self.lab
        values = {
            "launchready_cloudflare_api_token": self.token,
            "launchready_cloudflare_api_base_url": lab.api_base_url,
            "launchready_http_resolve": ["*:80:127.0.0.1:%d" % lab.edge_http_port, "*:443:127.0.0.1:%d" % lab.edge_https_port],
            "launchready_http_ca_path": str(lab.edge_ca_file),
            "domain_routing_zone": zone,
            "domain_routing_subdomains": [{"name": "@", "addresses": ["127.0.0.1"]}, {"name": "www", "cname": "@"},
                                          {"name": "app", "addresses": ["127.0.0.1"]}, {"name": "admin", "addresses": ["127.0.0.1"]}],
            "domain_routing_nameservers": ["127.0.0.1:%d" % lab.dns_port],
            "domain_routing_edge_ipv4": ["127.0.0.1"],
            "domain_routing_canonical_host": zone,
            "domain_routing_redirect_map": {
                "old_domains": [{"zone": self.old}],
                "trailing_slash": "add",
                "paths": [{"from": "/pricing-old", "to": "/pricing/"}, {"from": "/team", "to": "/about/"},
                          {"from": "%s/careers" % self.old, "to": "/team"}, {"from": "/signup", "to": "https://app.%s/login" % zone}],
            },
            # The lab's home page links to its preview deployment: reported here, not fatal.
            "domain_routing_stale_links_severity": "can_wait",
            "edge_security_app_url": "https://app.%s" % zone,
            "edge_security_cache_bypass_paths": ["/admin", "/login", "/api/"],
            "edge_security_settings": {"brotli": True, "polish": "lossless"},
            "edge_security_firewall_rules": [
                {"ref": "block_probes", "expression": 'http.request.uri.path in {"/.env" "/.git/config"}', "action": "block"},
                {"ref": "admin_not_from_abuse_net", "expression": 'starts_with(http.request.uri.path, "/admin") and ip.src in {198.51.100.0/24}',
                 "action": "block"},
            ],
            "edge_security_origin_hosts": ["localhost"],
            "edge_security_origin_become": False,
            "edge_security_origin_key_path": str(self.tls_dir / "origin.key"),
            "edge_security_origin_certificate_path": str(self.tls_dir / "origin.pem"),
            "edge_security_origin_reload_request": {"url": lab.control_url + "/origin/certificate", "method": "PUT",
                                                    "body": {"cert_file": str(self.tls_dir / "origin.pem"), "key_file": str(self.tls_dir / "origin.key")}},
        }
        values.update(overrides)
        return values

    def run(self, text: str = LAUNCH, check: bool = False, skip_tags: str = "", **overrides: Any) -> tuple[Result, int]:
        """Run a playbook on the site; (its result, how many writes the Cloudflare emulator saw)."""
        self.lab.reset_calls()
        result = run_playbook(text, self.vars(**overrides), check=check, diff=True, env={"ANSIBLE_SKIP_TAGS": skip_tags} if skip_tags else None)
        assert self.token not in result.output, "the API token was printed"
        return result, self.lab.calls()["writes"]

    def api(self, method: str, path: str, body: Any = None) -> dict:
        answer = httpx.request(method, self.lab.api_base_url + path, json=body, headers={"Authorization": "Bearer " + self.token}, timeout=30)
        return answer.json()

    def rules(self, phase: str, zone: str | None = None) -> list[dict]:
        answer = self.api("GET", "/zones/%s/rulesets/phases/%s/entrypoint" % (self.lab.zone_id(zone or self.zone), phase))
        return answer["result"]["rules"] if answer["success"] else []

    def settings(self) -> dict:
        return {item["id"]: item["value"] for item in self.api("GET", "/zones/%s/settings" % self.lab.zone_id(self.zone))["result"]}

    def state(self) -> dict:
        """Everything the roles write, as the API shows it (to compare before and after a run that must not write)."""
        return {"settings": self.settings(), "records": self.lab.records(self.zone),
                "rules": {phase: self.rules(phase) for phase in (REDIRECT, CACHE, RATELIMIT, FIREWALL)}, "old": self.rules(REDIRECT, self.old)}


THEIR_REDIRECT = {"ref": "dashboard_redirect", "description": "made in the dashboard", "expression": 'http.request.uri.path eq "/theirs"',
                  "action": "redirect", "action_parameters": {"from_value": {"target_url": {"value": "https://example.org/theirs"}, "status_code": 302}}}
THEIR_CACHE = [
    {"ref": "dashboard_first", "expression": 'http.request.uri.path eq "/robots.txt"', "action": "set_cache_settings",
     "action_parameters": {"cache": True}},
    {"ref": "dashboard_second", "expression": 'http.request.uri.path eq "/favicon.ico"', "action": "set_cache_settings",
     "action_parameters": {"cache": True}, "enabled": False},
]


def stage_findings(result: Result) -> list[dict]:
    """Every finding the run collected (the last set_fact of launchready_findings)."""
    found = [entry for entry in result.results if "launchready_findings" in entry["result"].get("ansible_facts", {})]
    return found[-1]["result"]["ansible_facts"]["launchready_findings"] if found else []


def task(result: Result, suffix: str) -> dict:
    matches = [entry["result"] for entry in result.results if entry["task"].endswith(suffix)]
    assert matches, "no task ending with %r ran" % suffix
    return matches[-1]


@pytest.fixture(scope="module")
def site(lab: Lab, tmp_path_factory: pytest.TempPathFactory):
    zone = "stage%s.test" % uuid.uuid4().hex[:8]
    old = "old%s.test" % uuid.uuid4().hex[:8]
    lab.add_zone(zone)
    lab.add_zone(old)
    lab.seed_records(old, [{"type": "A", "name": "@", "content": "127.0.0.1", "proxied": True, "ttl": 1},
                           {"type": "CNAME", "name": "www", "content": old, "proxied": True, "ttl": 1}])
    token = lab.add_token(PERMISSIONS, zones=[zone, old])
    tls_dir = tmp_path_factory.mktemp("origin") / "tls"  # missing: the role creates it
    site = Site(lab, zone, old, token, tls_dir, None, -1, None, -1)  # type: ignore[arg-type]
    for phase, rules in ((REDIRECT, [THEIR_REDIRECT]), (CACHE, THEIR_CACHE)):
        answer = site.api("PUT", "/zones/%s/rulesets/phases/%s/entrypoint" % (lab.zone_id(zone), phase), {"rules": rules})
        assert answer["success"], answer
    try:
        before = site.state()
        # Verification has nothing to see before the launch: the preview alone.
        site.check, site.check_writes = site.run(check=True, skip_tags="verify")
        assert site.state() == before, "the check-mode run changed the zone"
        assert not tls_dir.exists(), "the check-mode run wrote on the origin"
        site.first, site.first_writes = site.run()
        yield site
    finally:
        # The lab's origin serves the installed certificate for every name: give other tests' zones their own back.
        lab.default_origin_certificate()
        lab.delete_zone(zone)
        lab.delete_zone(old)


@pytest.fixture(scope="module")
def second(site: Site) -> Site:
    """The launch once more with the same inputs (the rate limit, verified once already, left alone)."""
    if site.second is None:
        site.second, site.second_writes = site.run(edge_security_verify_rate_limit=False)
    return site


def edge(site: Site, **options: Any) -> httpx.Client:
    return site.lab.edge_client(**options)


# --- check mode, the launch, idempotence ------------------------------------------------------


def test_check_mode_previews_the_launch_and_writes_nothing(site):
    run = site.check
    assert run.rc == 0 and run.recap["changed"] > 0, run.output[-3000:]
    assert site.check_writes == 0
    settings = task(run, "Make the zone's settings match (SSL mode, TLS, always-HTTPS, HSTS, security level...)")
    assert {change["id"] for change in settings["changes"]} >= {"ssl", "always_use_https", "min_tls_version", "security_header"}
    assert "would create its folders and request a certificate" in run.output


def test_the_launch_passes_its_own_verification(site):
    run = site.first
    assert run.rc == 0 and run.recap["failed"] == 0, run.output[-5000:]
    assert site.first_writes > 0
    findings = stage_findings(run)
    assert {f["stage"] for f in findings} >= {"domain_routing", "edge_security"}
    blockers = [f for f in findings if f["severity"] == "must_do_now"]
    assert blockers == [], blockers
    # The one problem the lab's app has on purpose: links to its preview deployment.
    stale = [f for f in findings if f["severity"] == "can_wait" and f["stage"] == "domain_routing"]
    assert len(stale) == 1 and stale[0]["title"].startswith("No stale preview or staging links on https://%s/" % site.zone), stale
    assert "launch-demo.vercel.app" in stale[0]["evidence"], stale


def test_a_second_run_changes_nothing(second):
    run = second.second
    assert run.rc == 0 and run.recap["changed"] == 0, run.output[-5000:]
    assert second.second_writes == 0


# --- stage 3: settings, observed from the outside ---------------------------------------------


def test_zone_settings_are_applied_and_observed_at_the_edge(site):
    stored = site.settings()
    assert (stored["ssl"], stored["min_tls_version"], stored["tls_1_3"], stored["always_use_https"]) == ("strict", "1.2", "on", "on")
    assert (stored["automatic_https_rewrites"], stored["security_level"], stored["brotli"]) == ("on", "medium", "on")
    assert stored["security_header"]["strict_transport_security"] == {"enabled": True, "max_age": 15552000, "include_subdomains": True,
                                                                      "preload": False, "nosniff": True}
    with edge(site) as web:
        plain = web.get("http://app.%s/members?q=a" % site.zone)
        assert (plain.status_code, plain.headers["location"]) == (301, "https://app.%s/members?q=a" % site.zone)
        secure = web.get("https://app.%s/healthz" % site.zone)  # strict: the edge checks the origin's certificate
        assert secure.status_code == 200 and secure.headers["cf-ray"].endswith("-LAB")
        assert secure.headers["strict-transport-security"] == "max-age=15552000; includeSubDomains"
        assert secure.headers["x-content-type-options"] == "nosniff"
        home = web.get("https://%s/" % site.zone)
        assert "http://%s/" % site.zone not in home.text  # automatic HTTPS rewrites
    # TLS older than 1.2 is refused: the roles' own check tried each version.
    hosts = task(site.first, "Ask every name over https and http (TLS, HSTS, proxied, always-HTTPS, mixed content)")
    names = [entry for entry in hosts["results"] if entry["url"].startswith("https://") and entry["url"].endswith("/")]
    assert sorted(entry["url"] for entry in names) == sorted("https://%s/" % host for host in (site.zone, "www." + site.zone, "app." + site.zone,
                                                                                               "admin." + site.zone))
    # A version this machine's OpenSSL cannot offer is untested, never accepted.
    assert all(set(entry["tls"]["versions"]) == {"1.0", "1.1"} and set(entry["tls"]["versions"].values()) <= {"refused", "untested"} for entry in names)
    assert all(entry["tls"]["certificate"]["days_left"] >= 14 and entry["tls"]["chain_verified"] for entry in names)


def test_a_setting_the_free_plan_does_not_allow_is_reported_not_failed(site):
    result = task(site.first, "Make the zone's settings match (SSL mode, TLS, always-HTTPS, HSTS, security level...)")
    assert [f["title"] for f in result["findings"]] == ["Zone setting polish cannot be changed on this zone's plan"]
    assert result["findings"][0]["severity"] == "can_wait"
    assert "polish cannot be changed" in site.first.output  # the warning
    assert site.settings()["polish"] == "off"
    assert "Zone setting polish cannot be changed on this zone's plan" in [f["title"] for f in stage_findings(site.first)]


# --- stage 3: rules, observed from the outside -----------------------------------------------


def test_cache_rules_keep_the_zones_own_rules_first_and_private_pages_are_never_cached(second):
    site = second
    rules = site.rules(CACHE)
    assert [r["ref"] for r in rules] == ["dashboard_first", "dashboard_second", "launchready_cache_static", "launchready_bypass_private"]
    assert rules[1]["enabled"] is False and all(r["version"] == "1" for r in rules[:2])
    site.lab.purge_edge_cache(site.zone)
    with edge(site) as web:
        admin = [web.get("https://app.%s/admin" % site.zone).headers.get("cf-cache-status") for _attempt in (1, 2)]
        api = [web.get("https://app.%s/api/health" % site.zone).headers.get("cf-cache-status") for _attempt in (1, 2)]
        signed_in = [web.get("https://app.%s/static/app.css" % site.zone, headers={"Cookie": "session=abc"}).headers.get("cf-cache-status")
                     for _attempt in (1, 2)]
        static = [web.get("https://app.%s/static/app.css" % site.zone).headers.get("cf-cache-status") for _attempt in (1, 2)]
    assert admin == ["BYPASS", "BYPASS"] and api == ["BYPASS", "BYPASS"] and signed_in == ["BYPASS", "BYPASS"]
    assert static == ["MISS", "HIT"]
    second_pass = task(site.first, "Ask the never-cached pages again (none may come from the cache)")
    assert [f["severity"] for f in second_pass["findings"]] == ["ok"] * 3


def test_the_rate_limit_answers_429_past_the_threshold_and_sign_in_still_works(site):
    rules = site.rules(RATELIMIT)
    assert [r["ref"] for r in rules] == ["launchready_rate_limit_login"]
    assert rules[0]["ratelimit"] == {"characteristics": ["cf.colo.id", "ip.src"], "period": 10, "requests_per_period": 5, "mitigation_timeout": 10}
    verdict = [f for f in stage_findings(site.first) if f["title"] == "The sign-in page answers 429 past the rate limit"]
    assert len(verdict) == 1 and verdict[0]["severity"] == "ok" and "429 x" in verdict[0]["evidence"], verdict
    client = {"X-Lab-Client-IP": "203.0.113.%d" % (uuid.uuid4().int % 200 + 1)}
    with edge(site) as web:
        statuses = [web.get("https://app.%s/login" % site.zone, headers=client).status_code for _attempt in range(6)]
        prefix = web.get("https://app.%s/auth/token" % site.zone, headers=client).status_code
        elsewhere = web.get("https://app.%s/login" % site.zone, headers={"X-Lab-Client-IP": "203.0.113.250"}).status_code
    assert statuses == [200] * 5 + [429] and prefix == 429 and elsewhere == 200


def test_custom_rules_block_probes_and_an_ip_network(site):
    assert [r["ref"] for r in site.rules(FIREWALL)] == ["launchready_block_probes", "launchready_admin_not_from_abuse_net"]
    with edge(site) as web:
        assert web.get("https://app.%s/.env" % site.zone).status_code == 403
        assert web.get("https://app.%s/admin" % site.zone, headers={"X-Lab-Client-IP": ABUSE_NET_CLIENT}).status_code == 403
        assert web.get("https://app.%s/admin" % site.zone, headers={"X-Lab-Client-IP": "192.0.2.44"}).status_code != 403
        assert web.get("https://app.%s/members" % site.zone, headers={"X-Lab-Client-IP": ABUSE_NET_CLIENT}).status_code != 403


def test_the_origin_certificate_is_installed_and_served_under_ssl_strict(site):
    key, cert = site.tls_dir / "origin.key", site.tls_dir / "origin.pem"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and stat.S_IMODE(os.stat(site.tls_dir).st_mode) == 0o700
    issued = x509.load_pem_x509_certificate(cert.read_bytes())
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(site.lab.origin_ca_file.read_bytes()))
    names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == sorted([site.zone, "*." + site.zone])
    assert site.lab.origin_state()["certificate"] == "installed"
    # The origin's TLS front serves exactly that certificate, which the edge accepts in strict mode.
    context = ssl.create_default_context(cafile=str(site.lab.origin_ca_file))
    with socket.create_connection(("127.0.0.1", site.lab.origin_https_port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="app." + site.zone) as tls:
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    assert served.serial_number == issued.serial_number
    with edge(site) as web:
        assert web.get("https://admin.%s/healthz" % site.zone).status_code == 200
    verdict = [f for f in stage_findings(site.first) if f["title"] == "The origin certificate on localhost is valid"]
    assert len(verdict) == 1 and str(cert) in verdict[0]["evidence"]


# --- stage 2: the redirect map, observed from the outside ------------------------------------


def test_the_redirect_map_answers_in_one_hop_and_the_zones_own_rule_keeps_its_place(site):
    zone, old = site.zone, site.old
    rules = site.rules(REDIRECT)
    assert rules[0]["ref"] == "dashboard_redirect" and rules[0]["version"] == "1"
    assert [r["ref"] for r in rules[1:]] == ["launchready_redirect_pricing_old", "launchready_redirect_team", "launchready_redirect_signup",
                                             "launchready_redirect_alias_slash", "launchready_redirect_alias", "launchready_redirect_trailing_slash"]
    careers = "launchready_redirect_%s_careers" % old.replace(".", "_")
    assert [r["ref"] for r in site.rules(REDIRECT, old)] == ["launchready_redirect_pricing_old", "launchready_redirect_team", careers,
                                                             "launchready_redirect_signup", "launchready_redirect_alias_slash",
                                                             "launchready_redirect_alias"]
    with edge(site) as web:
        for url, location in [
            ("http://www.%s/members?q=a" % zone, "https://%s/members/?q=a" % zone),
            ("https://www.%s/" % zone, "https://%s/" % zone),
            ("http://%s/pricing-old" % zone, "https://%s/pricing/" % zone),
            ("https://www.%s/pricing-old/?utm=x" % zone, "https://%s/pricing/?utm=x" % zone),
            ("https://%s/about" % zone, "https://%s/about/" % zone),
            ("https://%s/team" % zone, "https://%s/about/" % zone),
            ("http://%s/anything/deeper?x=1" % old, "https://%s/anything/deeper/?x=1" % zone),
            ("https://www.%s/logo.png" % old, "https://%s/logo.png" % zone),
            ("https://%s/careers" % old, "https://%s/about/" % zone),  # careers -> /team -> /about/, written as its end
            ("https://%s/signup" % old, "https://app.%s/login" % zone),
        ]:
            answer = web.get(url)
            assert (answer.status_code, answer.headers.get("location")) == (301, location), url
            assert web.get(location).status_code not in (301, 302, 307, 308), "more than one hop: %s -> %s" % (url, location)
        theirs = web.get("https://%s/theirs" % zone)
        assert (theirs.status_code, theirs.headers["location"]) == (302, "https://example.org/theirs")
        assert web.get("https://%s/pricing/" % zone).status_code != 301  # the canonical host's own pages stay put
    checked = task(site.first, "Ask every source URL of the redirect map, and read the canonical pages")
    redirects = [entry for entry in checked["results"] if entry["status"] in (301, 308)]
    assert len(redirects) >= 40 and all(entry["passed"] and entry["redirects"] == 1 for entry in redirects)


def test_an_alias_url_that_a_canonical_host_entry_redirects_again_passes_the_roles_verification(lab):
    """www.<zone>/ answers the alias rule (to <zone>/, path kept), whose root entry redirects again (to /welcome/): the role
    must expect that first answer and two hops, as the edge gives them, or its own verification fails the launch."""
    zone = "hops%s.test" % uuid.uuid4().hex[:8]
    lab.add_zone(zone)
    token = lab.add_token(["zone:read", "dns_records:edit", "dynamic_url_redirects:edit"], zones=[zone])
    try:
        run = run_playbook(playbook("domain_routing"), {
            "launchready_cloudflare_api_token": token,
            "launchready_cloudflare_api_base_url": lab.api_base_url,
            "launchready_http_resolve": ["*:80:127.0.0.1:%d" % lab.edge_http_port, "*:443:127.0.0.1:%d" % lab.edge_https_port],
            "launchready_http_ca_path": str(lab.edge_ca_file),
            "domain_routing_zone": zone,
            "domain_routing_subdomains": [{"name": "@", "addresses": ["127.0.0.1"]}, {"name": "www", "cname": "@"}],
            "domain_routing_nameservers": ["127.0.0.1:%d" % lab.dns_port],
            "domain_routing_edge_ipv4": ["127.0.0.1"],
            "domain_routing_canonical_host": zone,
            "domain_routing_redirect_map": {"paths": [{"from": "https://%s/" % zone, "to": "/welcome/"}]},
            "domain_routing_stale_link_pages": [],
            "domain_routing_wait_timeout": 60,
        })
        assert token not in run.output, "the API token was printed"
        assert run.rc == 0 and run.recap["failed"] == 0, run.output[-5000:]
        checked = {entry["url"]: entry for entry in task(run, "Ask every source URL of the redirect map, and read the canonical pages")["results"]}
        assert all(entry["passed"] for entry in checked.values()), [entry["failed"] for entry in checked.values() if not entry["passed"]]
        for scheme in ("https", "http"):
            www_root = checked["%s://www.%s/?from=launchready" % (scheme, zone)]
            assert (www_root["status"], www_root["redirects"]) == (301, 2), www_root
            assert www_root["headers"]["location"] == "https://%s/?from=launchready" % zone, www_root
            root = checked["%s://%s/?from=launchready" % (scheme, zone)]
            assert (root["status"], root["redirects"], root["headers"]["location"]) == (301, 1, "https://%s/welcome/?from=launchready" % zone), root
            sample = checked["%s://www.%s/launchready-redirect-check?from=launchready" % (scheme, zone)]
            assert (sample["redirects"], sample["headers"]["location"]) == (1, "https://%s/launchready-redirect-check?from=launchready" % zone), sample
        assert len(checked) == 6
    finally:
        lab.delete_zone(zone)


# The Jinja plan must follow a map exactly as the collection's redirect model does.
RENDER = """
- name: Render the redirect plan
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Plan
      ansible.builtin.set_fact:
        plan: "{{{{ lookup('ansible.builtin.template', '{template}') | from_json }}}}"
      loop: "{{{{ maps }}}}"
      vars:
        domain_routing_zone: example.com
        domain_routing_canonical_host: "{{{{ item.canonical }}}}"
        domain_routing_redirect_map: "{{{{ item.map }}}}"
        domain_routing_subdomains: []
        domain_routing_extra_records: []
        domain_routing_stale_link_pages: []
        domain_routing_stale_links_severity: can_wait
      register: plans
""".format(template=REPO_ROOT / "roles" / "domain_routing" / "templates" / "redirect_plan.json.j2")

MAPS = [
    {"canonical": "example.com", "map": {"aliases": ["old-brand.example.com"], "paths": [
        {"from": "/pricing-old", "to": "/pricing"}, {"from": "old-brand.example.com/team", "to": "https://www.example.com/about"},
        {"from": "https://example.com/docs/", "to": "https://docs.example.net/start?x=1", "status": 302, "preserve_query_string": False}]}},
    {"canonical": "www.example.com", "map": {"trailing_slash": "add", "status": 308, "paths": [
        {"from": "/a", "to": "/b"}, {"from": "/b", "to": "/c/"}, {"from": "/", "to": "/home/", "status": 308},
        {"from": "/img.png", "to": "/images/img.png"}]}},
    {"canonical": "example.com", "map": {"www": False, "aliases": ["shop.example.com"], "trailing_slash": "add"}},
    # The www root answers the alias rule, then the canonical root's entry: two hops.
    {"canonical": "example.com", "map": {"paths": [{"from": "https://example.com/", "to": "/welcome/", "status": 302}]}},
]


def redirect_model(tmp_path: Path) -> Any:
    """The collection's redirect model, imported as Ansible imports it (through an ansible_collections tree)."""
    tree = tmp_path / "collections"
    (tree / "ansible_collections" / "launchready").mkdir(parents=True)
    (tree / "ansible_collections" / "launchready" / "core").symlink_to(REPO_ROOT, target_is_directory=True)
    sys.path.insert(0, str(tree))
    try:
        return importlib.import_module("ansible_collections.launchready.core.plugins.module_utils._redirects")
    finally:
        sys.path.remove(str(tree))


def test_the_roles_plan_follows_a_map_as_the_redirect_model_does(tmp_path):
    _redirects = redirect_model(tmp_path)
    run = run_playbook(RENDER, {"maps": MAPS})
    assert run.rc == 0, run.output[-3000:]
    for item, rendered in zip(MAPS, task(run, "Plan")["results"], strict=True):
        plan = rendered["ansible_facts"]["plan"]
        spec = dict(item["map"], canonical=item["canonical"])
        spec.setdefault("aliases", [])
        if spec.pop("www", True):
            spec["aliases"] = [_redirects.www_counterpart(item["canonical"]), *spec["aliases"]]
        model = _redirects.parse_redirect_map(spec, "example.com")
        assert plan["errors"] == [] and plan["zone_map"]["aliases"] == list(model.aliases)
        got = {}
        for expectation in plan["expectations"]:
            url, _mark, query = expectation["url"].partition("?")
            got[url] = (expectation["status"], expectation["location"], expectation["hops"], query)
        for wanted in _redirects.expectations(model):
            # A query string is sent unless the Location has one of its own that the rule adds to; a rule that keeps it shows it.
            query = "" if wanted["preserve_query_string"] and "?" in wanted["location"] else "from=launchready"
            location = wanted["location"] + ("?" + query if query and wanted["preserve_query_string"] else "")
            for url in (wanted["url"], "http" + wanted["url"][5:]):
                assert got[url] == ([wanted["status"]], location, wanted["hops"], query), url
        assert len(got) == 2 * len({w["url"] for w in _redirects.expectations(model)})
    www_root = [e for e in task(run, "Plan")["results"][3]["ansible_facts"]["plan"]["expectations"]
                if e["url"] == "https://www.example.com/?from=launchready"]
    assert www_root == [{"url": "https://www.example.com/?from=launchready", "status": [301], "location": "https://example.com/?from=launchready",
                         "hops": 2, "title": "https://www.example.com/?from=launchready answers 301 to https://example.com/?from=launchready"
                                             " (2 hops to its final URL)"}]


# --- bad inputs: a clear error, and nothing written ------------------------------------------


@pytest.mark.parametrize("stage, overrides, message", [
    ("edge_security", {"edge_security_settings": {"always_https": True}}, "unknown zone setting always_https; the settings this module knows are:"),
    ("edge_security", {"edge_security_settings": {"brotli": "maybe"}}, "brotli: 'maybe' (text) is not accepted; brotli accepts"),
    ("edge_security", {"edge_security_firewall_rules": [{"ref": "admin_only", "action": "block",
                                                        "expression": 'starts_with(http.request.uri.path, "/admin"'}]},
     "rules[0] (ref admin_only): the expression is not valid: unbalanced '(': it is never closed"),
    ("domain_routing", {"domain_routing_redirect_map": {"paths": [{"from": "/a", "to": "/b"}, {"from": "/b", "to": "https://{old}/c"},
                                                                  {"from": "{old}/c", "to": "/a"}], "old_domains": [{"zone": "{old}"}]}},
     "redirect loop in domain_routing_redirect_map: https://{zone}/a -> https://{zone}/b -> https://{old}/c -> https://{zone}/a"),
    ("domain_routing", {"domain_routing_redirect_map": {"paths": [{"from": "/shop", "to": "https://shop.{zone}/"}]}},
     "These redirect sources or targets do not resolve, so their redirects could never be followed (nothing was written): shop.{zone}"),
    ("domain_routing", {"domain_routing_canonical_host": "www.elsewhere.test"}, "domain_routing_canonical_host www.elsewhere.test is not in the zone {zone}"),
])
def test_bad_input_fails_clearly_and_writes_nothing(second, stage, overrides, message):
    site = second  # after the launches: a write would change what they left
    overrides = json.loads(json.dumps(overrides).replace("{old}", site.old).replace("{zone}", site.zone))
    before = site.state()
    run, writes = site.run(playbook(stage), **overrides)
    assert run.rc != 0 and run.recap["failed"] == 1, run.output[-3000:]
    assert message.format(zone=site.zone, old=site.old) in run.output, run.output[-3000:]
    assert writes == 0 and site.state() == before
