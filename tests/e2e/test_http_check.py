# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""launchready.core.http_check through ansible-playbook, against the lab edge over real HTTP and TLS.

Each test gets a zone of its own whose names are proxied to the lab origin; the zone's settings and
rules are set through the Cloudflare emulator (what the edge_security and domain_routing roles
write), then http_check looks at the edge from the outside: every name on ports 80 and 443 is
mapped to the edge with ``resolve``, and the edge's certificates are checked against the lab's edge CA.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.playbook import run_playbook
from tests.lab.client import Lab

PERMISSIONS = ["zone:read", "zone_settings:edit", "dynamic_url_redirects:edit", "cache_settings:edit"]
NEVER_CACHED = ["HIT", "STALE", "UPDATING", "REVALIDATED"]

CHECK = """
- name: Check the site from the outside
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check every URL
      launchready.core.http_check:
        expectations: "{{ expectations }}"
        resolve: "{{ resolve }}"
        ca_path: "{{ ca_path }}"
        stage: "{{ stage | default(omit) }}"
        fail_on: "{{ fail_on | default('never') }}"
"""


class Zone:
    """A fresh zone on the lab: apex, www, app and old proxied to the origin, direct not proxied."""

    def __init__(self, lab: Lab, name: str, api: httpx.Client):
        self.lab, self.name, self.api = lab, name, api
        self.id = lab.zone_id(name)

    def host(self, label: str = "") -> str:
        return "%s.%s" % (label, self.name) if label else self.name

    def url(self, label: str, path: str = "/", scheme: str = "https") -> str:
        return "%s://%s%s" % (scheme, self.host(label), path)

    def settings(self, **values) -> None:
        answer = self.api.patch("/zones/%s/settings" % self.id, json={"items": [{"id": key, "value": value} for key, value in values.items()]})
        assert answer.status_code == 200 and answer.json()["success"], answer.text

    def rules(self, phase: str, rules: list[dict]) -> None:
        answer = self.api.put("/zones/%s/rulesets/phases/%s/entrypoint" % (self.id, phase), json={"rules": rules})
        assert answer.status_code == 200 and answer.json()["success"], answer.text


@pytest.fixture
def zone(lab: Lab):
    name = "h%s.test" % uuid.uuid4().hex[:10]
    lab.add_zone(name)
    lab.seed_records(name, [
        {"type": "A", "name": "@", "content": "127.0.0.1", "proxied": True, "ttl": 1},
        {"type": "CNAME", "name": "www", "content": name, "proxied": True, "ttl": 1},
        {"type": "A", "name": "app", "content": "127.0.0.1", "proxied": True, "ttl": 1},
        {"type": "A", "name": "old", "content": "127.0.0.1", "proxied": True, "ttl": 1},
        {"type": "A", "name": "direct", "content": "127.0.0.1", "proxied": False, "ttl": 1},
    ])  # fmt: skip
    token = lab.add_token(PERMISSIONS, zones=[name])
    flags = lab.origin_state()["flags"]
    with httpx.Client(base_url=lab.api_base_url, headers={"Authorization": "Bearer " + token}, timeout=30) as api:
        yield Zone(lab, name, api)
    lab.set_origin_flags(**flags)
    lab.set_edge_certificate_days(90)
    lab.delete_zone(name)


def launched(zone: Zone) -> None:
    """The zone as the edge_security and domain_routing roles leave it, in front of an app without launch problems."""
    zone.lab.set_origin_flags(stale_preview_links=False, mixed_content=False)
    hsts = {"strict_transport_security": {"enabled": True, "max_age": 15552000, "include_subdomains": True, "preload": False, "nosniff": True}}
    zone.settings(always_use_https="on", min_tls_version="1.2", security_header=hsts, ssl="strict")
    www = zone.url("www")[:-1]
    zone.rules("http_request_dynamic_redirect", [
        {"ref": "lr_apex_old", "expression": 'http.host in {"%s" "%s"}' % (zone.host(), zone.host("old")), "action": "redirect",
         "action_parameters": {"from_value": {"target_url": {"expression": 'concat("%s", http.request.uri.path)' % www}, "status_code": 301,
                                              "preserve_query_string": True}}},
    ])  # fmt: skip
    zone.rules("http_request_cache_settings", [
        {"ref": "lc_static", "expression": 'starts_with(http.request.uri.path, "/static/")', "action": "set_cache_settings",
         "action_parameters": {"cache": True}},
    ])  # fmt: skip


