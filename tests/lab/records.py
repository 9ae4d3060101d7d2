# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloudflare's rules for DNS records: how a request body becomes a stored record, and what is refused.

A record is stored exactly as the API returns it (``id``, ``name`` as a lowercase FQDN, ``type``,
``content``, ``proxiable``, ``proxied``, ``ttl``, ``settings``, ``meta``, ``comment``, ``tags``,
``created_on``, ``modified_on``, plus ``priority`` for MX/SRV and ``data`` for SRV/CAA).

What Cloudflare enforces and the lab copies:
- content that fits the type (IPv4 for A, IPv6 for AAAA, a host name for CNAME/MX/NS, SRV/CAA built from ``data``);
- TTL 1 (automatic) or 60..86400 seconds (30..86400 on Enterprise zones);
- only A, AAAA and CNAME can be proxied, and a proxied record always has TTL 1;
- no CNAME beside any other record of the same name (RFC 1034 section 3.6.2): adding a CNAME there
  is 81053, adding anything beside a CNAME is 81054;
- no two records with the same type, name and content (81058).
Unlike Cloudflare, the lab lets proxied records point at loopback and private addresses:
in the lab every origin lives on 127.0.0.1.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import uuid
from datetime import datetime, timezone
from typing import Any

from tests.lab import errors
from tests.lab.errors import ApiError

PROXIABLE_TYPES = frozenset(("A", "AAAA", "CNAME"))
KNOWN_TYPES = frozenset((
    "A", "AAAA", "CAA", "CERT", "CNAME", "DNSKEY", "DS", "HTTPS", "LOC", "MX", "NAPTR", "NS",
    "OPENPGPKEY", "PTR", "SMIMEA", "SRV", "SSHFP", "SVCB", "TLSA", "TXT", "URI",
))
HOSTNAME_TYPES = frozenset(("CNAME", "MX", "NS", "PTR"))
AUTO_TTL = 1
MAX_TTL = 86400
# developers.cloudflare.com/dns/manage-dns-records/how-to/batch-record-changes/ ("Availability and limits").
BATCH_LIMITS = {"free": 200, "pro": 3500, "business": 3500, "enterprise": 3500}
CAA_TAGS = frozenset(("issue", "issuewild", "iodef", "issuemail", "issuevmc"))

_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    return uuid.uuid4().hex


def fqdn(name: str, zone_name: str) -> str:
    """Cloudflare's reading of a record name: ``@`` is the apex, a name outside the zone gets the zone appended."""
    raw = name.strip().rstrip(".").lower()
    if raw in ("", "@"):
        return zone_name
    if raw == zone_name or raw.endswith("." + zone_name):
        return raw
    return raw + "." + zone_name


def valid_hostname(name: str, wildcard: bool = False) -> bool:
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if wildcard and labels[0] == "*":
        labels = labels[1:]
    return bool(labels) and all(_LABEL.match(label) for label in labels)


