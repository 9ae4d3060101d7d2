# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.launchready.core.plugins.modules import cloudflare_rules
from ansible_collections.launchready.core.tests.unit.plugins.fake_cloudflare import FakeCloudflare, fake_token, run_module, zone_id

ZONE = "example.com"
CACHE = "http_request_cache_settings"
REDIRECT = "http_request_dynamic_redirect"
BYPASS_EXPRESSION = 'starts_with(http.request.uri.path, "/admin") or http.cookie contains "session="'
RULES = [
    {"ref": "bypass_private", "description": "Never cache private pages", "expression": BYPASS_EXPRESSION, "action_parameters": {"cache": False}},
    {"ref": "cache_static", "expression": 'ends_with(http.request.uri.path, ".css")', "action_parameters": {"cache": True}},
]
SENT = [
    {"ref": "launchready_bypass_private", "description": "Never cache private pages", "expression": BYPASS_EXPRESSION,
     "action": "set_cache_settings", "enabled": True, "action_parameters": {"cache": False}},
    {"ref": "launchready_cache_static", "description": "", "expression": 'ends_with(http.request.uri.path, ".css")',
     "action": "set_cache_settings", "enabled": True, "action_parameters": {"cache": True}},
]
THEIRS = [
    {"id": "t" * 32, "ref": "t" * 32, "expression": 'http.host eq "example.com"', "action": "set_cache_settings", "description": "from the dashboard",
     "enabled": True, "action_parameters": {"cache": True, "edge_ttl": {"mode": "override_origin", "default": 60}}, "version": "2",
     "last_updated": "2024-01-01T00:00:00Z"},
    {"id": "u" * 32, "ref": "their_own", "expression": 'http.request.uri.path eq "/"', "action": "set_cache_settings", "description": "",
     "enabled": False, "action_parameters": {"cache": False}, "version": "1", "last_updated": "2024-01-01T00:00:00Z"},
]


def entrypoint_path(zid, phase=CACHE):
    return "/zones/%s/rulesets/phases/%s/entrypoint" % (zid, phase)


def ruleset(rules, ruleset_id="r" * 32, phase=CACHE, version="4"):
    return {"id": ruleset_id, "name": "default", "kind": "zone", "phase": phase, "version": version, "last_updated": "2024-01-01T00:00:00Z",
            "rules": rules}


def stored(sent, start=1):
    """The rules as the API answers them after a PUT: ids for new ones, version, last_updated."""
    answered = []
    for number, item in enumerate(sent, start):
        rule = dict(item)
        rule.setdefault("id", "%032x" % number)
        rule.update(version="1", last_updated="2024-05-01T00:00:00Z")
        answered.append(rule)
    return answered


def without_server_fields(rules):
    return [{k: v for k, v in rule.items() if k not in ("version", "last_updated")} for rule in rules]


@pytest.fixture
def token():
    return fake_token()


@pytest.fixture
def zid():
    return zone_id()


@pytest.fixture
def fake(token):
    return FakeCloudflare(token)


@pytest.fixture
def run(monkeypatch, capsys, fake, token):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)

    def run(rules, phase=CACHE, check_mode=False, diff=False, **options):
        args = dict(api_token=token, zone=options.pop("zone", ZONE), phase=phase, rules=rules, **options)
        result = run_module(monkeypatch, capsys, cloudflare_rules, args, fake, check_mode=check_mode, diff=diff)
        assert token not in json.dumps(result), "the API token leaked into the result"
        return result

    return run


def not_found(fake, zid, phase=CACHE):
    return fake.expect("GET", entrypoint_path(zid, phase), status=404,
                       errors=[{"code": 10003, "message": "could not find entrypoint ruleset in the %s phase" % phase}])


