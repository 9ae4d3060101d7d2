# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A redirect map (one canonical host, alias hosts, old paths) turned into Cloudflare redirect rules,
checked for loops first (pure: no I/O).

    redirect_map = parse_redirect_map({
        "canonical": "example.com",
        "aliases": ["www.example.com", "old-brand.example.com"],
        "trailing_slash": "ignore",
        "paths": [{"from": "/pricing-old", "to": "/pricing"}, {"from": "old-brand.example.com/team", "to": "/about"}],
    })
    rules = redirect_rules(redirect_map)        # for launchready.core.cloudflare_rules (phase http_request_dynamic_redirect)
    checks = expectations(redirect_map)         # [{"url", "status", "location", "hops", ...}] for verification from the outside

Every path entry answers its final target in one hop: a target that another entry (or an alias
host, or the trailing-slash policy) would redirect again is followed to its end when the rules
are built. The alias and trailing-slash rules keep the request's path, so an alias URL whose path
a path entry of the canonical host redirects again takes two hops; ``expectations()`` says so. A
chain that comes back to where it started is a loop, and the map is refused with the loop spelled
out. Single redirect rules stop at the first match, so path rules come before the alias-host rules.

Trailing-slash policies: ``ignore`` (default) matches a source path with or without its trailing
slash and adds no rule of its own; ``add`` sends every path without a trailing slash and without a
dot (``/about``, not ``/logo.png`` nor ``/v1.2/x``) to the same path with one, on the canonical and
alias hosts. Removing slashes needs functions outside the Rules language subset the collection
writes, so there is no ``strip``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ansible_collections.launchready.core.plugins.module_utils._rules_language import quote

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
TRAILING_SLASH_POLICIES = ("ignore", "add")
MAX_HOPS = 20
_HOST_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
_SAMPLE_PATH = "/launchready-redirect-check"


class RedirectError(ValueError):
    """A redirect map that cannot be written: bad input, or a loop."""


@dataclass(frozen=True)
class PathRedirect:
    host: str | None  # None: the canonical host and every alias
    path: str
    target: str  # an absolute URL, as the user wrote it (a path is made absolute on the canonical host)
    status: int = 301
    preserve_query_string: bool = True

    def hosts(self, redirect_map: RedirectMap) -> tuple[str, ...]:
        return (self.host,) if self.host else redirect_map.served_hosts


@dataclass(frozen=True)
class RedirectMap:
    canonical_host: str
    aliases: tuple[str, ...] = ()
    trailing_slash: str = "ignore"
    paths: tuple[PathRedirect, ...] = ()
    alias_status: int = 301
    scheme: str = "https"

    @property
    def canonical(self) -> str:
        return "%s://%s" % (self.scheme, self.canonical_host)

    @property
    def served_hosts(self) -> tuple[str, ...]:
        return (self.canonical_host, *self.aliases)


def www_counterpart(host: str) -> str:
    """``www.example.com`` for ``example.com`` and the other way round: the alias of a www/apex pair."""
    host = _host(host, "host")
    return host[4:] if host.startswith("www.") else "www." + host


def _host(value: object, what: str) -> str:
    host = str(value or "").strip().lower().rstrip(".")
    if not _HOST_RE.match(host):
        raise RedirectError("%s %r is not a host name (such as example.com)" % (what, value))
    return host


def _path(value: str, what: str) -> str:
    if not value.startswith("/") or any(c in value for c in " ?#\"\\") or "//" in value:
        raise RedirectError("%s %r must be a path starting with / (no spaces, quotes, query or fragment)" % (what, value))
    return value


def _status(value: object, what: str) -> int:
    if isinstance(value, bool) or value not in REDIRECT_STATUSES:
        raise RedirectError("%s must be one of %s, not %r" % (what, ", ".join(map(str, REDIRECT_STATUSES)), value))
    return int(value)  # type: ignore[call-overload]