def expectations(zone: Zone) -> list[dict]:
    www = zone.url("www")
    return [
        {"url": zone.url("", scheme="http"), "status": 301, "location": www, "hops": 1, "title": "http apex goes to www in one hop"},
        {"url": zone.url(""), "status": 301, "location": www, "hops": 1},
        {"url": zone.url("old", "/login?next=/admin", scheme="http"), "status": 301, "location": www + "login?next=/admin", "hops": 1},
        {"url": zone.url("www", scheme="http"), "status": 301, "location": www, "hops": 1},
        {"url": www, "status": 200, "title": "The home page", "body_contains": "Launch demo community", "mixed_content": True, "stale_links": True,
         "hsts": {"min_max_age": 15552000, "include_subdomains": True}, "headers": {"match": {"server": "^cloudflare$"}, "present": ["cf-ray"]},
         "cache_status_not": NEVER_CACHED, "tls": {"min_days_left": 14, "min_version": "1.2"}},
        {"url": zone.url("www", "/admin"), "status": 303, "location": "/login?next=/admin", "cache_status_not": NEVER_CACHED},
        {"url": zone.url("www", "/login"), "status": 200, "cache_status_not": NEVER_CACHED, "body_contains": "Sign in"},
        {"url": zone.url("www", "/static/app.css"), "status": 200, "cache_status": ["MISS", "HIT"]},
        {"url": zone.url("app", "/healthz"), "json": {"status": "ok", "release": "lab", "length(version) > `0`": True},
         "tls": {"min_days_left": 14, "min_version": "1.2"}},
    ]  # fmt: skip


def check(lab: Lab, items: list[dict], **extra):
    resolve = ["*:80:127.0.0.1:%d" % lab.edge_http_port, "*:443:127.0.0.1:%d" % lab.edge_https_port]
    return run_playbook(CHECK, dict({"expectations": items, "resolve": resolve, "ca_path": str(lab.edge_ca_file)}, **extra))


def test_a_launched_zone_passes_every_check_over_real_tls(lab: Lab, zone: Zone):
    launched(zone)
    lab.clear_edge_log()
    lab.reset_calls()
    run = check(lab, expectations(zone), stage="edge_security", fail_on="must_do_now")
    assert run.rc == 0, run.output
    assert run.recap["ok"] == 1 and run.recap["changed"] == 0 and run.recap["failed"] == 0
    result = run.task("Check every URL")
    assert result["summary"] == {"must_do_now": 0, "can_wait": 0, "ok": 9}, result["findings"]
    assert all(finding["stage"] == "edge_security" for finding in result["findings"])

    by_url = {entry["url"]: entry for entry in result["results"]}
    home = by_url[zone.url("www")]
    assert home["headers"]["strict-transport-security"] == "max-age=15552000; includeSubDomains"
    assert home["headers"]["cf-cache-status"] == "DYNAMIC"
    assert home["tls"]["chain_verified"] is True and home["tls"]["versions"] == {"1.0": "refused", "1.1": "refused"}
    assert home["tls"]["certificate"]["dns_names"] == [zone.host("www")]
    assert home["tls"]["certificate"]["issuer"] == "CN=Launch Lab Edge Root CA,O=Launch Lab" and 89 < home["tls"]["certificate"]["days_left"] <= 90
    assert home["hops"][0]["address"] == "127.0.0.1:%d" % lab.edge_https_port
    old = by_url[zone.url("old", "/login?next=/admin", scheme="http")]
    assert [(hop["status"], hop["location"]) for hop in old["hops"]] == [(301, zone.url("www", "/login?next=/admin")), (200, None)]
    assert by_url[zone.url("www", "/static/app.css")]["headers"]["cf-cache-status"] in ("MISS", "HIT")

    assert lab.calls()["total"] == 0, "http_check never calls the Cloudflare API"
    seen = {(entry["scheme"], entry["method"], entry["host"]) for entry in lab.edge_log()}
    assert seen == {("http", "GET", zone.host()), ("https", "GET", zone.host()), ("http", "GET", zone.host("old")),
                    ("http", "GET", zone.host("www")), ("https", "GET", zone.host("www")), ("https", "GET", zone.host("app"))}  # fmt: skip


