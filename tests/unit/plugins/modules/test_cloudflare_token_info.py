# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudflare_token_info against a scripted Cloudflare API: every call asserted, none of them a write."""

from __future__ import annotations

import json
import secrets

import pytest

from ansible_collections.launchready.core.plugins.module_utils._cloudflare import PER_PAGE_ZONES
from ansible_collections.launchready.core.plugins.modules import cloudflare_token_info
from ansible_collections.launchready.core.tests.unit.plugins.fake_cloudflare import FakeCloudflare, fake_token, run_module, zone_id

ZONE = "example.com"
ACCOUNT = secrets.token_hex(16)
TOKEN_ID = secrets.token_hex(16)
ZONES_QUERY = {"page": "1", "per_page": str(PER_PAGE_ZONES)}
VALID = [{"code": 10000, "message": "This API Token is valid and active"}]


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

    def run(check_mode=False, **options):
        args = dict(api_token=token, zones=options.pop("zones", [ZONE]), needs=options.pop("needs", ["secrets_env"]), **options)
        result = run_module(monkeypatch, capsys, cloudflare_token_info, args, fake, check_mode=check_mode)
        assert token not in json.dumps(result), "the API token leaked into the result"
        assert fake.writes == 0, "a check must never write"
        return result

    return run


def zone_item(zid, name=ZONE, account=ACCOUNT):
    return {"id": zid, "name": name, "status": "active", "account": {"id": account, "name": "Client"}}


def expect_verify(fake, status="active", path="/user/tokens/verify", **extra):
    return fake.expect("GET", path, result=dict({"id": TOKEN_ID, "status": status}, **extra), messages=VALID)


def expect_zones(fake, zones):
    return fake.expect("GET", "/zones", params=ZONES_QUERY, result=zones,
                       result_info={"page": 1, "per_page": PER_PAGE_ZONES, "count": len(zones), "total_count": len(zones), "total_pages": 1})


def details(policies):
    return {"id": TOKEN_ID, "name": "launch example.com", "status": "active", "issued_on": "2025-01-01T00:00:00Z", "policies": policies}


def zone_policy(zid, groups=("Zone Read", "DNS Write")):
    return {"id": "p1", "effect": "allow", "permission_groups": [{"id": str(i), "name": name} for i, name in enumerate(groups)],
            "resources": {"com.cloudflare.api.account.zone.%s" % zid: "*"}}


def titles(result):
    return [(f["severity"], f["title"]) for f in result["findings"]]


def test_a_scoped_token_that_reads_itself_is_checked_from_its_policies_in_three_calls(run, fake, zid):
    expect_verify(fake, expires_on="2099-01-01T00:00:00Z")
    fake.expect("GET", "/user/tokens/%s" % TOKEN_ID, result=details([zone_policy(zid)]))
    expect_zones(fake, [zone_item(zid)])
    result = run()
    fake.assert_done()
    assert result["changed"] is False and result["accepted"] is True and result["api_calls"] == 3
    assert result["token"] == {"id": TOKEN_ID, "status": "active", "expires_on": "2099-01-01T00:00:00Z", "name": "launch example.com",
                               "issued_on": "2025-01-01T00:00:00Z"}
    assert result["privileges"] == {"source": "policies", "held": {ZONE: ["dns_records:edit", "zone:read"]}, "missing": {}, "beyond_needs": {},
                                    "reach": []}
    assert titles(result) == [("ok", "The Cloudflare API token is active"), ("ok", "The Cloudflare API token holds only what the configured stages need")]
    assert result["needed"] == {"zone:read": ["secrets_env"], "dns_records:edit": ["secrets_env"]}
    assert "probes" not in result


def test_check_mode_makes_the_same_read_only_calls(run, fake, zid):
    expect_verify(fake)
    fake.expect("GET", "/user/tokens/%s" % TOKEN_ID, result=details([zone_policy(zid)]))
    expect_zones(fake, [zone_item(zid)])
    result = run(check_mode=True)
    fake.assert_done()
    assert result["api_calls"] == 3 and not result["changed"]


