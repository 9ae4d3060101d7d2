# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Self-tests of the lab, part 2: zone settings, rulesets and Origin CA in the API emulator, and the
edge and origin observed from outside, over real HTTP and TLS (httpx through ResolveTransport, the
ssl module for handshakes)."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import socket
import ssl
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.lab.client import Lab

EDGE_PERMISSIONS = ["zone:read", "dns_records:edit", "zone_settings:edit", "dynamic_url_redirects:edit", "cache_settings:edit",
                    "zone_waf:edit", "ssl_and_certificates:edit"]
REQUIRED_SETTINGS = ("ssl", "always_use_https", "min_tls_version", "tls_1_3", "automatic_https_rewrites", "security_header",
                     "security_level", "browser_check", "brotli", "early_hints", "opportunistic_encryption")
RAY = re.compile(r"^[0-9a-f]{16}-LAB$")
WEBHOOK_SECRET = b"lab-webhook-secret-not-a-secret"  # tests/lab/origin.py gives the lab's app this fake secret


@dataclass
class Site:
    """A fresh zone whose names all lead to the lab origin: apex, www, app, old, legacy proxied; direct not."""

    name: str
    zone_id: str
    api: httpx.Client

    def host(self, label: str = "") -> str:
        return "%s.%s" % (label, self.name) if label else self.name


@pytest.fixture
def site(lab: Lab):
    name = "e%s.test" % uuid.uuid4().hex[:10]
    zone_id = lab.add_zone(name)
    lab.seed_records(name, [
        {"type": "A", "name": "@", "content": "127.0.0.1", "proxied": True, "ttl": 1},
        {"type": "CNAME", "name": "www", "content": name, "proxied": True, "ttl": 1},
        {"type": "A", "name": "app", "content": "127.0.0.1", "proxied": True, "ttl": 1},
        {"type": "A", "name": "old", "content": "127.0.0.1", "proxied": True, "ttl": 1},
        {"type": "A", "name": "legacy", "content": "127.0.0.1", "proxied": True, "ttl": 1},
        {"type": "A", "name": "direct", "content": "127.0.0.1", "proxied": False, "ttl": 1},
    ])
    token = lab.add_token(EDGE_PERMISSIONS, zones=[name])
    with httpx.Client(base_url=lab.api_base_url, headers={"Authorization": "Bearer " + token}, timeout=30) as api:
        yield Site(name, zone_id, api)
    lab.delete_zone(name)


@pytest.fixture
def web(lab: Lab):
    """An httpx client on the edge (any host, ports 80 and 443), trusting the lab edge CA, not following redirects."""
    with lab.edge_client() as client:
        yield client


def ok(answer: httpx.Response) -> dict:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    return body["result"]


def error_codes(answer: httpx.Response) -> list[int]:
    body = answer.json()
    assert body["success"] is False and body["result"] is None
    return [error["code"] for error in body["errors"]]


def edit_settings(site: Site, **values) -> list[dict]:
    return ok(site.api.patch("/zones/%s/settings" % site.zone_id, json={"items": [{"id": key, "value": value} for key, value in values.items()]}))


def put_rules(site: Site, phase: str, rules: list[dict]) -> httpx.Response:
    return site.api.put("/zones/%s/rulesets/phases/%s/entrypoint" % (site.zone_id, phase), json={"rules": rules})


def redirect_rule(ref: str, expression: str, target: dict, status: int = 301, preserve: bool = False, enabled: bool = True) -> dict:
    return {"ref": ref, "expression": expression, "action": "redirect", "enabled": enabled, "description": ref,
            "action_parameters": {"from_value": {"target_url": target, "status_code": status, "preserve_query_string": preserve}}}


