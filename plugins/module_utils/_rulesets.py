# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules the collection owns in a zone's phase entry point ruleset, and the plan that puts them
there (pure: no I/O).

A rule is owned when its ``ref`` starts with the collection's prefix (``launchready_``). The plan
keeps every other rule as it is, in its order, and writes the whole ruleset back in one ``PUT``
only when an owned rule is added, changed, removed or moved. Rules are checked before any call:
actions per phase, parameters per action, and every expression against the Rules language
subset of ``_rules_language``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ansible_collections.launchready.core.plugins.module_utils._rules_language import ExpressionError, check_filter, check_target

DEFAULT_PREFIX = "launchready_"
BLOCKING = ("block", "challenge", "js_challenge", "managed_challenge", "log")
# phase: (actions it takes, the action a rule gets when it names none)
PHASES: dict[str, tuple[tuple[str, ...], str]] = {
    "http_request_dynamic_redirect": (("redirect",), "redirect"),
    "http_request_cache_settings": (("set_cache_settings",), "set_cache_settings"),
    "http_ratelimit": (BLOCKING, "block"),
    "http_request_firewall_custom": ((*BLOCKING, "skip"), "block"),
}
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# What a rule carries that the API sets itself; everything else of a rule the collection does not own is sent back as read.
READ_ONLY_FIELDS = ("version", "last_updated", "categories")
COMPARED_FIELDS = ("description", "expression", "action", "action_parameters", "enabled", "ratelimit")
_REF_RE = re.compile(r"^[A-Za-z0-9_.-]{1,}$")


class RulesError(ValueError):
    """Rules the module refuses before any API call."""


@dataclass
class Rule:
    ref: str  # with the prefix
    expression: str
    action: str
    description: str = ""
    enabled: bool = True
    action_parameters: dict | None = None
    ratelimit: dict | None = None

    def body(self) -> dict:
        """The rule as the API takes it (without ``id``)."""
        body: dict = {"ref": self.ref, "description": self.description, "expression": self.expression, "action": self.action, "enabled": self.enabled}
        if self.action_parameters:
            body["action_parameters"] = copy.deepcopy(self.action_parameters)
        if self.ratelimit:
            body["ratelimit"] = copy.deepcopy(self.ratelimit)
        return body


def full_ref(ref: str, prefix: str) -> str:
    """The ref the rule carries in Cloudflare: the short ref with the prefix (a ref that has it already is kept)."""
    return ref if ref.startswith(prefix) else prefix + ref


def check_prefix(prefix: str) -> None:
    if not prefix or not _REF_RE.match(prefix):
        raise RulesError("ref_prefix %r must be non-empty letters, digits, '_', '.' or '-': it is how the module tells its rules from the others" % prefix)


def parse_rules(items: list[dict], phase: str, prefix: str) -> list[Rule]:
    """The rules as given to the module, checked; RulesError naming the rule and what is wrong."""
    check_prefix(prefix)
    actions, default_action = PHASES[phase]
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        ref = str(item.get("ref") or "").strip()
        name = "rules[%d]" % index + (" (ref %s)" % ref if ref else "")
        if not _REF_RE.match(ref):
            raise RulesError("%s: ref is required, made of letters, digits, '_', '.' or '-'" % name)
        ref = full_ref(ref, prefix)
        if ref in seen:
            raise RulesError("%s: ref %s is already used by rules[%d]" % (name, ref, seen[ref]))
        seen[ref] = index
        action = item.get("action") or default_action
        if action not in actions:
            raise RulesError("%s: action %r is not allowed in the %s phase (allowed: %s)" % (name, action, phase, ", ".join(actions)))
        expression = item.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            raise RulesError("%s: expression is required" % name)
        try:
            check_filter(expression)
        except ExpressionError as exc:
            raise RulesError("%s: the expression is not valid: %s" % (name, exc)) from None
        parameters = item.get("action_parameters")
        ratelimit = item.get("ratelimit")
        _check_parameters(name, phase, action, parameters)
        ratelimit = _check_ratelimit(name, phase, ratelimit)
        enabled = item.get("enabled")
        rules.append(Rule(ref, expression, action, item.get("description") or "", True if enabled is None else bool(enabled),
                          copy.deepcopy(parameters) if parameters else None, ratelimit))
    return rules


