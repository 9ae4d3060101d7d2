# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_token_scope: permission names, the stage catalog, policies, the least-privilege findings, status and expiry."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _token_scope as scope
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
ACCOUNT = secrets.token_hex(16)
ZONE = scope.Zone(secrets.token_hex(16), "example.com", ACCOUNT)
OTHER = scope.Zone(secrets.token_hex(16), "other.example", ACCOUNT)


def policy(groups, resources, effect="allow"):
    return {"id": secrets.token_hex(16), "effect": effect, "permission_groups": [{"id": secrets.token_hex(16), "name": name} for name in groups],
            "resources": resources}


def on_zone(zone=ZONE):
    return {"com.cloudflare.api.account.zone.%s" % zone.id: "*"}


def assess(policies, needs, zones=(ZONE,), unresolved=()):
    return scope.assess_policies(scope.parse_policies(policies), scope.resolve_needs(needs), list(zones), list(unresolved), "secrets_env")


def severities(findings):
    return {finding.title: finding.severity for finding in findings}


# --- names and needs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, permission", [
    ("DNS Write", "dns_records:edit"),
    ("DNS Edit", "dns_records:edit"),
    ("dns read", "dns_records:read"),
    ("Zone Read", "zone:read"),
    ("Zone Settings Write", "zone_settings:edit"),
    ("SSL and Certificates Write", "ssl_and_certificates:edit"),
    ("Dynamic URL Redirects Write", "dynamic_url_redirects:edit"),
    ("API Tokens Read", "api_tokens:read"),
    ("Workers Scripts Write", "workers_scripts:edit"),
    ("Access: Apps and Policies Read", "access_apps_and_policies:read"),
    ("Cache Purge", "cache_purge:edit"),  # neither Read nor Write: it can change something
])
def test_permission_group_names(name, permission):
    assert scope.parse_group_name(name) == permission


@pytest.mark.parametrize("permission, name", [
    ("dns_records:edit", "DNS Write"), ("zone:read", "Zone Read"), ("api_tokens:edit", "API Tokens Write"), ("workers_kv:read", "Workers Kv Read"),
])
def test_labels_are_cloudflare_group_names(permission, name):
    assert scope.label(permission) == name


def test_edit_covers_read_and_nothing_else():
    assert scope.covers("dns_records:edit", "dns_records:read")
    assert scope.covers("dns_records:read", "dns_records:read")
    assert not scope.covers("dns_records:read", "dns_records:edit")
    assert not scope.covers("zone:edit", "dns_records:read")


def test_needs_from_stages_and_permissions_name_their_sources():
    needed = scope.resolve_needs(["domain_routing", "secrets_env", "Zone Settings Read", "zone_waf:edit"])
    assert needed == {
        "zone:read": ["domain_routing", "secrets_env"],
        "dns_records:edit": ["domain_routing", "secrets_env"],
        "dynamic_url_redirects:edit": ["domain_routing"],
        "zone_settings:read": ["needs"],
        "zone_waf:edit": ["needs"],
    }
    assert scope.resolve_needs(["monitoring", "deploy"]) == {}


def test_edge_security_needs_settings_rulesets_and_certificates():
    # Its rules are cache, rate limit and custom firewall rules; it writes no redirect rule.
    needed = scope.resolve_needs(["edge_security"])
    assert set(needed) == {"zone:read", "zone_settings:edit", "cache_settings:edit", "zone_waf:edit", "ssl_and_certificates:edit"}


def test_domain_routing_needs_the_redirect_rules_it_writes():
    # roles/domain_routing writes the redirect map in the http_request_dynamic_redirect phase.
    assert set(scope.resolve_needs(["domain_routing"])) == {"zone:read", "dns_records:edit", "dynamic_url_redirects:edit"}
    assert scope.resolve_needs(["domain_routing", "edge_security"])["dynamic_url_redirects:edit"] == ["domain_routing"]


