# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.launchready.core.plugins.module_utils._zone_settings import (
    CATALOG,
    SettingsError,
    normalise_settings,
    plan_settings,
)

HSTS_OFF = {"strict_transport_security": {"enabled": False, "max_age": 0, "include_subdomains": False, "preload": False, "nosniff": False}}


def listed(**values):
    """Settings as GET /zones/{id}/settings answers them; a value given as ("x", False) is not editable."""
    items = []
    for setting_id, value in values.items():
        editable = True
        if isinstance(value, tuple):
            value, editable = value
        items.append({"id": setting_id, "value": value, "editable": editable, "modified_on": None})
    return items


@pytest.mark.parametrize("given, expected", [
    ({"always_use_https": True}, {"always_use_https": "on"}),  # YAML 1.1: on -> True
    ({"always_use_https": False}, {"always_use_https": "off"}),
    ({"brotli": "ON"}, {"brotli": "on"}),
    ({"min_tls_version": 1.2}, {"min_tls_version": "1.2"}),  # YAML: 1.2 is a float
    ({"min_tls_version": 1.0}, {"min_tls_version": "1.0"}),
    ({"min_tls_version": "1.3"}, {"min_tls_version": "1.3"}),
    ({"tls_1_3": True}, {"tls_1_3": "on"}),
    ({"tls_1_3": "zrt"}, {"tls_1_3": "zrt"}),
    ({"ssl": "Strict"}, {"ssl": "strict"}),
    ({"browser_cache_ttl": "14400"}, {"browser_cache_ttl": 14400}),
    ({"proxy_read_timeout": 100.0}, {"proxy_read_timeout": 100}),
    ({"security_header": {"strict_transport_security": {"max_age": "15552000", "enabled": True}}},
     {"security_header": {"strict_transport_security": {"max_age": 15552000, "enabled": True}}}),
])
def test_values_are_normalised_to_what_the_api_writes(given, expected):
    assert normalise_settings(given)[0] == expected


@pytest.mark.parametrize("given, message", [
    ({"sll": "strict"}, "unknown zone setting sll; the settings this module knows are: 0rtt, advanced_ddos,"),
    ({"sll": "strict", "hsts": 1}, "unknown zone settings hsts, sll;"),
    ({"ssl": "strictt"}, "ssl: 'strictt' (text) is not accepted; ssl accepts one of off, flexible, full, strict"),
    ({"ssl": True}, "ssl: True (boolean) is not accepted"),
    ({"always_use_https": "yes"}, "always_use_https accepts on or off (true or false)"),
    ({"always_use_https": 1}, "always_use_https: 1 (number) is not accepted"),
    ({"min_tls_version": 1.4}, "min_tls_version: 1.4 (number) is not accepted; min_tls_version accepts one of 1.0, 1.1, 1.2, 1.3"),
    ({"browser_cache_ttl": 1000}, "browser_cache_ttl accepts a whole number, one of 0, 30, 60"),
    ({"browser_cache_ttl": True}, "browser_cache_ttl: True (boolean) is not accepted"),
    ({"proxy_read_timeout": 0}, "proxy_read_timeout accepts a whole number from 1 to 6000"),
    ({"security_header": {"enabled": True}},
     "security_header: {'enabled': True} (mapping) is not accepted; security_header accepts {strict_transport_security:"),
    ({"security_header": {"strict_transport_security": {"enabled": "yes"}}}, "security_header: "),
    ({"security_header": {"strict_transport_security": {"max_age": 40000000}}}, "max_age: 0 to 31536000"),
    ({"security_header": {"strict_transport_security": {"maxage": 1}}}, "security_header: "),
    ({"security_header": {"strict_transport_security": {}}}, "security_header: "),
])
def test_unknown_ids_and_wrong_types_fail_with_what_is_accepted(given, message):
    with pytest.raises(SettingsError) as caught:
        normalise_settings(given)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        normalise_settings({"nope": 1, "ssl": "x", "brotli": 3})
    text = str(caught.value)
    assert "unknown zone setting nope" in text and "ssl: 'x'" in text and "brotli: 3" in text


def test_risky_combinations_warn():
    _settings, warnings = normalise_settings({
        "ssl": "flexible", "always_use_https": True,
        "security_header": {"strict_transport_security": {"enabled": True, "preload": True, "max_age": 86400}},
    })
    assert any("preload is set" in w for w in warnings)
    assert any("ssl is flexible" in w for w in warnings)
    assert normalise_settings({"ssl": "strict", "always_use_https": True})[1] == []