def _check_parameters(name: str, phase: str, action: str, parameters: dict | None) -> None:
    if parameters is not None and not isinstance(parameters, dict):
        raise RulesError("%s: action_parameters must be a mapping" % name)
    if action == "redirect":
        _check_redirect(name, parameters or {})
    elif action == "set_cache_settings":
        if not parameters:
            raise RulesError("%s: a cache rule needs action_parameters, for example {cache: false} to bypass the cache" % name)
        if "cache" in parameters and not isinstance(parameters["cache"], bool):
            raise RulesError("%s: action_parameters.cache must be true or false" % name)
    elif action == "skip" and not parameters:
        raise RulesError("%s: a skip rule needs action_parameters saying what it skips (ruleset, phases or products)" % name)


def _check_redirect(name: str, parameters: dict) -> None:
    from_value = parameters.get("from_value")
    if not isinstance(from_value, dict):
        raise RulesError("%s: a redirect rule needs action_parameters.from_value with target_url (and status_code)" % name)
    status = from_value.get("status_code", 301)
    if isinstance(status, bool) or status not in REDIRECT_STATUSES:
        raise RulesError("%s: status_code must be one of %s, not %r" % (name, ", ".join(map(str, REDIRECT_STATUSES)), status))
    if "preserve_query_string" in from_value and not isinstance(from_value["preserve_query_string"], bool):
        raise RulesError("%s: preserve_query_string must be true or false" % name)
    target = from_value.get("target_url")
    if not isinstance(target, dict) or ("value" in target) == ("expression" in target):
        raise RulesError("%s: target_url needs either value (a URL) or expression (such as concat(...))" % name)
    if "expression" in target:
        try:
            check_target(str(target["expression"]))
        except ExpressionError as exc:
            raise RulesError("%s: the target_url expression is not valid: %s" % (name, exc)) from None
    else:
        url = urlsplit(str(target["value"]))
        if url.scheme not in ("http", "https") or not url.netloc:
            raise RulesError("%s: target_url.value %r must be an absolute http:// or https:// URL" % (name, target["value"]))


def _check_ratelimit(name: str, phase: str, ratelimit: dict | None) -> dict | None:
    if phase != "http_ratelimit":
        if ratelimit:
            raise RulesError("%s: ratelimit is only for the http_ratelimit phase" % name)
        return None
    if not isinstance(ratelimit, dict) or not ratelimit:
        raise RulesError("%s: a rate limiting rule needs ratelimit (period, requests_per_period, mitigation_timeout)" % name)
    ratelimit = copy.deepcopy(ratelimit)
    ratelimit.setdefault("characteristics", ["cf.colo.id", "ip.src"])
    characteristics = ratelimit["characteristics"]
    if not isinstance(characteristics, list) or "cf.colo.id" not in characteristics:
        raise RulesError('%s: ratelimit.characteristics must be a list that includes "cf.colo.id" (default ["cf.colo.id", "ip.src"])' % name)
    for key in ("period", "requests_per_period", "mitigation_timeout"):
        value = ratelimit.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise RulesError("%s: ratelimit.%s must be a whole number of %s" % (name, key, "requests" if key == "requests_per_period" else "seconds"))
    if not ratelimit.get("period") or not ratelimit.get("requests_per_period"):
        raise RulesError("%s: ratelimit needs period (seconds) and requests_per_period" % name)
    if "counting_expression" in ratelimit:
        try:
            check_filter(str(ratelimit["counting_expression"]))
        except ExpressionError as exc:
            raise RulesError("%s: ratelimit.counting_expression is not valid: %s" % (name, exc)) from None
    return ratelimit


# -- the plan -----------------------------------------------------------------------------------


def summary(rule: dict) -> dict:
    """A rule as results and diffs show it: its ref, id and the compared fields."""
    shown = {"ref": rule.get("ref"), "id": rule.get("id"), "description": "", "enabled": True}  # the API's defaults
    shown.update({key: rule[key] for key in COMPARED_FIELDS if key in rule})
    return {key: value for key, value in shown.items() if value is not None}


def _compared(rule: dict) -> dict:
    return {
        "description": rule.get("description") or "",
        "expression": rule.get("expression"),
        "action": rule.get("action"),
        "action_parameters": rule.get("action_parameters") or None,
        "enabled": rule.get("enabled", True) is not False,
        "ratelimit": rule.get("ratelimit") or None,
    }


def _as_sent(rule: dict) -> dict:
    return {key: copy.deepcopy(value) for key, value in rule.items() if key not in READ_ONLY_FIELDS}


