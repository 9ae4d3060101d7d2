# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zone settings: which exist, their default on a new zone, the values each accepts, and on which plans
each may be edited.

A zone stores only the settings changed from their default (``zone["settings"][id] = {"value",
"modified_on"}``); ``current`` gives every setting as the API answers it. The edge reads its
behaviour (SSL mode, always-HTTPS, HSTS, minimum TLS version...) from ``values``.

Defaults are those of a zone added to Cloudflare today, which differ from the defaults written in
the OpenAPI document in places: new zones get ``tls_1_3`` on, ``brotli`` on, ``always_online`` off
and ``ssl`` flexible (Cloudflare's long-standing default before its SSL/TLS Recommender chooses one).

Settings a plan does not include answer ``editable: false`` (and refuse an edit). Which ones, as
real answers show them: on a free zone ``sort_query_string_for_cache`` (Enterprise) and ``webp``
(Pro) are read-only (github.com/cloudflare/cf-terraforming/issues/40), so are ``true_client_ip_header``
(github.com/cloudflare/terraform-provider-cloudflare/pull/512), ``image_resizing`` (issues/1297 and
/961 there) and ``mirage`` and ``http2`` (a GET /settings answer quoted in issues/1810 there);
``polish`` and ``h2_prioritization`` need Pro, ``prefetch_preload``, ``origin_error_page_pass_thru``,
``response_buffering`` and ``proxy_read_timeout`` Enterprise (developers.cloudflare.com, each
feature's "Availability"); ``advanced_ddos`` is read-only on every plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.lab import errors
from tests.lab.errors import ApiError

PLAN_RANK = {"free": 0, "pro": 1, "business": 2, "enterprise": 3}
SSL_MODES = ("off", "flexible", "full", "strict")
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
HSTS_FLAGS = ("enabled", "include_subdomains", "preload", "nosniff")
HSTS_MAX_AGE_LIMIT = 31536000  # twelve months: the longest max-age Cloudflare offers


@dataclass(frozen=True)
class Setting:
    id: str
    default: Any
    accepts: str  # what an error message says the setting accepts
    valid: Callable[[Any], bool]
    min_plan: str = "free"
    read_only: bool = False

    def editable(self, plan: str) -> bool:
        return not self.read_only and PLAN_RANK[plan] >= PLAN_RANK[self.min_plan]


def _one_of(*allowed: Any) -> Callable[[Any], bool]:
    return lambda value: not isinstance(value, bool) and value in allowed


def _on_off(setting_id: str, default: str, min_plan: str = "free", read_only: bool = False) -> Setting:
    return Setting(setting_id, default, '"on" or "off"', _one_of("on", "off"), min_plan, read_only)


def _choice(setting_id: str, default: Any, allowed: tuple[Any, ...], min_plan: str = "free") -> Setting:
    return Setting(setting_id, default, " or ".join(map(repr, allowed)).replace("'", '"'), _one_of(*allowed), min_plan)


def _security_header_ok(value: Any) -> bool:
    if not isinstance(value, dict) or set(value) != {"strict_transport_security"}:
        return False
    hsts = value["strict_transport_security"]
    if not isinstance(hsts, dict) or not set(hsts) <= set(HSTS_FLAGS) | {"max_age"}:
        return False
    if any(not isinstance(hsts[flag], bool) for flag in HSTS_FLAGS if flag in hsts):
        return False
    max_age = hsts.get("max_age", 0)
    return isinstance(max_age, int) and not isinstance(max_age, bool) and 0 <= max_age <= HSTS_MAX_AGE_LIMIT


def _timeout_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 6000


BROWSER_CACHE_TTLS = (0, 30, 60, 120, 300, 1200, 1800, 3600, 7200, 10800, 14400, 18000, 28800, 43200, 57600, 72000, 86400, 172800,
                      259200, 345600, 432000, 691200, 1382400, 2073600, 2678400, 5356800, 16070400, 31536000)
HSTS_OFF = {"strict_transport_security": {"enabled": False, "max_age": 0, "include_subdomains": False, "preload": False, "nosniff": False}}

CATALOG: dict[str, Setting] = {setting.id: setting for setting in [
    _on_off("0rtt", "off"),
    _on_off("advanced_ddos", "on", read_only=True),
    _on_off("always_online", "off"),
    _on_off("always_use_https", "off"),
    _on_off("automatic_https_rewrites", "on"),
    _on_off("brotli", "on"),
    _choice("browser_cache_ttl", 14400, BROWSER_CACHE_TTLS),
    _on_off("browser_check", "on"),
    _choice("cache_level", "aggressive", ("aggressive", "basic", "simplified")),
    _on_off("development_mode", "off"),
    _on_off("early_hints", "off"),
    _on_off("email_obfuscation", "on"),
    _choice("h2_prioritization", "off", ("on", "off", "custom"), min_plan="pro"),
    _on_off("hotlink_protection", "off"),
    _on_off("http2", "on", min_plan="pro"),
    _on_off("http3", "on"),
    _choice("image_resizing", "off", ("on", "off", "open"), min_plan="business"),
    _on_off("ip_geolocation", "on"),
    _on_off("ipv6", "on"),
    _choice("min_tls_version", "1.0", TLS_VERSIONS),
    _on_off("mirage", "off", min_plan="pro"),
    _on_off("opportunistic_encryption", "on"),
    _on_off("opportunistic_onion", "on"),
    _on_off("origin_error_page_pass_thru", "off", min_plan="enterprise"),
    _choice("polish", "off", ("off", "lossless", "lossy"), min_plan="pro"),
    _on_off("prefetch_preload", "off", min_plan="enterprise"),
    Setting("proxy_read_timeout", 100, "a whole number of seconds from 1 to 6000", _timeout_ok, min_plan="enterprise"),
    _on_off("response_buffering", "off", min_plan="enterprise"),
    _on_off("rocket_loader", "off"),
    Setting("security_header", HSTS_OFF,
            '{"strict_transport_security": {"enabled", "max_age" (0 to %d), "include_subdomains", "preload", "nosniff"}}' % HSTS_MAX_AGE_LIMIT,
            _security_header_ok),
    _choice("security_level", "medium", ("off", "essentially_off", "low", "medium", "high", "under_attack")),
    _on_off("sort_query_string_for_cache", "off", min_plan="enterprise"),
    _choice("ssl", "flexible", SSL_MODES),
    _on_off("tls_1_3", "on"),
    _on_off("tls_client_auth", "on"),
    _on_off("true_client_ip_header", "off", min_plan="enterprise"),
    _on_off("webp", "off", min_plan="pro"),
    _on_off("websockets", "on"),
]}


def _stored(zone: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return zone.setdefault("settings", {})


def values(zone: dict[str, Any]) -> dict[str, Any]:
    """Every setting's current value (what the edge applies)."""
    stored = _stored(zone)
    return {setting_id: stored[setting_id]["value"] if setting_id in stored else setting.default for setting_id, setting in CATALOG.items()}


def current(zone: dict[str, Any], setting_id: str) -> dict[str, Any]:
    """One setting as the API answers it."""
    setting = lookup(setting_id)
    stored = _stored(zone).get(setting_id)
    answer = {"id": setting_id, "value": stored["value"] if stored else setting.default,
              "modified_on": stored["modified_on"] if stored else None, "editable": setting.editable(zone["plan"])}
    if setting_id == "development_mode":
        answer["time_remaining"] = 0
    return answer


def all_current(zone: dict[str, Any]) -> list[dict[str, Any]]:
    return [current(zone, setting_id) for setting_id in sorted(CATALOG)]


def lookup(setting_id: str) -> Setting:
    setting = CATALOG.get(setting_id)
    if setting is None:
        raise ApiError(400, errors.UNKNOWN_SETTING, "Unrecognized zone setting name: %s" % setting_id)
    return setting


def checked_value(zone: dict[str, Any], setting_id: str, value: Any) -> Any:
    """The value to store for an edit, or the ApiError Cloudflare answers (unknown id, wrong value, not on this plan)."""
    setting = lookup(setting_id)
    if setting_id == "security_header" and isinstance(value, dict) and isinstance(value.get("strict_transport_security"), dict):
        # An edit of security_header changes the HSTS fields it names and keeps the others.
        merged = dict(values(zone)["security_header"]["strict_transport_security"])
        merged.update(value["strict_transport_security"])
        value = {"strict_transport_security": merged}
    if not setting.valid(value):
        raise ApiError(400, errors.INVALID_SETTING_VALUE, "Invalid value for zone setting %s" % setting_id,
                       chain=[{"code": errors.INVALID_SETTING_VALUE, "message": "%s accepts %s" % (setting_id, setting.accepts)}])
    if not setting.editable(zone["plan"]):
        reason = "on any plan" if setting.read_only else "on the %s plan (it needs %s or higher)" % (zone["plan"], setting.min_plan)
        raise ApiError(400, errors.SETTING_NOT_EDITABLE, "Zone setting %s is not editable %s" % (setting_id, reason))
    return value
