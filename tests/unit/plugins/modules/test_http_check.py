# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""http_check, the whole module, against in-process HTTP and HTTPS servers on 127.0.0.1 (the assertions one by one: test_http_expectations.py)."""

from __future__ import annotations

import json
import time

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.launchready.core.plugins.module_utils import _http_check
from ansible_collections.launchready.core.plugins.modules import http_check
from ansible_collections.launchready.core.tests.unit.plugins.http_responder import Pki, Site

APEX, WWW, API = "example.test", "www.example.test", "api.example.test"
HTML = "text/html; charset=utf-8"
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


@pytest.fixture
def launch(pki):
    """An http server that redirects to https, and an https server for the three names, as a launched site answers."""
    plain, secure = Site.start(), Site.start(tls=pki.leaf([APEX, WWW, API]))
    plain.route("/", 301, [("Location", "https://%s/" % WWW)], host=APEX)
    plain.route("/", 301, [("Location", "https://%s/" % WWW)], host=WWW)
    secure.route("/", 301, [("Location", "https://%s/" % WWW)], host=APEX)
    secure.route("/", 200, [("Content-Type", HTML), HSTS, ("cf-cache-status", "DYNAMIC"), ("X-Frame-Options", "DENY")],
                 '<link rel="stylesheet" href="/static/app.css"><h1>Welcome</h1><a href="https://%s/login">Sign in</a>' % WWW, host=WWW)
    secure.route("/admin", 302, [("Location", "/login?next=/admin"), HSTS, ("cf-cache-status", "BYPASS")], host=WWW)
    secure.route("/login?next=/admin", 200, [("Content-Type", HTML), HSTS], "<form method=post></form>", host=WWW)
    secure.route("/healthz", 200, [("Content-Type", "application/json"), HSTS], json.dumps({"status": "ok", "database": {"connected": True}}), host=API)
    yield plain, secure
    plain.stop()
    secure.stop()


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        http_check.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    return result


def options(plain: Site, secure: Site, pki: Pki, expectations: list[dict], **extra) -> dict:
    resolve = ["*:80:127.0.0.1:%d" % plain.port, {"host": "*", "port": 443, "address": "127.0.0.1", "address_port": secure.port}]
    return dict(expectations=expectations, resolve=resolve, ca_path=str(pki.ca_file), **extra)


LAUNCH = [
    {"url": "http://%s/" % APEX, "status": 301, "location": "https://%s/" % WWW, "hops": 1},
    {"url": "https://%s/" % APEX, "status": [301, 308], "location": "https://%s/" % WWW, "hops": 1},
    {"url": "http://%s/" % WWW, "status": 301, "location": "https://%s/" % WWW, "hops": 1},
    {"url": "https://%s/" % WWW, "status": 200, "title": "The home page", "hsts": {"min_max_age": 15552000, "include_subdomains": True},
     "headers": {"present": ["x-frame-options"], "absent": ["x-powered-by"], "match": {"content-type": "^text/html"}},
     "cache_status": ["DYNAMIC", "MISS"], "body_contains": ["Welcome", "Sign in"], "body_not_contains": "Traceback",
     "tls": {"min_days_left": 14, "min_version": "1.2"}, "mixed_content": True, "stale_links": True},
    {"url": "https://%s/admin" % WWW, "status": 302, "location": "/login?next=/admin", "hops": 1,
     "cache_status_not": ["HIT", "STALE", "UPDATING", "REVALIDATED"]},
    {"url": "https://%s/healthz" % API, "json": {"status": "ok", "database.connected": True}, "tls": {"min_days_left": 14}},
]  # fmt: skip


