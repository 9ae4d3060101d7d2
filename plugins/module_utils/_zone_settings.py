# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloudflare zone settings: which ones the collection knows, what each accepts, and the plan that
turns the zone's current settings into the desired ones (pure: no I/O).

Values are normalised before anything is compared, so what YAML makes of a playbook still means
what the user wrote: ``always_use_https: on`` (a boolean in YAML 1.1) is ``"on"``,
``min_tls_version: 1.2`` (a float) is ``"1.2"``. ``security_header`` is a partial object: only
the HSTS keys the user sets are compared, and the write sends the current object with them
changed, so keys left out keep their value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, Finding

STAGE = "edge_security"
HSTS_KEY = "strict_transport_security"
HSTS_FLAGS = ("enabled", "include_subdomains", "preload", "nosniff")
HSTS_MAX_AGE_LIMIT = 31536000  # one year: the longest max-age Cloudflare offers
HSTS_PRELOAD_MIN_AGE = 31536000  # hstspreload.org's minimum for a preload submission


class SettingsError(ValueError):
    """Desired settings the module refuses before any API call, or a plan it refuses before any write."""


@dataclass(frozen=True)
class Setting:
    """One zone setting: ``kind`` is ``on_off``, ``choice`` (strings), ``number`` (whole numbers from ``choices``,
    or from ``minimum`` to ``maximum`` without choices) or ``security_header``."""

    id: str
    kind: str
    choices: tuple = ()
    minimum: int = 0
    maximum: int = 0

    def accepts(self) -> str:
        if self.kind == "on_off":
            return "on or off (true or false)"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices) + (" (true or false for on or off)" if {"on", "off"} <= set(self.choices) else "")
        if self.kind == "number" and self.choices:
            return "a whole number, one of " + ", ".join(str(c) for c in self.choices)
        if self.kind == "number":
            return "a whole number from %d to %d" % (self.minimum, self.maximum)
        return "{%s: {%s: true/false, max_age: 0 to %d}}" % (HSTS_KEY, "/".join(HSTS_FLAGS), HSTS_MAX_AGE_LIMIT)

    def normalise(self, value: Any) -> Any:
        """The value as the API writes it; SettingsError naming what the setting accepts."""
        normalised = _NORMALISERS[self.kind](self, value)
        if normalised is None:
            raise SettingsError("%s: %r (%s) is not accepted; %s accepts %s" % (self.id, value, _type_name(value), self.id, self.accepts()))
        return normalised


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "text", dict: "mapping", list: "list"}.get(type(value), type(value).__name__)


def _on_off(_setting: Setting, value: Any) -> str | None:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str) and value.strip().lower() in ("on", "off"):
        return value.strip().lower()
    return None


def _choice(setting: Setting, value: Any) -> str | None:
    if isinstance(value, bool):
        return ("on" if value else "off") if {"on", "off"} <= set(setting.choices) else None
    if isinstance(value, float) and setting.id == "min_tls_version":
        value = "%.1f" % value  # YAML reads min_tls_version: 1.2 as a number
    if isinstance(value, str) and value.strip().lower() in setting.choices:
        return value.strip().lower()
    return None