@pytest.mark.parametrize("bad, message", [
    ("domain-routing", "neither a stage"),
    ("Workers Scripts Write", "not a zone permission"),
    ("api_tokens:read", "not a zone permission"),
])
def test_unknown_needs_are_refused_with_the_catalog(bad, message):
    with pytest.raises(scope.ScopeError, match=message):
        scope.resolve_needs([bad])


def test_needed_on_zone_drops_reads_that_an_edit_gives():
    assert scope.needed_on_zone(scope.resolve_needs(["domain_routing", "handover"])) == [
        "dns_records:edit", "dynamic_url_redirects:edit", "ssl_and_certificates:read", "zone:read", "zone_settings:read"]


# --- policies ----------------------------------------------------------------------------------------


def test_a_token_scoped_to_the_zone_with_exactly_the_needs_is_ok():
    result = assess([policy(["Zone Read", "DNS Write"], on_zone())], ["secrets_env"])
    assert [(f.severity, f.title) for f in result.findings] == [(OK, "The Cloudflare API token holds only what the configured stages need")]
    assert result.held == {"example.com": ["dns_records:edit", "zone:read"]}
    assert "DNS Write, Zone Read" in result.findings[0].evidence
    assert result.source == "policies"


def test_api_tokens_read_for_the_self_check_is_not_beyond_the_needs():
    result = assess([policy(["Zone Read", "DNS Write"], on_zone()), policy(["API Tokens Read"], {"com.cloudflare.api.user.%s" % secrets.token_hex(16): "*"})],
                    ["secrets_env"])
    assert [f.severity for f in result.findings] == [OK]


def test_a_missing_permission_is_a_blocker_naming_the_stage():
    result = assess([policy(["Zone Read", "DNS Read"], on_zone())], ["domain_routing", "secrets_env"])
    finding = result.findings[0]
    assert finding.severity == MUST_DO_NOW and finding.title == "The Cloudflare API token lacks permissions the launch needs"
    assert finding.evidence == "example.com: DNS Write (for domain_routing, secrets_env); Dynamic URL Redirects Write (for domain_routing)"
    assert result.missing == {"example.com": ["dns_records:edit", "dynamic_url_redirects:edit"]}


def test_a_zone_the_token_cannot_see_is_missing():
    result = assess([policy(["Zone Read", "DNS Write"], on_zone())], ["secrets_env"], zones=[ZONE], unresolved=["shop.example"])
    assert "shop.example: not found" in result.findings[0].evidence
    assert result.findings[0].severity == MUST_DO_NOW


def test_all_zones_with_edit_rights_is_a_blocker():
    result = assess([policy(["Zone Read", "DNS Write"], {"com.cloudflare.api.account.zone.*": "*"})], ["secrets_env"])
    found = severities(result.findings)
    assert found == {"The Cloudflare API token reaches beyond the launch's zones with edit rights": MUST_DO_NOW}
    assert result.reach == [{"scope": "every zone (All zones)", "permissions": ["dns_records:edit", "zone:read"], "edit": True}]
    # ...while the zone itself still has what it needs
    assert result.held == {"example.com": ["dns_records:edit", "zone:read"]} and not result.missing


def test_every_zone_of_an_account_nested_form_is_a_blocker():
    resources = {"com.cloudflare.api.account.%s" % ACCOUNT: {"com.cloudflare.api.account.zone.*": "*"}}
    result = assess([policy(["Zone Read", "DNS Write"], resources)], ["secrets_env"])
    assert severities(result.findings)["The Cloudflare API token reaches beyond the launch's zones with edit rights"] == MUST_DO_NOW
    assert "every zone of account %s" % ACCOUNT in result.findings[0].evidence
    assert not result.missing


def test_read_only_reach_beyond_the_zones_can_wait():
    policies = [policy(["Zone Read", "DNS Write"], on_zone()), policy(["Zone Read"], {"com.cloudflare.api.account.zone.*": "*"})]
    result = assess(policies, ["secrets_env"])
    assert severities(result.findings) == {"The Cloudflare API token reaches beyond the launch's zones (read only)": CAN_WAIT}


