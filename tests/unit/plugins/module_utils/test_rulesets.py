# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.launchready.core.plugins.module_utils._rulesets import (
    RulesError,
    check_prefix,
    describe_pointer,
    full_ref,
    owned_rules,
    parse_refs,
    parse_rules,
    plan_removal,
    plan_ruleset,
)

P = "launchready_"
CACHE = "http_request_cache_settings"
REDIRECT = "http_request_dynamic_redirect"
RATELIMIT = "http_ratelimit"
FIREWALL = "http_request_firewall_custom"


def rule(ref, expression='http.host eq "a.test"', **extra):
    return dict({"ref": ref, "expression": expression}, **extra)


def existing(rule_id, ref, expression='http.host eq "a.test"', action="set_cache_settings", **extra):
    item = {"id": rule_id, "ref": ref, "expression": expression, "action": action, "description": "", "enabled": True,
            "version": "1", "last_updated": "2024-01-01T00:00:00Z"}
    item.update(extra)
    return item


def ruleset(*rules):
    return {"id": "rs1", "name": "default", "kind": "zone", "phase": CACHE, "version": "3", "rules": list(rules)}


BYPASS = {"cache": False}


def test_refs_get_the_prefix_and_actions_their_phase_default():
    rules = parse_rules([rule("bypass", action_parameters=BYPASS), rule("launchready_static", action_parameters={"cache": True})], CACHE, P)
    assert [r.ref for r in rules] == ["launchready_bypass", "launchready_static"]
    assert [r.action for r in rules] == ["set_cache_settings", "set_cache_settings"]
    assert rules[0].body() == {"ref": "launchready_bypass", "description": "", "expression": 'http.host eq "a.test"', "action": "set_cache_settings",
                               "enabled": True, "action_parameters": {"cache": False}}
    assert full_ref("x", P) == "launchready_x"


@pytest.mark.parametrize("phase, items, message", [
    (CACHE, [rule("a", action_parameters=BYPASS), rule("a", action_parameters=BYPASS)], "rules[1] (ref a): ref launchready_a is already used by rules[0]"),
    (CACHE, [rule("", action_parameters=BYPASS)], "rules[0]: ref is required"),
    (CACHE, [rule("has space", action_parameters=BYPASS)], "rules[0] (ref has space): ref is required, made of letters"),
    (CACHE, [rule("a", action="block", action_parameters=BYPASS)], "action 'block' is not allowed in the http_request_cache_settings phase"),
    (CACHE, [rule("a")], "a cache rule needs action_parameters"),
    (CACHE, [rule("a", action_parameters={"cache": "no"})], "action_parameters.cache must be true or false"),
    (CACHE, [rule("a", expression='http.host eq "a")', action_parameters=BYPASS)],
     "rules[0] (ref a): the expression is not valid: unbalanced ')': nothing opened it"),
    (CACHE, [rule("a", expression="", action_parameters=BYPASS)], "rules[0] (ref a): expression is required"),
    (CACHE, [rule("a", action_parameters=BYPASS, ratelimit={"period": 10})], "ratelimit is only for the http_ratelimit phase"),
    (REDIRECT, [rule("r")], "a redirect rule needs action_parameters.from_value"),
    (REDIRECT, [rule("r", action_parameters={"from_value": {"target_url": {"value": "/relative"}}})], "must be an absolute http:// or https:// URL"),
    (REDIRECT, [rule("r", action_parameters={"from_value": {"target_url": {}}})], "target_url needs either value"),
    (REDIRECT, [rule("r", action_parameters={"from_value": {"target_url": {"value": "https://a", "expression": "x"}}})], "target_url needs either value"),
    (REDIRECT, [rule("r", action_parameters={"from_value": {"status_code": 200, "target_url": {"value": "https://a"}}})],
     "status_code must be one of 301, 302, 303, 307, 308, not 200"),
    (REDIRECT, [rule("r", action_parameters={"from_value": {"preserve_query_string": "yes", "target_url": {"value": "https://a"}}})],
     "preserve_query_string must be true or false"),
    (REDIRECT, [rule("r", action_parameters={"from_value": {"target_url": {"expression": 'concat("https://a", http.request.uri.pth)'}}})],
     "the target_url expression is not valid: unknown field 'http.request.uri.pth'"),
    (RATELIMIT, [rule("login")], "a rate limiting rule needs ratelimit"),
    (RATELIMIT, [rule("login", ratelimit={"period": 10})], "ratelimit needs period (seconds) and requests_per_period"),
    (RATELIMIT, [rule("login", ratelimit={"period": "10s", "requests_per_period": 5})], "ratelimit.period must be a whole number of seconds"),
    (RATELIMIT, [rule("login", ratelimit={"period": 10, "requests_per_period": 5, "characteristics": ["ip.src"]})],
     'characteristics must be a list that includes "cf.colo.id"'),
    (RATELIMIT, [rule("login", ratelimit={"period": 10, "requests_per_period": 5, "counting_expression": "http.status eq 401"})],
     "ratelimit.counting_expression is not valid: unknown field 'http.status'"),
    (FIREWALL, [rule("s", action="skip")], "a skip rule needs action_parameters"),
    (FIREWALL, [rule("s", action="redirect")], "action 'redirect' is not allowed in the http_request_firewall_custom phase"),
])
def test_bad_rules_are_refused_with_their_name(phase, items, message):
    with pytest.raises(RulesError) as caught:
        parse_rules(items, phase, P)
    assert message in str(caught.value)


