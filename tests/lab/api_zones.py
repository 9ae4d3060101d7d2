# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zones: ``GET /zones`` (list, search by name) and ``GET /zones/{zone_id}``."""

from __future__ import annotations

from typing import Any

from tests.lab import auth
from tests.lab.errors import envelope
from tests.lab.routing import Context, Reply, Route, paginate

LAB_ACCOUNT = {"id": "1ab0000000000000000000000000acc0", "name": "Launch lab account"}
PLAN_NAMES = {"free": "Free Website", "pro": "Pro Website", "business": "Business Website", "enterprise": "Enterprise Website"}
PLAN_IDS = {"free": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "pro": "94f3b7b768b0458b56d2cac4fe5ec0f9",
            "business": "6d7f2f5f5b1d4a0e30a0e5c1c9b4ef3c", "enterprise": "b5b1b8d6b5f34d2f8dbbdb09e9f4f1b0"}


def zone_object(zone: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    """A zone as ``GET /zones`` returns it."""
    plan = zone["plan"]
    return {
        "id": zone["id"], "name": zone["name"], "status": "active", "paused": False, "type": "full",
        "development_mode": 0, "name_servers": list(zone["name_servers"]), "original_name_servers": None,
        "original_registrar": None, "original_dnshost": None, "vanity_name_servers": [],
        "created_on": zone["created_on"], "modified_on": zone["modified_on"], "activated_on": zone["created_on"],
        "owner": {"id": LAB_ACCOUNT["id"], "name": LAB_ACCOUNT["name"], "type": "organization"},
        "account": dict(LAB_ACCOUNT),
        "meta": {"step": 4, "custom_certificate_quota": 0, "page_rule_quota": 3, "phishing_detected": False,
                 "cdn_only": False, "dns_only": False, "foundation_dns": False},
        "plan": {"id": PLAN_IDS[plan], "name": PLAN_NAMES[plan], "legacy_id": plan, "is_subscribed": plan != "free",
                 "can_subscribe": False, "price": 0, "currency": "USD", "frequency": ""},
        "permissions": auth.zone_permissions(token),
    }


def _name_matches(name: str, condition: str) -> bool:
    """Cloudflare's zone-name search: ``example.com`` or ``<operator>:<value>``."""
    operator, sep, value = condition.partition(":")
    if not sep or operator not in _OPERATORS:
        return name == condition.lower()
    return _OPERATORS[operator](name, value)


_OPERATORS = {
    "equal": lambda name, value: name == value.lower(),
    "not_equal": lambda name, value: name != value.lower(),
    "starts_with": lambda name, value: name.startswith(value.lower()),
    "ends_with": lambda name, value: name.endswith(value.lower()),
    "contains": lambda name, value: value.lower() in name,
    "starts_with_case_sensitive": lambda name, value: name.startswith(value),
    "ends_with_case_sensitive": lambda name, value: name.endswith(value),
    "contains_case_sensitive": lambda name, value: value in name,
}


def list_zones(ctx: Context) -> Reply:
    with ctx.state.lock:
        zones = [zone for zone in ctx.state.zones.values() if auth.reaches_zone(ctx.token, zone["name"])]
    conditions = []
    name = ctx.arg("name")
    if name is not None:
        conditions.append(lambda zone: _name_matches(zone["name"], name))
    status = ctx.arg("status")
    if status is not None:
        conditions.append(lambda zone: status == "active")
    if ctx.arg("match", "all") == "any" and conditions:
        zones = [zone for zone in zones if any(check(zone) for check in conditions)]
    else:
        zones = [zone for zone in zones if all(check(zone) for check in conditions)]
    # Every lab zone is active and in the one lab account, so each documented order comes down to the name.
    zones.sort(key=lambda zone: zone["name"], reverse=ctx.arg("direction") == "desc")
    page, info = paginate(ctx, zones, default_per_page=20)
    return Reply(envelope([zone_object(zone, ctx.token) for zone in page], result_info=info))


def get_zone(ctx: Context) -> Reply:
    return Reply(envelope(zone_object(ctx.zone, ctx.token)))


ROUTES = [
    Route("GET", "/zones", list_zones, "zone:read"),
    Route("GET", "/zones/{zone_id}", get_zone, "zone:read"),
]
