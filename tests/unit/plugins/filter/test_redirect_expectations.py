# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.launchready.core.plugins.filter.redirect_expectations import FilterModule


def redirect_expectations(redirect_map):
    return FilterModule().filters()["redirect_expectations"](redirect_map)


def test_an_alias_root_that_the_canonical_root_entry_redirects_again_answers_the_alias_rule_in_two_hops():
    found = redirect_expectations({"canonical": "example.com", "aliases": ["www.example.com"],
                                   "paths": [{"from": "https://example.com/", "to": "/welcome/", "status": 302}]})
    assert found == [
        {"url": "https://example.com/", "status": 302, "location": "https://example.com/welcome/", "preserve_query_string": True, "hops": 1},
        {"url": "https://www.example.com/", "status": 301, "location": "https://example.com/", "preserve_query_string": True, "hops": 2},
        {"url": "https://www.example.com/launchready-redirect-check", "status": 301, "location": "https://example.com/launchready-redirect-check",
         "preserve_query_string": True, "hops": 1},
    ]


def test_hosts_of_other_zones_may_be_aliases():
    found = redirect_expectations({"canonical": "example.com", "aliases": ["old-brand.net"], "paths": [{"from": "old-brand.net/team", "to": "/about"}]})
    assert found[0] == {"url": "https://old-brand.net/team", "status": 301, "location": "https://example.com/about", "preserve_query_string": True,
                        "hops": 1}


@pytest.mark.parametrize("redirect_map, message", [
    ({"canonical": "example.com", "paths": [{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/a"}]},
     "redirect_expectations: redirect loop in the redirect map: https://example.com/a -> https://example.com/b -> https://example.com/a"),
    ({"canonical": "example.com", "status": 200}, "redirect_expectations: redirect_map.status must be one of 301, 302, 303, 307, 308, not 200"),
    (["example.com"], "redirect_expectations: the redirect map must be a dictionary, not list"),
])
def test_bad_input_fails_with_the_reason(redirect_map, message):
    with pytest.raises(AnsibleFilterError) as caught:
        redirect_expectations(redirect_map)
    assert caught.value.message == message