def test_what_is_wrong_at_the_edge_is_found_from_the_outside(lab: Lab, zone: Zone):
    # A zone nobody has secured: TLS 1.0 accepted, no HSTS, no always-HTTPS, no redirect rules; a page with a
    # preview link and an http image; edge certificates about to expire.
    lab.set_origin_flags(stale_preview_links=True, mixed_content=True)
    lab.set_edge_certificate_days(5)
    zone.settings(automatic_https_rewrites="off")
    zone.rules("http_request_cache_settings", [
        {"ref": "lc_all", "expression": 'http.host ne ""', "action": "set_cache_settings", "action_parameters": {"cache": True}},
    ])  # fmt: skip
    items = expectations(zone)
    check(lab, [items[4]])  # the home page, once, so that the cache rule makes the next answer a HIT
    run = check(lab, items, fail_on="must_do_now")
    assert run.rc != 0 and run.recap["failed"] == 1
    result = run.task("Check every URL")
    assert result["msg"].startswith("6 HTTP finding(s) at or above must_do_now: ")
    assert result["summary"] == {"must_do_now": 6, "can_wait": 0, "ok": 3}
    failed = {entry["url"]: entry["failed"] for entry in result["results"]}
    www = zone.url("www")
    for url, target in ((zone.url("", scheme="http"), www), (zone.url(""), www), (zone.url("www", scheme="http"), www),
                        (zone.url("old", "/login?next=/admin", scheme="http"), www + "login?next=/admin")):
        assert failed[url] == [
            "status: expected 301, got 200", "location: expected %s, got no Location header (status 200)" % target,
            "hops: expected 1 redirect(s) before the final answer, got 0",
        ], url  # fmt: skip
    expiry = "tls expiry: %.1f days left (expires %s), at least 14 wanted"
    home = failed[www]
    assert home[2] in {expiry % (days, home[2].split("expires ")[1][:10]) for days in (4.9, 5.0)}, home[2]
    assert home[:2] + home[3:] == [
        "hsts: no Strict-Transport-Security header",
        "cf-cache-status: HIT, which must not be",
        "tls versions: TLS 1.0 is accepted, the minimum is 1.2",
        "tls versions: TLS 1.1 is accepted, the minimum is 1.2",
        "mixed content: 1 http:// subresource(s): <img src> http://%s/static/logo.svg" % zone.host("www"),
        "stale links: 2 link(s) to preview, staging or local hosts: https://launch-demo.vercel.app/pricing (*.vercel.app), "
        "https://launch-demo.vercel.app/docs/getting-started (*.vercel.app)",
    ]
    health = failed[zone.url("app", "/healthz")]
    assert health[0].startswith("tls expiry: ") and health[1:] == [
        "tls versions: TLS 1.0 is accepted, the minimum is 1.2", "tls versions: TLS 1.1 is accepted, the minimum is 1.2",
    ]  # fmt: skip
    assert failed[zone.url("www", "/admin")] == failed[zone.url("www", "/login")] == [], "no-store answers are not cached"
    assert failed[zone.url("www", "/static/app.css")] == []
    fixes = " ".join(finding["fix"] for finding in result["findings"])
    assert "Refuse TLS versions below 1.2" in fixes and "Renew the certificate of %s" % zone.host("www") in fixes
    assert "Exclude %s from Cloudflare's cache" % www in fixes

    # Automatic HTTPS Rewrites fixes the mixed content at the edge, and the finding goes away.
    zone.settings(automatic_https_rewrites="on")
    lab.purge_edge_cache(zone.name)
    fixed = check(lab, [dict(items[4], tls={"min_days_left": 1})]).task("Check every URL")
    assert [line for line in fixed["results"][0]["failed"] if line.startswith("mixed content")] == []


def test_check_mode_only_looks(lab: Lab, zone: Zone):
    launched(zone)
    lab.clear_edge_log()
    lab.reset_calls()
    items = expectations(zone)[:5]
    run = run_playbook(CHECK, {"expectations": items, "resolve": ["*:80:127.0.0.1:%d" % lab.edge_http_port, "*:443:127.0.0.1:%d" % lab.edge_https_port],
                               "ca_path": str(lab.edge_ca_file)}, check=True)  # fmt: skip
    assert run.rc == 0 and run.recap["changed"] == 0
    assert run.task("Check every URL")["summary"] == {"must_do_now": 0, "can_wait": 0, "ok": 5}
    assert lab.calls()["total"] == 0
    assert {entry["method"] for entry in lab.edge_log()} == {"GET"}


def test_names_the_edge_does_not_serve(lab: Lab, zone: Zone):
    items = [
        {"url": zone.url("direct"), "title": "An unproxied name over https"},
        {"url": zone.url("direct", scheme="http"), "status": 200, "severity": "can_wait"},
        {"url": zone.url("www"), "tls": {"min_days_left": 14}},
    ]
    result = check(lab, items).task("Check every URL")
    unproxied, plain, proxied = result["results"]
    assert unproxied["status"] is None and unproxied["tls"] is None and unproxied["error"]
    finding = next(finding for finding in result["findings"] if finding["title"].startswith("An unproxied name"))
    assert finding["title"] == "An unproxied name over https does not answer" and finding["severity"] == "must_do_now"
    assert plain["status"] == 530 and plain["failed"] == ["status: expected 200, got 530"]
    assert proxied["passed"] is True