def test_a_phase_without_an_entrypoint_gets_one_with_one_put(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    not_found(fake, zid)
    fake.expect("PUT", entrypoint_path(zid), json={"rules": SENT}, result=ruleset(stored(SENT), ruleset_id="n" * 32, version="1"))
    result = run(RULES, diff=True)
    fake.assert_done()
    assert result["changed"] is True and "failed" not in result and result["api_calls"] == 3
    assert result["ruleset_id"] == "n" * 32
    assert [a["ref"] for a in result["added"]] == ["launchready_bypass_private", "launchready_cache_static"]
    assert result["changed_rules"] == [] and result["removed"] == [] and result["moved"] is False
    assert [r["id"] for r in result["rules"]] == ["%032x" % 1, "%032x" % 2]
    assert result["diff"]["before"] == {"rules": []} and [r["ref"] for r in result["diff"]["after"]["rules"]] == [s["ref"] for s in SENT]


def test_unmanaged_rules_are_sent_back_untouched_in_their_order(run, fake, zid):
    mine = stored(SENT)
    mine[0]["expression"] = 'starts_with(http.request.uri.path, "/admin")'  # changed since
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", entrypoint_path(zid), result=ruleset([THEIRS[0], mine[0], THEIRS[1]]))
    sent = [*without_server_fields(THEIRS), dict(SENT[0], id=mine[0]["id"]), SENT[1]]
    fake.expect("PUT", entrypoint_path(zid), json={"rules": sent}, result=ruleset(stored(sent, 10), version="5"))
    result = run(RULES)
    fake.assert_done()
    assert result["changed"] is True and result["api_calls"] == 3
    assert [c["ref"] for c in result["changed_rules"]] == ["launchready_bypass_private"] and result["changed_rules"][0]["fields"] == ["expression"]
    assert [a["ref"] for a in result["added"]] == ["launchready_cache_static"]


def test_check_mode_reads_and_makes_no_write(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", entrypoint_path(zid), result=ruleset(THEIRS))
    result = run(RULES, check_mode=True, diff=True)
    fake.assert_done()
    assert result["changed"] is True and fake.writes == 0 and result["api_calls"] == 2
    assert [a["ref"] for a in result["added"]] == ["launchready_bypass_private", "launchready_cache_static"]
    assert [r["ref"] for r in result["diff"]["after"]["rules"]] == ["t" * 32, "their_own", "launchready_bypass_private", "launchready_cache_static"]
    assert [r["ref"] for r in result["rules"]] == ["launchready_bypass_private", "launchready_cache_static"]


def test_a_second_run_changes_nothing_in_two_calls(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", entrypoint_path(zid), result=ruleset(THEIRS + stored(SENT)))
    result = run(RULES, diff=True)
    fake.assert_done()
    assert result["changed"] is False and fake.writes == 0 and result["api_calls"] == 2
    assert result["diff"]["before"] == result["diff"]["after"]
    assert result["ruleset_id"] == "r" * 32


def test_a_zone_id_skips_the_lookup(run, fake, zid):
    not_found(fake, zid)
    result = run([], zone=zid)
    fake.assert_done()
    assert result["changed"] is False and result["api_calls"] == 1 and result["ruleset_id"] is None


def test_state_absent_removes_only_the_owned_rules(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", entrypoint_path(zid), result=ruleset([THEIRS[0], *stored(SENT), THEIRS[1]]))
    fake.expect("PUT", entrypoint_path(zid), json={"rules": without_server_fields(THEIRS)}, result=ruleset(THEIRS))
    result = run([], state="absent")
    fake.assert_done()
    assert result["changed"] is True and [r["ref"] for r in result["removed"]] == ["launchready_bypass_private", "launchready_cache_static"]
    assert result["rules"] == []


def test_state_absent_takes_rules_by_ref_alone(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", entrypoint_path(zid), result=ruleset([THEIRS[0], *stored(SENT)]))
    kept = dict(without_server_fields(stored(SENT))[0])
    fake.expect("PUT", entrypoint_path(zid), json={"rules": [*without_server_fields([THEIRS[0]]), kept]}, result=ruleset([THEIRS[0]]))
    result = run([{"ref": "cache_static"}], state="absent")
    fake.assert_done()
    assert result["changed"] is True and [r["ref"] for r in result["removed"]] == ["launchready_cache_static"]


def test_a_redirect_map_becomes_rules(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    not_found(fake, zid, REDIRECT)
    alias = {"ref": "launchready_redirect_alias", "description": "Alias hosts to example.com", "expression": 'http.host eq "www.example.com"',
             "action": "redirect", "enabled": True, "action_parameters": {"from_value": {
                 "target_url": {"expression": 'concat("https://example.com", http.request.uri.path)'}, "status_code": 301, "preserve_query_string": True}}}
    path = {"ref": "launchready_redirect_pricing_old", "description": "Redirect /pricing-old to https://example.com/pricing",
            "expression": 'http.host in {"example.com" "www.example.com"} and http.request.uri.path in {"/pricing-old" "/pricing-old/"}',
            "action": "redirect", "enabled": True, "action_parameters": {"from_value": {
                "target_url": {"value": "https://example.com/pricing"}, "status_code": 301, "preserve_query_string": True}}}
    fake.expect("PUT", entrypoint_path(zid, REDIRECT), json={"rules": [path, alias]}, result=ruleset(stored([path, alias]), phase=REDIRECT))
    result = run([], phase=REDIRECT, redirect_map={"canonical": "example.com", "aliases": ["www.example.com"],
                                                   "paths": [{"from": "/pricing-old", "to": "/pricing"}]})
    fake.assert_done()
    assert result["changed"] is True and [a["ref"] for a in result["added"]] == ["launchready_redirect_pricing_old", "launchready_redirect_alias"]


def test_a_redirect_map_with_a_zone_id_checks_its_hosts_after_the_lookup(run, fake, zid):
    fake.zone_get(ZONE, zid)
    result = run([], phase=REDIRECT, zone=zid, redirect_map={"canonical": "example.com", "aliases": ["old-brand.net"]})
    fake.assert_done()
    assert result["failed"] is True and fake.writes == 0 and result["api_calls"] == 1
    assert "redirect sources outside the zone example.com never reach its rules: old-brand.net" in result["msg"]


@pytest.mark.parametrize("rules, options, message", [
    ([dict(RULES[0], expression='starts_with(http.request.uri.path, "/admin"')], {},
     "rules[0] (ref bypass_private): the expression is not valid: unbalanced '(': it is never closed at line 1, column 12:"),
    ([dict(RULES[0], expression='http.request.uri.path eq "/admin')], {}, "unterminated string"),
    ([dict(RULES[0], expression='http.request.path eq "/admin"')], {}, "unknown field 'http.request.path'"),
    ([RULES[0], RULES[0]], {}, "ref launchready_bypass_private is already used by rules[0]"),
    ([dict(RULES[0], action="block")], {}, "action 'block' is not allowed in the http_request_cache_settings phase"),
    ([], {"redirect_map": {"canonical": "example.com"}}, "redirect_map only goes with phase http_request_dynamic_redirect"),
    ([], {"phase": REDIRECT, "redirect_map": {"canonical": "example.com", "paths": [{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/a"}]}},
     "redirect loop in the redirect map: https://example.com/a -> https://example.com/b -> https://example.com/a"),
    ([], {"phase": REDIRECT, "redirect_map": {"canonical": "example.com", "aliases": ["www.other.org"]}},
     "redirect sources outside the zone example.com never reach its rules: www.other.org"),
    ([], {"ref_prefix": ""}, "ref_prefix '' must be non-empty"),
    ([{"ref": "no_expression", "action_parameters": {"cache": False}}], {}, "rules[0] (ref no_expression): expression is required"),
])
def test_bad_input_fails_before_any_api_call(run, fake, rules, options, message):
    result = run(rules, **options)
    assert result["failed"] is True and message in result["msg"] and fake.calls == [] and result["api_calls"] == 0


def test_a_loop_in_a_map_for_a_zone_id_fails_before_any_call(run, fake, zid):
    result = run([], phase=REDIRECT, zone=zid, redirect_map={"canonical": "example.com", "paths": [{"from": "/a", "to": "/a/"}]})
    assert result["failed"] is True and "redirect loop" in result["msg"] and fake.calls == []


def test_a_refused_put_names_the_rule_and_says_nothing_changed(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", entrypoint_path(zid), result=ruleset([THEIRS[0]]))
    sent = without_server_fields([THEIRS[0]]) + SENT
    fake.expect("PUT", entrypoint_path(zid), json={"rules": sent}, status=400,
                errors=[{"code": 20021, "message": "exceeded maximum number of rules in the phase", "source": {"pointer": "/rules/2"}}])
    result = run(RULES)
    fake.assert_done()
    assert result["failed"] is True and result["changed"] is False and result["api_calls"] == 3
    assert "Cloudflare refused the ruleset: PUT %s failed with HTTP 400: 20021 exceeded maximum" % entrypoint_path(zid) in result["msg"]
    assert "Caused by: rule launchready_cache_static." in result["msg"] and result["msg"].endswith("nothing changed.")


def test_other_read_errors_are_not_taken_for_an_empty_phase(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", entrypoint_path(zid), status=403, errors=[{"code": 10000, "message": "Authentication error"}])
    result = run(RULES)
    fake.assert_done()
    assert result["failed"] is True and fake.writes == 0 and result["status"] == 403