def _integer(value: Any, low: int, high: int) -> int | None:
    """``value`` as an int within [low, high], or None (JSON numbers may arrive as floats such as 10.0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        return None
    number = int(value)
    return number if low <= number <= high else None


def _hostname_content(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    host = value.strip().rstrip(".").lower()
    return host if valid_hostname(host, wildcard=False) else None


class RecordSet:
    """The records of one zone, changed one Cloudflare-validated write at a time.

    Works on the dict it is given (record id -> record); the caller decides whether the changes
    are kept (see ``LabState.edit_records``).
    """

    def __init__(self, zone: dict[str, Any], records: dict[str, dict[str, Any]]):
        self.zone = zone
        self.records = records
        self._by_name: dict[str, set[str]] = {}
        for record in records.values():
            self._by_name.setdefault(record["name"], set()).add(record["id"])

    def __iter__(self):
        return iter(self.records.values())

    def __len__(self) -> int:
        return len(self.records)

    def get(self, record_id: str) -> dict[str, Any]:
        try:
            return self.records[record_id]
        except KeyError:
            raise ApiError(404, errors.RECORD_NOT_FOUND, "Record does not exist.") from None

    def create(self, body: Any, seed: bool = False) -> dict[str, Any]:
        """POST: a new record. ``seed`` keeps ``id``/``created_on``/``modified_on`` from the body (lab seeding only)."""
        record = self._build(body)
        if seed and isinstance(body, dict):
            for key in ("id", "created_on", "modified_on"):
                if isinstance(body.get(key), str) and body[key]:
                    record[key] = body[key]
            if record["id"] in self.records:
                raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.", pointer="/id")
        self._check_conflicts(record)
        self._store(record)
        return record

    def replace(self, record_id: str, body: Any) -> dict[str, Any]:
        """PUT: every field from the body, defaults for the fields it leaves out."""
        previous = self.get(record_id)
        record = self._build(body, previous)
        self._check_conflicts(record)
        self._store(record)
        return record

    def patch(self, record_id: str, body: Any) -> dict[str, Any]:
        """PATCH: the fields the body names change, the others stay."""
        previous = self.get(record_id)
        if not isinstance(body, dict):
            raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.")
        merged: dict[str, Any] = {key: copy.deepcopy(previous[key]) for key in previous if key in _WRITABLE}
        if previous["type"] in ("SRV", "CAA"):
            merged.pop("content", None)
        for key, value in body.items():
            if key == "data" and isinstance(value, dict) and isinstance(merged.get("data"), dict):
                merged["data"] = dict(merged["data"], **value)
            elif key != "id":
                merged[key] = value
        record = self._build(merged, previous)
        self._check_conflicts(record)
        self._store(record)
        return record

    def delete(self, record_id: str) -> dict[str, Any]:
        record = self.get(record_id)
        del self.records[record_id]
        self._by_name[record["name"]].discard(record_id)
        return record

    def _store(self, record: dict[str, Any]) -> None:
        old = self.records.get(record["id"])
        if old is not None:
            self._by_name[old["name"]].discard(old["id"])
        self.records[record["id"]] = record
        self._by_name.setdefault(record["name"], set()).add(record["id"])

    def _same_name(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.records[rid] for rid in self._by_name.get(record["name"], ()) if rid != record["id"]]

    def _check_conflicts(self, record: dict[str, Any]) -> None:
        neighbours = self._same_name(record)
        if record["type"] == "CNAME" and neighbours:
            raise ApiError(400, errors.CNAME_TARGET_EXISTS, "An A, AAAA, or CNAME record with that host already exists.")
        if any(other["type"] == "CNAME" for other in neighbours):
            raise ApiError(400, errors.CNAME_EXISTS, "A CNAME record with that host already exists.")
        for other in neighbours:
            if other["type"] == record["type"] and _same_content(other, record):
                raise ApiError(400, errors.IDENTICAL_RECORD, "An identical record already exists.")

    def _build(self, body: Any, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.")
        record_type = body.get("type")
        if not isinstance(record_type, str) or record_type.upper() not in KNOWN_TYPES:
            raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.", pointer="/type")
        record_type = record_type.upper()
        name = body.get("name")
        if not isinstance(name, str):
            raise errors.validation_error(errors.INVALID_NAME, "DNS name is invalid.")
        name = fqdn(name, self.zone["name"])
        if not valid_hostname(name, wildcard=True):
            raise errors.validation_error(errors.INVALID_NAME, "DNS name is invalid.")

        record: dict[str, Any] = {"id": previous["id"] if previous else new_id(), "name": name, "type": record_type}
        record.update(_content_fields(record_type, name, body))

        record["proxiable"] = record_type in PROXIABLE_TYPES
        proxied = body.get("proxied", False)
        if not isinstance(proxied, bool):
            raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.", pointer="/proxied")
        if proxied and not record["proxiable"]:
            raise ApiError(400, errors.NOT_PROXIABLE, "This DNS record cannot be proxied.")
        record["proxied"] = proxied
        record["ttl"] = AUTO_TTL if proxied else self._ttl(body.get("ttl", AUTO_TTL))

        comment = body.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.", pointer="/comment")
        record["comment"] = comment
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.", pointer="/tags")
        record["tags"] = list(tags)
        settings = body.get("settings", {})
        record["settings"] = dict(settings) if isinstance(settings, dict) else {}
        record["meta"] = {"auto_added": False, "source": "primary"}
        stamp = now()
        record["created_on"] = previous["created_on"] if previous else stamp
        record["modified_on"] = stamp
        return record

    def _ttl(self, value: Any) -> int:
        minimum = 30 if self.zone.get("plan") == "enterprise" else 60
        ttl = _integer(value, 1, MAX_TTL)
        if ttl is None or (ttl != AUTO_TTL and ttl < minimum):
            raise errors.validation_error(errors.INVALID_TTL, "TTL must be between %d and %d seconds, or 1 for Automatic." % (minimum, MAX_TTL))
        return ttl


_WRITABLE = ("name", "type", "content", "ttl", "proxied", "comment", "tags", "settings", "priority", "data")


def _same_content(one: dict[str, Any], other: dict[str, Any]) -> bool:
    return one.get("content") == other.get("content") and one.get("priority") == other.get("priority")


def _content_fields(record_type: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``content`` (and ``priority``/``data``) for one record type, checked the way Cloudflare checks them."""
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        raise ApiError(400, errors.INVALID_BODY, "Request body is invalid.", pointer="/content")
    if record_type == "A":
        try:
            return {"content": str(ipaddress.IPv4Address(content if isinstance(content, str) else ""))}
        except ValueError:
            raise ApiError(400, errors.INVALID_A_CONTENT, "Content for A record must be a valid IPv4 address.") from None
    if record_type == "AAAA":
        try:
            return {"content": ipaddress.IPv6Address(content if isinstance(content, str) else "").compressed}
        except ValueError:
            raise ApiError(400, errors.INVALID_AAAA_CONTENT, "Content for AAAA record must be a valid IPv6 address.") from None
    if record_type == "CNAME":
        # Code 9007 by analogy with 9005/9006 (A/AAAA); no public trace of Cloudflare's own code for it.
        host = _hostname_content(content)
        if host is None or host == name:
            raise ApiError(400, errors.INVALID_CNAME_CONTENT, "Content for CNAME record is invalid.")
        return {"content": host}
    if record_type == "MX":
        host = _hostname_content(content)
        if host is None:
            raise ApiError(400, errors.INVALID_MX_CONTENT, "Content for MX record must be a hostname.")
        priority = _integer(body.get("priority"), 0, 65535)
        if priority is None:
            raise errors.validation_error(errors.DNS_VALIDATION, "MX records need a priority between 0 and 65535.")
        return {"content": host, "priority": priority}
    if record_type in ("NS", "PTR"):
        host = _hostname_content(content)
        if host is None:
            raise errors.validation_error(errors.DNS_VALIDATION, "Content for %s record must be a hostname." % record_type)
        return {"content": host}
    if record_type == "TXT":
        if not isinstance(content, str) or not content:
            raise errors.validation_error(errors.DNS_VALIDATION, "Content for TXT record is invalid.")
        return {"content": content}
    if record_type == "SRV":
        return _srv(body.get("data"))
    if record_type == "CAA":
        return _caa(body.get("data"))
    fields: dict[str, Any] = {"content": content if isinstance(content, str) else ""}
    if isinstance(body.get("data"), dict):
        fields["data"] = dict(body["data"])
    if "priority" in body:
        fields["priority"] = body["priority"]
    return fields