def test_a_launched_site_passes_every_check(launch, pki, capsys):
    plain, secure = launch
    result = run(capsys, **options(plain, secure, pki, LAUNCH, stage="domain_routing", fail_on="must_do_now"))
    assert result["changed"] is False and result["checked"] == 6
    assert result["summary"] == {"must_do_now": 0, "can_wait": 0, "ok": 6}
    assert [(f["stage"], f["severity"], f["title"]) for f in result["findings"]] == [
        ("domain_routing", "ok", "GET http://example.test/: all 3 checks passed"),
        ("domain_routing", "ok", "GET https://example.test/: all 5 checks passed"),
        ("domain_routing", "ok", "GET http://www.example.test/: all 3 checks passed"),
        ("domain_routing", "ok", "The home page: all 17 checks passed"),
        ("domain_routing", "ok", "GET https://www.example.test/admin: all 6 checks passed"),
        ("domain_routing", "ok", "GET https://api.example.test/healthz: all 6 checks passed"),
    ]
    home = result["results"][3]
    assert home["status"] == 200 and home["passed"] is True and home["failed"] == []
    assert home["headers"] == {"content-type": HTML, "strict-transport-security": HSTS[1], "cf-cache-status": "DYNAMIC", "x-frame-options": "DENY"}
    assert home["hops"] == [{"url": "https://%s/" % WWW, "status": 200, "location": None, "elapsed_ms": home["hops"][0]["elapsed_ms"],
                             "address": "127.0.0.1:%d" % secure.port, "error": ""}]  # fmt: skip
    assert home["tls"]["chain_verified"] is True and home["tls"]["versions"] == {"1.0": "refused", "1.1": "refused"}
    assert home["tls"]["certificate"]["dns_names"] == [APEX, WWW, API] and 89 < home["tls"]["certificate"]["days_left"] <= 90
    assert [hop["status"] for hop in result["results"][0]["hops"]] == [301, 200] and result["results"][0]["tls"] is None

    assert sorted((r["method"], r["host"], r["path"]) for r in plain.requests()) == [("GET", APEX, "/"), ("GET", WWW, "/")]
    assert sorted((r["method"], r["host"], r["sni"], r["path"]) for r in secure.requests()) == sorted([
        ("GET", APEX, APEX, "/"), ("GET", WWW, WWW, "/"),  # the apex over https, and its redirect target
        ("GET", WWW, WWW, "/"), ("GET", WWW, WWW, "/"),  # the two http redirects' target
        ("GET", WWW, WWW, "/"),  # the home page
        ("GET", WWW, WWW, "/admin"), ("GET", WWW, WWW, "/login?next=/admin"),
        ("GET", API, API, "/healthz"),
    ])  # fmt: skip
    assert all(r["user_agent"] == "launchready.core http_check" and r["body"] == b"" for r in secure.requests())


def test_a_broken_site_gets_one_finding_per_expectation_with_every_failure(launch, pki, capsys):
    plain, secure = launch
    plain.route("/", 302, [("Location", "https://%s/" % APEX)], host=APEX)
    secure.route("/", 200, [("Content-Type", HTML), ("Strict-Transport-Security", "max-age=300"), ("cf-cache-status", "DYNAMIC"),
                            ("X-Powered-By", "Express")],
                 '<script src="http://cdn.example.test/a.js"></script><a href="https://acme-git-main.vercel.app/">Sign in</a>', host=WWW)
    secure.route("/admin", 200, [("Content-Type", HTML), HSTS, ("cf-cache-status", "HIT")], "<h1>Admin</h1>", host=WWW)
    secure.route("/healthz", 503, [("Content-Type", "application/json")], json.dumps({"status": "down", "database": {"connected": False}}), host=API)
    expectations = [dict(item) for item in LAUNCH]
    expectations[5]["severity"] = "can_wait"
    result = run(capsys, **options(plain, secure, pki, expectations))
    assert "failed" not in result, "fail_on defaults to never"
    assert result["summary"] == {"must_do_now": 3, "can_wait": 1, "ok": 2}
    titles = [(f["severity"], f["title"]) for f in result["findings"]]
    assert titles == [
        ("must_do_now", "GET http://example.test/: 3 of 3 checks failed (status, location, hops)"),
        ("must_do_now", "The home page: 7 of 17 checks failed (headers, hsts, body, mixed_content, stale_links)"),
        ("must_do_now", "GET https://www.example.test/admin: 4 of 6 checks failed (status, location, hops, cache_status)"),
        ("can_wait", "GET https://api.example.test/healthz: 3 of 6 checks failed (status, json)"),
        ("ok", "GET https://example.test/: all 5 checks passed"),
        ("ok", "GET http://www.example.test/: all 3 checks passed"),
    ]
    home = result["findings"][1]
    assert home["evidence"].split("; failed: ")[1] == (
        'header x-frame-options: missing; header x-powered-by: present ("Express") but must be absent; '
        "hsts: max-age=300, at least 15552000 expected; hsts: includeSubDomains missing, expected; "
        'body: does not contain "Welcome"; mixed content: 1 http:// subresource(s): <script src> http://cdn.example.test/a.js; '
        "stale links: 1 link(s) to preview, staging or local hosts: https://acme-git-main.vercel.app/ (*.vercel.app)"
    )
    assert result["results"][3]["failed"] == home["evidence"].split("; failed: ")[1].split("; ")
    assert result["findings"][0]["evidence"] == (
        "http://example.test/ 302 -> https://example.test/ 301 -> https://www.example.test/ 200 (%d ms); failed: status: expected 301, got 302; "
        "location: expected https://www.example.test/, got https://example.test/; hops: expected 1 redirect(s) before the final answer, got 2"
        % result["results"][0]["elapsed_ms"]
    )
    assert "Exclude https://www.example.test/admin from Cloudflare's cache" in result["findings"][2]["fix"]


