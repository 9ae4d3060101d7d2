# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_http_expectations: options checked before any request, and every assertion judged on made-up probe results."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.launchready.core.plugins.module_utils._http_expectations import (
    ExpectationError,
    TlsRule,
    build_expectations,
    evaluate,
    host_matches,
    mixed_content,
    normalize_url,
    parse_hsts,
    result_entry,
    stale_links,
)
from ansible_collections.launchready.core.plugins.module_utils._http_probe import (
    ACCEPTED,
    REFUSED,
    UNTESTED,
    Answer,
    Certificate,
    Hop,
    ProbeResult,
    TlsInfo,
)

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
URL = "https://www.example.test/"


def expect(**options):
    """One expectation, as the module's argument spec hands it over."""
    (expectation,) = build_expectations([dict({"url": URL}, **options)])
    return expectation


def answered(url=URL, status=200, headers=(), body="", hops=None, tls=None, chain_stop="", truncated=False, method="GET"):
    """A probe result whose first answer is given; ``hops`` are the (url, status, location) of the rest of the chain."""
    headers = list(headers)
    location = next((value for name, value in headers if name.lower() == "location"), None)
    chain = [Hop(url, status, location, 5, "192.0.2.1:443")] + [Hop(*hop, elapsed_ms=5) for hop in hops or []]
    if tls is None and url.startswith("https:"):
        tls = trusted()
    return ProbeResult(url, method, chain, Answer(status, headers, body.encode(), truncated), tls, chain_stop, 12)


def trusted(names=("www.example.test",), days=90, verified=True, error="", versions=None):
    cert = Certificate("CN=%s" % names[0], "CN=Test CA", list(names), [], NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=days))
    return TlsInfo("www.example.test", "TLSv1.3", "TLS_AES_128_GCM_SHA256", cert, verified, error, dict(versions or {}))


def judge(exp, result, stale_hosts=()):
    return evaluate(exp, result, "edge_security", stale_hosts, now=NOW)


def failures(exp, result, **kwargs):
    return [check.detail for check in judge(exp, result, **kwargs).failed]


# --- options -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "www.example.test/"}, "is not an absolute http:// or https:// URL"),
        ({"url": "ftp://www.example.test/"}, "is not an absolute http:// or https:// URL"),
        ({"url": "https://www.example.test:99999/"}, "is not a valid URL"),
        ({"url": "http://www.example.test/", "hsts": {"min_max_age": 1}}, "hsts needs an https:// URL (browsers ignore HSTS sent over http"),
        ({"url": "http://www.example.test/", "mixed_content": True}, "mixed_content needs an https:// URL"),
        ({"url": "http://www.example.test/", "tls": {"min_days_left": 14}}, "tls needs an https:// URL"),
        ({"method": "HEAD", "body_contains": "x", "json": {"a": 1}}, "body_contains, json need(s) a body, and the answer to HEAD has none"),
        ({"method": "BREW"}, "method BREW is not one of GET"),
        ({"hops": -1}, "hops must not be negative"),
        ({"headers": {"match": {"x-frame-options": "(DENY"}}}, "headers.match for x-frame-options is not a valid regular expression"),
        ({"json": {"status ==": "ok"}}, "json expression 'status ==' is not valid JMESPath"),
        ({"body_contains": ["ok", 3]}, "body_contains must be a string or a list of strings"),
        ({"tls": {"min_version": "1.4"}}, "tls.min_version must be one of 1.0, 1.1, 1.2, 1.3"),
    ],
)
def test_options_that_cannot_be_checked_are_refused(options, message):
    items = [{"url": "https://ok.example.test/"}, dict({"url": URL}, **options)]
    with pytest.raises(ExpectationError) as raised:
        build_expectations(items)
    assert str(raised.value).startswith("expectations[1] (%s" % options.get("url", URL))
    assert message in str(raised.value)


