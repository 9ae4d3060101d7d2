# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Least privilege for a Cloudflare API token: what the launch's stages need, what the token holds, and the findings.

Pure functions, no API calls (``cloudflare_token_info`` makes them). A permission is written
``<resource>:<level>``: ``dns_records:edit`` is Cloudflare's permission group "DNS Write" (the
dashboard says "DNS Edit"), ``zone:read`` is "Zone Read". ``edit`` includes ``read``.

What a token holds comes from one of two sources:

* its **policies** (``GET /user/tokens/{id}``), when the token may read itself ("API Tokens
  Read"): every permission group with the resources it applies to, so reach (one zone, every zone
  of an account, every zone, every account) and edit rights are known exactly;
* **read-only probes** otherwise: the zones the token can list, and for each configured zone which
  resources it can read. Edit rights cannot be seen without writing, which a check never does;
  the stages' own writes prove them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK, Finding

READ = "read"
EDIT = "edit"

# Zone-level resources the collection's stages use, with the stem of Cloudflare's permission group
# names ("<stem> Read", "<stem> Write"; developers.cloudflare.com, API token permissions).
ZONE_RESOURCES = {
    "zone": "Zone",
    "dns_records": "DNS",
    "zone_settings": "Zone Settings",
    "ssl_and_certificates": "SSL and Certificates",
    "zone_waf": "Zone WAF",
    "cache_settings": "Cache Settings",
    "dynamic_url_redirects": "Dynamic URL Redirects",
}
# User-level resources (scope com.cloudflare.api.user).
USER_RESOURCES = {
    "api_tokens": "API Tokens",
    "memberships": "Memberships",
    "user_details": "User Details",
}
_STEMS = {stem.lower(): resource for resource, stem in {**ZONE_RESOURCES, **USER_RESOURCES}.items()}

# Reading its own policies only needs this, and it grants no change anywhere: never reported as beyond the needs.
SELF_READ = "api_tokens:read"
TOKEN_ADMIN = "api_tokens:edit"

# What each stage of a launch does with the Cloudflare API (the roles of the same names). Stages
# without Cloudflare calls need nothing. Every stage that names a zone needs Zone Read to find it.
STAGE_NEEDS: dict[str, tuple[str, ...]] = {
    "audit": (),
    # The records, and the redirect map as rules of the http_request_dynamic_redirect phase.
    "domain_routing": ("zone:read", "dns_records:edit", "dynamic_url_redirects:edit"),
    # Cache, rate limit and custom firewall rules; no redirect rule.
    "edge_security": (
        "zone:read",
        "zone_settings:edit",
        "cache_settings:edit",
        "zone_waf:edit",
        "ssl_and_certificates:edit",
    ),
    # SPF, DKIM and DMARC records are published in the zone.
    "secrets_env": ("zone:read", "dns_records:edit"),
    "deploy": (),
    "backend_performance": (),
    "monitoring": (),
    "handover": ("zone:read", "dns_records:read", "zone_settings:read", "ssl_and_certificates:read"),
    # Restoring a zone snapshot rewrites records, settings and rules.
    "rollback": ("zone:read", "dns_records:edit", "zone_settings:edit", "dynamic_url_redirects:edit", "cache_settings:edit", "zone_waf:edit"),
}

# Read-only calls that show whether a token can read a zone-level resource. An entry point that does
# not exist yet answers 404, which still proves the permission (a missing one answers 403).
PROBES: dict[str, tuple[str, str, dict]] = {
    "dns_records": ("GET", "/zones/{zone_id}/dns_records", {"per_page": 1}),
    "zone_settings": ("GET", "/zones/{zone_id}/settings", {}),
    "dynamic_url_redirects": ("GET", "/zones/{zone_id}/rulesets/phases/http_request_dynamic_redirect/entrypoint", {}),
    "cache_settings": ("GET", "/zones/{zone_id}/rulesets/phases/http_request_cache_settings/entrypoint", {}),
    "zone_waf": ("GET", "/zones/{zone_id}/rulesets/phases/http_request_firewall_custom/entrypoint", {}),
    "ssl_and_certificates": ("GET", "/certificates", {"zone_id": "{zone_id}"}),
}

