# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.launchready.core.plugins.modules import cloudflare_zone_settings
from ansible_collections.launchready.core.tests.unit.plugins.fake_cloudflare import FakeCloudflare, fake_token, run_module, zone_id

ZONE = "example.com"
HSTS_OFF = {"strict_transport_security": {"enabled": False, "max_age": 0, "include_subdomains": False, "preload": False, "nosniff": False}}
HSTS_WANTED = {"strict_transport_security": {"enabled": True, "max_age": 15552000, "include_subdomains": True, "preload": False, "nosniff": True}}

DESIRED = {
    "ssl": "strict",
    "always_use_https": True,
    "min_tls_version": 1.2,
    "tls_1_3": True,
    "automatic_https_rewrites": True,
    "security_header": HSTS_WANTED,
    "security_level": "medium",
    "browser_check": True,
    "brotli": True,
    "early_hints": True,
    "opportunistic_encryption": True,
}


def settings(editable=True, **overrides) -> list[dict]:
    """A free zone's settings as the API lists them (defaults of a new zone), with overrides; ("v", False) is not editable."""
    values = {
        "always_use_https": "off", "automatic_https_rewrites": "on", "brotli": "on", "browser_check": "on", "early_hints": "off",
        "min_tls_version": "1.0", "opportunistic_encryption": "on", "polish": ("off", False), "security_header": HSTS_OFF,
        "security_level": "medium", "ssl": "flexible", "tls_1_3": "on", "webp": ("off", False),
    }
    values.update(overrides)
    items = []
    for setting_id, value in sorted(values.items()):
        item_editable = editable
        if isinstance(value, tuple):
            value, item_editable = value
        items.append({"id": setting_id, "value": value, "editable": item_editable, "modified_on": None})
    return items


WRITE = {"items": [
    {"id": "ssl", "value": "strict"},
    {"id": "always_use_https", "value": "on"},
    {"id": "min_tls_version", "value": "1.2"},
    {"id": "security_header", "value": HSTS_WANTED},
    {"id": "early_hints", "value": "on"},
]}


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

    def run(desired, check_mode=False, diff=False, **options):
        args = dict(api_token=token, zone=options.pop("zone", ZONE), settings=desired, **options)
        result = run_module(monkeypatch, capsys, cloudflare_zone_settings, args, fake, check_mode=check_mode, diff=diff)
        assert token not in json.dumps(result), "the API token leaked into the result"
        return result

    return run


def answer(items):
    return [{"id": item["id"], "value": item["value"], "editable": True, "modified_on": "2024-05-01T00:00:00Z"} for item in items]