@pytest.mark.parametrize(("fail_on", "fails"), [("never", False), ("must_do_now", False), ("can_wait", True)])
def test_fail_on(launch, pki, capsys, fail_on, fails):
    plain, secure = launch
    expectations = [{"url": "https://%s/" % WWW, "status": 204, "severity": "can_wait"}, {"url": "https://%s/" % APEX}]
    result = run(capsys, **options(plain, secure, pki, expectations, fail_on=fail_on))
    assert result.get("failed", False) is fails
    if fails:
        assert result["msg"] == "1 HTTP finding(s) at or above can_wait: GET https://www.example.test/: 1 of 3 checks failed (status)"
    assert result["summary"] == {"must_do_now": 0, "can_wait": 1, "ok": 1} and len(result["results"]) == 2


def test_fail_on_must_do_now_fails_the_task_with_the_results(launch, pki, capsys):
    plain, secure = launch
    result = run(capsys, **options(plain, secure, pki, [{"url": "https://%s/missing" % WWW, "status": 200}], fail_on="must_do_now"))
    assert result["failed"] is True
    assert result["msg"] == "1 HTTP finding(s) at or above must_do_now: GET https://www.example.test/missing: 1 of 3 checks failed (status)"
    assert result["results"][0]["status"] == 404 and result["findings"][0]["fix"].startswith("Nothing is served at https://www.example.test/missing")


def test_check_mode_asks_the_same_questions_and_changes_nothing(launch, pki, capsys):
    plain, secure = launch
    normal = run(capsys, **options(plain, secure, pki, LAUNCH))
    asked = sorted((r["method"], r["host"], r["path"]) for r in plain.requests() + secure.requests())
    plain.seen.clear()
    secure.seen.clear()
    checked = run(capsys, _ansible_check_mode=True, **options(plain, secure, pki, LAUNCH))
    assert checked["changed"] is False
    assert [(f["severity"], f["title"]) for f in checked["findings"]] == [(f["severity"], f["title"]) for f in normal["findings"]]
    assert sorted((r["method"], r["host"], r["path"]) for r in plain.requests() + secure.requests()) == asked
    assert {method for method, _host, _path in asked} == {"GET"}, "only the methods the expectations name are sent"


def test_resolve_and_tls_without_a_trusted_ca(launch, capsys, tmp_path):
    plain, secure = launch
    expectations = [
        {"url": "https://%s/" % WWW, "status": 200},
        {"url": "https://%s/" % WWW, "status": 200, "title": "untrusted but allowed", "tls": {"verify_chain": False}},
    ]
    other = Pki(tmp_path, name="Other CA")
    result = run(capsys, **options(plain, secure, other, expectations))
    (verified, waived) = result["results"]
    assert verified["failed"] == ["tls chain: not trusted (unable to get local issuer certificate; issuer CN=Test Root CA)"]
    assert verified["tls"]["chain_verified"] is False and verified["status"] == 200, "the request was still made"
    assert waived["passed"] is True