_ZONE_KEY = "com.cloudflare.api.account.zone."
_ACCOUNT_KEY = "com.cloudflare.api.account."
_USER_KEY = "com.cloudflare.api.user."
_PERMISSION_RE = re.compile(r"^([a-z0-9_]+):(read|edit)$")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$", re.I)


class ScopeError(ValueError):
    pass


def label(permission: str) -> str:
    """``dns_records:edit`` -> ``DNS Write``: the name of Cloudflare's permission group."""
    resource, _colon, level = permission.partition(":")
    stem = ZONE_RESOURCES.get(resource) or USER_RESOURCES.get(resource) or resource.replace("_", " ").title()
    return "%s %s" % (stem, "Read" if level == READ else "Write")


def parse_group_name(name: str) -> str:
    """A permission group name (``DNS Write``, ``DNS Edit``, ``Zone Read``, ``Workers Scripts Write``) -> ``dns_records:edit``.

    Groups the collection does not know become ``<slug>:<level>``; a group whose name ends neither
    in Read nor in Write/Edit (``Cache Purge``) may change something, so it counts as edit.
    """
    words = name.strip().split()
    if not words:
        raise ScopeError("an empty permission group name")
    last = words[-1].lower()
    if last == "read":
        level, stem_words = READ, words[:-1]
    elif last in ("write", "edit"):
        level, stem_words = EDIT, words[:-1]
    else:
        level, stem_words = EDIT, words
    stem = " ".join(stem_words).lower()
    resource = _STEMS.get(stem) or re.sub(r"[^a-z0-9]+", "_", stem).strip("_")
    return "%s:%s" % (resource, level)


def parse_permission(text: str) -> str:
    """A permission as a user writes it: ``dns_records:edit`` or a Cloudflare group name (``DNS Write``, ``DNS Edit``)."""
    value = str(text).strip()
    if _PERMISSION_RE.match(value.lower()):
        return value.lower()
    return parse_group_name(value)


def covers(held: str, wanted: str) -> bool:
    """Whether holding ``held`` gives ``wanted`` (edit includes read)."""
    if held == wanted:
        return True
    held_resource, _c, held_level = held.partition(":")
    wanted_resource, _c, wanted_level = wanted.partition(":")
    return held_resource == wanted_resource and held_level == EDIT and wanted_level == READ


def resolve_needs(needs: list[str]) -> dict[str, list[str]]:
    """Stage names and permissions -> ``{permission: [what needs it]}``, zone-level permissions only."""
    needed: dict[str, list[str]] = {}
    for item in needs:
        text = str(item).strip()
        if text.lower() in STAGE_NEEDS:
            permissions = STAGE_NEEDS[text.lower()]
            source = text.lower()
        else:
            if ":" not in text and " " not in text:
                raise ScopeError("needs: %r is neither a stage (%s) nor a permission such as dns_records:edit or 'DNS Write'" % (text, ", ".join(STAGE_NEEDS)))
            permission = parse_permission(text)
            if permission.partition(":")[0] not in ZONE_RESOURCES:
                raise ScopeError("needs: %r is not a zone permission this check knows (%s)" % (text, ", ".join(sorted(ZONE_RESOURCES))))
            permissions, source = (permission,), "needs"
        for permission in permissions:
            needed.setdefault(permission, [])
            if source not in needed[permission]:
                needed[permission].append(source)
    return needed


def needed_on_zone(needed: dict[str, list[str]]) -> list[str]:
    """The needed permissions, without a read that a needed edit already gives."""
    return sorted(p for p in needed if not any(other != p and covers(other, p) for other in needed))