def test_one_read_and_one_write_of_only_the_differences(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", "/zones/%s/settings" % zid, result=settings())
    fake.expect("PATCH", "/zones/%s/settings" % zid, json=WRITE, result=answer(WRITE["items"]))
    result = run(DESIRED, diff=True)
    fake.assert_done()
    assert result["changed"] is True and "failed" not in result
    assert result["api_calls"] == 3
    assert [c["id"] for c in result["changes"]] == ["ssl", "always_use_https", "min_tls_version", "security_header", "early_hints"]
    assert result["settings"]["ssl"] == "strict" and result["settings"]["brotli"] == "on" and result["settings"]["security_header"] == HSTS_WANTED
    assert result["findings"] == []
    assert result["diff"]["before"] == {"ssl": "flexible", "always_use_https": "off", "min_tls_version": "1.0", "security_header": HSTS_OFF,
                                        "early_hints": "off"}
    assert result["diff"]["after"]["min_tls_version"] == "1.2" and result["diff"]["after"]["security_header"] == HSTS_WANTED
    assert result["zone"] == {"id": zid, "name": ZONE, "plan": "free"}


def test_check_mode_reads_and_makes_no_write(run, fake, zid):
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", "/zones/%s/settings" % zid, result=settings())
    checked = run(DESIRED, check_mode=True, diff=True)
    fake.assert_done()
    assert fake.writes == 0 and checked["changed"] is True and checked["api_calls"] == 2
    assert len(checked["changes"]) == 5 and checked["settings"]["ssl"] == "strict"
    assert checked["diff"]["after"]["ssl"] == "strict"


def test_a_second_run_changes_nothing_in_two_calls(run, fake, zid):
    applied = settings(ssl="strict", always_use_https="on", min_tls_version="1.2", security_header=HSTS_WANTED, early_hints="on")
    fake.zone_lookup(ZONE, zid).expect("GET", "/zones/%s/settings" % zid, result=applied)
    result = run(DESIRED, diff=True)
    fake.assert_done()
    assert result["changed"] is False and fake.writes == 0 and result["api_calls"] == 2
    assert result["changes"] == [] and result["diff"] == {"before": {}, "after": {}}


def test_a_zone_id_skips_the_lookup(run, fake, zid):
    fake.expect("GET", "/zones/%s/settings" % zid, result=settings(ssl="strict"))
    result = run({"ssl": "strict"}, zone=zid.upper())
    fake.assert_done()
    assert result["changed"] is False and result["api_calls"] == 1 and result["zone"] == {"id": zid}


def test_a_plan_gated_setting_is_reported_and_the_rest_is_written(run, fake, zid):
    fake.zone_lookup(ZONE, zid).expect("GET", "/zones/%s/settings" % zid, result=settings())
    fake.expect("PATCH", "/zones/%s/settings" % zid, json={"items": [{"id": "ssl", "value": "full"}]}, result=answer([{"id": "ssl", "value": "full"}]))
    result = run({"polish": "lossless", "ssl": "full"})
    fake.assert_done()
    assert "failed" not in result and result["changed"] is True
    assert result["findings"] == [{
        "stage": "edge_security", "severity": "can_wait", "title": "Zone setting polish cannot be changed on this zone's plan",
        "evidence": "polish is 'off', wanted 'lossless'; Cloudflare marks it editable: false",
        "fix": "Upgrade the zone to a plan that includes polish, or remove it from the desired settings.",
    }]
    assert "polish cannot be changed" in json.dumps(result["warnings"])  # plain strings before ansible-core 2.19, summaries since


def test_fail_on_uneditable_fails_before_any_write(run, fake, zid):
    fake.zone_lookup(ZONE, zid).expect("GET", "/zones/%s/settings" % zid, result=settings())
    result = run({"polish": "lossless", "ssl": "full"}, fail_on_uneditable=True)
    fake.assert_done()
    assert result["failed"] is True and fake.writes == 0 and result["changed"] is False and result["api_calls"] == 2
    assert "polish" in result["msg"] and "not editable" in result["msg"]


@pytest.mark.parametrize("desired, message", [
    ({"ssl": "strictt"}, "ssl: 'strictt' (text) is not accepted; ssl accepts one of off, flexible, full, strict"),
    ({"always_https": True}, "unknown zone setting always_https; the settings this module knows are:"),
    ({"min_tls_version": "TLS1.2"}, "min_tls_version accepts one of 1.0, 1.1, 1.2, 1.3"),
    ({"security_header": {"strict_transport_security": {"max_age": "six months"}}}, "security_header: "),
])
def test_bad_input_fails_before_any_api_call(run, fake, desired, message):
    result = run(desired)
    assert result["failed"] is True and message in result["msg"] and fake.calls == [] and result["api_calls"] == 0


def test_a_refused_write_fails_with_the_api_error(run, fake, zid):
    fake.zone_lookup(ZONE, zid).expect("GET", "/zones/%s/settings" % zid, result=settings())
    fake.expect("PATCH", "/zones/%s/settings" % zid, json={"items": [{"id": "ssl", "value": "strict"}]}, status=400,
                errors=[{"code": 1007, "message": "Invalid value for zone setting ssl"}])
    result = run({"ssl": "strict"})
    fake.assert_done()
    assert result["failed"] is True and result["changed"] is False and result["api_calls"] == 3
    assert result["msg"].startswith("writing ssl failed: PATCH /zones/%s/settings failed with HTTP 400: 1007 Invalid value" % zid)
    assert result["error_codes"] == [1007] and result["changes"] == [{"id": "ssl", "before": "flexible", "after": "strict"}]


def test_a_wrong_token_fails_without_leaking_it(run, fake, zid, token):
    fake.expect("GET", "/zones/%s/settings" % zid, status=403, errors=[{"code": 10000, "message": "Authentication error " + token}])
    result = run({"ssl": "strict"}, zone=zid)
    fake.assert_done()
    assert result["failed"] is True and result["status"] == 403 and "********" in result["msg"]