def parse_redirect_map(spec: dict, zone: str | None = None) -> RedirectMap:
    """The redirect map of ``spec`` (``canonical``, ``aliases``, ``trailing_slash``, ``status``, ``paths``), checked
    (every host in ``zone`` when given) and free of loops; RedirectError otherwise."""
    canonical = str(spec.get("canonical") or "").strip()
    if not canonical:
        raise RedirectError("redirect_map.canonical is required: the one host every alias and old URL ends on")
    scheme = "https"
    if "://" in canonical:
        parts = urlsplit(canonical)
        if parts.scheme not in ("http", "https") or parts.path not in ("", "/") or parts.query or parts.port:
            raise RedirectError("redirect_map.canonical %r must be a host name or an origin such as https://example.com" % canonical)
        scheme, canonical = parts.scheme, parts.hostname or ""
    canonical_host = _host(canonical, "redirect_map.canonical")
    aliases = []
    for alias in spec.get("aliases") or []:
        host = _host(alias, "redirect_map.aliases item")
        if host == canonical_host:
            raise RedirectError("redirect_map.aliases lists the canonical host %s: it would redirect to itself, a loop" % host)
        if host not in aliases:
            aliases.append(host)
    policy = spec.get("trailing_slash") or "ignore"
    if policy not in TRAILING_SLASH_POLICIES:
        raise RedirectError("redirect_map.trailing_slash must be one of %s, not %r" % (", ".join(TRAILING_SLASH_POLICIES), policy))
    alias_status = _status(spec.get("status", 301), "redirect_map.status")
    redirect_map = RedirectMap(canonical_host, tuple(aliases), policy, (), alias_status, scheme)
    paths = tuple(_path_redirect(redirect_map, item, index) for index, item in enumerate(spec.get("paths") or []))
    redirect_map = RedirectMap(canonical_host, tuple(aliases), policy, paths, alias_status, scheme)
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(paths):
        for host in entry.hosts(redirect_map):
            for variant in _variants(entry.path):
                if (host, variant) in seen:
                    raise RedirectError("redirect_map.paths[%d] and [%d] both redirect %s%s" % (seen[(host, variant)], index, host, variant))
                seen[(host, variant)] = index
    if zone:
        _check_zone(redirect_map, zone.strip().lower().rstrip("."))
    check_loops(redirect_map)
    return redirect_map


def _path_redirect(redirect_map: RedirectMap, item: object, index: int) -> PathRedirect:
    what = "redirect_map.paths[%d]" % index
    if not isinstance(item, dict) or not item.get("from") or not item.get("to"):
        raise RedirectError("%s needs from (a path, host/path or URL) and to (a path or URL)" % what)
    source = str(item["from"]).strip()
    host: str | None = None
    if "://" in source:
        parts = urlsplit(source)
        if parts.scheme not in ("http", "https") or parts.query or parts.fragment or parts.port:
            raise RedirectError("%s.from %r must be a path, host/path or an http(s) URL without query" % (what, source))
        host, source = _host(parts.hostname, what + ".from host"), parts.path or "/"
    elif not source.startswith("/"):
        name, _slash, rest = source.partition("/")
        host, source = _host(name, what + ".from host"), "/" + rest
    path = _path(source, what + ".from")
    target = str(item["to"]).strip()
    if target.startswith("/"):
        target = redirect_map.canonical + _path(target, what + ".to")
    else:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RedirectError("%s.to %r must be a path on the canonical host or an absolute http(s) URL" % (what, target))
        if any(c in target for c in ' "\\'):
            raise RedirectError("%s.to %r must not contain spaces, quotes or backslashes" % (what, target))
    preserve = item.get("preserve_query_string", True)
    if not isinstance(preserve, bool):
        raise RedirectError("%s.preserve_query_string must be true or false" % what)
    return PathRedirect(host, path, target, _status(item.get("status", 301), what + ".status"), preserve)


def _check_zone(redirect_map: RedirectMap, zone: str) -> None:
    hosts = set(redirect_map.served_hosts) | {entry.host for entry in redirect_map.paths if entry.host}
    outside = sorted(host for host in hosts if host != zone and not host.endswith("." + zone))
    if outside:
        raise RedirectError("redirect sources outside the zone %s never reach its rules: %s (each zone needs its own redirect rules)"
                            % (zone, ", ".join(outside)))