def test_defaults_and_shapes():
    plain, secure, titled = build_expectations(
        [
            {"url": "http://example.test", "body_contains": "a, b", "status": [301, 308]},
            {"url": URL, "method": "post", "cache_status_not": ["hit"], "headers": {"present": ["X-Frame-Options"]}},
            {"url": URL, "title": "The home page", "tls": {"min_version": "1.2", "verify_chain": False}, "severity": "can_wait"},
        ]
    )
    assert plain.tls is None and plain.body_contains == ("a, b",), "a string is not split at commas"
    assert plain.status == (301, 308) and plain.label == "GET http://example.test"
    assert secure.tls == TlsRule(), "an https URL always gets its certificate checked"
    assert secure.method == "POST" and secure.cache_status_not == ("HIT",) and secure.headers.present == ("x-frame-options",)
    assert titled.label == "The home page" and titled.severity == "can_wait"
    assert titled.tls == TlsRule(min_version="1.2", verify_chain=False) and titled.tls.versions_to_refuse == ("1.0", "1.1")


# --- status, location, hops ------------------------------------------------------------------------------


def test_without_a_status_any_2xx_or_3xx_passes():
    exp = expect()
    assert failures(exp, answered(status=204)) == []
    assert failures(exp, answered(status=302, headers=[("Location", "/x")], hops=[(URL + "x", 200, None)])) == []
    assert failures(exp, answered(status=500)) == ["status: expected a 2xx or 3xx answer, got 500"]


@pytest.mark.parametrize(
    ("wanted", "status", "headers", "fix"),
    [
        ([200], 301, [("Location", "https://example.test/")],
         "GET https://www.example.test/ redirects to https://example.test/: check the final URL instead, or remove the redirect"),
        ([301], 302, [("Location", "https://example.test/")],
         "Make the redirect of https://www.example.test/ permanent (301, or 308 to keep the method): a 302 tells browsers"),
        ([301], 200, [], "Add a redirect from https://www.example.test/ to https://example.test/ (a redirect rule in the domain_routing role's"),
        ([200], 502, [], "GET https://www.example.test/ fails with 502: look at the origin's logs and health (the answer came from 192.0.2.1:443)."),
        ([200], 404, [], "Nothing is served at https://www.example.test/: deploy the page or correct the URL."),
        ([200], 403, [], "GET https://www.example.test/ is refused (403): check the access rules for this path"),
        ([200], 429, [], "GET https://www.example.test/ is rate-limited (429): check the rate-limit rule's threshold"),
        ([200], 201, [], "Make GET https://www.example.test/ answer 200 (it answers 201)."),
    ],
)  # fmt: skip
def test_a_wrong_status_gets_a_fix_that_fits(wanted, status, headers, fix):
    exp = expect(status=wanted, location="https://example.test/" if wanted == [301] else None)
    hops = [("https://example.test/", 200, None)] if headers else []
    verdict = judge(exp, answered(status=status, headers=headers, hops=hops))
    status_check = next(check for check in verdict.failed if check.kind == "status")
    assert status_check.detail == "status: expected %s, got %d" % (" or ".join(map(str, wanted)), status)
    assert status_check.fix.startswith(fix)


def test_location_compares_as_browsers_do():
    exp = expect(status=[301], location="https://Example.TEST:443")
    assert failures(exp, answered(status=301, headers=[("Location", "https://example.test/")], hops=[("https://example.test/", 200, None)])) == []
    relative = expect(location="/pricing")
    assert failures(relative, answered(status=301, headers=[("Location", "https://www.example.test/pricing")],
                                       hops=[("https://www.example.test/pricing", 200, None)])) == []  # fmt: skip
    assert failures(relative, answered(status=301, headers=[("Location", "/pricing/")], hops=[(URL + "pricing/", 200, None)])) == [
        "location: expected https://www.example.test/pricing, got https://www.example.test/pricing/"
    ]
    verdict = judge(relative, answered(status=200))
    assert [(check.detail, check.fix) for check in verdict.failed] == [
        ("location: expected https://www.example.test/pricing, got no Location header (status 200)",
         "Make https://www.example.test/ redirect to https://www.example.test/pricing.")
    ]  # fmt: skip