def test_rate_limit_rules_count_by_ip_unless_told_otherwise():
    rules = parse_rules([rule("login", ratelimit={"period": 10, "requests_per_period": 5, "mitigation_timeout": 10})], RATELIMIT, P)
    assert rules[0].action == "block"
    assert rules[0].ratelimit == {"period": 10, "requests_per_period": 5, "mitigation_timeout": 10, "characteristics": ["cf.colo.id", "ip.src"]}


@pytest.mark.parametrize("prefix", ["", "has space", "a/b"])
def test_the_prefix_must_be_usable(prefix):
    with pytest.raises(RulesError):
        check_prefix(prefix)


def test_an_empty_phase_gets_the_rules_added():
    desired = parse_rules([rule("bypass", action_parameters=BYPASS)], CACHE, P)
    plan = plan_ruleset(None, desired, "last", P)
    assert plan.changed and not plan.exists and plan.ruleset_id is None
    assert [a["ref"] for a in plan.added] == ["launchready_bypass"] and not plan.changed_rules and not plan.removed
    assert plan.body() == {"rules": [desired[0].body()]}


def test_unowned_rules_stay_untouched_and_in_order():
    theirs_a = existing("a1", "their_first", action_parameters={"cache": True}, categories=["x"], logging={"enabled": True})
    theirs_b = existing("b1", "b1")  # a rule made in the dashboard: ref is its id
    mine = existing("m1", "launchready_bypass", action_parameters=BYPASS)
    desired = parse_rules([rule("bypass", expression='http.host eq "b.test"', action_parameters=BYPASS), rule("new", action_parameters=BYPASS)], CACHE, P)
    plan = plan_ruleset(ruleset(theirs_a, mine, theirs_b), desired, "last", P)
    sent = plan.body()["rules"]
    assert [r.get("id") for r in sent] == ["a1", "b1", "m1", None]
    # their rules go back as read, without the fields the API sets itself
    assert sent[0] == {"id": "a1", "ref": "their_first", "expression": 'http.host eq "a.test"', "action": "set_cache_settings", "description": "",
                       "enabled": True, "action_parameters": {"cache": True}, "logging": {"enabled": True}}
    assert sent[2] == {"id": "m1", "ref": "launchready_bypass", "description": "", "expression": 'http.host eq "b.test"',
                       "action": "set_cache_settings", "enabled": True, "action_parameters": BYPASS}
    assert [c["ref"] for c in plan.changed_rules] == ["launchready_bypass"] and plan.changed_rules[0]["fields"] == ["expression"]
    assert [a["ref"] for a in plan.added] == ["launchready_new"] and plan.removed == []