def test_expectations_are_checked_concurrently(launch, pki, capsys):
    plain, secure = launch

    def slow(_request):
        time.sleep(0.3)
        return b"ok"

    secure.route("/slow", 200, [("Content-Type", "text/plain")], slow, host=WWW)
    expectations = [{"url": "https://%s/slow" % WWW, "body_contains": "ok", "tls": {"verify_chain": False}} for _copy in range(10)]
    started = time.monotonic()
    result = run(capsys, **options(plain, secure, pki, expectations, concurrency=10))
    assert time.monotonic() - started < 2.0, "10 answers of 0.3 s each, at once"
    assert result["summary"]["ok"] == 10
    started = time.monotonic()
    run(capsys, **options(plain, secure, pki, expectations[:4], concurrency=1))
    assert time.monotonic() - started >= 1.2, "one at a time"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expectations": [{"url": "https://www.example.test/", "json": {"a ==": 1}}]},
         "expectations[0] (https://www.example.test/): json expression 'a ==' is not valid JMESPath"),
        ({"expectations": [{"url": "http://www.example.test/", "hsts": {"min_max_age": 1}}]},
         "expectations[0] (http://www.example.test/): hsts needs an https:// URL"),
        ({"resolve": ["www.example.test:443"]}, "resolve[0]: 'www.example.test:443' is not host:port:address or host:port:address:port"),
        ({"ca_path": "/nonexistent/ca.pem"}, "ca_path /nonexistent/ca.pem cannot be read as a PEM CA bundle"),
        ({"timeout": 0}, "timeout must be more than 0 seconds"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"retry_interval": 0}, "retry_for must be 0 or more seconds and retry_interval more than 0"),
        ({"expectations": [{"url": "https://www.example.test/", "status": "ok"}]}, "Elements value for option 'status'"),
    ],
)  # fmt: skip
def test_bad_options_fail_before_any_request(launch, pki, capsys, change, message):
    plain, secure = launch
    args = options(plain, secure, pki, [{"url": "https://%s/" % WWW}])
    args.update(change)
    result = run(capsys, **args)
    assert result["failed"] is True and message in result["msg"]
    assert plain.requests() == [] and secure.requests() == [] and secure.handshakes == 0


def test_missing_libraries(monkeypatch, capsys):
    monkeypatch.setattr(_http_check, "JMESPATH_IMPORT_ERROR", "Traceback: no jmespath")
    result = run(capsys, expectations=[{"url": "http://127.0.0.1:9/", "json": {"a": 1}}])
    assert result["failed"] is True and result["msg"].startswith("Failed to import the required Python library (jmespath)")
    monkeypatch.setattr(_http_check, "HTTPX_IMPORT_ERROR", "Traceback: no httpx")
    result = run(capsys, expectations=[{"url": "http://127.0.0.1:9/"}])
    assert result["failed"] is True and result["msg"].startswith("Failed to import the required Python library (httpx)")


def test_jmespath_is_needed_only_for_json_assertions(monkeypatch, capsys):
    site = Site.start()
    site.route("/", 200, body="fine")
    try:
        monkeypatch.setattr(_http_check, "JMESPATH_IMPORT_ERROR", "Traceback: no jmespath")
        monkeypatch.setattr(_http_check, "CRYPTOGRAPHY_IMPORT_ERROR", "Traceback: no cryptography")
        result = run(capsys, expectations=[{"url": site.url("/"), "body_contains": "fine"}])
        assert result["summary"] == {"must_do_now": 0, "can_wait": 0, "ok": 1}
    finally:
        site.stop()


def test_retry_for_asks_again_only_what_does_not_hold_yet(launch, pki, capsys):
    plain, secure = launch
    answers = iter([b'{"status": "starting"}'] * 3)

    def reloading(_request):
        return next(answers, b'{"status": "ok"}')

    secure.route("/ready", 200, [("Content-Type", "application/json")], reloading, host=API)
    expectations = [{"url": "https://%s/ready" % API, "json": {"status": "ok"}}, {"url": "https://%s/healthz" % API, "status": 200}]
    result = run(capsys, **options(plain, secure, pki, expectations, retry_for=5, retry_interval=0.05))
    assert result["rounds"] == 4 and result["summary"]["ok"] == 2
    paths = [request["path"] for request in secure.requests()]
    assert paths.count("/ready") == 4 and paths.count("/healthz") == 1

    started = time.monotonic()
    never = run(capsys, **options(plain, secure, pki, [{"url": "https://%s/healthz" % API, "status": 503}], retry_for=0.5, retry_interval=0.1))
    assert 0.3 <= time.monotonic() - started < 2.0
    assert never["rounds"] >= 3 and never["findings"][0]["severity"] == "must_do_now"
    assert run(capsys, **options(plain, secure, pki, [{"url": "https://%s/healthz" % API, "status": 503}]))["rounds"] == 1
