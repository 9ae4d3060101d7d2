# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DNS records: list (filters, order, pagination), create, get, PUT, PATCH, DELETE and batch.

The record rules themselves (what is valid, what conflicts) live in records.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tests.lab import errors, records
from tests.lab.errors import ApiError, envelope
from tests.lab.routing import Context, Reply, Route, paginate

# dns-records_per_page in the OpenAPI document: default 100, maximum 5,000,000 (also what
# developers.cloudflare.com documents for "List DNS Records"); the schema check enforces the range.
DEFAULT_PER_PAGE = 100
ORDER_FIELDS = ("type", "name", "content", "ttl", "proxied")
BATCH_KEYS = ("deletes", "patches", "puts", "posts")

Check = Callable[[dict[str, Any]], bool]


def _text_checks(ctx: Context, field: str, getter: Callable[[dict[str, Any]], str | None]) -> list[Check]:
    """``field``, ``field.exact``, ``.contains``, ``.startswith``, ``.endswith`` (case-insensitive) and ``.present``/``.absent``."""
    checks: list[Check] = []
    for suffix, test in _TEXT_TESTS.items():
        value = ctx.arg(field + suffix)
        if value is not None:
            checks.append(lambda record, value=value, test=test: test((getter(record) or "").lower(), value.lower(), getter(record)))
    return checks


_TEXT_TESTS: dict[str, Callable[[str, str, Any], bool]] = {
    "": lambda have, want, raw: raw is not None and have == want,
    ".exact": lambda have, want, raw: raw is not None and have == want,
    ".contains": lambda have, want, raw: raw is not None and want in have,
    ".startswith": lambda have, want, raw: raw is not None and have.startswith(want),
    ".endswith": lambda have, want, raw: raw is not None and have.endswith(want),
    ".present": lambda have, want, raw: bool(raw),
    ".absent": lambda have, want, raw: not raw,
}


def _tag_checks(ctx: Context) -> list[Check]:
    checks: list[Check] = []

    def tags(record: dict[str, Any]) -> dict[str, str]:
        pairs = (tag.partition(":") for tag in record.get("tags") or [])
        return {name.lower(): value.lower() for name, _sep, value in pairs}

    def pair(condition: str) -> tuple[str, str]:
        name, _sep, value = condition.partition(":")
        return name.lower(), value.lower()

    for raw in ctx.query.get("tag", []):
        name, value = pair(raw)
        if ":" in raw:
            checks.append(lambda record, name=name, value=value: tags(record).get(name) == value)
        else:
            checks.append(lambda record, name=name: name in tags(record))
    for raw in ctx.query.get("tag.present", []):
        checks.append(lambda record, name=raw: name.lower() in tags(record))
    for raw in ctx.query.get("tag.absent", []):
        checks.append(lambda record, name=raw: name.lower() not in tags(record))
    for suffix, test in ((".exact", str.__eq__), (".contains", lambda have, want: want in have),
                         (".startswith", str.startswith), (".endswith", str.endswith)):
        for raw in ctx.query.get("tag" + suffix, []):
            name, value = pair(raw)
            checks.append(lambda record, name=name, value=value, test=test: name in tags(record) and test(tags(record)[name], value))
    return checks