def test_an_all_zones_token_is_a_blocker(run, fake, zid):
    expect_verify(fake)
    wide = dict(zone_policy(zid), resources={"com.cloudflare.api.account.zone.*": "*"})
    fake.expect("GET", "/user/tokens/%s" % TOKEN_ID, result=details([wide]))
    expect_zones(fake, [zone_item(zid), zone_item(zone_id(), "other.example")])
    result = run()
    fake.assert_done()
    assert titles(result)[0] == ("must_do_now", "The Cloudflare API token reaches beyond the launch's zones with edit rights")
    assert result["privileges"]["reach"] == [{"scope": "every zone (All zones)", "permissions": ["dns_records:edit", "zone:read"], "edit": True}]


def test_a_token_that_cannot_read_itself_is_probed_with_read_only_calls(run, fake, zid):
    expect_verify(fake)
    fake.expect("GET", "/user/tokens/%s" % TOKEN_ID, status=403, errors=[{"code": 9109, "message": "Unauthorized to access requested resource"}])
    expect_zones(fake, [zone_item(zid)])
    fake.expect("GET", "/zones/%s/dns_records" % zid, params={"per_page": "1"}, result=[])
    fake.expect("GET", "/zones/%s/settings" % zid, status=403, errors=[{"code": 10000, "message": "Authentication error"}])
    fake.expect("GET", "/zones/%s/rulesets/phases/http_request_dynamic_redirect/entrypoint" % zid, status=403,
                errors=[{"code": 10000, "message": "Authentication error"}])
    # no entry point yet: 404 still proves the token may read cache rules
    fake.expect("GET", "/zones/%s/rulesets/phases/http_request_cache_settings/entrypoint" % zid, status=404,
                errors=[{"code": 10003, "message": "could not find entrypoint ruleset in the http_request_cache_settings phase"}])
    fake.expect("GET", "/zones/%s/rulesets/phases/http_request_firewall_custom/entrypoint" % zid, status=403,
                errors=[{"code": 10000, "message": "Authentication error"}])
    fake.expect("GET", "/certificates", params={"zone_id": zid}, status=400, errors=[{"code": 1012, "message": "unclear"}])
    result = run()
    fake.assert_done()
    assert result["api_calls"] == 9
    assert result["privileges"]["source"] == "probes"
    assert result["privileges"]["held"] == {ZONE: ["cache_settings:read", "dns_records:read", "zone:read"]}
    assert result["privileges"]["beyond_needs"] == {ZONE: ["cache_settings:read"]}
    assert titles(result)[0] == ("can_wait", "The Cloudflare API token holds zone permissions no configured stage needs")
    readable = {p["resource"]: (p["readable"], p["status"]) for p in result["probes"]}
    assert readable == {"dns_records": (True, 200), "zone_settings": (False, 403), "dynamic_url_redirects": (False, 403),
                        "cache_settings": (True, 404), "zone_waf": (False, 403), "ssl_and_certificates": (None, 400)}


def test_probes_see_other_zones(run, fake, zid):
    expect_verify(fake)
    fake.expect("GET", "/user/tokens/%s" % TOKEN_ID, status=403, errors=[{"code": 9109, "message": "Unauthorized to access requested resource"}])
    expect_zones(fake, [zone_item(zid), zone_item(zone_id(), "client-two.example")])
    fake.expect("GET", "/zones/%s/dns_records" % zid, params={"per_page": "1"}, result=[])
    for path in ("settings", "rulesets/phases/http_request_dynamic_redirect/entrypoint", "rulesets/phases/http_request_cache_settings/entrypoint",
                 "rulesets/phases/http_request_firewall_custom/entrypoint"):
        fake.expect("GET", "/zones/%s/%s" % (zid, path), status=403, errors=[{"code": 10000, "message": "Authentication error"}])
    fake.expect("GET", "/certificates", params={"zone_id": zid}, status=403, errors=[{"code": 10000, "message": "Authentication error"}])
    result = run()
    fake.assert_done()
    assert titles(result)[0] == ("must_do_now", "The Cloudflare API token reaches beyond the launch's zones")
    assert "client-two.example" in result["findings"][0]["evidence"]
    assert result["privileges"]["held"] == {ZONE: ["dns_records:read", "zone:read"]} and not result["privileges"]["beyond_needs"]