def test_one_hop_redirects():
    exp = expect(url="http://example.test/", status=[301], location="https://www.example.test/", hops=1)
    one_hop = answered("http://example.test/", 301, [("Location", "https://www.example.test/")], hops=[(URL, 200, None)])
    verdict = judge(exp, one_hop)
    assert verdict.failed == [] and verdict.finding.severity == "ok"
    assert verdict.finding.title == "GET http://example.test/: all 3 checks passed"
    assert verdict.finding.evidence == "http://example.test/ 301 -> https://www.example.test/ 200 (12 ms); checked status, location, hops"

    two_hops = answered("http://example.test/", 301, [("Location", "https://example.test/")],
                        hops=[("https://example.test/", 301, URL), (URL, 200, None)])  # fmt: skip
    verdict = judge(exp, two_hops)
    assert [check.detail for check in verdict.failed] == [
        "location: expected https://www.example.test/, got https://example.test/",
        "hops: expected 1 redirect(s) before the final answer, got 2",
    ]
    assert verdict.finding.title == "GET http://example.test/: 2 of 3 checks failed (location, hops)"
    assert verdict.finding.severity == "must_do_now"
    assert verdict.finding.fix == (
        "Point the redirect of http://example.test/ at https://www.example.test/ (it points at https://example.test/). "
        "Redirect http://example.test/ straight to https://www.example.test/ in 1 hop(s), not through 2."
    )
    assert failures(expect(hops=1), answered(status=200)) == ["hops: expected 1 redirect(s) before the final answer, got 0"]


def test_a_broken_chain_always_fails():
    exp = expect()
    loop = answered(status=301, headers=[("Location", "/a")], hops=[(URL + "a", 302, "/")], chain_stop="loop")
    assert failures(exp, loop) == ["redirect chain: loops back to https://www.example.test/"]
    assert judge(exp, loop).finding.evidence.startswith(
        "https://www.example.test/ 301 -> https://www.example.test/a 302 -> https://www.example.test/ again (12 ms); failed: "
    )
    limit = answered(status=301, headers=[("Location", "/1")], hops=[(URL + "1", 301, "/2"), (URL + "2", 301, "/3")], chain_stop="limit")
    assert failures(exp, limit) == ["redirect chain: more than 2 redirects"]
    dead = ProbeResult(URL, "GET", [Hop(URL, 301, "https://gone.example.test/"), Hop("https://gone.example.test/", error="refused")],
                       Answer(301, [("Location", "https://gone.example.test/")]), trusted(), "error", 3)  # fmt: skip
    verdict = judge(exp, dead)
    assert [(c.detail, c.fix) for c in verdict.failed] == [
        ("redirect chain: https://gone.example.test/ does not answer (refused)",
         "Make https://gone.example.test/ answer, or point the redirect at a URL that does.")
    ]  # fmt: skip


def test_a_url_that_does_not_answer_is_one_failure():
    result = ProbeResult("https://www.example.test:8443/", "GET", [Hop("https://www.example.test:8443/", error="Connection refused")])
    verdict = judge(expect(url="https://www.example.test:8443/", status=[200], hsts={"min_max_age": 1}), result)
    assert verdict.finding.as_dict() == {
        "stage": "edge_security",
        "severity": "must_do_now",
        "title": "GET https://www.example.test:8443/ does not answer",
        "evidence": "https://www.example.test:8443/: Connection refused",
        "fix": "Make sure www.example.test resolves to the server and that it answers on port 8443; to check a server before DNS points at it, "
        "map the name with the resolve option.",
    }
    entry = result_entry(verdict)
    assert entry["status"] is None and entry["error"] == "Connection refused" and entry["passed"] is False and entry["tls"] is None


# --- headers, HSTS, cache status -------------------------------------------------------------------------


