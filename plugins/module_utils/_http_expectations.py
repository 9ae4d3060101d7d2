# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an HTTP answer must look like, and how one probe result measures up: no network here.

``build_expectations()`` turns the ``expectations`` option into ``Expectation`` objects and
refuses, before anything is asked, what cannot be checked (a bad URL, regex or JMESPath
expression, HSTS or mixed content on a plain-http URL). ``evaluate()`` runs every assertion of
one expectation on one ``ProbeResult`` and gives one finding: every failed assertion in its
evidence, a concrete fix for each.

Every assertion but ``hops`` concerns the answer to ``url`` itself; the redirect chain is
followed to count and record its hops, and a chain that loops, runs past the limit or leads
to a URL that does not answer is always a failure (a browser would stop there).
"""

from __future__ import annotations

import json
import re
import traceback
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

try:
    import jmespath
    from jmespath.exceptions import JMESPathError
except ImportError:
    jmespath = None  # type: ignore[assignment]
    JMESPathError = Exception  # type: ignore[assignment,misc]
    JMESPATH_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    JMESPATH_IMPORT_ERROR = None

from ansible_collections.launchready.core.plugins.module_utils._findings import MUST_DO_NOW, OK, Finding
from ansible_collections.launchready.core.plugins.module_utils._http_probe import (
    ACCEPTED,
    REDIRECT_STATUSES,
    TLS_VERSIONS,
    UNTESTED,
    Answer,
    ProbeResult,
)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Preview and tunnel hosts that must not be linked from a launched site (``*.`` is any subdomain).
STALE_HOSTS = (
    "*.vercel.app",
    "*.netlify.app",
    "*.herokuapp.com",
    "*.pages.dev",
    "*.ngrok.io",
    "*.ngrok.app",
    "*.ngrok-free.app",
    "*.ngrok.dev",
    "*.ngrok-free.dev",
    "localhost",
    "*.localhost",
    "127.0.0.1",
    "0.0.0.0",
    "::1",
)
# Headers every result shows, besides the ones an expectation asserts.
RESULT_HEADERS = ("content-type", "location", "strict-transport-security", "cf-cache-status", "cache-control")
# Served from Cloudflare's cache (everything else came from the origin).
CACHE_HITS = ("HIT", "STALE", "UPDATING", "REVALIDATED")
PRELOAD_MIN_MAX_AGE = 31536000  # hstspreload.org: at least one year


class ExpectationError(ValueError):
    """An expectation that cannot be checked as written."""


# --- expectations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderRules:
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    match: tuple[tuple[str, re.Pattern], ...] = ()


@dataclass(frozen=True)
class HstsRule:
    min_max_age: int | None = None
    include_subdomains: bool | None = None
    preload: bool | None = None


@dataclass(frozen=True)
class TlsRule:
    min_days_left: int | None = None
    verify_chain: bool = True
    verify_hostname: bool = True
    min_version: str | None = None

    @property
    def versions_to_refuse(self) -> tuple[str, ...]:
        if self.min_version is None:
            return ()
        return TLS_VERSIONS[: TLS_VERSIONS.index(self.min_version)]


@dataclass(frozen=True)
class JsonRule:
    expression: str
    expected: Any
    compiled: Any = field(compare=False)


@dataclass(frozen=True)
class Expectation:
    url: str
    method: str = "GET"
    title: str = ""
    severity: str = MUST_DO_NOW
    status: tuple[int, ...] | None = None
    location: str | None = None
    hops: int | None = None
    headers: HeaderRules | None = None
    hsts: HstsRule | None = None
    cache_status: tuple[str, ...] | None = None
    cache_status_not: tuple[str, ...] | None = None
    body_contains: tuple[str, ...] = ()
    body_not_contains: tuple[str, ...] = ()
    json: tuple[JsonRule, ...] = ()
    tls: TlsRule | None = None
    mixed_content: bool = False
    stale_links: bool = False

    @property
    def label(self) -> str:
        return self.title or "%s %s" % (self.method, self.url)

    @property
    def https(self) -> bool:
        return self.url.lower().startswith("https:")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    """A string or a list of strings (taken as they are: a string is not split at commas)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ExpectationError("%s must be a string or a list of strings" % where)