def test_the_catalog_covers_what_the_launch_sets():
    for setting_id in ("ssl", "always_use_https", "min_tls_version", "tls_1_3", "automatic_https_rewrites", "security_header",
                       "security_level", "browser_check", "brotli", "early_hints", "opportunistic_encryption"):
        assert setting_id in CATALOG


def test_only_differences_are_planned_in_the_order_given():
    desired = normalise_settings({"ssl": "strict", "brotli": True, "min_tls_version": 1.2})[0]
    plan = plan_settings(desired, listed(ssl="flexible", brotli="on", min_tls_version="1.0", websockets="on"))
    assert plan.items == [{"id": "ssl", "value": "strict"}, {"id": "min_tls_version", "value": "1.2"}]
    assert plan.changes == [{"id": "ssl", "before": "flexible", "after": "strict"}, {"id": "min_tls_version", "before": "1.0", "after": "1.2"}]
    assert plan.diff() == {"before": {"ssl": "flexible", "min_tls_version": "1.0"}, "after": {"ssl": "strict", "min_tls_version": "1.2"}}
    assert plan.resulting() == {"brotli": "on", "min_tls_version": "1.2", "ssl": "strict", "websockets": "on"}
    assert plan.findings == [] and plan.changed


def test_nothing_to_do_is_no_change():
    desired = normalise_settings({"ssl": "strict", "browser_cache_ttl": 14400})[0]
    plan = plan_settings(desired, listed(ssl="strict", browser_cache_ttl=14400.0))  # numbers may come back as floats
    assert not plan.changed and plan.items == [] and plan.diff() == {"before": {}, "after": {}}


def test_security_header_compares_only_the_keys_set_and_writes_the_whole_object():
    desired = normalise_settings({"security_header": {"strict_transport_security": {"enabled": True, "max_age": 15552000}}})[0]
    plan = plan_settings(desired, listed(security_header=HSTS_OFF))
    written = {"strict_transport_security": {"enabled": True, "max_age": 15552000, "include_subdomains": False, "preload": False, "nosniff": False}}
    assert plan.items == [{"id": "security_header", "value": written}]
    assert plan.changes == [{"id": "security_header", "before": HSTS_OFF, "after": written}]

    same = plan_settings(desired, listed(security_header={"strict_transport_security": dict(written["strict_transport_security"], nosniff=True)}))
    assert not same.changed  # nosniff was not asked for


def test_a_plan_gated_setting_is_a_finding_and_a_warning_and_the_rest_is_written():
    desired = normalise_settings({"polish": "lossless", "ssl": "strict", "webp": False})[0]
    plan = plan_settings(desired, listed(polish=("off", False), ssl="full", webp=("off", False)))
    assert plan.items == [{"id": "ssl", "value": "strict"}]  # webp is already off: nothing to report
    assert len(plan.findings) == 1
    finding = plan.findings[0].as_dict()
    assert finding["stage"] == "edge_security" and finding["severity"] == "can_wait"
    assert finding["title"] == "Zone setting polish cannot be changed on this zone's plan"
    assert finding["evidence"] == "polish is 'off', wanted 'lossless'; Cloudflare marks it editable: false"
    assert plan.warnings == ["Zone setting polish cannot be changed on this zone's plan: " + finding["evidence"]]


def test_a_setting_the_zone_does_not_have_is_a_finding():
    desired = normalise_settings({"early_hints": True})[0]
    plan = plan_settings(desired, listed(ssl="full"))
    assert not plan.changed and plan.findings[0].title == "Zone setting early_hints is not available on this zone"


def test_fail_on_uneditable_refuses_the_whole_plan():
    desired = normalise_settings({"polish": "lossless", "ssl": "strict"})[0]
    with pytest.raises(SettingsError) as caught:
        plan_settings(desired, listed(polish=("off", False), ssl="full"), fail_on_uneditable=True)
    assert "not editable on its plan, or not available): polish." in str(caught.value)
    assert plan_settings(desired, listed(polish=("lossless", False), ssl="full"), fail_on_uneditable=True).items == [{"id": "ssl", "value": "strict"}]


def test_resulting_settings_come_from_the_write_answer():
    desired = normalise_settings({"ssl": "strict"})[0]
    plan = plan_settings(desired, listed(ssl="full", brotli="on"))
    assert plan.resulting([{"id": "ssl", "value": "strict", "editable": True}]) == {"brotli": "on", "ssl": "strict"}