def test_headers_present_absent_and_matching():
    exp = expect(headers={"present": ["X-Frame-Options", "content-security-policy"], "absent": ["x-powered-by", "server"],
                          "match": {"cache-control": "no-store", "set-cookie": "(?i)secure"}})  # fmt: skip
    good = answered(headers=[("x-frame-options", "DENY"), ("Content-Security-Policy", "default-src 'self'"), ("Cache-Control", "private, no-store"),
                             ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "session=x; Secure; HttpOnly")])  # fmt: skip
    assert failures(exp, good) == []
    bad = answered(headers=[("X-Powered-By", "Express"), ("Cache-Control", "public, max-age=60"), ("Set-Cookie", "session=x; HttpOnly")])
    verdict = judge(exp, bad)
    assert [check.detail for check in verdict.failed] == [
        "header x-frame-options: missing",
        "header content-security-policy: missing",
        'header x-powered-by: present ("Express") but must be absent',
        "header cache-control: expected to match /no-store/, got \"public, max-age=60\"",
        "header set-cookie: expected to match /(?i)secure/, got \"session=x; HttpOnly\"",
    ]
    assert verdict.failed[0].fix == (
        "Send the x-frame-options header on https://www.example.test/ (from the origin, or with a Cloudflare response header transform rule)."
    )
    assert result_entry(verdict)["headers"] == {"cache-control": "public, max-age=60", "x-powered-by": "Express", "set-cookie": "session=x; HttpOnly"}


@pytest.mark.parametrize(
    ("value", "directives", "problem"),
    [
        ("max-age=31536000; includeSubDomains; preload", {"max-age": "31536000", "includesubdomains": None, "preload": None}, ""),
        ('MAX-AGE="600" ;INCLUDESUBDOMAINS', {"max-age": "600", "includesubdomains": None}, ""),
        ("max-age=0", {"max-age": "0"}, ""),
        ("includeSubDomains", {"includesubdomains": None}, "it has no valid max-age, so browsers ignore it"),
        ("max-age=abc", {"max-age": "abc"}, "it has no valid max-age, so browsers ignore it"),
        ("max-age=1; max-age=2", {"max-age": "1"}, "directive max-age appears twice, so browsers ignore the header"),
    ],
)
def test_hsts_is_parsed_as_rfc_6797_says(value, directives, problem):
    assert parse_hsts(value) == (directives, problem)


def test_hsts_assertions():
    exp = expect(hsts={"min_max_age": 15552000, "include_subdomains": True, "preload": False})
    assert failures(exp, answered(headers=[("Strict-Transport-Security", "max-age=15552000; includeSubDomains")])) == []
    verdict = judge(exp, answered(headers=[("Strict-Transport-Security", "max-age=300; preload"), ("Strict-Transport-Security", "max-age=31536000")]))
    assert [check.detail for check in verdict.failed] == [
        "hsts: max-age=300, at least 15552000 expected",
        "hsts: includeSubDomains missing, expected",
        "hsts: preload present, not expected",
    ], "only the first header counts"
    assert verdict.finding.fix == (
        "Send Strict-Transport-Security: max-age=15552000; includeSubDomains on https://www.example.test/ (Cloudflare: "
        "security_header.strict_transport_security in the zone settings, as the edge_security role sets it)."
    )
    assert failures(exp, answered()) == ["hsts: no Strict-Transport-Security header"]
    assert failures(exp, answered(headers=[("Strict-Transport-Security", "includeSubDomains")])) == [
        'hsts: it has no valid max-age, so browsers ignore it ("includeSubDomains")'
    ]
    preload = expect(hsts={"preload": True})
    assert failures(preload, answered(headers=[("Strict-Transport-Security", "max-age=15552000; preload")])) == [
        "hsts: preload needs max-age of at least 31536000 and includeSubDomains (hstspreload.org)"
    ]
    assert failures(expect(hsts={}), answered(headers=[("Strict-Transport-Security", "max-age=1")])) == [], "an empty hsts: only present"