def handshake(lab: Lab, host: str, maximum: str, minimum: str = "TLSv1") -> str:
    """The protocol version a TLS handshake with the edge ends on (ssl.SSLError if refused)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(lab.edge_ca_file))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = getattr(ssl.TLSVersion, minimum)
        context.maximum_version = getattr(ssl.TLSVersion, maximum)
    return connect(lab, host, context)[0]


def connect(lab: Lab, host: str, context: ssl.SSLContext | None = None) -> tuple[str, dict]:
    """(protocol version, certificate) of a TLS handshake with the edge for ``host``."""
    context = context or ssl.create_default_context(cafile=str(lab.edge_ca_file))
    with socket.create_connection(("127.0.0.1", lab.edge_https_port), timeout=10) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        return str(tls.version()), tls.getpeercert() or {}


def new_csr(hostname: str, kind: str = "ecc") -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ecc" else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
           .sign(key, hashes.SHA256()))
    key_text = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key_text


def self_signed(hostname: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())


# The edge in front of the origin


def test_proxied_names_are_served_by_the_edge_with_its_certificate_and_headers(lab: Lab, site: Site, web: httpx.Client):
    for url in ("https://%s/healthz" % site.host("app"), "http://%s/healthz" % site.host("www")):
        answer = web.get(url)
        assert answer.status_code == 200 and answer.json()["release"] == "lab" and answer.json()["version"] == "1.0.0"
        assert answer.headers["server"] == "cloudflare" and RAY.match(answer.headers["cf-ray"])
        assert answer.headers["cf-cache-status"] == "DYNAMIC"
    assert web.get("https://%s/" % site.host()).status_code == 200, "the apex is proxied too"

    cert = connect(lab, site.host("app"))[1]
    assert cert["subjectAltName"] == (("DNS", site.host("app")),)
    assert dict(part[0] for part in cert["issuer"])["commonName"] == "Launch Lab Edge Root CA"
    last = lab.edge_log()[-1]
    assert last["host"] == site.host() and last["status"] == 200 and last["origin_status"] == 200


def test_names_that_are_not_proxied_are_not_served_by_the_edge(lab: Lab, site: Site, web: httpx.Client):
    for host in (site.host("direct"), "nowhere.example.net", site.host("missing")):
        answer = web.get("http://%s/" % host)
        assert answer.status_code == 530 and "Error 1001" in answer.text
        with pytest.raises(httpx.ConnectError):
            web.get("https://%s/" % host)
    direct = httpx.get("http://127.0.0.1:%d/healthz" % lab.origin_http_port, headers={"Host": site.host("direct")})
    assert direct.status_code == 200 and "cf-ray" not in direct.headers, "an unproxied name reaches the origin without the edge"


def test_records_the_lab_cannot_reach_answer_522_and_530(lab: Lab, site: Site, web: httpx.Client):
    lab.seed_records(site.name, [
        {"type": "A", "name": "far", "content": "192.0.2.10", "proxied": True, "ttl": 1},
        {"type": "CNAME", "name": "ext", "content": "launch-demo.vercel.app", "proxied": True, "ttl": 1},
    ])
    assert web.get("https://%s/" % site.host("far")).status_code == 522
    unresolved = web.get("https://%s/" % site.host("ext"))
    assert unresolved.status_code == 530 and "Error 1016" in unresolved.text


def test_always_use_https_and_hsts_follow_the_zone_settings(site: Site, web: httpx.Client):
    assert web.get("http://%s/members?q=ada" % site.host("www")).status_code == 303, "off by default: the origin answers"
    assert "strict-transport-security" not in web.get("https://%s/" % site.host("www")).headers

    hsts = {"strict_transport_security": {"enabled": True, "max_age": 15552000, "include_subdomains": True, "preload": True, "nosniff": True}}
    edit_settings(site, always_use_https="on", security_header=hsts)
    moved = web.get("http://%s/members?q=ada" % site.host("www"))
    assert moved.status_code == 301 and moved.headers["location"] == "https://%s/members?q=ada" % site.host("www")
    assert "strict-transport-security" not in moved.headers, "HSTS is sent over HTTPS only"
    secure = web.get("https://%s/" % site.host("www"))
    assert secure.headers["strict-transport-security"] == "max-age=15552000; includeSubDomains; preload"
    assert secure.headers["x-content-type-options"] == "nosniff"

    edit_settings(site, security_header={"strict_transport_security": {"include_subdomains": False, "preload": False, "nosniff": False}})
    assert web.get("https://%s/" % site.host("www")).headers["strict-transport-security"] == "max-age=15552000"
    edit_settings(site, security_header={"strict_transport_security": {"enabled": False}})
    assert "strict-transport-security" not in web.get("https://%s/" % site.host("www")).headers


def test_minimum_tls_version_refuses_older_handshakes(lab: Lab, site: Site):
    host = site.host("app")
    assert handshake(lab, host, "TLSv1_1") == "TLSv1.1", "a new zone accepts TLS 1.0 and up"
    edit_settings(site, min_tls_version="1.2")
    with pytest.raises(ssl.SSLError):
        handshake(lab, host, "TLSv1_1")
    assert handshake(lab, host, "TLSv1_2") == "TLSv1.2"
    edit_settings(site, min_tls_version="1.3")
    for older in ("TLSv1_1", "TLSv1_2"):
        with pytest.raises(ssl.SSLError):
            handshake(lab, host, older)
    assert handshake(lab, host, "TLSv1_3") == "TLSv1.3"
    edit_settings(site, min_tls_version="1.2", tls_1_3="off")
    assert handshake(lab, host, "TLSv1_3") == "TLSv1.2", "tls_1_3 off caps the edge at TLS 1.2"


def test_ssl_modes_towards_the_origin(lab: Lab, site: Site, web: httpx.Client):
    host = site.host("app")
    url = "https://%s/healthz" % host
    assert web.get(url).status_code == 200, "flexible (the default): HTTP to the origin"
    edit_settings(site, ssl="strict")
    assert web.get(url).status_code == 200, "strict: the origin's default certificate comes from the lab Origin CA"
    try:
        lab.install_origin_certificate(*self_signed(host))
        assert web.get(url).status_code == 526
        edit_settings(site, ssl="full")
        assert web.get(url).status_code == 200, "full accepts any certificate"
        edit_settings(site, ssl="flexible")
        assert web.get(url).status_code == 200
        edit_settings(site, ssl="strict")
        lab.install_origin_certificate(*lab.issue_origin_certificate(["other.%s" % site.name]))
        wrong_name = web.get(url)
        assert wrong_name.status_code == 526 and "Invalid SSL certificate" in wrong_name.text

        csr, key_text = new_csr(host)
        issued = ok(site.api.post("/certificates", json={"csr": csr, "hostnames": [host], "requested_validity": 7, "request_type": "origin-ecc"}))
        lab.install_origin_certificate(issued["certificate"], key_text)
        assert web.get(url).status_code == 200, "a certificate from POST /certificates is valid in strict mode"
        ok(site.api.request("DELETE", "/certificates/%s" % issued["id"], json={}))
        assert web.get(url).status_code == 526, "a revoked origin certificate is refused"
    finally:
        lab.default_origin_certificate()
    assert web.get(url).status_code == 200
    edit_settings(site, ssl="off")
    off = web.get(url)
    assert off.status_code == 301 and off.headers["location"] == "http://%s/healthz" % host


def test_edge_certificates_last_as_long_as_the_lab_says(lab: Lab, site: Site):
    lab.set_edge_certificate_days(5)
    try:
        expires = ssl.cert_time_to_seconds(connect(lab, site.host("www"))[1]["notAfter"])
        assert 4 * 86400 < expires - time.time() <= 5 * 86400
    finally:
        lab.set_edge_certificate_days(90)


def test_redirect_rules_with_static_and_dynamic_targets(lab: Lab, site: Site, web: httpx.Client):
    www = "https://" + site.host("www")
    rules = [
        redirect_rule("lr_old", 'http.host in {"%s" "%s"}' % (site.host("old"), site.host("legacy")),
                      {"expression": 'concat("%s", http.request.uri.path)' % www}, preserve=True),
        redirect_rule("lr_apex", 'http.host eq "%s" and not starts_with(http.request.uri.path, "/.well-known/")' % site.host(),
                      {"expression": 'concat("%s", http.request.uri.path)' % www}, preserve=True),
        redirect_rule("lr_blog", '(http.host eq "%s") and (starts_with(http.request.uri.path, "/blog/") or http.request.uri.path eq "/blog")'
                      % site.host("www"), {"value": "https://blog.example.net/"}, status=302),
        redirect_rule("lr_off", 'http.host eq "%s"' % site.host("www"), {"value": "https://nowhere.example.net/"}, enabled=False),
        redirect_rule("lr_pdf", 'ends_with(http.request.uri.path, ".pdf") and http.host ne "%s"' % site.host("old"),
                      {"expression": 'concat("https://files.%s", http.request.uri.path)' % site.name}, status=308),
        redirect_rule("lr_full", 'http.request.full_uri eq "%s/old-pricing"' % www, {"value": www + "/pricing"}),
    ]
    ok(put_rules(site, "http_request_dynamic_redirect", rules))
    edit_settings(site, always_use_https="on")
    expected = [
        ("http://%s/pricing?plan=pro" % site.host("old"), 301, www + "/pricing?plan=pro"),  # one hop: the rule before always-HTTPS
        ("https://%s/" % site.host("legacy"), 301, www + "/"),
        ("https://%s/a/b" % site.host(), 301, www + "/a/b"),
        ("%s/blog/post?y=2" % www, 302, "https://blog.example.net/"),
        ("%s/docs/guide.pdf" % www, 308, "https://files.%s/docs/guide.pdf" % site.name),
        ("%s/old-pricing" % www, 301, www + "/pricing"),
        ("http://%s/" % site.host("www"), 301, www + "/"),  # no rule: always-HTTPS
    ]
    for url, status, location in expected:
        answer = web.get(url)
        assert (answer.status_code, answer.headers.get("location")) == (status, location), url
        assert "cf-cache-status" not in answer.headers
    assert web.get("https://%s/.well-known/security.txt" % site.host()).status_code == 404, "excluded from the apex rule"
    assert web.get(www + "/").status_code == 200, "a disabled rule does nothing"
    with lab.edge_client(follow_redirects=True) as follower:
        final = follower.get("http://%s/" % site.host("old"))
    assert final.status_code == 200 and str(final.url) == www + "/" and len(final.history) == 1


def test_cache_statuses(lab: Lab, site: Site, web: httpx.Client):
    www = "https://" + site.host("www")
    assert [web.get(www + "/static/app.css").headers["cf-cache-status"] for _attempt in range(2)] == ["MISS", "HIT"]
    hit = web.get(www + "/static/app.css")
    assert hit.headers["cache-control"] == "public, max-age=86400" and int(hit.headers["age"]) >= 0
    assert [web.get(www + "/").headers["cf-cache-status"] for _attempt in range(2)] == ["DYNAMIC", "DYNAMIC"], "HTML is not cached by default"
    assert web.post(www + "/login", data={"email": "x@y.test", "password": "no"}).headers["cf-cache-status"] == "DYNAMIC"

    rules = [
        {"ref": "lc_nostatic", "expression": 'starts_with(http.request.uri.path, "/static/logo")', "action": "set_cache_settings",
         "action_parameters": {"cache": False}},
        {"ref": "lc_pages", "expression": 'http.request.uri.path in {"/" "/login" "/healthz"}', "action": "set_cache_settings",
         "action_parameters": {"cache": True}},
        {"ref": "lc_health", "expression": 'http.request.uri.path eq "/api/health"', "action": "set_cache_settings",
         "action_parameters": {"cache": True, "edge_ttl": {"mode": "override_origin", "default": 1}}},
    ]
    ok(put_rules(site, "http_request_cache_settings", rules))
    assert web.get(www + "/static/logo.svg").headers["cf-cache-status"] == "BYPASS"
    assert [web.get(www + "/").headers["cf-cache-status"] for _attempt in range(2)] == ["MISS", "HIT"], "a cache rule caches HTML"
    assert web.get(www + "/login").headers["cf-cache-status"] == "BYPASS", "Cache-Control: no-store from the origin"
    assert web.get(www + "/healthz").headers["cf-cache-status"] == "BYPASS"
    assert [web.get(www + "/api/health").headers["cf-cache-status"] for _attempt in range(2)] == ["MISS", "HIT"]
    time.sleep(1.2)
    assert web.get(www + "/api/health").headers["cf-cache-status"] == "EXPIRED"
    signed_in = web.post(www + "/login", data={"email": "admin@launch-demo.test", "password": "lab-demo-password"})
    assert signed_in.status_code == 303 and signed_in.headers["cf-cache-status"] == "DYNAMIC"

    assert lab.purge_edge_cache(site.name) >= 2
    assert web.get(www + "/static/app.css").headers["cf-cache-status"] == "MISS"


def test_rate_limit_answers_429_past_the_threshold(lab: Lab, site: Site, web: httpx.Client):
    rule = {"ref": "lrl_login", "expression": 'http.request.uri.path eq "/login"', "action": "block",
            "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"], "period": 10, "requests_per_period": 5, "mitigation_timeout": 10}}
    ok(put_rules(site, "http_ratelimit", [rule]))
    login = "https://%s/login" % site.host("www")
    assert [web.get(login).status_code for _attempt in range(5)] == [200] * 5
    limited = web.get(login)
    assert limited.status_code == 429 and "Error 1015" in limited.text and 1 <= int(limited.headers["retry-after"]) <= 10
    assert web.get(login).status_code == 429, "the mitigation lasts"
    assert web.get("https://%s/" % site.host("www")).status_code == 200, "other paths are not limited"
    assert web.get(login, headers={"X-Lab-Client-IP": "198.51.100.7"}).status_code == 200, "counted per client address"
    lab.reset_rate_limits()
    assert web.get(login).status_code == 200


def test_custom_rules_block_challenge_and_skip(site: Site, web: httpx.Client):
    rules = [
        {"ref": "lf_skip", "expression": 'http.request.uri.path eq "/admin/payments"', "action": "skip", "action_parameters": {"ruleset": "current"}},
        {"ref": "lf_log", "expression": 'http.host ne ""', "action": "log"},
        {"ref": "lf_admin", "expression": 'starts_with(http.request.uri.path, "/admin")', "action": "block"},
        {"ref": "lf_json", "expression": 'http.request.uri.path eq "/private"', "action": "block",
         "action_parameters": {"response": {"status_code": 451, "content": '{"error": "unavailable"}', "content_type": "application/json"}}},
        {"ref": "lf_challenge", "expression": 'http.request.uri.path eq "/members" and http.user_agent contains "curl"', "action": "managed_challenge"},
    ]
    ok(put_rules(site, "http_request_firewall_custom", rules))
    www = "https://" + site.host("www")
    blocked = web.get(www + "/admin")
    assert blocked.status_code == 403 and "Sorry, you have been blocked" in blocked.text
    assert web.get(www + "/admin/payments").status_code == 303, "skipped: the origin sends the visitor to the login page"
    custom = web.get(www + "/private")
    assert custom.status_code == 451 and custom.json() == {"error": "unavailable"}
    challenged = web.get(www + "/members", headers={"User-Agent": "curl/8.0"})
    assert challenged.status_code == 403 and challenged.headers["cf-mitigated"] == "challenge"
    assert web.get(www + "/members").status_code == 303


def test_the_edge_keeps_up_with_keep_alive(lab: Lab, site: Site, web: httpx.Client):
    url = "https://%s/api/health" % site.host("app")
    started = time.monotonic()
    statuses = [web.get(url).status_code for _attempt in range(150)]
    assert statuses == [200] * 150
    assert time.monotonic() - started < 3.0, "150 requests on one kept-alive connection in under 3 s (50/s)"

    results: list[int] = []

    def worker() -> None:
        with lab.edge_client() as client:
            results.extend(client.get(url).status_code for _attempt in range(40))

    threads = [threading.Thread(target=worker) for _thread in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 160 and time.monotonic() - started < 4.0


# The origin app through the edge


def test_origin_app_pages_api_and_webhook(lab: Lab, site: Site, web: httpx.Client):
    www = "https://" + site.host("www")
    assert web.get(www + "/members").headers["location"] == "/login?next=/members"
    signed_in = web.post(www + "/login", data={"email": "admin@launch-demo.test", "password": "lab-demo-password", "next": "/admin"})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin"
    cookie = signed_in.headers["set-cookie"]
    web.cookies.clear()  # the session goes explicitly where it is needed below
    assert "HttpOnly" in cookie and "Secure" in cookie, "the app knows the visitor used HTTPS (X-Forwarded-Proto)"
    session = {"Cookie": cookie.split(";")[0]}
    members = web.get(www + "/members", params={"q": "ada"}, headers=session)
    assert members.status_code == 200 and "Ada " in members.text and members.headers["cache-control"] == "private, no-store"
    assert web.get(www + "/admin/payments", headers=session).status_code == 200
    assert web.post(www + "/login", data={"email": "admin@launch-demo.test", "password": "wrong"}).status_code == 401

    assert web.get(www + "/api/members").status_code == 401
    listed = web.get(www + "/api/members", params={"q": "berger"}, headers=session).json()
    assert listed["count"] == len(listed["members"]) > 0 and all("berger" in member["email"] for member in listed["members"])
    assert web.get(www + "/api/members", headers={"Authorization": "Bearer lab-api-token-not-a-secret"}).status_code == 200
    assert web.get(www + "/api/health").json() == {"status": "ok"}

    event = b'{"id": "evt_1", "type": "payment.succeeded"}'
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET, event, hashlib.sha256).hexdigest()
    received = web.post(www + "/webhooks/payments", content=event, headers={"X-Signature": signature, "Content-Type": "application/json"})
    assert received.status_code == 200 and received.json() == {"received": True, "id": "evt_1"}
    forged = web.post(www + "/webhooks/payments", content=event, headers={"X-Signature": "sha256=" + "0" * 64})
    assert forged.status_code == 401
    health = web.get(www + "/healthz").json()
    assert health["status"] == "ok" and health["release"] == "lab" and health["version"] == "1.0.0"


def test_stale_preview_links_and_mixed_content_can_be_switched(lab: Lab, site: Site, web: httpx.Client):
    home = "https://%s/" % site.host("www")
    page = web.get(home).text
    assert "https://launch-demo.vercel.app/pricing" in page
    assert 'src="https://%s/static/logo.svg"' % site.host("www") in page, "Automatic HTTPS Rewrites (on by default) fixes the mixed content"
    edit_settings(site, automatic_https_rewrites="off")
    assert 'src="http://%s/static/logo.svg"' % site.host("www") in web.get(home).text
    assert 'src="http://%s/static/logo.svg"' % site.host("www") in web.get("http://%s/" % site.host("www")).text
    try:
        assert lab.set_origin_flags(stale_preview_links=False, mixed_content=False)["stale_preview_links"] is False
        page = web.get(home).text
        assert "vercel.app" not in page and "http://" not in page
    finally:
        lab.set_origin_flags(stale_preview_links=True, mixed_content=True)
    assert "launch-demo.vercel.app" in web.get(home).text


# The API emulator: zone settings


def test_zone_settings_are_listed_with_editable_and_modified_on(lab: Lab, site: Site):
    listed = {setting["id"]: setting for setting in ok(site.api.get("/zones/%s/settings" % site.zone_id))}
    assert set(REQUIRED_SETTINGS) <= set(listed)
    assert listed["ssl"] == {"id": "ssl", "value": "flexible", "modified_on": None, "editable": True}
    assert listed["security_header"]["value"]["strict_transport_security"]["enabled"] is False
    assert {key for key, setting in listed.items() if not setting["editable"]} >= {"polish", "webp", "sort_query_string_for_cache", "advanced_ddos"}

    edited = edit_settings(site, ssl="strict", min_tls_version="1.2")
    assert [setting["id"] for setting in edited] == ["ssl", "min_tls_version"]
    assert edited[0]["value"] == "strict" and edited[0]["modified_on"]
    one = ok(site.api.get("/zones/%s/settings/ssl" % site.zone_id))
    assert one == edited[0]
    single = ok(site.api.patch("/zones/%s/settings/early_hints" % site.zone_id, json={"value": "on"}))
    assert single["value"] == "on" and single["editable"] is True

    pro = "pro%s.test" % uuid.uuid4().hex[:8]
    pro_id = lab.add_zone(pro, plan="pro")
    try:
        token = lab.add_token(["zone_settings:edit"], zones=[pro])
        headers = {"Authorization": "Bearer " + token}
        pro_polish = httpx.get(lab.api_base_url + "/zones/%s/settings/polish" % pro_id, headers=headers).json()["result"]
        assert pro_polish["editable"] is True, "polish needs Pro"
    finally:
        lab.delete_zone(pro)


def test_zone_settings_errors_change_nothing(lab: Lab, site: Site):
    url = "/zones/%s/settings" % site.zone_id
    unknown = site.api.patch(url + "/no_such_setting", json={"value": "on"})
    assert unknown.status_code == 400 and error_codes(unknown) == [1006]
    assert unknown.json()["errors"][0]["message"] == "Unrecognized zone setting name: no_such_setting"
    for setting_id, value in (("ssl", "very-strict"), ("min_tls_version", 1.2), ("always_use_https", True),
                              ("security_header", {"strict_transport_security": {"max_age": "long"}})):
        wrong = site.api.patch("%s/%s" % (url, setting_id), json={"value": value})
        assert wrong.status_code == 400 and error_codes(wrong) == [1007], setting_id
        assert wrong.json()["errors"][0]["message"] == "Invalid value for zone setting %s" % setting_id
    gated = site.api.patch(url + "/polish", json={"value": "lossless"})
    assert gated.status_code == 400 and error_codes(gated) == [1011]

    bulk = site.api.patch(url, json={"items": [{"id": "always_use_https", "value": "on"}, {"id": "ssl", "value": "bogus"}]})
    assert bulk.status_code == 400 and error_codes(bulk) == [1007]
    assert ok(site.api.get(url + "/always_use_https"))["value"] == "off", "a failed bulk edit changes nothing"
    unknown_bulk = site.api.patch(url, json={"items": [{"id": "always_use_https", "value": "on"}, {"id": "nope", "value": "on"}]})
    assert unknown_bulk.status_code == 400 and error_codes(unknown_bulk) == [1006]
    assert [violation["route"] for violation in lab.violations()] == ["/zones/{zone_id}/settings"] * 2, "the schema knows neither 'bogus' nor 'nope'"
    lab.clear_violations()
    assert ok(site.api.get(url + "/always_use_https"))["value"] == "off"

    reader = lab.add_token(["zone_settings:read"], zones=[site.name])
    refused = httpx.patch(lab.api_base_url + url + "/ssl", json={"value": "full"}, headers={"Authorization": "Bearer " + reader})
    assert refused.status_code == 403 and error_codes(refused) == [10000]


# The API emulator: rulesets


def test_entrypoint_rulesets_are_created_versioned_and_keep_rule_ids(lab: Lab, site: Site):
    url = "/zones/%s/rulesets/phases/http_request_cache_settings/entrypoint" % site.zone_id
    missing = site.api.get(url)
    assert missing.status_code == 404 and error_codes(missing) == [10003]
    assert missing.json()["errors"][0]["message"] == "could not find entrypoint ruleset in the http_request_cache_settings phase"

    rule = {"ref": "lc_admin", "expression": 'starts_with(http.request.uri.path, "/admin")', "action": "set_cache_settings",
            "action_parameters": {"cache": False}, "description": "never cache admin"}
    first = ok(put_rules(site, "http_request_cache_settings", [rule]))
    assert first["version"] == "1" and first["kind"] == "zone" and first["phase"] == "http_request_cache_settings"
    stored = first["rules"][0]
    assert re.fullmatch(r"[0-9a-f]{32}", stored["id"]) and stored["ref"] == "lc_admin" and stored["enabled"] is True and stored["version"] == "1"
    assert ok(site.api.get(url)) == first

    other = {"expression": 'http.request.uri.path eq "/api"', "action": "set_cache_settings", "action_parameters": {"cache": False}}
    second = ok(put_rules(site, "http_request_cache_settings", [dict(rule, id=stored["id"]), other]))
    assert second["version"] == "2" and second["id"] == first["id"]
    assert second["rules"][0]["id"] == stored["id"] and second["rules"][0]["version"] == "1", "an unchanged rule keeps its version"
    assert second["rules"][1]["ref"] == second["rules"][1]["id"], "ref defaults to the id"
    changed = ok(put_rules(site, "http_request_cache_settings", [dict(rule, id=stored["id"], description="changed")]))
    assert changed["rules"][0]["version"] == "2" and len(changed["rules"]) == 1


@pytest.mark.parametrize(("phase", "rule", "pointer", "needle"), [
    ("http_request_dynamic_redirect", redirect_rule("r", 'http.hots eq "a.test"', {"value": "https://a.test/"}), "/rules/0/expression",
     "unknown identifier"),
    ("http_request_dynamic_redirect", redirect_rule("r", 'http.host eq "a.test"', {"expression": 'concat("https://a.test", http.path)'}),
     "/rules/0/action_parameters/from_value/target_url/expression", "unknown identifier"),
    ("http_request_dynamic_redirect", redirect_rule("r", 'http.host eq "a.test"', {"value": "/relative"}),
     "/rules/0/action_parameters/from_value/target_url/value", "absolute"),
    ("http_request_firewall_custom", redirect_rule("r", 'http.host eq "a.test"', {"value": "https://a.test/"}), "/rules/0/action",
     "not a valid action"),
    ("http_ratelimit", {"ref": "r", "expression": 'http.request.uri.path eq "/login"', "action": "block",
                        "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"], "period": 60, "requests_per_period": 5}},
     "/rules/0/ratelimit/period", "period must be one of 10"),
    ("http_ratelimit", {"ref": "r", "expression": 'http.request.uri.path eq "/login"', "action": "block",
                        "ratelimit": {"characteristics": ["ip.src"], "period": 10, "requests_per_period": 5}},
     "/rules/0/ratelimit/characteristics", "cf.colo.id"),
])
def test_invalid_rules_are_refused_with_a_pointer(site: Site, phase, rule, pointer, needle):
    answer = put_rules(site, phase, [rule])
    assert answer.status_code == 400 and error_codes(answer) == [20021]
    error = answer.json()["errors"][0]
    assert error["source"] == {"pointer": pointer} and needle in error["message"]
    assert site.api.get("/zones/%s/rulesets/phases/%s/entrypoint" % (site.zone_id, phase)).status_code == 404


def test_rule_expression_errors_read_like_cloudflare(site: Site):
    answer = put_rules(site, "http_request_firewall_custom", [{"expression": 'http.host eq "a.test" garbage', "action": "block"}])
    assert answer.json()["errors"][0]["message"] == ('Filter parsing error (1:23):\nhttp.host eq "a.test" garbage\n'
                                                     '                      ^^^^^^^ unrecognised input\n')
    two = {"ref": "r%d", "expression": 'http.request.uri.path eq "/login"', "action": "block",
           "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"], "period": 10, "requests_per_period": 5, "mitigation_timeout": 10}}
    too_many = put_rules(site, "http_ratelimit", [dict(two, ref="a"), dict(two, ref="b")])
    assert too_many.status_code == 400 and "at most 1 rate limiting rule" in too_many.json()["errors"][0]["message"]
    duplicate = put_rules(site, "http_request_firewall_custom", [{"ref": "x", "expression": "ssl", "action": "block"}] * 2)
    assert duplicate.status_code == 400 and duplicate.json()["errors"][0]["source"] == {"pointer": "/rules/1/ref"}


def test_each_phase_needs_its_own_permission(lab: Lab, site: Site):
    token = lab.add_token(["cache_settings:edit"], zones=[site.name])
    headers = {"Authorization": "Bearer " + token}
    base = lab.api_base_url + "/zones/%s/rulesets/phases/%%s/entrypoint" % site.zone_id
    rule = {"expression": 'http.request.uri.path eq "/x"', "action": "set_cache_settings", "action_parameters": {"cache": False}}
    assert httpx.put(base % "http_request_cache_settings", json={"rules": [rule]}, headers=headers).status_code == 200
    refused = httpx.put(base % "http_request_dynamic_redirect", json={"rules": []}, headers=headers)
    assert refused.status_code == 403 and error_codes(refused) == [10000]
    assert httpx.get(base % "http_ratelimit", headers=headers).status_code == 403


# The API emulator: Origin CA


def test_origin_ca_signs_lists_and_revokes(lab: Lab, site: Site):
    hostnames = [site.host(), "*." + site.name]
    csr, _key = new_csr(site.host(), kind="rsa")
    issued = ok(site.api.post("/certificates", json={"csr": csr, "hostnames": hostnames, "requested_validity": 90, "request_type": "origin-rsa"}))
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    ca = x509.load_pem_x509_certificate(Path(lab.origin_ca_file).read_bytes())
    cert.verify_directly_issued_by(ca)
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == hostnames
    assert issued["id"] == str(cert.serial_number) and len(issued["id"]) <= 32
    assert 89 <= (cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)).days <= 90
    assert issued["hostnames"] == hostnames and issued["request_type"] == "origin-rsa" and issued["requested_validity"] == 90

    need_zone = site.api.get("/certificates")
    assert need_zone.status_code == 400 and error_codes(need_zone) == [1012]
    assert [entry["id"] for entry in ok(site.api.get("/certificates", params={"zone_id": site.zone_id}))] == [issued["id"]]
    assert ok(site.api.get("/certificates/%s" % issued["id"]))["certificate"] == issued["certificate"]
    assert ok(site.api.request("DELETE", "/certificates/%s" % issued["id"], json={})) == {"id": issued["id"]}
    assert ok(site.api.get("/certificates", params={"zone_id": site.zone_id})) == []
    assert ok(site.api.get("/certificates/%s" % issued["id"]))["revoked_at"]


def test_origin_ca_refuses_bad_requests(lab: Lab, site: Site):
    csr, _key = new_csr(site.host(), kind="ecc")
    mismatch = site.api.post("/certificates", json={"csr": csr, "hostnames": [site.host()], "request_type": "origin-rsa"})
    assert mismatch.status_code == 400 and error_codes(mismatch) == [1010]
    garbage = site.api.post("/certificates", json={"csr": "not a csr", "hostnames": [site.host()], "request_type": "origin-ecc"})
    assert garbage.status_code == 400 and error_codes(garbage) == [1010]
    elsewhere = site.api.post("/certificates", json={"csr": csr, "hostnames": ["launch-demo.test"], "request_type": "origin-ecc"})
    assert elsewhere.status_code == 403 and error_codes(elsewhere) == [1016], "a zone the token does not reach"
    dns_only = lab.add_token(["zone:read", "dns_records:edit"], zones=[site.name])
    refused = httpx.post(lab.api_base_url + "/certificates", headers={"Authorization": "Bearer " + dns_only},
                         json={"csr": csr, "hostnames": [site.host()], "request_type": "origin-ecc"})
    assert refused.status_code == 403 and error_codes(refused) == [10000]
    assert ok(site.api.get("/certificates", params={"zone_id": site.zone_id})) == []


# Lifecycle


def test_a_fresh_lab_starts_quickly_and_keeps_settings_rules_and_cas_across_a_restart(tmp_path: Path):
    started = time.monotonic()
    own = Lab.start(tmp_path / "lab")
    try:
        assert time.monotonic() - started < 2.0, "every e2e session starts a lab"
        ca_before = Path(own.edge_ca_file).read_bytes()
        zone_id = own.zone_id("launch-demo.test")
        headers = {"Authorization": "Bearer lab-demo-token-not-a-secret"}
        base = own.api_base_url + "/zones/%s" % zone_id
        assert httpx.patch(base + "/settings/ssl", json={"value": "full"}, headers=headers).status_code == 200
        rule = redirect_rule("lr_www", 'http.host eq "launch-demo.test"', {"value": "https://www.launch-demo.test/"})
        assert httpx.put(base + "/rulesets/phases/http_request_dynamic_redirect/entrypoint", json={"rules": [rule]}, headers=headers).status_code == 200
        own.seed_records("launch-demo.test", [{"type": "A", "name": "@", "content": "127.0.0.1", "proxied": True, "ttl": 1}])
        own.restart()
        base = own.api_base_url + "/zones/%s" % zone_id  # ports change on a restart
        assert Path(own.edge_ca_file).read_bytes() == ca_before, "clients keep trusting the lab after a restart"
        assert httpx.get(base + "/settings/ssl", headers=headers).json()["result"]["value"] == "full"
        with own.edge_client() as client:
            assert client.get("https://launch-demo.test/x").headers["location"] == "https://www.launch-demo.test/"
        assert own.violations() == []
    finally:
        own.stop()