def _srv(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise errors.validation_error(errors.DNS_VALIDATION, "SRV records need data with priority, weight, port and target.")
    priority = _integer(data.get("priority"), 0, 65535)
    weight = _integer(data.get("weight"), 0, 65535)
    port = _integer(data.get("port"), 0, 65535)
    target = _hostname_content(data.get("target"))
    if data.get("target") == ".":
        target = "."
    if None in (priority, weight, port, target):
        raise errors.validation_error(errors.DNS_VALIDATION, "SRV records need data with priority, weight, port and target.")
    clean = {"priority": priority, "weight": weight, "port": port, "target": target}
    return {"content": "%d %d %s" % (weight, port, target), "priority": priority, "data": clean}


def _caa(data: Any) -> dict[str, Any]:
    flags = _integer(data.get("flags", 0), 0, 255) if isinstance(data, dict) else None
    tag = data.get("tag") if isinstance(data, dict) else None
    value = data.get("value") if isinstance(data, dict) else None
    if flags is None or tag not in CAA_TAGS or not isinstance(value, str):
        raise errors.validation_error(errors.DNS_VALIDATION, "CAA records need data with flags, tag (%s) and value." % ", ".join(sorted(CAA_TAGS)))
    return {"content": '%d %s "%s"' % (flags, tag, value), "data": {"flags": flags, "tag": tag, "value": value}}
