# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ansible_collections.launchready.core.plugins.module_utils._redirects import (
    RedirectError,
    expectations,
    follow,
    parse_redirect_map,
    redirect_rules,
    www_counterpart,
)
from ansible_collections.launchready.core.plugins.module_utils._rules_language import check_filter, check_target
from ansible_collections.launchready.core.plugins.module_utils._rulesets import parse_rules
from ansible_collections.launchready.core.tests.lab import rules_language


def launch_map(**extra):
    spec = {
        "canonical": "example.com",
        "aliases": ["www.example.com", "old-brand.example.com"],
        "paths": [
            {"from": "/pricing-old", "to": "/pricing"},
            {"from": "old-brand.example.com/team", "to": "https://www.example.com/about"},
            {"from": "https://example.com/docs/", "to": "https://docs.example.net/start", "status": 302, "preserve_query_string": False},
        ],
    }
    spec.update(extra)
    return parse_redirect_map(spec, "example.com")


def targets(rules):
    return [r["action_parameters"]["from_value"]["target_url"] for r in rules]


def test_www_and_apex_are_each_others_counterpart():
    assert www_counterpart("Example.com.") == "www.example.com"
    assert www_counterpart("www.example.com") == "example.com"


def test_rules_path_entries_first_then_aliases_and_every_expression_is_valid():
    rules = redirect_rules(launch_map())
    assert [r["ref"] for r in rules] == ["redirect_pricing_old", "redirect_old_brand_example_com_team", "redirect_example_com_docs", "redirect_alias"]
    assert rules[0]["expression"] == ('http.host in {"example.com" "www.example.com" "old-brand.example.com"} '
                                      'and http.request.uri.path in {"/pricing-old" "/pricing-old/"}')
    assert rules[1]["expression"] == 'http.host eq "old-brand.example.com" and http.request.uri.path in {"/team" "/team/"}'
    assert rules[3]["expression"] == 'http.host in {"www.example.com" "old-brand.example.com"}'
    assert targets(rules) == [
        {"value": "https://example.com/pricing"},
        {"value": "https://example.com/about"},  # www.example.com is an alias: written as its end, one hop
        {"value": "https://docs.example.net/start"},
        {"expression": 'concat("https://example.com", http.request.uri.path)'},
    ]
    assert rules[2]["action_parameters"]["from_value"]["status_code"] == 302
    assert rules[2]["action_parameters"]["from_value"]["preserve_query_string"] is False
    for item in rules:
        check_filter(item["expression"])
        if "expression" in item["action_parameters"]["from_value"]["target_url"]:
            check_target(item["action_parameters"]["from_value"]["target_url"]["expression"])
    parse_rules(rules, "http_request_dynamic_redirect", "launchready_")  # what cloudflare_rules does with them


def edge_answer(rules, url):
    """What the lab's edge answers for ``url`` with these rules: the first matching rule's (status, Location), or None."""
    parts = urlsplit(url)
    request = rules_language.fields(parts.scheme, parts.hostname, parts.path + ("?" + parts.query if parts.query else ""), "GET", {}, "127.0.0.1")
    for rule in rules:
        if rules_language.compile_filter(rule["expression"])(request):
            parameters = rule["action_parameters"]["from_value"]
            target = parameters["target_url"]
            location = target["value"] if "value" in target else rules_language.compile_value(target["expression"])(request)
            return parameters["status_code"], location
    return None


def edge_hops(rules, url):
    hops = 0
    while (answer := edge_answer(rules, url)) is not None:
        hops, url = hops + 1, answer[1]
        assert hops <= 5, "the rules loop"
    return hops


def assert_expectations_match_the_edge(redirect_map):
    rules = redirect_rules(redirect_map)
    found = expectations(redirect_map)
    assert len({e["url"] for e in found}) == len(found), "one expectation per URL"
    for expected in found:
        assert edge_answer(rules, expected["url"]) == (expected["status"], expected["location"]), expected["url"]
        assert edge_hops(rules, expected["url"]) == expected["hops"], expected["url"]
    return {e["url"]: e for e in found}


def test_expectations_are_one_hop_to_the_final_target():
    found = {e["url"]: e for e in expectations(launch_map())}
    assert found["https://www.example.com/pricing-old/"] == {
        "url": "https://www.example.com/pricing-old/", "status": 301, "location": "https://example.com/pricing", "preserve_query_string": True,
        "hops": 1,
    }
    assert found["https://old-brand.example.com/team"]["location"] == "https://example.com/about"
    assert found["https://example.com/docs"]["status"] == 302
    assert found["https://www.example.com/"]["location"] == "https://example.com/"
    assert found["https://old-brand.example.com/launchready-redirect-check"]["location"] == "https://example.com/launchready-redirect-check"
    assert "https://example.com/launchready-redirect-check" not in found  # nothing to redirect on the canonical host with ignore


@pytest.mark.parametrize("extra", [{}, {"trailing_slash": "add"}, {"status": 308}])
def test_expectations_are_what_the_edge_answers_with_the_rules(extra):
    assert_expectations_match_the_edge(launch_map(**extra))


def test_a_host_less_path_entry_answers_an_alias_url_before_the_alias_rule():
    # The path rules come first: the alias root gets the entry's 302, not the alias hosts' 301.
    redirect_map = parse_redirect_map({"canonical": "example.com", "aliases": ["www.example.com"],
                                       "paths": [{"from": "/", "to": "/home", "status": 302, "preserve_query_string": False}]})
    found = assert_expectations_match_the_edge(redirect_map)
    assert found["https://www.example.com/"] == {
        "url": "https://www.example.com/", "status": 302, "location": "https://example.com/home", "preserve_query_string": False, "hops": 1,
    }
    assert found["https://www.example.com/launchready-redirect-check"]["status"] == 301