def check_url(url: str, where: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as exc:
        raise ExpectationError("%s: %r is not a valid URL (%s)" % (where, url, exc)) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        raise ExpectationError("%s: %r is not an absolute http:// or https:// URL" % (where, url))
    return url


def _header_rules(value: dict | None, where: str) -> HeaderRules | None:
    if not value:
        return None
    match = []
    for name, pattern in (value.get("match") or {}).items():
        try:
            match.append((str(name).lower(), re.compile(str(pattern))))
        except re.error as exc:
            raise ExpectationError("%s: headers.match for %s is not a valid regular expression (%s)" % (where, name, exc)) from None
    return HeaderRules(
        present=tuple(name.lower() for name in value.get("present") or ()),
        absent=tuple(name.lower() for name in value.get("absent") or ()),
        match=tuple(match),
    )


def _json_rules(value: dict | None, where: str) -> tuple[JsonRule, ...]:
    rules = []
    for expression, expected in (value or {}).items():
        try:
            compiled = jmespath.compile(str(expression))
        except JMESPathError as exc:
            raise ExpectationError("%s: json expression %r is not valid JMESPath (%s)" % (where, expression, str(exc).strip())) from None
        rules.append(JsonRule(str(expression), expected, compiled))
    return tuple(rules)


def build_expectations(items: list[dict]) -> list[Expectation]:
    """The module's ``expectations`` option as Expectation objects; ExpectationError names the one that is wrong."""
    expectations = []
    for index, item in enumerate(items):
        where = "expectations[%d] (%s)" % (index, item.get("title") or item.get("url"))
        url = check_url(item["url"], where)
        https = url.lower().startswith("https:")
        method = (item.get("method") or "GET").upper()
        if method not in METHODS:
            raise ExpectationError("%s: method %s is not one of %s" % (where, method, ", ".join(METHODS)))
        if item.get("location") is not None:
            check_url(urljoin(url, item["location"]), where + " location")
        for option in ("hsts", "mixed_content", "tls"):
            if item.get(option) and not https:
                why = " (browsers ignore HSTS sent over http, RFC 6797 section 8.1)" if option == "hsts" else ""
                raise ExpectationError("%s: %s needs an https:// URL%s" % (where, option, why))
        if item.get("hops") is not None and item["hops"] < 0:
            raise ExpectationError("%s: hops must not be negative" % where)
        if method == "HEAD":
            with_body = [option for option in ("body_contains", "body_not_contains", "json", "mixed_content", "stale_links") if item.get(option)]
            if with_body:
                raise ExpectationError("%s: %s need(s) a body, and the answer to HEAD has none; use GET" % (where, ", ".join(with_body)))
        tls = item.get("tls")
        tls_rule = (
            TlsRule(tls.get("min_days_left"), tls.get("verify_chain", True) is not False, tls.get("verify_hostname", True) is not False, tls.get("min_version"))
            if tls
            else (TlsRule() if https else None)
        )
        if tls_rule is not None and tls_rule.min_version is not None and tls_rule.min_version not in TLS_VERSIONS:
            raise ExpectationError("%s: tls.min_version must be one of %s" % (where, ", ".join(TLS_VERSIONS)))
        hsts = item.get("hsts")
        expectations.append(
            Expectation(
                url=url,
                method=method,
                title=item.get("title") or "",
                severity=item.get("severity") or MUST_DO_NOW,
                status=tuple(item["status"]) if item.get("status") else None,
                location=item.get("location"),
                hops=item.get("hops"),
                headers=_header_rules(item.get("headers"), where),
                hsts=HstsRule(hsts.get("min_max_age"), hsts.get("include_subdomains"), hsts.get("preload")) if hsts else None,
                cache_status=tuple(value.upper() for value in item["cache_status"]) if item.get("cache_status") else None,
                cache_status_not=tuple(value.upper() for value in item["cache_status_not"]) if item.get("cache_status_not") else None,
                body_contains=_strings(item.get("body_contains"), where + " body_contains"),
                body_not_contains=_strings(item.get("body_not_contains"), where + " body_not_contains"),
                json=_json_rules(item.get("json"), where),
                tls=tls_rule,
                mixed_content=bool(item.get("mixed_content")),
                stale_links=bool(item.get("stale_links")),
            )
        )
    return expectations


# --- HTML ----------------------------------------------------------------------------------------

# Attributes whose value the browser fetches as part of the page (mixed content, W3C Mixed Content section 3).
_SUBRESOURCES = {
    ("img", "src"), ("img", "srcset"), ("script", "src"), ("iframe", "src"), ("frame", "src"), ("source", "src"), ("source", "srcset"),
    ("audio", "src"), ("video", "src"), ("video", "poster"), ("track", "src"), ("embed", "src"), ("object", "data"), ("input", "src"),
    ("form", "action"), ("link", "href"),
}  # fmt: skip
# <link> relations that make the browser fetch the target (a canonical or alternate link is only a reference).
_FETCHED_LINK_RELS = {"stylesheet", "icon", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon", "preload", "modulepreload", "prefetch", "manifest"}
_URL_ATTRIBUTES = {"href", "src", "srcset", "action", "formaction", "data", "poster", "cite", "content"}
_TEXT_URL_RE = re.compile(r"\b(?:https?|wss?)://[^\s\"'<>()\\`]+", re.IGNORECASE)
_REFRESH_RE = re.compile(r"^\s*\d*\s*;?\s*url\s*=\s*['\"]?([^'\"]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Reference:
    tag: str
    attribute: str
    url: str  # absolute
    rel: str = ""

    def __str__(self) -> str:
        return "<%s %s> %s" % (self.tag, self.attribute, self.url)


class _ReferenceParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.found: list[tuple[str, str, str, str]] = []  # tag, attribute, value, rel

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        if tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        for name, value in values.items():
            if name in _URL_ATTRIBUTES:
                self.found.append((tag, name, value, values.get("rel", "")))

    handle_startendtag = handle_starttag


def _candidates(attribute: str, value: str) -> list[str]:
    if attribute == "srcset":
        return [part.split()[0] for part in value.split(",") if part.strip()]
    if attribute == "content":  # <meta http-equiv="refresh" content="0; url=...">, <meta property="og:url" content="https://...">
        refresh = _REFRESH_RE.match(value)
        if refresh:
            return [refresh.group(1).strip()]
        return [value.strip()] if _TEXT_URL_RE.match(value.strip()) else []
    return [value.strip()]


def page_references(page_url: str, html: str) -> list[Reference]:
    """Every URL an HTML page refers to in an attribute, made absolute (``<base href>`` honoured)."""
    parser = _ReferenceParser()
    parser.feed(html)
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    references = []
    for tag, attribute, value, rel in parser.found:
        for candidate in _candidates(attribute, value):
            if candidate and not candidate.lower().startswith(("data:", "javascript:", "mailto:", "tel:", "#", "about:", "blob:")):
                references.append(Reference(tag, attribute, urljoin(base, candidate), rel.lower()))
    return references


def mixed_content(page_url: str, html: str) -> list[Reference]:
    """Subresources of an https page that load over plain http."""
    found = []
    for reference in page_references(page_url, html):
        if (reference.tag, reference.attribute) not in _SUBRESOURCES or not reference.url.lower().startswith("http:"):
            continue
        if reference.tag == "link" and not set(reference.rel.split()) & _FETCHED_LINK_RELS:
            continue
        found.append(reference)
    return list(dict.fromkeys(found))


def host_matches(host: str, pattern: str) -> bool:
    """``*.example.com`` matches any name below example.com (not example.com itself); anything else matches exactly."""
    host, pattern = host.lower().rstrip("."), pattern.lower().strip().rstrip(".").strip("[]")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def stale_links(page_url: str, text: str, html: bool, patterns: tuple[str, ...]) -> list[tuple[str, str]]:
    """(URL, pattern) of every link to a preview, tunnel or local host, in attributes and anywhere in the text."""
    own_host = (urlsplit(page_url).hostname or "").lower()
    urls = [reference.url for reference in page_references(page_url, text)] if html else []
    urls += _TEXT_URL_RE.findall(text)
    found: dict[str, str] = {}
    for url in urls:
        try:
            host = (urlsplit(url.rstrip(".,;")).hostname or "").lower()
        except ValueError:
            continue
        if not host or host == own_host:
            continue
        for pattern in patterns:
            if host_matches(host, pattern):
                found.setdefault(url.rstrip(".,;"), pattern)
                break
    return list(found.items())


# --- HSTS ----------------------------------------------------------------------------------------


def parse_hsts(value: str) -> tuple[dict[str, str | None], str]:
    """The directives of a Strict-Transport-Security value (names lowercased), and why a browser would ignore it ("" if it would not).

    RFC 6797 section 6.1: directives are separated by ``;``, names are case-insensitive, values
    may be quoted, ``max-age`` is required, and a directive given twice voids the header.
    """
    directives: dict[str, str | None] = {}
    for part in value.split(";"):
        name, equals, raw = part.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name in directives:
            return directives, "directive %s appears twice, so browsers ignore the header" % name
        raw = raw.strip()
        directives[name] = (raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw) if equals else None
    if not (directives.get("max-age") or "").isdigit():
        return directives, "it has no valid max-age, so browsers ignore it"
    return directives, ""


# --- evaluation ----------------------------------------------------------------------------------


@dataclass
class Check:
    kind: str
    passed: bool
    detail: str
    fix: str = ""


@dataclass
class Verdict:
    expectation: Expectation
    result: ProbeResult
    checks: list[Check]
    notes: list[str]
    finding: Finding

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def normalize_url(url: str) -> str:
    """A URL as browsers compare it: scheme and host lowercased, default port dropped, an empty path made ``/``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = "[%s]" % host
    scheme = parts.scheme.lower()
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = "%s:%d" % (host, port)
    return urlunsplit((scheme, host, parts.path or "/", parts.query, parts.fragment))


def describe_chain(result: ProbeResult) -> str:
    """``http://a/ 301 -> https://b/ 200 (35 ms)``: every answer of the chain, and how long it all took."""
    steps = []
    for hop in result.hops:
        steps.append("%s %s" % (hop.url, hop.status if hop.status is not None else "no answer (%s)" % hop.error))
    if result.chain_stop == "loop" and result.hops:
        last = result.hops[-1]
        steps.append("%s again" % urljoin(last.url, last.location or ""))
    return "%s (%d ms)" % (" -> ".join(steps), result.elapsed_ms)


def _show(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0, lists in order, objects regardless of key order."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
        return actual == expected
    if isinstance(actual, list) and isinstance(expected, (list, tuple)):
        return len(actual) == len(expected) and all(_same(a, e) for a, e in zip(actual, expected, strict=True))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(_same(actual[key], expected[key]) for key in actual)
    return type(actual) is type(expected) and actual == expected


def _status_checks(exp: Expectation, result: ProbeResult, answer: Answer) -> list[Check]:
    got = answer.status
    if exp.status is None:
        passed, wanted = 200 <= got < 400, "a 2xx or 3xx answer"
    else:
        passed, wanted = got in exp.status, " or ".join(str(status) for status in exp.status)
    if passed:
        return [Check("status", True, "status %d" % got)]
    where = "%s %s" % (exp.method, exp.url)
    location = answer.header("location")
    wanted_redirect = exp.status is not None and all(status in REDIRECT_STATUSES for status in exp.status)
    if got in REDIRECT_STATUSES and not wanted_redirect:
        fix = "%s redirects to %s: check the final URL instead, or remove the redirect if it is not meant to be there." % (where, location)
    elif got in (302, 307) and exp.status is not None and set(exp.status) <= {301, 308}:
        fix = "Make the redirect of %s permanent (301, or 308 to keep the method): a %d tells browsers and search engines it is temporary." % (exp.url, got)
    elif wanted_redirect:
        target = " to %s" % urljoin(exp.url, exp.location) if exp.location else ""
        fix = "Add a redirect from %s%s (a redirect rule in the domain_routing role's redirect map), answering %s." % (exp.url, target, wanted)
    elif got >= 500:
        fix = "%s fails with %d: look at the origin's logs and health (the answer came from %s)." % (where, got, result.hops[0].address or "the server")
    elif got == 404:
        fix = "Nothing is served at %s: deploy the page or correct the URL." % exp.url
    elif got in (401, 403):
        fix = "%s is refused (%d): check the access rules for this path (the app's authentication, Cloudflare security level and custom rules)." % (where, got)
    elif got == 429:
        fix = "%s is rate-limited (429): check the rate-limit rule's threshold for this path, or run the check with a lower concurrency." % where
    else:
        fix = "Make %s answer %s (it answers %d)." % (where, wanted, got)
    return [Check("status", False, "status: expected %s, got %d" % (wanted, got), fix)]


def _location_checks(exp: Expectation, answer: Answer) -> list[Check]:
    if exp.location is None:
        return []
    wanted = normalize_url(urljoin(exp.url, exp.location))
    actual = answer.header("location")
    got = normalize_url(urljoin(exp.url, actual.strip())) if actual else None
    if got == wanted:
        return [Check("location", True, "Location %s" % wanted)]
    if got is None:
        return [Check("location", False, "location: expected %s, got no Location header (status %d)" % (wanted, answer.status),
                      "Make %s redirect to %s." % (exp.url, wanted))]
    fix = "Point the redirect of %s at %s (it points at %s)." % (exp.url, wanted, got)
    return [Check("location", False, "location: expected %s, got %s" % (wanted, got), fix)]


def _chain_checks(exp: Expectation, result: ProbeResult) -> list[Check]:
    last = result.hops[-1]
    if result.chain_stop == "loop":
        return [Check("hops", False, "redirect chain: loops back to %s" % urljoin(last.url, last.location or ""),
                      "Break the redirect loop: make one URL of the chain answer instead of redirecting, or send %s straight to its final URL." % exp.url)]
    if result.chain_stop == "limit":
        return [Check("hops", False, "redirect chain: more than %d redirects" % (result.redirects - 1),
                      "Redirect %s straight to its final URL, in one hop." % exp.url)]
    if result.chain_stop == "error":
        return [Check("hops", False, "redirect chain: %s does not answer (%s)" % (last.url, last.error),
                      "Make %s answer, or point the redirect at a URL that does." % last.url)]
    if exp.hops is None:
        return []
    if result.redirects == exp.hops:
        return [Check("hops", True, "%d redirect(s)" % result.redirects)]
    final = last.url
    if result.redirects > exp.hops:
        fix = "Redirect %s straight to %s in %d hop(s), not through %d." % (exp.url, final, exp.hops, result.redirects)
    else:
        fix = "%s reaches its final answer after %d redirect(s), not %d: add the missing redirect." % (exp.url, result.redirects, exp.hops)
    return [Check("hops", False, "hops: expected %d redirect(s) before the final answer, got %d" % (exp.hops, result.redirects), fix)]


def _header_checks(exp: Expectation, answer: Answer) -> list[Check]:
    rules = exp.headers
    if rules is None:
        return []
    checks: list[Check] = []
    for name in rules.present:
        values = answer.header_values(name)
        checks.append(Check("headers", True, "%s present" % name) if values else Check(
            "headers", False, "header %s: missing" % name,
            "Send the %s header on %s (from the origin, or with a Cloudflare response header transform rule)." % (name, exp.url)))
    for name in rules.absent:
        values = answer.header_values(name)
        checks.append(Check(
            "headers", False, "header %s: present (%s) but must be absent" % (name, _show(", ".join(values))),
            "Stop sending the %s header on %s (at the origin, or remove it with a Cloudflare response header transform rule)." % (name, exp.url),
        ) if values else Check("headers", True, "%s absent" % name))
    for name, pattern in rules.match:
        values = answer.header_values(name)
        if any(pattern.search(value) for value in values):
            checks.append(Check("headers", True, "%s matches" % name))
        else:
            seen = _show(", ".join(values)) if values else "missing"
            checks.append(Check("headers", False, "header %s: expected to match /%s/, got %s" % (name, pattern.pattern, seen),
                                "Send %s on %s with a value matching /%s/." % (name, exp.url, pattern.pattern)))
    return checks


def _hsts_checks(exp: Expectation, answer: Answer) -> list[Check]:
    rule = exp.hsts
    if rule is None:
        return []
    wanted = "max-age=%d" % max(rule.min_max_age or 0, PRELOAD_MIN_MAX_AGE if rule.preload else 0, 15552000)
    wanted += "; includeSubDomains" if rule.include_subdomains or rule.preload else ""
    wanted += "; preload" if rule.preload else ""
    fix = ("Send Strict-Transport-Security: %s on %s (Cloudflare: security_header.strict_transport_security in the zone settings, "
           "as the edge_security role sets it)." % (wanted, exp.url))
    values = answer.header_values("strict-transport-security")
    if not values:
        return [Check("hsts", False, "hsts: no Strict-Transport-Security header", fix)]
    directives, problem = parse_hsts(values[0])  # RFC 6797 section 8.1: only the first one counts
    if problem:
        return [Check("hsts", False, "hsts: %s (%s)" % (problem, _show(values[0])), fix)]
    max_age = int(directives["max-age"] or 0)
    checks = []
    if rule.min_max_age is not None:
        checks.append(Check("hsts", max_age >= rule.min_max_age, "hsts: max-age=%d, at least %d expected" % (max_age, rule.min_max_age), fix))
    for option, directive, name in ((rule.include_subdomains, "includesubdomains", "includeSubDomains"), (rule.preload, "preload", "preload")):
        if option is not None:
            present = directive in directives
            text = "hsts: %s %s, %s" % (name, "present" if present else "missing", "expected" if option else "not expected")
            checks.append(Check("hsts", present == option, text, fix))
    if rule.preload and (max_age < PRELOAD_MIN_MAX_AGE or "includesubdomains" not in directives):
        checks.append(Check("hsts", False, "hsts: preload needs max-age of at least %d and includeSubDomains (hstspreload.org)" % PRELOAD_MIN_MAX_AGE, fix))
    return checks or [Check("hsts", True, "hsts present")]


def _cache_checks(exp: Expectation, answer: Answer) -> list[Check]:
    value = answer.header("cf-cache-status")
    shown = value or "no cf-cache-status header"
    bypass = ("Exclude %s from Cloudflare's cache: a cache rule that bypasses the cache for this path (the edge_security role's cache rules "
              "never cache admin, auth, API and session pages)." % exp.url)
    checks = []
    if exp.cache_status is not None:
        if value is not None and value.upper() in exp.cache_status:
            checks.append(Check("cache_status", True, "cf-cache-status %s" % value))
        else:
            if value is None:
                fix = "%s has no cf-cache-status header: make sure its DNS record is proxied through Cloudflare." % exp.url
            elif value.upper() in CACHE_HITS:
                fix = bypass
            else:
                fix = "Change the cache rule matching %s so that Cloudflare answers %s (it answers %s)." % (exp.url, " or ".join(exp.cache_status), value)
            checks.append(Check("cache_status", False, "cf-cache-status: expected %s, got %s" % (" or ".join(exp.cache_status), shown), fix))
    if exp.cache_status_not is not None:
        if value is None or value.upper() not in exp.cache_status_not:
            checks.append(Check("cache_status", True, "cf-cache-status %s" % shown))
        else:
            checks.append(Check("cache_status", False, "cf-cache-status: %s, which must not be" % value, bypass))
    return checks


def _body_checks(exp: Expectation, answer: Answer, text: str) -> list[Check]:
    checks = []
    cut = " (in its first %d bytes)" % len(answer.body) if answer.truncated else ""
    for wanted in exp.body_contains:
        checks.append(Check("body", True, "contains %s" % _show(wanted)) if wanted in text else Check(
            "body", False, "body: does not contain %s%s" % (_show(wanted), cut),
            "Make %s serve a page containing %s (is the right release deployed, and is this the right URL?)." % (exp.url, _show(wanted))))
    for unwanted in exp.body_not_contains:
        where = text.find(unwanted)
        if where < 0:
            checks.append(Check("body", True, "does not contain %s" % _show(unwanted)))
            continue
        context = text[max(0, where - 40) : where + len(unwanted) + 40].replace("\n", " ")
        checks.append(Check("body", False, "body: contains %s: ...%s..." % (_show(unwanted), context), "Remove %s from %s." % (_show(unwanted), exp.url)))
    return checks


def _json_checks(exp: Expectation, answer: Answer, text: str) -> list[Check]:
    if not exp.json:
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        return [Check("json", False, "json: the body is not JSON (%s; content-type %s)" % (exc, answer.header("content-type") or "none"),
                      "Make %s answer JSON (it answers %s)." % (exp.url, answer.header("content-type") or "no content-type"))]
    checks = []
    for rule in exp.json:
        actual = rule.compiled.search(data)
        if _same(actual, rule.expected):
            checks.append(Check("json", True, "%s = %s" % (rule.expression, _show(actual))))
        else:
            checks.append(Check("json", False, "json %s: expected %s, got %s" % (rule.expression, _show(rule.expected), _show(actual)),
                                "Make the JSON answer of %s give %s for %s." % (exp.url, _show(rule.expected), rule.expression)))
    return checks


def _tls_checks(exp: Expectation, result: ProbeResult, now: Any) -> tuple[list[Check], list[str]]:
    rule, tls = exp.tls, result.tls
    if rule is None:
        return [], []
    if tls is None or tls.certificate is None:
        return [Check("tls", False, "tls: no certificate was presented", "Serve a certificate for %s." % urlsplit(exp.url).hostname)], []
    cert, host, checks, notes = tls.certificate, tls.host, [], []
    expires = cert.not_after.strftime("%Y-%m-%d")
    if rule.verify_chain:
        if tls.chain_verified:
            checks.append(Check("tls", True, "chain verified"))
        else:
            checks.append(Check("tls", False, "tls chain: not trusted (%s; issuer %s)" % (tls.chain_error, cert.issuer),
                                "Serve a certificate for %s that chains to a trusted CA (ca_path, or this machine's trust store), intermediates included, "
                                "and not expired." % host))
    if rule.verify_hostname:
        names = ", ".join(cert.dns_names + cert.ip_addresses) or "no subjectAltName"
        if cert.matches(host):
            checks.append(Check("tls", True, "certificate covers %s" % host))
        else:
            checks.append(Check("tls", False, "tls hostname: the certificate covers %s, not %s" % (names, host),
                                "Serve a certificate whose subjectAltName covers %s (Cloudflare's Universal SSL covers the apex and one level of "
                                "subdomains; deeper names need an advanced certificate)." % host))
    if rule.min_days_left is not None:
        days = cert.days_left(now)
        if days >= rule.min_days_left:
            checks.append(Check("tls", True, "%.1f days left" % days))
        else:
            state = "expired on %s" % expires if days < 0 else "%.1f days left (expires %s)" % (days, expires)
            checks.append(Check("tls", False, "tls expiry: %s, at least %d wanted" % (state, rule.min_days_left),
                                "Renew the certificate of %s before %s, and check that its renewal is automatic." % (host, expires)))
    for version in rule.versions_to_refuse:
        state = tls.versions.get(version, "%s: not tried" % UNTESTED)
        if state == ACCEPTED:
            checks.append(Check("tls", False, "tls versions: TLS %s is accepted, the minimum is %s" % (version, rule.min_version),
                                "Refuse TLS versions below %s on %s (Cloudflare: min_tls_version %s in the zone settings, as the edge_security role "
                                "sets it)." % (rule.min_version, host, rule.min_version)))
        elif state.startswith(UNTESTED):
            notes.append("TLS %s %s" % (version, state))
        else:
            checks.append(Check("tls", True, "TLS %s refused" % version))
    return checks, notes


def _is_html(answer: Answer) -> bool:
    return "html" in (answer.header("content-type") or "text/html").lower()


def _page_checks(exp: Expectation, answer: Answer, text: str, stale_patterns: tuple[str, ...]) -> tuple[list[Check], list[str]]:
    checks, notes = [], []
    html = _is_html(answer)
    if exp.mixed_content:
        if not html:
            notes.append("mixed content not looked for: the answer is %s, not HTML" % answer.header("content-type"))
        else:
            found = mixed_content(exp.url, text)
            checks.append(Check("mixed_content", True, "no mixed content") if not found else Check(
                "mixed_content", False, "mixed content: %d http:// subresource(s): %s" % (len(found), ", ".join(str(ref) for ref in found[:10])),
                "Load these over https:// on %s (fix the URLs at the origin; Cloudflare's Automatic HTTPS Rewrites fixes the ones it can): %s."
                % (exp.url, ", ".join(ref.url for ref in found[:10]))))
    if exp.stale_links:
        found_links = stale_links(exp.url, text, html, stale_patterns)
        if not found_links:
            checks.append(Check("stale_links", True, "no stale links"))
        else:
            shown = ", ".join("%s (%s)" % (url, pattern) for url, pattern in found_links[:10])
            checks.append(Check("stale_links", False, "stale links: %d link(s) to preview, staging or local hosts: %s" % (len(found_links), shown),
                                "Replace the links to preview, staging or local hosts on %s with the production URLs (the audit stage's source scan "
                                "finds where they are written): %s." % (exp.url, ", ".join(url for url, _pattern in found_links[:10]))))
    return checks, notes


def evaluate(exp: Expectation, result: ProbeResult, stage: str, stale_hosts: tuple[str, ...] = (), now: Any = None) -> Verdict:
    """Every assertion of ``exp`` on ``result``, and the one finding that sums them up."""
    answer = result.answer
    if answer is None:
        parts = urlsplit(exp.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        finding = Finding(
            stage, exp.severity, "%s does not answer" % exp.label, "%s: %s" % (exp.url, result.error or "no answer"),
            "Make sure %s resolves to the server and that it answers on port %d; to check a server before DNS points at it, map the name "
            "with the resolve option." % (parts.hostname, port),
        )
        return Verdict(exp, result, [Check("connection", False, "no answer: %s" % result.error)], [], finding)
    text = answer.text if exp.method != "HEAD" else ""
    checks = _status_checks(exp, result, answer) + _location_checks(exp, answer) + _chain_checks(exp, result)
    checks += _header_checks(exp, answer) + _hsts_checks(exp, answer) + _cache_checks(exp, answer)
    checks += _body_checks(exp, answer, text) + _json_checks(exp, answer, text)
    tls_checks, notes = _tls_checks(exp, result, now)
    page_checks, page_notes = _page_checks(exp, answer, text, STALE_HOSTS + tuple(stale_hosts))
    checks += tls_checks + page_checks
    notes += page_notes
    failed = [check for check in checks if not check.passed]
    chain = describe_chain(result)
    noted = "; note: %s" % "; ".join(notes) if notes else ""
    if failed:
        kinds = list(dict.fromkeys(check.kind for check in failed))
        finding = Finding(
            stage, exp.severity, "%s: %d of %d checks failed (%s)" % (exp.label, len(failed), len(checks), ", ".join(kinds)),
            "%s; failed: %s%s" % (chain, "; ".join(check.detail for check in failed), noted),
            " ".join(dict.fromkeys(check.fix for check in failed if check.fix)),
        )
    else:
        kinds = list(dict.fromkeys(check.kind for check in checks))
        finding = Finding(stage, OK, "%s: all %d checks passed" % (exp.label, len(checks)), "%s; checked %s%s" % (chain, ", ".join(kinds), noted))
    return Verdict(exp, result, checks, notes, finding)


def result_entry(verdict: Verdict) -> dict:
    """What the module returns per expectation: the chain, a subset of the first answer's headers, TLS facts, timing, failures."""
    exp, result = verdict.expectation, verdict.result
    answer = result.answer
    names = list(RESULT_HEADERS)
    if exp.headers is not None:
        names += list(exp.headers.present) + list(exp.headers.absent) + [name for name, _pattern in exp.headers.match]
    headers = {}
    if answer is not None:
        for name in dict.fromkeys(names):
            values = answer.header_values(name)
            if values:
                headers[name] = ", ".join(values)
    return {
        "title": exp.label,
        "url": exp.url,
        "method": exp.method,
        "status": answer.status if answer is not None else None,
        "redirects": result.redirects,
        "hops": [hop.as_dict() for hop in result.hops],
        "headers": headers,
        "tls": result.tls.as_dict() if result.tls is not None else None,
        "elapsed_ms": result.elapsed_ms,
        "error": result.error,
        "passed": not verdict.failed,
        "failed": [check.detail for check in verdict.failed],
    }