def test_cache_status_in_a_set_and_never_a_hit():
    admin = expect(url="https://www.example.test/admin", cache_status_not=["HIT", "STALE", "UPDATING", "REVALIDATED"])
    for status in ("DYNAMIC", "BYPASS", "MISS", "EXPIRED", None):
        headers = [("cf-cache-status", status)] if status else []
        assert failures(admin, answered("https://www.example.test/admin", headers=headers)) == [], status
    verdict = judge(admin, answered("https://www.example.test/admin", headers=[("CF-Cache-Status", "HIT")]))
    assert [(c.detail, c.fix) for c in verdict.failed] == [
        ("cf-cache-status: HIT, which must not be",
         "Exclude https://www.example.test/admin from Cloudflare's cache: a cache rule that bypasses the cache for this path (the edge_security "
         "role's cache rules never cache admin, auth, API and session pages).")
    ]  # fmt: skip
    static = expect(url="https://www.example.test/app.css", cache_status=["hit", "MISS"])
    assert failures(static, answered("https://www.example.test/app.css", headers=[("cf-cache-status", "MISS")])) == []
    verdict = judge(static, answered("https://www.example.test/app.css", headers=[("cf-cache-status", "BYPASS")]))
    assert [(c.detail, c.fix) for c in verdict.failed] == [
        ("cf-cache-status: expected HIT or MISS, got BYPASS",
         "Change the cache rule matching https://www.example.test/app.css so that Cloudflare answers HIT or MISS (it answers BYPASS).")
    ]  # fmt: skip
    verdict = judge(static, answered("https://www.example.test/app.css"))
    assert [(c.detail, c.fix) for c in verdict.failed] == [
        ("cf-cache-status: expected HIT or MISS, got no cf-cache-status header",
         "https://www.example.test/app.css has no cf-cache-status header: make sure its DNS record is proxied through Cloudflare.")
    ]  # fmt: skip


# --- body and JSON ---------------------------------------------------------------------------------------


def test_body_contains_and_not_contains():
    exp = expect(body_contains=["Welcome", "Sign in"], body_not_contains="Traceback")
    assert failures(exp, answered(body="<h1>Welcome</h1><a>Sign in</a>")) == []
    page = "<h1>Error</h1>" + "x" * 60 + "Traceback (most recent call last): File app.py" + "y" * 60
    assert failures(exp, answered(body=page, truncated=True)) == [
        'body: does not contain "Welcome" (in its first %d bytes)' % len(page),
        'body: does not contain "Sign in" (in its first %d bytes)' % len(page),
        'body: contains "Traceback": ...' + "x" * 40 + "Traceback (most recent call last): File app.pyyyy...",  # 40 characters around it
    ]


def test_json_assertions_with_jmespath():
    exp = expect(url="https://api.example.test/healthz", json={
        "status": "ok",
        "checks[?state != 'up'] | length(@)": 0,
        "version": "1.4.2",
        "database.connected": True,
        "workers": 4,
        "regions": ["eu", "us"],
    })  # fmt: skip
    body = '{"status": "ok", "version": "1.4.2", "database": {"connected": true}, "workers": 4.0, "regions": ["eu", "us"],' \
           ' "checks": [{"name": "db", "state": "up"}, {"name": "queue", "state": "up"}]}'  # fmt: skip
    assert failures(exp, answered("https://api.example.test/healthz", body=body)) == []
    body = '{"status": "degraded", "version": 142, "database": {"connected": 1}, "workers": 4, "regions": ["us", "eu"],' \
           ' "checks": [{"name": "db", "state": "down"}]}'  # fmt: skip
    verdict = judge(exp, answered("https://api.example.test/healthz", body=body))
    assert [check.detail for check in verdict.failed] == [
        'json status: expected "ok", got "degraded"',
        "json checks[?state != 'up'] | length(@): expected 0, got 1",
        'json version: expected "1.4.2", got 142',
        "json database.connected: expected true, got 1",
        'json regions: expected ["eu", "us"], got ["us", "eu"]',
    ]
    assert verdict.failed[0].fix == 'Make the JSON answer of https://api.example.test/healthz give "ok" for status.'
    not_json = judge(exp, answered("https://api.example.test/healthz", headers=[("Content-Type", "text/html")], body="<html>"))
    assert [(c.detail, c.fix) for c in not_json.failed] == [
        ("json: the body is not JSON (Expecting value: line 1 column 1 (char 0); content-type text/html)",
         "Make https://api.example.test/healthz answer JSON (it answers text/html).")
    ]  # fmt: skip