def test_an_alias_url_that_a_canonical_host_entry_redirects_again_takes_two_hops():
    # www.example.com/ -> (alias rule, keeps the path) example.com/ -> (path entry of example.com) example.com/welcome
    redirect_map = parse_redirect_map({"canonical": "example.com", "aliases": ["www.example.com"], "status": 308,
                                       "paths": [{"from": "example.com/", "to": "/welcome", "status": 302}]})
    found = assert_expectations_match_the_edge(redirect_map)
    assert found["https://www.example.com/"] == {
        "url": "https://www.example.com/", "status": 308, "location": "https://example.com/", "preserve_query_string": True, "hops": 2,
    }
    assert found["https://example.com/"] == {
        "url": "https://example.com/", "status": 302, "location": "https://example.com/welcome", "preserve_query_string": True, "hops": 1,
    }
    assert found["https://www.example.com/launchready-redirect-check"]["hops"] == 1
    assert follow(redirect_map, "https://www.example.com/")[-1] == "https://example.com/welcome"


def test_trailing_slash_add():
    redirect_map = launch_map(trailing_slash="add")
    rules = redirect_rules(redirect_map)
    assert [r["ref"] for r in rules][-3:] == ["redirect_alias_slash", "redirect_alias", "redirect_trailing_slash"]
    assert targets(rules)[0] == {"value": "https://example.com/pricing/"}  # the target gets its slash: one hop
    assert rules[-1]["expression"] == 'http.host eq "example.com" and not ends_with(http.request.uri.path, "/") and not http.request.uri.path contains "."'
    assert targets(rules)[-1] == {"expression": 'concat("https://example.com", http.request.uri.path, "/")'}
    found = {e["url"]: e["location"] for e in expectations(redirect_map)}
    assert found["https://www.example.com/launchready-redirect-check"] == "https://example.com/launchready-redirect-check/"
    assert found["https://example.com/launchready-redirect-check"] == "https://example.com/launchready-redirect-check/"
    assert follow(redirect_map, "https://example.com/logo.png") == ["https://example.com/logo.png"]
    for item in rules:
        check_filter(item["expression"])


def test_chains_are_flattened():
    redirect_map = parse_redirect_map({"canonical": "example.com", "paths": [{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/c"}]})
    assert targets(redirect_rules(redirect_map)) == [{"value": "https://example.com/c"}, {"value": "https://example.com/c"}]


@pytest.mark.parametrize("spec, message", [
    ({"canonical": "example.com", "paths": [{"from": "/a", "to": "/b"}, {"from": "/b/", "to": "/a"}]},
     "redirect loop in the redirect map: https://example.com/a -> https://example.com/b -> https://example.com/a"),
    ({"canonical": "example.com", "paths": [{"from": "/a", "to": "/a/"}]},
     "redirect loop in the redirect map: https://example.com/a -> https://example.com/a/"),
    ({"canonical": "example.com", "aliases": ["www.example.com"], "paths": [{"from": "/a", "to": "https://www.example.com/a"}]},
     "redirect loop in the redirect map"),
    ({"canonical": "example.com", "aliases": ["example.com"]},
     "redirect_map.aliases lists the canonical host example.com: it would redirect to itself"),
    ({"canonical": "example.com", "paths": [{"from": "/a", "to": "/x"}, {"from": "/a/", "to": "/y"}]},
     "redirect_map.paths[0] and [1] both redirect example.com/a"),
    ({"canonical": ""}, "redirect_map.canonical is required"),
    ({"canonical": "https://example.com/app"}, "must be a host name or an origin"),
    ({"canonical": "not a host"}, "redirect_map.canonical 'not a host' is not a host name"),
    ({"canonical": "example.com", "trailing_slash": "strip"}, "redirect_map.trailing_slash must be one of ignore, add"),
    ({"canonical": "example.com", "status": 200}, "redirect_map.status must be one of 301, 302, 303, 307, 308"),
    ({"canonical": "example.com", "paths": [{"from": "/a"}]}, "redirect_map.paths[0] needs from"),
    ({"canonical": "example.com", "paths": [{"from": "a b/c", "to": "/x"}]}, "redirect_map.paths[0].from host 'a b' is not a host name"),
    ({"canonical": "example.com", "paths": [{"from": "/a?x=1", "to": "/x"}]}, "must be a path starting with /"),
    ({"canonical": "example.com", "paths": [{"from": "/a", "to": "ftp://x.test/"}]}, "must be a path on the canonical host or an absolute http(s) URL"),
    ({"canonical": "example.com", "paths": [{"from": "/a", "to": 'https://x.test/"'}]}, "must not contain spaces, quotes"),
    ({"canonical": "example.com", "paths": [{"from": "/a", "to": "/b", "preserve_query_string": "yes"}]}, "preserve_query_string must be true or false"),
])
def test_bad_maps_and_loops_are_refused(spec, message):
    with pytest.raises(RedirectError) as caught:
        parse_redirect_map(spec)
    assert message in str(caught.value)


def test_hosts_outside_the_zone_are_refused():
    with pytest.raises(RedirectError) as caught:
        parse_redirect_map({"canonical": "example.com", "aliases": ["old-brand.net"], "paths": [{"from": "other.org/x", "to": "/y"}]}, "example.com")
    assert "redirect sources outside the zone example.com never reach its rules: old-brand.net, other.org" in str(caught.value)


def test_the_canonical_may_be_an_http_origin():
    redirect_map = parse_redirect_map({"canonical": "http://intranet.example.com", "aliases": ["www.intranet.example.com"]})
    assert targets(redirect_rules(redirect_map)) == [{"expression": 'concat("http://intranet.example.com", http.request.uri.path)'}]