def is_needed(permission: str, needed: dict[str, list[str]]) -> bool:
    """A held permission is within the needs when a needed one gives it (a needed edit covers a held read, not the reverse)."""
    return any(covers(wanted, permission) for wanted in needed)


# --- zones -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Zone:
    """A zone the launch manages: ``id`` (32 hex), ``name``, and its account's id when known."""

    id: str
    name: str
    account_id: str = ""

    @property
    def shown(self) -> str:
        return self.name or self.id


# --- policies ----------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Scope:
    """Where a policy applies. ``kind``: zone, account_zones, all_zones, account, all_accounts, user, other."""

    kind: str
    ref: str = ""

    def covers_zone(self, zone: Zone) -> bool:
        if self.kind == "zone":
            return self.ref == zone.id
        if self.kind in ("account_zones", "account"):
            # Without the zone's account (a zone given by id and not listed), assume it is in it.
            return not zone.account_id or self.ref == zone.account_id
        return self.kind in ("all_zones", "all_accounts")

    def describe(self, zones: list[Zone]) -> str:
        if self.kind == "zone":
            known = [zone for zone in zones if zone.id == self.ref]
            return "zone %s" % (known[0].shown if known else self.ref)
        return {
            "account_zones": "every zone of account %s" % self.ref,
            "all_zones": "every zone (All zones)",
            "account": "account %s" % self.ref,
            "all_accounts": "every account (All accounts)",
            "user": "the user %s" % self.ref,
        }.get(self.kind, self.ref)


@dataclass(frozen=True)
class Grant:
    permission: str
    scope: Scope
    allow: bool = True


def _scopes(resources: dict) -> list[Scope]:
    scopes = []
    for key, value in (resources or {}).items():
        key = str(key)
        if key.startswith(_ZONE_KEY):
            rest = key[len(_ZONE_KEY):]
            scopes.append(Scope("all_zones") if rest == "*" else Scope("zone", rest.lower()))
        elif key.startswith(_ACCOUNT_KEY):
            account = key[len(_ACCOUNT_KEY):]
            if account == "*":
                scopes.append(Scope("all_accounts"))
            elif isinstance(value, dict):
                # Nested: zones of one account, {"com.cloudflare.api.account.zone.*": "*"} for all of them.
                for inner in _scopes(value):
                    scopes.append(Scope("account_zones", account.lower()) if inner.kind == "all_zones" else inner)
            else:
                scopes.append(Scope("account", account.lower()))
        elif key.startswith(_USER_KEY):
            scopes.append(Scope("user", key[len(_USER_KEY):]))
        else:
            scopes.append(Scope("other", key))
    return scopes


def parse_policies(policies: list) -> list[Grant]:
    """A token's ``policies`` (as ``GET /user/tokens/{id}`` answers them) -> one grant per permission group and resource."""
    grants: list[Grant] = []
    for policy in policies or []:
        if not isinstance(policy, dict):
            raise ScopeError("a token policy is not an object: %r" % (policy,))
        allow = str(policy.get("effect", "allow")).lower() != "deny"
        scopes = _scopes(policy.get("resources") or {})
        for group in policy.get("permission_groups") or []:
            name = group.get("name") if isinstance(group, dict) else None
            if not name:
                raise ScopeError("a permission group of policy %s has no name" % policy.get("id", "?"))
            permission = parse_group_name(str(name))
            grants.extend(Grant(permission, scope, allow) for scope in scopes)
    return grants


def _held_on(grants: list[Grant], zone: Zone) -> set[str]:
    allowed = {g.permission for g in grants if g.allow and g.permission.partition(":")[0] in ZONE_RESOURCES and g.scope.covers_zone(zone)}
    denied = {g.permission for g in grants if not g.allow and g.scope.covers_zone(zone)}
    return {p for p in allowed if not any(covers(d, p) or d == p for d in denied)}


