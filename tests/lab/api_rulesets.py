# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zone entry point rulesets: ``GET|PUT /zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint``.

GET answers 404 with 10003 until the phase's entry point exists; PUT creates it when it is missing
and otherwise replaces its rules, each PUT making a new version of the ruleset. A rule sent with
the ``id`` of an existing rule keeps that id (and its version, when nothing in it changed); a rule
without one gets a new id, and ``ref`` defaults to the id.

Each phase takes its own actions and parameters (developers.cloudflare.com: Single Redirects,
Cache Rules, Rate limiting rules, Custom rules) and its own token permission, named after
Cloudflare's permission groups:

| phase | actions | permission |
|---|---|---|
| http_request_dynamic_redirect | redirect | dynamic_url_redirects:read/edit ("Dynamic URL Redirects") |
| http_request_cache_settings | set_cache_settings | cache_settings:read/edit ("Cache Settings") |
| http_ratelimit | block, challenge, js_challenge, managed_challenge, log | zone_waf:read/edit ("Zone WAF") |
| http_request_firewall_custom | the same and skip | zone_waf:read/edit ("Zone WAF") |

Rate limiting rules follow the plan's limits (developers.cloudflare.com/waf/rate-limiting-rules/,
"Availability"): a free zone may have one rule, counting by IP, over a 10-second period with a
10-second mitigation timeout. Other phases of the OpenAPI document are stored as sent (their rule
expressions are still parsed) and the edge ignores them.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

from tests.lab import errors, records, rules_language
from tests.lab.errors import ApiError, envelope
from tests.lab.routing import Context, Reply, Route

BLOCKING = ("block", "challenge", "js_challenge", "managed_challenge", "log")
PHASES: dict[str, tuple[tuple[str, ...], str]] = {
    "http_request_dynamic_redirect": (("redirect",), "dynamic_url_redirects"),
    "http_request_cache_settings": (("set_cache_settings",), "cache_settings"),
    "http_ratelimit": (BLOCKING, "zone_waf"),
    "http_request_firewall_custom": ((*BLOCKING, "skip"), "zone_waf"),
}
OTHER_PHASE_PERMISSION = "zone_waf"
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
RULE_FIELDS = ("id", "ref", "expression", "action", "action_parameters", "description", "enabled", "ratelimit", "logging")
# Rate limiting by plan: (periods, mitigation timeouts, rules). Only the free plan's limits are published plainly;
# the lab lets paid plans use every period and timeout Cloudflare documents.
ALL_PERIODS = (10, 60, 120, 300, 600, 3600)
ALL_TIMEOUTS = (0, 10, 60, 120, 300, 600, 3600, 86400)
RATE_LIMITS = {"free": ((10,), (10,), 1), "pro": (ALL_PERIODS, ALL_TIMEOUTS, 2), "business": (ALL_PERIODS, ALL_TIMEOUTS, 5),
               "enterprise": (ALL_PERIODS, ALL_TIMEOUTS, 100)}
PHASE_NAMES = {"http_request_dynamic_redirect": "Single Redirects", "http_request_cache_settings": "Cache Rules",
               "http_ratelimit": "Rate limiting rules", "http_request_firewall_custom": "Custom rules"}


def permission(params: dict[str, str], level: str) -> str:
    return "%s:%s" % (PHASES.get(params.get("ruleset_phase", ""), ((), OTHER_PHASE_PERMISSION))[1], level)


def invalid(message: str, pointer: str) -> ApiError:
    return ApiError(400, errors.RULESET_INVALID, message, pointer=pointer)


def get_entrypoint(ctx: Context) -> Reply:
    phase = ctx.params["ruleset_phase"]
    ruleset = ctx.state.entrypoint(ctx.zone["id"], phase)
    if ruleset is None:
        raise ApiError(404, errors.ENTRYPOINT_NOT_FOUND, "could not find entrypoint ruleset in the %s phase" % phase)
    return Reply(envelope(ruleset))


def put_entrypoint(ctx: Context) -> Reply:
    phase = ctx.params["ruleset_phase"]
    body = ctx.body if isinstance(ctx.body, dict) else {}
    sent = body.get("rules")
    if not isinstance(sent, list):
        raise invalid("rules must be a list", "/rules")
    previous = ctx.state.entrypoint(ctx.zone["id"], phase)
    stamp = records.now()
    rules = _rules(ctx.zone, phase, sent, previous["rules"] if previous else [], stamp)
    ruleset = {
        "id": previous["id"] if previous else records.new_id(),
        "name": body.get("name") or (previous["name"] if previous else "default"),
        "description": body.get("description", previous["description"] if previous else ""),
        "kind": "zone", "phase": phase,
        "version": str(int(previous["version"]) + 1) if previous else "1",
        "last_updated": stamp, "rules": rules,
    }
    if not ctx.dry_run:
        ctx.state.store_entrypoint(ctx.zone["id"], ruleset)
    return Reply(envelope(ruleset))