def test_another_specific_zone_with_edit_is_a_blocker_and_named():
    result = assess([policy(["Zone Read", "DNS Write"], {**on_zone(), **on_zone(OTHER)})], ["secrets_env"])
    assert result.findings[0].severity == MUST_DO_NOW
    assert "zone %s" % OTHER.id in result.findings[0].evidence  # OTHER is not configured, so only its id is known


def test_every_account_is_a_blocker():
    result = assess([policy(["Zone Read", "DNS Write"], on_zone()), policy(["Account Settings Read"], {"com.cloudflare.api.account.*": "*"})],
                    ["secrets_env"])
    assert severities(result.findings)["The Cloudflare API token reaches every account"] == MUST_DO_NOW


def test_token_administration_is_a_blocker():
    result = assess([policy(["Zone Read", "DNS Write"], on_zone()), policy(["API Tokens Write"], {"com.cloudflare.api.user.abc": "*"})],
                    ["secrets_env"])
    assert severities(result.findings)["The Cloudflare API token can create and edit API tokens"] == MUST_DO_NOW


def test_account_edit_permissions_are_a_blocker_account_reads_can_wait():
    account = {"com.cloudflare.api.account.%s" % ACCOUNT: "*"}
    edit = assess([policy(["Zone Read", "DNS Write"], on_zone()), policy(["Workers Scripts Write", "Billing Read"], account)], ["secrets_env"])
    finding = edit.findings[0]
    assert (finding.severity, finding.title) == (MUST_DO_NOW, "The Cloudflare API token holds account or user permissions no stage needs")
    assert finding.evidence == "Billing Read, Workers Scripts Write on account %s" % ACCOUNT
    read = assess([policy(["Zone Read", "DNS Write"], on_zone()), policy(["Billing Read"], account)], ["secrets_env"])
    assert [f.severity for f in read.findings] == [CAN_WAIT]


def test_zone_permissions_beyond_the_needs_can_wait():
    result = assess([policy(["Zone Read", "DNS Write", "Zone WAF Write", "DNS Read"], on_zone())], ["secrets_env"])
    assert severities(result.findings) == {"The Cloudflare API token holds zone permissions no configured stage needs": CAN_WAIT}
    assert result.beyond_needs == {"example.com": ["zone_waf:edit"]}  # DNS Read is within DNS Write


def test_an_edit_where_only_a_read_is_needed_is_beyond_the_needs():
    result = assess([policy(["Zone Read", "DNS Write", "Zone Settings Write", "SSL and Certificates Read"], on_zone())], ["handover"])
    assert result.beyond_needs == {"example.com": ["dns_records:edit", "zone_settings:edit"]}


def test_a_deny_policy_removes_what_it_names():
    policies = [policy(["Zone Read", "DNS Write"], on_zone()), policy(["DNS Write"], on_zone(), effect="deny")]
    result = assess(policies, ["secrets_env"])
    assert result.missing == {"example.com": ["dns_records:edit"]}


def test_a_zone_given_by_id_without_its_account_is_covered_by_an_account_wide_grant():
    unlisted = scope.Zone(secrets.token_hex(16), "")
    resources = {"com.cloudflare.api.account.%s" % ACCOUNT: {"com.cloudflare.api.account.zone.*": "*"}}
    result = assess([policy(["Zone Read", "DNS Write"], resources)], ["secrets_env"], zones=[unlisted])
    assert result.held == {unlisted.id: ["dns_records:edit", "zone:read"]}


def test_malformed_policies_are_an_error():
    with pytest.raises(scope.ScopeError):
        scope.parse_policies(["not a policy"])
    with pytest.raises(scope.ScopeError):
        scope.parse_policies([{"id": "p", "effect": "allow", "permission_groups": [{"id": "x"}], "resources": {}}])


# --- probes ------------------------------------------------------------------------------------------