# --- findings ----------------------------------------------------------------------------------------


def _labels(permissions) -> str:
    return ", ".join(label(p) for p in sorted(permissions))


@dataclass
class Assessment:
    """What ``cloudflare_token_info`` returns about privileges, and the findings."""

    source: str  # policies or probes
    held: dict[str, list[str]] = field(default_factory=dict)  # zone -> permissions held on it
    missing: dict[str, list[str]] = field(default_factory=dict)  # zone -> needed permissions not held
    beyond_needs: dict[str, list[str]] = field(default_factory=dict)  # zone -> held permissions no stage needs
    reach: list[dict] = field(default_factory=list)  # scopes beyond the configured zones: {scope, permissions, edit}
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "held": self.held,
            "missing": self.missing,
            "beyond_needs": self.beyond_needs,
            "reach": self.reach,
        }


def _missing_finding(stage: str, assessment: Assessment, needed: dict[str, list[str]], unresolved: list[str]) -> Finding | None:
    parts = []
    for zone_name in unresolved:
        parts.append("%s: not found (the token needs Zone Read on it, or the zone is in another account)" % zone_name)
    for zone_name, permissions in sorted(assessment.missing.items()):
        parts.append("%s: %s" % (zone_name, "; ".join("%s (for %s)" % (label(p), ", ".join(needed[p])) for p in permissions)))
    if not parts:
        return None
    return Finding(
        stage, MUST_DO_NOW, "The Cloudflare API token lacks permissions the launch needs", "; ".join(parts),
        "Edit the token (My Profile > API Tokens) and add the missing permissions on these zones only; the stages that need them fail without them.",
    )