def _filtered(ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks = _text_checks(ctx, "name", lambda record: record["name"])
    checks += _text_checks(ctx, "content", lambda record: record.get("content"))
    checks += _text_checks(ctx, "comment", lambda record: record.get("comment"))
    record_type = ctx.arg("type")
    if record_type is not None:
        checks.append(lambda record: record["type"] == record_type.upper())
    proxied = ctx.arg("proxied")
    if proxied is not None:
        checks.append(lambda record: record["proxied"] == (proxied == "true"))
    tag_checks = _tag_checks(ctx)
    if tag_checks:
        tag_any = ctx.arg("tag_match", "all") == "any"
        checks.append(lambda record: (any if tag_any else all)(check(record) for check in tag_checks))
    combine = any if ctx.arg("match", "all") == "any" and checks else all
    result = [record for record in items if combine(check(record) for check in checks)]
    search = ctx.arg("search")
    if search:
        needle = search.lower()
        result = [record for record in result if any(needle in (record.get(key) or "").lower() for key in ("name", "content", "comment"))]
    return result


def list_records(ctx: Context) -> Reply:
    items = _filtered(ctx, ctx.state.list_records(ctx.zone["id"]))
    order = ctx.arg("order", "type")
    order = order if order in ORDER_FIELDS else "type"
    items.sort(key=lambda record: (_sortable(record[order]), record["name"], record["type"], record["content"], record["id"]),
               reverse=ctx.arg("direction") == "desc")
    page, info = paginate(ctx, items, DEFAULT_PER_PAGE)
    return Reply(envelope(page, result_info=info))


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def get_record(ctx: Context) -> Reply:
    for record in ctx.state.list_records(ctx.zone["id"]):
        if record["id"] == ctx.params["dns_record_id"]:
            return Reply(envelope(record))
    raise ApiError(404, errors.RECORD_NOT_FOUND, "Record does not exist.")


def create_record(ctx: Context) -> Reply:
    with ctx.state.edit_records(ctx.zone["id"], commit=not ctx.dry_run) as zone_records:
        record = zone_records.create(ctx.body)
    return Reply(envelope(copy.deepcopy(record)))


def replace_record(ctx: Context) -> Reply:
    with ctx.state.edit_records(ctx.zone["id"], commit=not ctx.dry_run) as zone_records:
        record = zone_records.replace(ctx.params["dns_record_id"], ctx.body)
    return Reply(envelope(copy.deepcopy(record)))


def patch_record(ctx: Context) -> Reply:
    with ctx.state.edit_records(ctx.zone["id"], commit=not ctx.dry_run) as zone_records:
        record = zone_records.patch(ctx.params["dns_record_id"], ctx.body)
    return Reply(envelope(copy.deepcopy(record)))


def delete_record(ctx: Context) -> Reply:
    with ctx.state.edit_records(ctx.zone["id"], commit=not ctx.dry_run) as zone_records:
        record = zone_records.delete(ctx.params["dns_record_id"])
    return Reply(envelope({"id": record["id"]}))


def batch(ctx: Context) -> Reply:
    """Deletes, then patches, then puts, then posts, in one transaction: the first error undoes everything.

    The error answered is the first one met, with ``source.pointer`` naming the failing entry
    (``/posts/3``), as the batch documentation describes ("the API returns the first error it encountered").
    """
    body = ctx.body if isinstance(ctx.body, dict) else {}
    operations = {key: body.get(key) or [] for key in BATCH_KEYS}
    if not all(isinstance(entries, list) for entries in operations.values()):
        raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.")
    size = sum(len(entries) for entries in operations.values())
    limit = records.BATCH_LIMITS[ctx.zone["plan"]]
    if size > limit:
        # No public trace of the code Cloudflare uses here; 1004 (DNS validation) is the closest documented one.
        message = "A batch can change at most %d records on a %s zone; this one has %d." % (limit, ctx.zone["plan"], size)
        raise errors.validation_error(errors.DNS_VALIDATION, message)
    result: dict[str, list[dict[str, Any]]] = {key: [] for key in BATCH_KEYS}
    with ctx.state.edit_records(ctx.zone["id"], commit=not ctx.dry_run) as zone_records:
        for key in BATCH_KEYS:
            for index, entry in enumerate(operations[key]):
                try:
                    result[key].append(copy.deepcopy(_apply(zone_records, key, entry)))
                except ApiError as exc:
                    raise exc.at("/%s/%d" % (key, index)) from None
    return Reply(envelope(result))


def _apply(zone_records: records.RecordSet, key: str, entry: Any) -> dict[str, Any]:
    record_id = entry.get("id") if isinstance(entry, dict) else None
    if key == "posts":
        return zone_records.create(entry)
    if not isinstance(record_id, str):
        raise ApiError(404, errors.RECORD_NOT_FOUND, "Record does not exist.")
    if key == "deletes":
        return zone_records.delete(record_id)
    if key == "patches":
        return zone_records.patch(record_id, entry)
    return zone_records.replace(record_id, entry)


ROUTES = [
    Route("GET", "/zones/{zone_id}/dns_records", list_records, "dns_records:read"),
    Route("POST", "/zones/{zone_id}/dns_records", create_record, "dns_records:edit"),
    Route("POST", "/zones/{zone_id}/dns_records/batch", batch, "dns_records:edit"),
    Route("GET", "/zones/{zone_id}/dns_records/{dns_record_id}", get_record, "dns_records:read"),
    Route("PUT", "/zones/{zone_id}/dns_records/{dns_record_id}", replace_record, "dns_records:edit"),
    Route("PATCH", "/zones/{zone_id}/dns_records/{dns_record_id}", patch_record, "dns_records:edit"),
    Route("DELETE", "/zones/{zone_id}/dns_records/{dns_record_id}", delete_record, "dns_records:edit"),
]