# --- TLS -------------------------------------------------------------------------------------------------


def test_tls_assertions():
    exp = expect(tls={"min_days_left": 14, "min_version": "1.2", "verify_chain": True, "verify_hostname": True})
    fine = trusted(days=30, versions={"1.0": REFUSED, "1.1": REFUSED})
    verdict = judge(exp, answered(tls=fine))
    assert verdict.failed == [] and [check.detail for check in verdict.checks] == [
        "status 200", "chain verified", "certificate covers www.example.test", "30.0 days left", "TLS 1.0 refused", "TLS 1.1 refused",
    ]  # fmt: skip

    broken = trusted(names=("example.test",), days=5, verified=False, error="unable to get local issuer certificate",
                     versions={"1.0": REFUSED, "1.1": ACCEPTED})  # fmt: skip
    verdict = judge(exp, answered(tls=broken))
    assert [check.detail for check in verdict.failed] == [
        "tls chain: not trusted (unable to get local issuer certificate; issuer CN=Test CA)",
        "tls hostname: the certificate covers example.test, not www.example.test",
        "tls expiry: 5.0 days left (expires 2026-06-06), at least 14 wanted",
        "tls versions: TLS 1.1 is accepted, the minimum is 1.2",
    ]
    assert verdict.finding.title == "GET https://www.example.test/: 4 of 6 checks failed (tls)"
    assert [check.fix for check in verdict.failed][2:] == [
        "Renew the certificate of www.example.test before 2026-06-06, and check that its renewal is automatic.",
        "Refuse TLS versions below 1.2 on www.example.test (Cloudflare: min_tls_version 1.2 in the zone settings, as the edge_security role sets it).",
    ]
    expired = judge(expect(tls={"min_days_left": 0, "verify_chain": False}), answered(tls=trusted(days=-2)))
    assert [check.detail for check in expired.failed] == ["tls expiry: expired on 2026-05-30, at least 0 wanted"]


def test_https_checks_the_certificate_by_default_and_can_be_told_not_to():
    untrusted = trusted(names=("origin.internal",), verified=False, error="self-signed certificate")
    assert failures(expect(), answered(tls=untrusted)) == [
        "tls chain: not trusted (self-signed certificate; issuer CN=Test CA)",
        "tls hostname: the certificate covers origin.internal, not www.example.test",
    ]
    assert failures(expect(tls={"verify_chain": False, "verify_hostname": False}), answered(tls=untrusted)) == []
    assert failures(expect(url="http://www.example.test/"), answered("http://www.example.test/")) == []


def test_a_version_that_could_not_be_tried_is_a_note_not_a_failure():
    exp = expect(tls={"min_version": "1.2"})
    tls = trusted(versions={"1.0": UNTESTED + ": this machine's OpenSSL cannot offer TLS 1.0 (NO_CIPHERS_AVAILABLE)", "1.1": REFUSED})
    verdict = judge(exp, answered(tls=tls))
    assert verdict.failed == [] and verdict.finding.severity == "ok"
    assert verdict.finding.evidence.endswith(
        "; checked status, tls; note: TLS 1.0 untested: this machine's OpenSSL cannot offer TLS 1.0 (NO_CIPHERS_AVAILABLE)"
    )


def test_no_certificate_is_a_failure():
    no_cert = TlsInfo("www.example.test")
    assert failures(expect(), answered(tls=no_cert)) == ["tls: no certificate was presented"]