def assess_policies(grants: list[Grant], needed: dict[str, list[str]], zones: list[Zone], unresolved: list[str], stage: str) -> Assessment:
    """Least privilege from the token's own policies."""
    assessment = Assessment("policies")
    for zone in zones:
        held = _held_on(grants, zone)
        assessment.held[zone.shown] = sorted(held)
        missing = [p for p in needed_on_zone(needed) if not any(covers(h, p) for h in held)]
        if missing:
            assessment.missing[zone.shown] = missing
        beyond = sorted(p for p in held if not is_needed(p, needed))
        if beyond:
            assessment.beyond_needs[zone.shown] = beyond

    configured = {zone.id for zone in zones}
    broad: dict[Scope, set[str]] = {}
    account_level: dict[Scope, set[str]] = {}
    user_level: set[str] = set()
    for grant in grants:
        if not grant.allow:
            continue
        resource = grant.permission.partition(":")[0]
        if grant.scope.kind == "user" or resource in USER_RESOURCES:
            user_level.add(grant.permission)
        elif resource in ZONE_RESOURCES:
            if not (grant.scope.kind == "zone" and grant.scope.ref in configured):
                broad.setdefault(grant.scope, set()).add(grant.permission)
        else:
            account_level.setdefault(grant.scope, set()).add(grant.permission)

    findings: list[Finding] = []
    lacking = _missing_finding(stage, assessment, needed, unresolved)
    if lacking:
        findings.append(lacking)
    everywhere = sorted(((scope, perms) for scope, perms in list(broad.items()) + list(account_level.items()) if scope.kind == "all_accounts"),
                        key=lambda item: item[0])
    if everywhere:
        findings.append(Finding(
            stage, MUST_DO_NOW, "The Cloudflare API token reaches every account",
            "; ".join("%s on %s" % (_labels(perms), scope.describe(zones)) for scope, perms in everywhere),
            "Create a token limited to the client's zone (Zone Resources: Include, Specific zone) and no account resources; delete this one.",
        ))
    for scope, perms in sorted(broad.items()):
        edit = any(p.endswith(":" + EDIT) for p in perms)
        assessment.reach.append({"scope": scope.describe(zones), "permissions": sorted(perms), "edit": edit})
    reach = [(scope, perms) for scope, perms in sorted(broad.items()) if scope.kind != "all_accounts"]
    if reach:
        edit = any(p.endswith(":" + EDIT) for _scope, perms in reach for p in perms)
        findings.append(Finding(
            stage, MUST_DO_NOW if edit else CAN_WAIT,
            "The Cloudflare API token reaches beyond the launch's zones" + (" with edit rights" if edit else " (read only)"),
            "; ".join("%s on %s" % (_labels(perms), scope.describe(zones)) for scope, perms in reach),
            "Edit the token: Zone Resources, Include, Specific zone, one line per zone of this launch (%s). A leaked token then cannot touch other zones."
            % (", ".join(zone.shown for zone in zones) or "the client's zone"),
        ))
    if TOKEN_ADMIN in user_level:
        findings.append(Finding(
            stage, MUST_DO_NOW, "The Cloudflare API token can create and edit API tokens",
            "API Tokens Write: whoever holds this token can mint a token with any permission the user has",
            "Remove API Tokens Write from the token (API Tokens Read is enough for this check).",
        ))
    others = sorted(p for p in user_level if p not in (SELF_READ, TOKEN_ADMIN))
    account_scopes = [(scope, perms) for scope, perms in sorted(account_level.items()) if scope.kind != "all_accounts"]
    if account_scopes or others:
        evidence = ["%s on %s" % (_labels(perms), scope.describe(zones)) for scope, perms in account_scopes]
        if others:
            evidence.append("%s on the user" % _labels(others))
        edit = any(p.endswith(":" + EDIT) for _scope, perms in account_scopes for p in perms) or any(p.endswith(":" + EDIT) for p in others)
        findings.append(Finding(
            stage, MUST_DO_NOW if edit else CAN_WAIT,
            "The Cloudflare API token holds account or user permissions no stage needs",
            "; ".join(evidence),
            "Remove every account and user permission from the token: the launch only works on zones.",
        ))
    if assessment.beyond_needs:
        findings.append(Finding(
            stage, CAN_WAIT, "The Cloudflare API token holds zone permissions no configured stage needs",
            "; ".join("%s: %s" % (zone, _labels(perms)) for zone, perms in sorted(assessment.beyond_needs.items())),
            "Remove them from the token, or add the stage that needs them to the check's needs.",
        ))
    if not findings:
        findings.append(Finding(
            stage, OK, "The Cloudflare API token holds only what the configured stages need",
            "%s (from the token's policies)" % "; ".join("%s: %s" % (zone, _labels(perms)) for zone, perms in sorted(assessment.held.items())),
        ))
    assessment.findings = findings
    return assessment


