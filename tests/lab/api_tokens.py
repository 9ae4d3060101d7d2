# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API tokens: ``GET /user/tokens/verify`` and ``GET /user/tokens/{token_id}``.

Verify answers any active token with its ``id`` and ``status`` (and ``expires_on``/``not_before``
when the lab token has them) and the message 10000 "This API Token is valid and active", as
Cloudflare does (github.com/putyourlightson/craft-cloudflare/issues/88 quotes a live answer). A
token that is not active never reaches the handler: the pipeline answers 401 (auth.py).

Token details need ``api_tokens:read`` (Cloudflare's user permission "API Tokens Read"), and show
the lab token as Cloudflare shows a token: ``policies`` of permission groups and resources.
The lab's ``<resource>:<level>`` permissions become groups named after Cloudflare's ("DNS
Write", "Zone Read"; developers.cloudflare.com, API token permissions), in one policy per scope:

- zone-level (``zone``, ``dns_records``, ``zone_settings``, ...): ``com.cloudflare.api.account.zone.<zone id>``
  for each of the token's zones, or ``com.cloudflare.api.account.zone.*`` for ``zones: ["*"]``;
- user-level (``api_tokens``, ``memberships``, ``user_details``): ``com.cloudflare.api.user.<lab user id>``;
- any other (account-level: ``workers_scripts``, ``account_settings``, ...): ``com.cloudflare.api.account.<lab account id>``.

The lab's choices, where no public trace tells: permission group ids are the first 32 hex digits of
the SHA-256 of the group name; policy ids likewise from the token id and the scope; every lab token
was issued and modified at LAB_EPOCH; its name is "lab token <first 8 of its id>"; an unknown
token id answers 404 with code 1000 "Invalid API Token".
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests.lab.api_zones import LAB_ACCOUNT
from tests.lab.errors import ApiError, envelope
from tests.lab.routing import Context, Reply, Route
from tests.lab.state import zone_id_for

LAB_USER_ID = "1ab0000000000000000000000000005e"
LAB_EPOCH = "2024-01-01T00:00:00Z"
VALID_MESSAGE = {"code": 10000, "message": "This API Token is valid and active"}
INVALID_TOKEN = 1000
ZONE_RESOURCES = {"zone": "Zone", "dns_records": "DNS", "zone_settings": "Zone Settings", "ssl_and_certificates": "SSL and Certificates",
                  "zone_waf": "Zone WAF", "cache_settings": "Cache Settings", "dynamic_url_redirects": "Dynamic URL Redirects"}
USER_RESOURCES = {"api_tokens": "API Tokens", "memberships": "Memberships", "user_details": "User Details"}


def _hex_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def group_name(permission: str) -> str:
    resource, _colon, level = permission.partition(":")
    stem = ZONE_RESOURCES.get(resource) or USER_RESOURCES.get(resource) or resource.replace("_", " ").title()
    return "%s %s" % (stem, "Read" if level == "read" else "Write")


def policies(token: dict[str, Any]) -> list[dict[str, Any]]:
    by_scope: dict[str, list[str]] = {"zone": [], "user": [], "account": []}
    for permission in token["permissions"]:
        resource = permission.partition(":")[0]
        by_scope["zone" if resource in ZONE_RESOURCES else "user" if resource in USER_RESOURCES else "account"].append(permission)
    if "*" in token["zones"]:
        zone_resources = {"com.cloudflare.api.account.zone.*": "*"}
    else:
        zone_resources = {"com.cloudflare.api.account.zone.%s" % zone_id_for(name): "*" for name in token["zones"]}
    resources = {"zone": zone_resources, "user": {"com.cloudflare.api.user.%s" % LAB_USER_ID: "*"},
                 "account": {"com.cloudflare.api.account.%s" % LAB_ACCOUNT["id"]: "*"}}
    result = []
    for scope, permissions in by_scope.items():
        if not permissions:
            continue
        groups = [{"id": _hex_id(group_name(p)), "name": group_name(p)} for p in sorted(permissions)]
        result.append({"id": _hex_id(token["id"] + ":" + scope), "effect": "allow", "permission_groups": groups, "resources": resources[scope]})
    return result


def verify_token(ctx: Context) -> Reply:
    result = {"id": ctx.token["id"], "status": ctx.token["status"]}
    for key in ("expires_on", "not_before"):
        if ctx.token.get(key):
            result[key] = ctx.token[key]
    return Reply(envelope(result, messages=[dict(VALID_MESSAGE)]))


def token_details(ctx: Context) -> Reply:
    with ctx.state.lock:
        token = next((dict(t) for t in ctx.state.tokens if t["id"] == ctx.params["token_id"]), None)
    if token is None:
        raise ApiError(404, INVALID_TOKEN, "Invalid API Token")
    result = {"id": token["id"], "name": "lab token %s" % token["id"][:8], "status": token["status"], "issued_on": LAB_EPOCH,
              "modified_on": LAB_EPOCH, "policies": policies(token)}
    for key in ("expires_on", "not_before"):
        if token.get(key):
            result[key] = token[key]
    return Reply(envelope(result))


ROUTES = [
    # Any active token may verify itself: no permission.
    Route("GET", "/user/tokens/verify", verify_token, ""),
    Route("GET", "/user/tokens/{token_id}", token_details, "api_tokens:read"),
]