# --- mixed content and stale links -----------------------------------------------------------------------

PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="http://cdn.example.test/app.css">
<link rel="canonical" href="http://www.example.test/">
<link rel="alternate" hreflang="de" href="http://de.example.test/">
<link rel="icon" href="//cdn.example.test/favicon.ico">
<link rel="preload" as="font" href="HTTP://fonts.example.test/a.woff2">
<script src="/static/app.js"></script>
<script src="http://analytics.example.test/t.js"></script>
</head><body>
<img src="https://cdn.example.test/a.png" srcset="https://cdn.example.test/a-2x.png 2x, http://cdn.example.test/a-3x.png 3x">
<a href="http://blog.example.test/">our blog</a>
<iframe src="http://video.example.test/embed/1"></iframe>
<form action="http://www.example.test/subscribe" method="post"></form>
<video poster="http://cdn.example.test/poster.jpg"><source src="https://cdn.example.test/v.mp4"></video>
<img src="data:image/png;base64,AAAA">
</body></html>"""


def test_mixed_content_finds_http_subresources_only():
    found = [str(reference) for reference in mixed_content(URL, PAGE)]
    assert found == [
        "<link href> http://cdn.example.test/app.css",
        "<link href> HTTP://fonts.example.test/a.woff2",
        "<script src> http://analytics.example.test/t.js",
        "<img srcset> http://cdn.example.test/a-3x.png",
        "<iframe src> http://video.example.test/embed/1",
        "<form action> http://www.example.test/subscribe",
        "<video poster> http://cdn.example.test/poster.jpg",
    ]  # canonical/alternate links, <a href> and protocol-relative URLs are fine


def test_a_base_href_over_http_makes_relative_subresources_mixed():
    page = '<head><base href="http://static.example.test/"></head><img src="logo.png"><script src="https://x.example.test/a.js"></script>'
    assert [str(ref) for ref in mixed_content(URL, page)] == ["<img src> http://static.example.test/logo.png"]


def test_mixed_content_assertion():
    exp = expect(mixed_content=True)
    verdict = judge(exp, answered(headers=[("Content-Type", "text/html; charset=utf-8")], body=PAGE))
    (check,) = verdict.failed
    assert check.detail.startswith("mixed content: 7 http:// subresource(s): <link href> http://cdn.example.test/app.css, ")
    assert check.fix.startswith("Load these over https:// on https://www.example.test/ (fix the URLs at the origin; Cloudflare's Automatic HTTPS "
                                "Rewrites fixes the ones it can): http://cdn.example.test/app.css, HTTP://fonts.example.test/a.woff2, ")
    assert failures(exp, answered(body='<img src="/a.png"><img src="https://cdn.example.test/b.png">')) == []
    not_html = judge(exp, answered(headers=[("Content-Type", "application/json")], body='{"img": "http://x.example.test/a.png"}'))
    assert not_html.failed == [] and not_html.notes == ["mixed content not looked for: the answer is application/json, not HTML"]


@pytest.mark.parametrize(
    ("host", "pattern", "matches"),
    [
        ("my-app-git-main.vercel.app", "*.vercel.app", True),
        ("a.b.netlify.app", "*.netlify.app", True),
        ("vercel.app", "*.vercel.app", False),
        ("notvercel.app", "*.vercel.app", False),
        ("staging.example.com", "staging.example.com", True),
        ("STAGING.example.com.", "staging.example.com", True),
        ("www.staging.example.com", "staging.example.com", False),
        ("::1", "[::1]", True),
    ],
)
def test_host_patterns(host, pattern, matches):
    assert host_matches(host, pattern) is matches


def test_stale_links_in_attributes_and_text():
    page = """<a href="https://launch-demo-git-main-acme.vercel.app/pricing">Pricing</a>