def _rules(zone: dict[str, Any], phase: str, sent: list[Any], existing: list[dict[str, Any]], stamp: str) -> list[dict[str, Any]]:
    by_id = {rule["id"]: rule for rule in existing}
    result: list[dict[str, Any]] = []
    refs: set[str] = set()
    for index, raw in enumerate(sent):
        pointer = "/rules/%d" % index
        if not isinstance(raw, dict):
            raise invalid("a rule must be an object", pointer)
        _check_rule(zone, phase, raw, pointer)
        rule = {key: copy.deepcopy(raw[key]) for key in RULE_FIELDS if key in raw}
        rule.setdefault("description", "")
        rule.setdefault("enabled", True)
        old = by_id.get(rule.get("id", ""))
        if "id" in rule and old is None:
            raise invalid("rule %s does not exist in this ruleset" % rule["id"], pointer + "/id")
        if old is None:
            rule["id"] = records.new_id()
        rule.setdefault("ref", rule["id"])
        if rule["ref"] in refs:
            raise invalid("rule ref %s is used by more than one rule" % rule["ref"], pointer + "/ref")
        refs.add(rule["ref"])
        unchanged = old is not None and {key: old.get(key) for key in RULE_FIELDS} == {key: rule.get(key) for key in RULE_FIELDS}
        rule["version"] = old["version"] if unchanged and old else str(int(old["version"]) + 1) if old else "1"
        rule["last_updated"] = old["last_updated"] if unchanged and old else stamp
        result.append(rule)
    if phase == "http_ratelimit":
        limit = RATE_LIMITS[zone["plan"]][2]
        if len(result) > limit:
            raise invalid("a %s zone may have at most %d rate limiting rule%s" % (zone["plan"], limit, "" if limit == 1 else "s"), "/rules")
    return result


def _check_rule(zone: dict[str, Any], phase: str, rule: dict[str, Any], pointer: str) -> None:
    expression = rule.get("expression")
    if not isinstance(expression, str) or not expression:
        raise invalid("a rule needs an expression", pointer + "/expression")
    try:
        rules_language.compile_filter(expression)
    except rules_language.ExpressionError as exc:
        raise invalid(str(exc), pointer + "/expression") from None
    action = rule.get("action")
    allowed = PHASES.get(phase, ((action,), ""))[0]
    if action not in allowed:
        raise invalid("'%s' is not a valid action in the %s phase (%s)" % (action, phase, ", ".join(allowed)), pointer + "/action")
    parameters = rule.get("action_parameters", {})
    if not isinstance(parameters, dict):
        raise invalid("action_parameters must be an object", pointer + "/action_parameters")
    if action == "redirect":
        _check_redirect(parameters, pointer + "/action_parameters")
    if phase == "http_ratelimit":
        _check_ratelimit(zone["plan"], rule.get("ratelimit"), pointer + "/ratelimit")
    elif "ratelimit" in rule:
        raise invalid("ratelimit is only allowed in the http_ratelimit phase", pointer + "/ratelimit")


def _check_redirect(parameters: dict[str, Any], pointer: str) -> None:
    from_value = parameters.get("from_value")
    if not isinstance(from_value, dict):
        raise invalid("a redirect rule needs action_parameters.from_value (the lab does not serve bulk redirect lists)", pointer)
    status = from_value.get("status_code", 301)
    if status not in REDIRECT_STATUSES:
        raise invalid("status_code must be one of %s" % ", ".join(map(str, REDIRECT_STATUSES)), pointer + "/from_value/status_code")
    target = from_value.get("target_url")
    if not isinstance(target, dict) or ("value" in target) == ("expression" in target):
        raise invalid("target_url needs either a value or an expression", pointer + "/from_value/target_url")
    if "expression" in target:
        try:
            rules_language.compile_value(str(target["expression"]))
        except rules_language.ExpressionError as exc:
            raise invalid(str(exc), pointer + "/from_value/target_url/expression") from None
    else:
        url = urlsplit(str(target["value"]))
        if url.scheme not in ("http", "https") or not url.netloc:
            raise invalid("target_url.value must be an absolute http or https URL", pointer + "/from_value/target_url/value")


def _check_ratelimit(plan: str, ratelimit: Any, pointer: str) -> None:
    if not isinstance(ratelimit, dict):
        raise invalid("a rate limiting rule needs a ratelimit object", pointer)
    periods, timeouts, _rules_allowed = RATE_LIMITS[plan]
    characteristics = ratelimit.get("characteristics") or []
    if "cf.colo.id" not in characteristics:
        raise invalid('ratelimit.characteristics must include "cf.colo.id"', pointer + "/characteristics")
    if plan != "enterprise" and set(characteristics) != {"cf.colo.id", "ip.src"}:
        raise invalid('on a %s zone a rate limit counts by IP: characteristics ["cf.colo.id", "ip.src"]' % plan, pointer + "/characteristics")
    if ratelimit.get("period") not in periods:
        raise invalid("period must be one of %s on a %s zone" % (", ".join(map(str, periods)), plan), pointer + "/period")
    count = ratelimit.get("requests_per_period")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise invalid("requests_per_period must be a positive whole number", pointer + "/requests_per_period")
    if ratelimit.get("mitigation_timeout", timeouts[0]) not in timeouts:
        raise invalid("mitigation_timeout must be one of %s on a %s zone" % (", ".join(map(str, timeouts)), plan), pointer + "/mitigation_timeout")


ROUTES = [
    Route("GET", "/zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint", get_entrypoint, lambda params: permission(params, "read")),
    Route("PUT", "/zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint", put_entrypoint, lambda params: permission(params, "edit")),
]