def _variants(path: str) -> tuple[str, ...]:
    """The paths an entry matches: with and without the trailing slash (the root is only ``/``)."""
    if path == "/":
        return ("/",)
    bare = path.rstrip("/")
    return (bare, bare + "/")


def _wants_slash(path: str) -> bool:
    return not path.endswith("/") and "." not in path


# -- following redirects ----------------------------------------------------------------------


def _split(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.path or "/"


def _one_hop(redirect_map: RedirectMap, url: str) -> str | None:
    """Where the map sends ``url`` (scheme://host/path, no query) in one hop, or None: the rules, in their order."""
    _scheme, host, path = _split(url)
    for entry in redirect_map.paths:
        if host in entry.hosts(redirect_map) and path in _variants(entry.path):
            return entry.target
    served = host in redirect_map.served_hosts
    slash = redirect_map.trailing_slash == "add" and served and _wants_slash(path)
    if host in redirect_map.aliases:
        return redirect_map.canonical + path + ("/" if slash else "")
    if slash:
        return redirect_map.canonical + path + "/"
    return None


def follow(redirect_map: RedirectMap, url: str) -> list[str]:
    """The chain of URLs ``url`` goes through (itself first); RedirectError when it loops."""
    chain = [url]
    while True:
        target = _one_hop(redirect_map, chain[-1])
        if target is None:
            return chain
        if target in chain or len(chain) > MAX_HOPS:
            raise RedirectError("redirect loop in the redirect map: %s" % " -> ".join([*chain, target]))
        chain.append(target)


def _path_sources(redirect_map: RedirectMap) -> list[tuple[PathRedirect, str]]:
    """Every URL a path entry matches, with its entry."""
    return [
        (entry, "%s://%s%s" % (redirect_map.scheme, host, variant))
        for entry in redirect_map.paths
        for host in entry.hosts(redirect_map)
        for variant in _variants(entry.path)
    ]


def _host_sources(redirect_map: RedirectMap) -> list[str]:
    """URLs the alias and trailing-slash rules redirect: each alias's root and a sample path, a sample path of the canonical host."""
    urls = ["%s://%s%s" % (redirect_map.scheme, host, path) for host in redirect_map.aliases for path in ("/", _SAMPLE_PATH)]
    if redirect_map.trailing_slash == "add":
        urls.append(redirect_map.canonical + _SAMPLE_PATH)
    return urls


def check_loops(redirect_map: RedirectMap) -> None:
    """RedirectError naming the first loop found, following every source of the map."""
    for url in [url for _entry, url in _path_sources(redirect_map)] + _host_sources(redirect_map):
        follow(redirect_map, url)


def final_target(redirect_map: RedirectMap, url: str) -> str:
    return follow(redirect_map, url)[-1]


# -- rules and expectations ---------------------------------------------------------------------


def _set(values: tuple[str, ...] | list[str]) -> str:
    return "{%s}" % " ".join(quote(value) for value in values)


def _slug(entry: PathRedirect, taken: set[str]) -> str:
    base = "redirect_" + (re.sub(r"[^a-z0-9]+", "_", ((entry.host or "") + entry.path).lower()).strip("_") or "root")[:40]
    ref, number = base, 2
    while ref in taken:
        ref, number = "%s_%d" % (base, number), number + 1
    taken.add(ref)
    return ref


def _entry_target(redirect_map: RedirectMap, entry: PathRedirect) -> str:
    """The entry's target followed to its end (a target another rule would redirect again is written as its end), query kept."""
    bare = _without_query(entry.target)
    return final_target(redirect_map, bare) + entry.target[len(bare):]


def redirect_rules(redirect_map: RedirectMap) -> list[dict]:
    """The rules of the map, in order, as ``launchready.core.cloudflare_rules`` takes them (short refs)."""
    rules = []
    taken: set[str] = set()
    for entry in redirect_map.paths:
        expression = "%s and http.request.uri.path in %s" % (_host_condition(entry.hosts(redirect_map)), _set(_variants(entry.path)))
        target = _entry_target(redirect_map, entry)
        rules.append(_rule(_slug(entry, taken), "Redirect %s%s to %s" % (entry.host or "", entry.path, target), expression,
                           {"value": target}, entry.status, entry.preserve_query_string))
    canonical_path = "concat(%s, http.request.uri.path" % quote(redirect_map.canonical)
    needs_slash = 'not ends_with(http.request.uri.path, "/") and not http.request.uri.path contains "."'
    if redirect_map.aliases:
        aliases = _host_condition(redirect_map.aliases)
        if redirect_map.trailing_slash == "add":
            rules.append(_rule("redirect_alias_slash", "Alias hosts to %s, adding the trailing slash" % redirect_map.canonical_host,
                               "%s and %s" % (aliases, needs_slash), {"expression": canonical_path + ', "/")'}, redirect_map.alias_status, True))
        rules.append(_rule("redirect_alias", "Alias hosts to %s" % redirect_map.canonical_host, aliases,
                           {"expression": canonical_path + ")"}, redirect_map.alias_status, True))
    if redirect_map.trailing_slash == "add":
        rules.append(_rule("redirect_trailing_slash", "Add the trailing slash on %s" % redirect_map.canonical_host,
                           "http.host eq %s and %s" % (quote(redirect_map.canonical_host), needs_slash),
                           {"expression": canonical_path + ', "/")'}, redirect_map.alias_status, True))
    return rules


def _without_query(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]


def _host_condition(hosts: tuple[str, ...]) -> str:
    return "http.host eq %s" % quote(hosts[0]) if len(hosts) == 1 else "http.host in %s" % _set(hosts)


def _rule(ref: str, description: str, expression: str, target: dict, status: int, preserve_query_string: bool) -> dict:
    return {
        "ref": ref,
        "description": description,
        "expression": expression,
        "action": "redirect",
        "action_parameters": {"from_value": {"target_url": target, "status_code": status, "preserve_query_string": preserve_query_string}},
    }


def _edge_answer(redirect_map: RedirectMap, url: str) -> tuple[int, str, bool] | None:
    """What the edge answers ``url`` (no query) with the rules of ``redirect_rules()``: the first matching rule's status,
    Location and query handling, or None when no rule matches."""
    _scheme, host, path = _split(url)
    for entry in redirect_map.paths:
        if host in entry.hosts(redirect_map) and path in _variants(entry.path):
            return entry.status, _entry_target(redirect_map, entry), entry.preserve_query_string
    slash = "/" if redirect_map.trailing_slash == "add" and _wants_slash(path) else ""
    if host in redirect_map.aliases:
        return redirect_map.alias_status, redirect_map.canonical + path + slash, True
    if slash and host == redirect_map.canonical_host:
        return redirect_map.alias_status, redirect_map.canonical + path + slash, True
    return None


def edge_chain(redirect_map: RedirectMap, url: str) -> list[str]:
    """The URLs the edge sends ``url`` through (itself first, queries left out), rule by rule; RedirectError when it loops."""
    chain = [url]
    while (answer := _edge_answer(redirect_map, chain[-1])) is not None:
        location = _without_query(answer[1])
        if location in chain or len(chain) > MAX_HOPS:
            raise RedirectError("redirect loop in the redirect rules: %s" % " -> ".join([*chain, location]))
        chain.append(location)
    return chain


def expectations(redirect_map: RedirectMap) -> list[dict]:
    """What each source URL of the map answers from the outside, one expectation per URL, as the edge evaluates the
    rules (the first matching rule answers): ``url``, that answer's ``status``, its exact ``location`` (for a request
    without a query string) and ``preserve_query_string``, and ``hops``, the redirects up to the final URL."""
    # Each URL once: an alias root that a host-less path entry also lists is answered by that entry's rule.
    sources = dict.fromkeys([url for _entry, url in _path_sources(redirect_map)] + _host_sources(redirect_map))
    found = []
    for url in sources:
        answer = _edge_answer(redirect_map, url)
        if answer is not None:
            status, location, preserve = answer
            found.append({"url": url, "status": status, "location": location, "preserve_query_string": preserve,
                          "hops": len(edge_chain(redirect_map, url)) - 1})
    return found