def _number(setting: Setting, value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        return None
    if setting.choices:
        return value if value in setting.choices else None
    return value if setting.minimum <= value <= setting.maximum else None


def _security_header(_setting: Setting, value: Any) -> dict | None:
    if not isinstance(value, dict) or set(value) != {HSTS_KEY} or not isinstance(value[HSTS_KEY], dict):
        return None
    hsts = value[HSTS_KEY]
    if not hsts or not set(hsts) <= set(HSTS_FLAGS) | {"max_age"}:
        return None
    if any(not isinstance(hsts[flag], bool) for flag in HSTS_FLAGS if flag in hsts):
        return None
    if "max_age" in hsts:
        age = _number(Setting("max_age", "number", minimum=0, maximum=HSTS_MAX_AGE_LIMIT), hsts["max_age"])
        if age is None:
            return None
        hsts = dict(hsts, max_age=age)
    return {HSTS_KEY: dict(hsts)}


_NORMALISERS = {"on_off": _on_off, "choice": _choice, "number": _number, "security_header": _security_header}


def _settings(*settings: Setting) -> dict[str, Setting]:
    return {setting.id: setting for setting in settings}


def _on_offs(*ids: str) -> list[Setting]:
    return [Setting(setting_id, "on_off") for setting_id in ids]


# The settings of Cloudflare's zone settings API this collection writes, with the values each accepts
# (Cloudflare API v4 OpenAPI document, "Zone Settings"). Deprecated settings (minify, mobile_redirect)
# and those with structured values the collection never sets (ciphers, nel, automatic_platform_optimization)
# are left out.
CATALOG: dict[str, Setting] = _settings(
    *_on_offs(
        "0rtt", "advanced_ddos", "always_online", "always_use_https", "automatic_https_rewrites", "brotli", "browser_check",
        "development_mode", "early_hints", "email_obfuscation", "hotlink_protection", "http2", "http3", "ip_geolocation", "ipv6",
        "mirage", "opportunistic_encryption", "opportunistic_onion", "orange_to_orange", "origin_error_page_pass_thru",
        "prefetch_preload", "response_buffering", "rocket_loader", "server_side_exclude", "sort_query_string_for_cache",
        "tls_client_auth", "true_client_ip_header", "webp", "websockets",
    ),
    Setting("ssl", "choice", ("off", "flexible", "full", "strict")),
    Setting("min_tls_version", "choice", ("1.0", "1.1", "1.2", "1.3")),
    Setting("tls_1_3", "choice", ("on", "off", "zrt")),
    Setting("security_level", "choice", ("off", "essentially_off", "low", "medium", "high", "under_attack")),
    Setting("cache_level", "choice", ("aggressive", "basic", "simplified")),
    Setting("cname_flattening", "choice", ("flatten_at_root", "flatten_all")),
    Setting("h2_prioritization", "choice", ("on", "off", "custom")),
    Setting("image_resizing", "choice", ("on", "off", "open")),
    Setting("polish", "choice", ("off", "lossless", "lossy")),
    Setting("pseudo_ipv4", "choice", ("off", "add_header", "overwrite_header")),
    Setting("browser_cache_ttl", "number", (0, 30, 60, 120, 300, 1200, 1800, 3600, 7200, 10800, 14400, 18000, 28800, 43200, 57600, 72000,
                                            86400, 172800, 259200, 345600, 432000, 691200, 1382400, 2073600, 2678400, 5356800, 16070400, 31536000)),
    Setting("challenge_ttl", "number", (300, 900, 1800, 2700, 3600, 7200, 10800, 14400, 28800, 57600, 86400, 604800, 2592000, 31536000)),
    Setting("max_upload", "number", (100, 200, 500)),
    Setting("proxy_read_timeout", "number", minimum=1, maximum=6000),
    Setting("security_header", "security_header"),
)


def normalise_settings(desired: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Desired settings checked against the catalog and normalised; warnings about risky values.

    Every problem is reported at once, in one SettingsError that lists what is accepted.
    """
    unknown = sorted(setting_id for setting_id in desired if setting_id not in CATALOG)
    problems = []
    if unknown:
        problems.append("unknown zone setting%s %s; the settings this module knows are: %s" % (
            "" if len(unknown) == 1 else "s", ", ".join(unknown), ", ".join(sorted(CATALOG))))
    normalised = {}
    for setting_id, value in desired.items():
        if setting_id in unknown:
            continue
        try:
            normalised[setting_id] = CATALOG[setting_id].normalise(value)
        except SettingsError as exc:
            problems.append(str(exc))
    if problems:
        raise SettingsError("; ".join(problems))
    return normalised, _warnings(normalised)


def _warnings(settings: dict[str, Any]) -> list[str]:
    warnings = []
    hsts = (settings.get("security_header") or {}).get(HSTS_KEY, {})
    if hsts.get("preload") and (not hsts.get("include_subdomains") or hsts.get("max_age", 0) < HSTS_PRELOAD_MIN_AGE):
        warnings.append("security_header: preload is set, but the HSTS preload list also needs include_subdomains and a max_age of at least %d"
                        % HSTS_PRELOAD_MIN_AGE)
    if settings.get("ssl") in ("off", "flexible") and (settings.get("always_use_https") == "on" or hsts.get("enabled")):
        warnings.append("ssl is %s: Cloudflare talks to the origin over plain HTTP although visitors are sent to HTTPS; use full or strict" % settings["ssl"])
    return warnings


@dataclass
class SettingsPlan:
    changes: list[dict] = field(default_factory=list)  # {"id", "before", "after"}, in the order desired
    items: list[dict] = field(default_factory=list)  # the PATCH items: {"id", "value"}
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    current: dict[str, Any] = field(default_factory=dict)  # every setting of the zone, as read

    @property
    def changed(self) -> bool:
        return bool(self.items)

    def resulting(self, edited: list[dict] | None = None) -> dict[str, Any]:
        """Every setting after the write: the answer of the write when there was one, else the plan."""
        settings = dict(self.current)
        if edited is None:
            settings.update({item["id"]: item["value"] for item in self.items})
        else:
            settings.update({item["id"]: item.get("value") for item in edited if isinstance(item, dict) and "id" in item})
        return settings

    def diff(self) -> dict:
        return {"before": {c["id"]: c["before"] for c in self.changes}, "after": {c["id"]: c["after"] for c in self.changes}}


def same(setting_id: str, current: Any, desired: Any) -> bool:
    """Whether the zone's value already is the desired one (only the keys set, for security_header)."""
    if setting_id == "security_header":
        current_hsts = _hsts(current)
        return all(current_hsts.get(key) == value for key, value in desired[HSTS_KEY].items())
    return current == desired  # numbers the API answers as 14400.0 equal 14400


def written_value(setting_id: str, current: Any, desired: Any) -> Any:
    """The value to send: for security_header the current object with the desired keys changed."""
    if setting_id == "security_header":
        return {HSTS_KEY: dict(_hsts(current), **desired[HSTS_KEY])}
    return desired


def _hsts(security_header: Any) -> dict:
    hsts = security_header.get(HSTS_KEY) if isinstance(security_header, dict) else None
    return hsts if isinstance(hsts, dict) else {}


def plan_settings(desired: dict[str, Any], listed: list[dict], fail_on_uneditable: bool = False) -> SettingsPlan:
    """The plan from the zone's settings (the answer of ``GET /zones/{zone_id}/settings``) to ``desired`` (normalised).

    A setting that differs and that the zone's plan does not let the token edit (``editable: false``),
    or that the zone does not have at all, becomes a finding and a warning; with ``fail_on_uneditable``
    a SettingsError naming every such setting, before any write.
    """
    by_id = {item["id"]: item for item in listed if isinstance(item, dict) and "id" in item}
    plan = SettingsPlan(current={setting_id: item.get("value") for setting_id, item in sorted(by_id.items())})
    blocked = []
    for setting_id, value in desired.items():
        item = by_id.get(setting_id)
        if item is None:
            blocked.append(setting_id)
            plan.findings.append(Finding(
                STAGE, CAN_WAIT, "Zone setting %s is not available on this zone" % setting_id,
                "the zone's settings do not include %s; wanted %s" % (setting_id, _show(value)),
                "Remove %s from the desired settings, or move the zone to a plan that has it." % setting_id,
            ))
            continue
        if same(setting_id, item.get("value"), value):
            continue
        after = written_value(setting_id, item.get("value"), value)
        if item.get("editable") is False:
            blocked.append(setting_id)
            plan.findings.append(Finding(
                STAGE, CAN_WAIT, "Zone setting %s cannot be changed on this zone's plan" % setting_id,
                "%s is %s, wanted %s; Cloudflare marks it editable: false" % (setting_id, _show(item.get("value")), _show(value)),
                "Upgrade the zone to a plan that includes %s, or remove it from the desired settings." % setting_id,
            ))
            continue
        plan.changes.append({"id": setting_id, "before": item.get("value"), "after": after})
        plan.items.append({"id": setting_id, "value": after})
    if blocked and fail_on_uneditable:
        raise SettingsError("the zone does not let these settings be changed (not editable on its plan, or not available): %s. %s"
                            % (", ".join(blocked), " ".join(f.evidence + "." for f in plan.findings)))
    plan.warnings = ["%s: %s" % (f.title, f.evidence) for f in plan.findings]
    return plan


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