@dataclass
class RulesetPlan:
    exists: bool
    ruleset_id: str | None
    added: list[dict] = field(default_factory=list)
    changed_rules: list[dict] = field(default_factory=list)  # {"ref", "id", "fields", "before", "after"}
    removed: list[dict] = field(default_factory=list)
    moved: bool = False
    before: list[dict] = field(default_factory=list)  # every rule of the ruleset, as read
    after: list[dict] = field(default_factory=list)  # every rule as sent (ids of kept rules, none for new ones)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.changed_rules or self.removed or self.moved)

    def body(self) -> dict:
        return {"rules": copy.deepcopy(self.after)}

    def diff(self) -> dict:
        return {"before": {"rules": [summary(rule) for rule in self.before]}, "after": {"rules": [summary(rule) for rule in self.after]}}


def _owned(ruleset: dict | None, prefix: str) -> tuple[RulesetPlan, list[dict], dict[str, dict]]:
    existing = list((ruleset or {}).get("rules") or [])
    plan = RulesetPlan(exists=ruleset is not None, ruleset_id=(ruleset or {}).get("id"), before=existing)
    return plan, existing, {rule.get("ref"): rule for rule in existing if str(rule.get("ref") or "").startswith(prefix)}


def parse_refs(items: list[dict], prefix: str) -> set[str]:
    """The full refs of rules named for removal (only their ``ref`` matters)."""
    check_prefix(prefix)
    refs = set()
    for index, item in enumerate(items):
        ref = str(item.get("ref") or "").strip()
        if not _REF_RE.match(ref):
            raise RulesError("rules[%d]: ref is required, made of letters, digits, '_', '.' or '-'" % index)
        refs.add(full_ref(ref, prefix))
    return refs


def plan_removal(ruleset: dict | None, refs: set[str], prefix: str) -> RulesetPlan:
    """The plan that removes the owned rules named in ``refs`` (every owned rule when ``refs`` is empty); the others stay where they are."""
    plan, existing, owned = _owned(ruleset, prefix)
    doomed = {ref for ref in owned if not refs or ref in refs}
    plan.removed = [summary(owned[ref]) for ref in owned if ref in doomed]
    plan.after = [_as_sent(rule) for rule in existing if rule.get("ref") not in doomed]
    return plan


def plan_ruleset(ruleset: dict | None, desired: list[Rule], position: str, prefix: str) -> RulesetPlan:
    """The plan from the entry point ``ruleset`` (None when the phase has none) to the owned rules ``desired``.

    The owned rules become exactly ``desired``, in that order, placed ``first`` or ``last`` among the rules
    the collection does not own, which keep their order.
    """
    plan, existing, owned = _owned(ruleset, prefix)
    wanted_refs = {rule.ref for rule in desired}
    new_owned = []
    for rule in desired:
        sent = rule.body()
        old = owned.get(rule.ref)
        if old is None:
            plan.added.append(summary(sent))
        else:
            sent = dict(sent, id=old["id"]) if old.get("id") else sent
            before, after = _compared(old), _compared(sent)
            fields = [key for key in COMPARED_FIELDS if before[key] != after[key]]
            if fields:
                plan.changed_rules.append({"ref": rule.ref, "id": old.get("id"), "fields": fields, "before": summary(old), "after": summary(sent)})
        new_owned.append(sent)
    plan.removed = [summary(rule) for ref, rule in owned.items() if ref not in wanted_refs]
    others = [_as_sent(rule) for rule in existing if rule.get("ref") not in owned]
    plan.after = new_owned + others if position == "first" else others + new_owned
    kept_order = [rule.get("id") for rule in existing if rule.get("ref") not in owned or rule.get("ref") in wanted_refs]
    plan.moved = not plan.added and not plan.removed and kept_order != [rule.get("id") for rule in plan.after]
    return plan


def owned_rules(rules: list[dict], prefix: str) -> list[dict]:
    """The rules of an answered ruleset that the collection owns, as results show them."""
    return [summary(rule) for rule in rules if str(rule.get("ref") or "").startswith(prefix)]


def describe_pointer(pointer: str, rules: list[dict]) -> str | None:
    """``/rules/3/expression`` of an API error, as the ref of the rule it points at."""
    match = re.match(r"^/rules/(\d+)(/.*)?$", pointer or "")
    if not match or int(match.group(1)) >= len(rules):
        return None
    rule = rules[int(match.group(1))]
    return "rule %s%s" % (rule.get("ref") or rule.get("id") or "#%s" % match.group(1), " (%s)" % match.group(2).lstrip("/") if match.group(2) else "")
