# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zone settings: ``GET|PATCH /zones/{zone_id}/settings`` (all, bulk edit) and ``GET|PATCH .../settings/{setting_id}``.

A bulk edit (``{"items": [{"id", "value"}, ...]}``) is all or nothing: the first unknown id,
wrong value or setting the plan does not allow answers its error and nothing changes. It answers
the edited settings, in the order given. What each setting accepts lives in zone_settings.py.
"""

from __future__ import annotations

from typing import Any

from tests.lab import errors, records, zone_settings
from tests.lab.errors import ApiError, envelope
from tests.lab.routing import Context, Reply, Route


def list_settings(ctx: Context) -> Reply:
    with ctx.state.lock:
        return Reply(envelope(zone_settings.all_current(ctx.zone)))


def get_setting(ctx: Context) -> Reply:
    with ctx.state.lock:
        return Reply(envelope(zone_settings.current(ctx.zone, ctx.params["setting_id"])))


def edit_setting(ctx: Context) -> Reply:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if "value" not in body:
        raise ApiError(400, errors.INVALID_SETTING_VALUE, "Invalid value for zone setting %s" % ctx.params["setting_id"])
    edited = _apply(ctx, [(ctx.params["setting_id"], body["value"])])
    return Reply(envelope(edited[0]))


def edit_settings(ctx: Context) -> Reply:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise ApiError(400, errors.MISSING_ITEMS, "Missing 'items'")
    changes = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or "value" not in item:
            raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.", pointer="/items/%d" % index)
        changes.append((item["id"], item["value"]))
    return Reply(envelope(_apply(ctx, changes)))


def _apply(ctx: Context, changes: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Check every change, then (outside a dry run) store them all; the settings as answered after the edit."""
    with ctx.state.lock:
        checked = [(setting_id, zone_settings.checked_value(ctx.zone, setting_id, value)) for setting_id, value in changes]
        if not ctx.dry_run:
            ctx.state.edit_settings(ctx.zone["id"], checked, records.now())
        return [zone_settings.current(ctx.zone, setting_id) for setting_id, _value in checked]


ROUTES = [
    Route("GET", "/zones/{zone_id}/settings", list_settings, "zone_settings:read"),
    Route("PATCH", "/zones/{zone_id}/settings", edit_settings, "zone_settings:edit"),
    Route("GET", "/zones/{zone_id}/settings/{setting_id}", get_setting, "zone_settings:read"),
    Route("PATCH", "/zones/{zone_id}/settings/{setting_id}", edit_setting, "zone_settings:edit"),
]