def probes(visible, readable, needs, zones=(ZONE,), unresolved=()):
    return scope.assess_probes(visible, readable, scope.resolve_needs(needs), list(zones), list(unresolved), "secrets_env")


def test_probes_that_read_exactly_the_needs_are_ok_and_say_what_they_cannot_see():
    result = probes([ZONE], {"example.com": {"zone", "dns_records"}}, ["secrets_env"])
    assert [f.severity for f in result.findings] == [OK]
    assert "edit rights and account permissions are not visible" in result.findings[0].evidence
    assert result.held == {"example.com": ["dns_records:read", "zone:read"]} and result.source == "probes"


def test_probes_other_visible_zones_are_a_blocker():
    result = probes([ZONE, OTHER], {"example.com": {"zone", "dns_records"}}, ["secrets_env"])
    assert severities(result.findings) == {"The Cloudflare API token reaches beyond the launch's zones": MUST_DO_NOW}
    assert "other.example" in result.findings[0].evidence
    assert result.reach == [{"scope": "zone other.example", "permissions": ["zone:read"], "edit": None}]


def test_probes_readable_resources_beyond_the_needs_can_wait():
    result = probes([ZONE], {"example.com": {"zone", "dns_records", "zone_waf", "cache_settings"}}, ["secrets_env"])
    assert severities(result.findings) == {"The Cloudflare API token holds zone permissions no configured stage needs": CAN_WAIT}
    assert result.beyond_needs == {"example.com": ["cache_settings:read", "zone_waf:read"]}


def test_probes_an_unreadable_needed_resource_is_missing():
    result = probes(None, {"example.com": set()}, ["secrets_env"])
    assert result.missing == {"example.com": ["dns_records:edit", "zone:read"]}
    assert result.findings[0].severity == MUST_DO_NOW


# --- status and expiry -------------------------------------------------------------------------------


def status(**token):
    token.setdefault("id", "ed17574386854bf78a67040be0a770b0")
    token.setdefault("status", "active")
    (finding,) = scope.status_findings(token, NOW, 30, "secrets_env")
    return finding


@pytest.mark.parametrize("value, expected", [
    ("2025-01-01T00:00:00Z", datetime(2025, 1, 1, tzinfo=timezone.utc)),
    ("2025-01-01T02:30:00+02:00", datetime(2025, 1, 1, 0, 30, tzinfo=timezone.utc)),
    ("2025-01-01T00:00:00.123456Z", datetime(2025, 1, 1, tzinfo=timezone.utc)),
    ("2025-01-01", datetime(2025, 1, 1, tzinfo=timezone.utc)),
    ("", None),
    ("soon", None),
])
def test_parse_time(value, expected):
    assert scope.parse_time(value) == expected


def test_an_active_token_without_expiry_is_ok():
    finding = status()
    assert (finding.severity, finding.title) == (OK, "The Cloudflare API token is active")
    assert "does not expire" in finding.evidence


@pytest.mark.parametrize("token_status", ["disabled", "expired"])
def test_a_disabled_or_expired_status_is_a_blocker(token_status):
    finding = status(status=token_status)
    assert (finding.severity, finding.title) == (MUST_DO_NOW, "The Cloudflare API token is %s" % token_status)


def test_a_past_expiry_is_a_blocker_even_if_the_status_lags():
    finding = status(expires_on=(NOW - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert (finding.severity, finding.title) == (MUST_DO_NOW, "The Cloudflare API token has expired")


def test_not_valid_yet_is_a_blocker():
    finding = status(not_before=(NOW + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert (finding.severity, finding.title) == (MUST_DO_NOW, "The Cloudflare API token is not valid yet")


def test_expiring_within_the_warning_can_wait_and_later_is_ok():
    soon = status(expires_on=(NOW + timedelta(days=10, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert (soon.severity, soon.title) == (CAN_WAIT, "The Cloudflare API token expires in 10 days")
    later = status(expires_on=(NOW + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert later.severity == OK and "expires on 2025-08-30" in later.evidence