def assess_probes(visible: list[Zone] | None, readable: dict[str, set[str]], needed: dict[str, list[str]], zones: list[Zone], unresolved: list[str],
                  stage: str) -> Assessment:
    """Least privilege from read-only probes: ``visible`` zones (``None``: the token cannot list zones) and, per configured zone, the resources it can read."""
    assessment = Assessment("probes")
    for zone in zones:
        held = {resource + ":" + READ for resource in readable.get(zone.shown, set())}
        assessment.held[zone.shown] = sorted(held)
        missing = [p for p in needed_on_zone(needed) if not any(covers(h, p) or covers(p, h) for h in held)]
        if missing:
            assessment.missing[zone.shown] = missing
        beyond = sorted(p for p in held if not is_needed(p, needed))
        if beyond:
            assessment.beyond_needs[zone.shown] = beyond
    configured = {zone.id for zone in zones}
    others = [zone for zone in visible or [] if zone.id not in configured]
    findings: list[Finding] = []
    lacking = _missing_finding(stage, assessment, needed, unresolved)
    if lacking:
        findings.append(lacking)
    if others:
        for zone in others:
            assessment.reach.append({"scope": "zone %s" % zone.shown, "permissions": ["zone:read"], "edit": None})
        shown = ", ".join(zone.shown for zone in others[:10]) + (" and %d more" % (len(others) - 10) if len(others) > 10 else "")
        findings.append(Finding(
            stage, MUST_DO_NOW, "The Cloudflare API token reaches beyond the launch's zones",
            "it lists %d other zone(s): %s. A token's permissions apply to every zone of its policy, so it can very likely change them too"
            % (len(others), shown),
            "Edit the token: Zone Resources, Include, Specific zone, one line per zone of this launch (%s)." % ", ".join(zone.shown for zone in zones),
        ))
    if assessment.beyond_needs:
        findings.append(Finding(
            stage, CAN_WAIT, "The Cloudflare API token holds zone permissions no configured stage needs",
            "; ".join("%s: can read %s, so it holds %s or more" % (zone, ", ".join(p.partition(":")[0] for p in perms), _labels(perms))
                      for zone, perms in sorted(assessment.beyond_needs.items())),
            "Remove them from the token, or add the stage that needs them to the check's needs.",
        ))
    if not findings:
        reads = "; ".join("%s: reads %s" % (zone, ", ".join(p.partition(":")[0] for p in perms) or "nothing")
                          for zone, perms in sorted(assessment.held.items()))
        findings.append(Finding(
            stage, OK, "The Cloudflare API token holds only what the configured stages need",
            "%s (probed with read-only calls: the token cannot read its own policies, so edit rights and account permissions are not visible; "
            "grant it API Tokens Read for an exact check)" % reads,
        ))
    assessment.findings = findings
    return assessment


# --- status and expiry -------------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time as the API writes it (``2025-01-01T00:00:00Z``), in UTC; ``None`` when empty or unreadable."""
    if not value:
        return None
    match = _DATE_RE.match(str(value).strip())
    if not match:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    when = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=timezone.utc)
    if offset and offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when


def status_findings(token: dict, now: datetime, warning_days: int, stage: str) -> list[Finding]:
    """The token's status (``active``, ``disabled``, ``expired``) and validity period, as findings."""
    status = str(token.get("status") or "unknown")
    expires = parse_time(token.get("expires_on"))
    not_before = parse_time(token.get("not_before"))
    ident = "token %s" % (token.get("id") or "?")
    roll = "Create a new token with the same permissions (My Profile > API Tokens > Roll, or Create Token) and put it in the vault."
    if status != "active":
        return [Finding(stage, MUST_DO_NOW, "The Cloudflare API token is %s" % status, "%s: Cloudflare reports status %s" % (ident, status), roll)]
    if expires is not None and expires <= now:
        return [Finding(stage, MUST_DO_NOW, "The Cloudflare API token has expired", "%s expired on %s" % (ident, _day(expires)), roll)]
    if not_before is not None and not_before > now:
        return [Finding(stage, MUST_DO_NOW, "The Cloudflare API token is not valid yet", "%s is valid from %s" % (ident, _day(not_before)),
                        "Wait until then, or edit the token's TTL start date.")]
    if expires is not None and expires - now <= timedelta(days=warning_days):
        days = (expires - now).days
        return [Finding(stage, CAN_WAIT, "The Cloudflare API token expires in %d day%s" % (days, "" if days == 1 else "s"),
                        "%s expires on %s" % (ident, _day(expires)), "Roll it before then and update the vault, or every Cloudflare stage stops working.")]
    until = "expires on %s" % _day(expires) if expires else "does not expire"
    return [Finding(stage, OK, "The Cloudflare API token is active", "%s is active and %s" % (ident, until))]


def rejected_finding(evidence: str, stage: str) -> Finding:
    return Finding(
        stage, MUST_DO_NOW, "Cloudflare does not accept the API token", evidence,
        "Check the vaulted token (no quotes or spaces), or create a new one (My Profile > API Tokens). "
        "An account-owned token needs the check's account_id.",
    )


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")