<img src="http://localhost:3000/logo.png">
<meta http-equiv="refresh" content="5; url=https://acme.netlify.app/">
<meta property="og:url" content="https://preview.acme.pages.dev/">
<a href="https://www.example.test/about">about</a>
<a href="/contact">contact</a>
<a href="https://staging.acme.test/login">old staging</a>
<script>const API = "https://abc123.ngrok-free.app/api"; const ws = "wss://127.0.0.1:8080/ws";</script>"""
    found = stale_links(URL, page, True, ("*.vercel.app", "*.netlify.app", "*.pages.dev", "*.ngrok-free.app", "localhost", "127.0.0.1",
                                          "staging.acme.test"))  # fmt: skip
    assert found == [
        ("https://launch-demo-git-main-acme.vercel.app/pricing", "*.vercel.app"),
        ("http://localhost:3000/logo.png", "localhost"),
        ("https://acme.netlify.app/", "*.netlify.app"),
        ("https://preview.acme.pages.dev/", "*.pages.dev"),
        ("https://staging.acme.test/login", "staging.acme.test"),
        ("https://abc123.ngrok-free.app/api", "*.ngrok-free.app"),
        ("wss://127.0.0.1:8080/ws", "127.0.0.1"),
    ]


def test_stale_links_assertion_uses_the_defaults_and_the_extra_hosts():
    exp = expect(stale_links=True)
    body = '<a href="https://app.herokuapp.com/">x</a> <a href="https://staging.example.test/">y</a> <a href="https://www.example.test/z">z</a>'
    verdict = judge(exp, answered(body=body), stale_hosts=("staging.example.test",))
    (check,) = verdict.failed
    assert check.detail == ("stale links: 2 link(s) to preview, staging or local hosts: https://app.herokuapp.com/ (*.herokuapp.com), "
                            "https://staging.example.test/ (staging.example.test)")
    assert failures(exp, answered(body=body)) == ["stale links: 1 link(s) to preview, staging or local hosts: https://app.herokuapp.com/ (*.herokuapp.com)"]
    own = expect(url="http://localhost:8000/", stale_links=True)
    assert failures(own, answered("http://localhost:8000/", body='<a href="http://localhost:8000/next">next</a>')) == [], "the page's own host"


# --- results ---------------------------------------------------------------------------------------------


def test_normalize_url():
    assert normalize_url("HTTPS://WWW.Example.Test:443") == "https://www.example.test/"
    assert normalize_url("http://example.test:8080/a?b=C#D") == "http://example.test:8080/a?b=C#D"
    assert normalize_url("http://[2001:DB8::1]:80/") == "http://[2001:db8::1]/"


def test_result_entry():
    exp = expect(headers={"present": ["x-request-id"]}, cache_status_not=["HIT"])
    result = answered(headers=[("Content-Type", "text/html"), ("cf-cache-status", "DYNAMIC"), ("X-Request-Id", "abc"), ("Server", "cloudflare")],
                      tls=trusted(versions={"1.0": REFUSED}))  # fmt: skip
    entry = result_entry(judge(exp, result))
    assert entry == {
        "title": "GET https://www.example.test/",
        "url": URL,
        "method": "GET",
        "status": 200,
        "redirects": 0,
        "hops": [{"url": URL, "status": 200, "location": None, "elapsed_ms": 5, "address": "192.0.2.1:443", "error": ""}],
        "headers": {"content-type": "text/html", "cf-cache-status": "DYNAMIC", "x-request-id": "abc"},
        "tls": {
            "host": "www.example.test",
            "version": "TLSv1.3",
            "cipher": "TLS_AES_128_GCM_SHA256",
            "certificate": entry["tls"]["certificate"],
            "chain_verified": True,
            "chain_error": "",
            "versions": {"1.0": "refused"},
        },
        "elapsed_ms": 12,
        "error": "",
        "passed": True,
        "failed": [],
    }
    assert entry["tls"]["certificate"]["dns_names"] == ["www.example.test"] and entry["tls"]["certificate"]["issuer"] == "CN=Test CA"