def test_a_rejected_token_is_a_blocker_and_nothing_else_is_asked(run, fake):
    fake.expect("GET", "/user/tokens/verify", status=401, errors=[{"code": 1000, "message": "Invalid API Token"}])
    result = run()
    fake.assert_done()
    assert result["accepted"] is False and result["api_calls"] == 1 and "failed" not in result
    assert titles(result) == [("must_do_now", "Cloudflare does not accept the API token")]
    assert "HTTP 401: 1000 Invalid API Token" in result["findings"][0]["evidence"]


def test_a_disabled_token_is_a_blocker(run, fake, zid):
    expect_verify(fake, status="disabled")
    fake.expect("GET", "/user/tokens/%s" % TOKEN_ID, result=details([zone_policy(zid)]))
    expect_zones(fake, [zone_item(zid)])
    result = run()
    assert titles(result)[0] == ("must_do_now", "The Cloudflare API token is disabled")


def test_an_account_owned_token_is_verified_and_read_at_the_account(run, fake, zid):
    expect_verify(fake, path="/accounts/%s/tokens/verify" % ACCOUNT)
    fake.expect("GET", "/accounts/%s/tokens/%s" % (ACCOUNT, TOKEN_ID), result=details([zone_policy(zid)]))
    expect_zones(fake, [zone_item(zid)])
    result = run(account_id=ACCOUNT)
    fake.assert_done()
    assert titles(result)[-1] == ("ok", "The Cloudflare API token holds only what the configured stages need")


def test_a_zone_given_by_id_and_a_zone_the_token_cannot_see(run, fake, zid):
    expect_verify(fake)
    fake.expect("GET", "/user/tokens/%s" % TOKEN_ID, result=details([zone_policy(zid)]))
    expect_zones(fake, [zone_item(zid)])
    result = run(zones=[zid.upper(), "shop.example"])
    fake.assert_done()
    assert result["privileges"]["held"] == {ZONE: ["dns_records:edit", "zone:read"]}
    assert titles(result)[0] == ("must_do_now", "The Cloudflare API token lacks permissions the launch needs")
    assert "shop.example: not found" in result["findings"][0]["evidence"]


def test_server_errors_are_retried_then_fail_the_task_without_the_token(run, fake, zid, monkeypatch):
    expect_verify(fake)
    for _attempt in range(3):
        fake.expect("GET", "/user/tokens/%s" % TOKEN_ID, status=500, errors=[{"code": 9999, "message": "Internal Server Error"}])
    result = run(retries=2)
    fake.assert_done()
    assert result["failed"] and "still failing after 2 retries" in result["msg"] and result["api_calls"] == 4


@pytest.mark.parametrize("options, message", [
    ({"needs": ["dns"]}, "neither a stage"),
    ({"needs": ["Workers Scripts Write"]}, "not a zone permission"),
    ({"zones": []}, "zones is required"),
    ({"expiry_warning_days": -1}, "expiry_warning_days must be 0 or more"),
])
def test_bad_input_fails_before_any_api_call(run, fake, options, message):
    result = run(**options)
    assert result["failed"] and message in result["msg"] and result["api_calls"] == 0
    assert fake.calls == []


def test_only_stages_without_cloudflare_need_no_zones(run, fake):
    expect_verify(fake)
    fake.expect("GET", "/user/tokens/%s" % TOKEN_ID, result=details([]))
    expect_zones(fake, [])
    result = run(zones=[], needs=["monitoring"])
    fake.assert_done()
    assert titles(result) == [("ok", "The Cloudflare API token is active"), ("ok", "The Cloudflare API token holds only what the configured stages need")]