def test_position_first_puts_the_owned_rules_before_the_others():
    theirs = existing("a1", "theirs", action_parameters={"cache": True})
    mine = existing("m1", "launchready_bypass", action_parameters=BYPASS)
    desired = parse_rules([rule("bypass", action_parameters=BYPASS)], CACHE, P)
    plan = plan_ruleset(ruleset(theirs, mine), desired, "first", P)
    assert plan.moved and plan.changed and not plan.added and not plan.changed_rules
    assert [r["id"] for r in plan.after] == ["m1", "a1"]
    again = plan_ruleset(ruleset(mine, theirs), desired, "first", P)
    assert not again.changed


def test_nothing_to_do_is_no_change_whatever_the_api_adds():
    mine = existing("m1", "launchready_bypass", action_parameters=BYPASS)
    del mine["description"], mine["enabled"]  # left out: their defaults
    desired = parse_rules([rule("bypass", action_parameters=BYPASS)], CACHE, P)
    plan = plan_ruleset(ruleset(existing("a1", "theirs", action_parameters=BYPASS), mine), desired, "last", P)
    assert not plan.changed and not plan.moved
    assert plan.diff()["before"] == plan.diff()["after"]


def test_owned_rules_not_listed_are_removed():
    mine = [existing("m%d" % n, "launchready_r%d" % n, action_parameters=BYPASS) for n in range(3)]
    desired = parse_rules([rule("r1", action_parameters=BYPASS)], CACHE, P)
    plan = plan_ruleset(ruleset(*mine), desired, "last", P)
    assert [r["ref"] for r in plan.removed] == ["launchready_r0", "launchready_r2"]
    assert [r["id"] for r in plan.after] == ["m1"] and not plan.moved


def test_removal_takes_the_named_owned_rules_or_all_of_them():
    theirs = existing("a1", "theirs", action_parameters=BYPASS)
    mine = [existing("m%d" % n, "launchready_r%d" % n, action_parameters=BYPASS) for n in range(2)]
    assert parse_refs([{"ref": "r1"}, {"ref": "launchready_r2"}], P) == {"launchready_r1", "launchready_r2"}
    named = plan_removal(ruleset(mine[0], theirs, mine[1]), parse_refs([{"ref": "r1"}], P), P)
    assert [r["ref"] for r in named.removed] == ["launchready_r1"] and [r["id"] for r in named.after] == ["m0", "a1"]
    everything = plan_removal(ruleset(mine[0], theirs, mine[1]), set(), P)
    assert [r["ref"] for r in everything.removed] == ["launchready_r0", "launchready_r1"] and [r["id"] for r in everything.after] == ["a1"]
    assert not plan_removal(ruleset(theirs), set(), P).changed
    assert not plan_removal(None, set(), P).changed
    assert not plan_removal(ruleset(theirs), {"theirs"}, P).changed  # never a rule the collection does not own
    with pytest.raises(RulesError):
        parse_refs([{"ref": ""}], P)


def test_a_rule_owned_under_another_prefix_is_not_ours():
    other = existing("o1", "otherteam_bypass", action_parameters=BYPASS)
    plan = plan_ruleset(ruleset(other), [], "last", P)
    assert not plan.changed and plan.removed == []


def test_the_diff_shows_every_rule_in_order():
    theirs = existing("a1", "theirs", action_parameters={"cache": True})
    desired = parse_rules([rule("bypass", action_parameters=BYPASS)], CACHE, P)
    diff = plan_ruleset(ruleset(theirs), desired, "last", P).diff()
    assert [r["ref"] for r in diff["before"]["rules"]] == ["theirs"]
    assert [r["ref"] for r in diff["after"]["rules"]] == ["theirs", "launchready_bypass"]
    assert "version" not in diff["before"]["rules"][0]


def test_owned_rules_and_pointers_of_an_answer():
    rules = [existing("a1", "theirs"), existing("m1", "launchready_x")]
    assert [r["ref"] for r in owned_rules(rules, P)] == ["launchready_x"]
    assert describe_pointer("/rules/1/expression", rules) == "rule launchready_x (expression)"
    assert describe_pointer("/rules/0", rules) == "rule theirs"
    assert describe_pointer("/rules/7", rules) is None and describe_pointer("/name", rules) is None
