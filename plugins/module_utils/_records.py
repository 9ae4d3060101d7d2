# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloudflare DNS records as sets: normalise, validate, compare, plan and batch.

Pure Python, no I/O. The flow is::

    entries = parse_entries(module.params["records"])      # input checks, no zone needed
    desired = bind(entries, zone_name)                     # names made absolute, set checks
    plan = make_plan(desired, listed_records, prune=..., ...)   # creates, updates, deletes
    for batch in plan.batches(batch_limit(zone_plan)):     # one POST .../dns_records/batch each
        ...

A record set is every record of one (name, type): several TXT at the apex, several MX. The
records the user lists for a set are the whole set: values the zone has beyond them are
updated into the missing ones or deleted.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from dataclasses import dataclass, field, replace

SUPPORTED_TYPES = ("A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "SRV", "TXT")
PROXIABLE_TYPES = ("A", "AAAA", "CNAME")
HOSTNAME_TYPES = ("CNAME", "NS", "PTR")
TTL_AUTO = 1
TTL_MIN = 60
TTL_MAX = 86400
TXT_STRING_MAX = 255
DEFAULT_PRUNE_THRESHOLD = 30.0
# Below this many records a zone is too small for a percentage to mean anything.
PRUNE_THRESHOLD_MIN_ZONE = 10

# Changes per POST /zones/{zone_id}/dns_records/batch, by zone plan, as documented at
# https://developers.cloudflare.com/dns/manage-dns-records/how-to/batch-record-changes/
# ("Availability and limits": Free 200; Pro, Business and Enterprise 3,500). The zone object
# exposes its plan but not this limit, so unknown plans get the smallest one.
BATCH_LIMITS = {"free": 200, "pro": 3500, "business": 3500, "enterprise": 3500}
DEFAULT_BATCH_LIMIT = 200

_LABEL_RE = re.compile(r"^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$")
_CAA_TAG_RE = re.compile(r"^[a-z0-9]+$")


class RecordError(ValueError):
    """Input that cannot be planned, or a plan that must not run. Raised before any write.

    ``plan`` is set when the plan was computed but refused (the prune threshold), so the
    caller can still show what would have happened.
    """

    def __init__(self, message: str, plan: Plan | None = None) -> None:
        super().__init__(message)
        self.plan = plan


def batch_limit(plan: str | None) -> int:
    """How many changes one batch call may carry for a zone on ``plan`` (free, pro, ...)."""
    return BATCH_LIMITS.get((plan or "").lower(), DEFAULT_BATCH_LIMIT)


# --- names ---------------------------------------------------------------------------------


def _ascii_label(label: str) -> str:
    if label.isascii():
        return label
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("label %r is not a valid internationalised name" % label) from None


def needs_zone_name(name: str) -> bool:
    """Whether ``name`` can only be made absolute knowing the zone (it is ``@`` or relative)."""
    text = (name or "").strip()
    return text in ("", "@", "@.") or not text.endswith(".")


def normalize_name(name: str, zone: str | None) -> str:
    """``@``, a name relative to ``zone`` or an FQDN -> the lowercase FQDN without the trailing dot.

    A name ending with a dot is absolute and must lie in the zone; any other name is taken as
    absolute if it ends with the zone's name, else as relative to the zone. Without ``zone``
    (a zone known only by its id) only absolute names can be read, and are not checked.
    """
    text = (name or "").strip()
    if zone is None:
        if needs_zone_name(text):
            raise RecordError("name %r needs the zone's name to be read" % name)
        zone = ""
    zone = zone.lower().rstrip(".")
    if text in ("", "@", "@."):
        return zone
    absolute = text.endswith(".")
    labels = text.rstrip(".").split(".")
    try:
        fqdn = ".".join(_ascii_label(label).lower() for label in labels)
    except ValueError as exc:
        raise RecordError("name %r: %s" % (name, exc)) from None
    for index, label in enumerate(fqdn.split(".")):
        if not _LABEL_RE.match(label) or (label == "*" and index):
            raise RecordError("name %r is not a valid DNS name (label %r)" % (name, label))
    if zone and fqdn != zone and not fqdn.endswith("." + zone):
        if absolute:
            raise RecordError("name %r is not in the zone %s" % (name, zone))
        fqdn = fqdn + "." + zone
    if len(fqdn) > 253:
        raise RecordError("name %r is longer than 253 characters once made absolute" % name)
    return fqdn


def relative_name(fqdn: str, zone: str) -> str:
    """The name as written relative to ``zone``: ``@`` for the apex."""
    if fqdn == zone:
        return "@"
    return fqdn[: -len(zone) - 1] if fqdn.endswith("." + zone) else fqdn


# --- TXT -----------------------------------------------------------------------------------


def txt_strings(content: str) -> list[str]:
    """The character-strings of TXT ``content`` as Cloudflare shows it (RFC 1035 section 5.1).

    ``"v=spf1" " -all"`` is two strings; unquoted content (older records) is one string, spaces
    included, so ``v=spf1 -all`` and ``"v=spf1 -all"`` have the same value.
    """
    text = content.strip()
    if not text.startswith('"'):
        return [text]
    strings: list[str] = []
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char.isspace():
            i += 1
        elif char == '"':
            i += 1
            chunk: list[str] = []
            while i < end and text[i] != '"':
                if text[i] == "\\" and i + 1 < end:
                    digits = text[i + 1:i + 4]
                    if len(digits) == 3 and digits.isdigit():
                        chunk.append(chr(int(digits)))
                        i += 4
                    else:
                        chunk.append(text[i + 1])
                        i += 2
                else:
                    chunk.append(text[i])
                    i += 1
            if i >= end:  # unterminated quote: not zone-file syntax, keep it as written
                return [text]
            i += 1
            strings.append("".join(chunk))
        else:
            start = i
            while i < end and not text[i].isspace():
                i += 1
            strings.append(text[start:i])
    return strings


def txt_value(content: str) -> str:
    """The value a TXT record carries: its character-strings joined (RFC 7208 section 3.3)."""
    return "".join(txt_strings(content))


def txt_content(value: str) -> str:
    """``value`` as Cloudflare expects TXT content: quoted strings of at most 255 bytes each."""
    chunks: list[str] = []
    current = ""
    size = 0
    for char in value:
        width = len(char.encode("utf-8"))
        if size + width > TXT_STRING_MAX:
            chunks.append(current)
            current, size = "", 0
        current += char
        size += width
    chunks.append(current)
    return " ".join('"%s"' % chunk.replace("\\", "\\\\").replace('"', '\\"') for chunk in chunks)


# --- values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """The data of one record, in the form two records compare by.

    ``key`` decides equality; ``text`` is what people read (plan, diff, results); ``fields``
    is what the API is sent (``content``, ``priority`` or ``data``).
    """

    key: tuple
    text: str
    fields: dict = field(compare=False, hash=False)


def _int(value, what: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ValueError("%s must be a number from %d to %d, not %r" % (what, low, high, value))
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError("%s must be a number from %d to %d, not %r" % (what, low, high, value)) from None
    if not low <= number <= high:
        raise ValueError("%s must be from %d to %d, not %d" % (what, low, high, number))
    return number


def _hostname(value, what: str) -> str:
    text = str(value or "").strip().lower()
    if text == ".":
        return "."
    text = text.rstrip(".")
    if not text:
        raise ValueError("%s is empty" % what)
    labels = text.split(".")
    try:
        text = ".".join(_ascii_label(label) for label in labels)
    except ValueError as exc:
        raise ValueError("%s: %s" % (what, exc)) from None
    if len(text) > 253 or not all(_LABEL_RE.match(label) and label != "*" for label in text.split(".")):
        raise ValueError("%s %r is not a valid host name" % (what, value))
    return text


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def make_value(rtype: str, content=None, priority=None, data=None) -> Value:
    """Validate and normalise one value of a record of type ``rtype``; ``ValueError`` explains a bad one.

    MX, SRV and CAA also accept their zone-file form as ``content``: ``10 mail.example.com``,
    ``10 5 5060 sip.example.com``, ``0 issue "letsencrypt.org"``.
    """
    if content is not None and not isinstance(content, str):
        content = str(content)
    if rtype in ("SRV", "CAA"):
        return _data_value(rtype, content, priority, data)
    if data:
        raise ValueError("data is only for SRV and CAA records; give content")
    if content is None or not content.strip():
        raise ValueError("content is missing")
    if rtype == "A":
        try:
            address = str(ipaddress.IPv4Address(content.strip()))
        except ValueError:
            raise ValueError("%r is not a valid IPv4 address" % content) from None
        return Value(("A", address), address, {"content": address})
    if rtype == "AAAA":
        try:
            address = ipaddress.IPv6Address(content.strip()).compressed
        except ValueError:
            raise ValueError("%r is not a valid IPv6 address" % content) from None
        return Value(("AAAA", address), address, {"content": address})
    if rtype in HOSTNAME_TYPES:
        target = _hostname(content, "%s target" % rtype)
        return Value((rtype, target), target, {"content": target})
    if rtype == "MX":
        text = content.strip()
        parts = text.split()
        if priority is None and len(parts) == 2 and parts[0].isdigit():
            priority, text = parts
        if priority is None:
            raise ValueError("MX needs a priority: set priority, or write the content as '10 mail.example.com'")
        number = _int(priority, "MX priority", 0, 65535)
        target = _hostname(text, "MX target")
        return Value(("MX", number, target), "%d %s" % (number, target), {"content": target, "priority": number})
    if rtype == "TXT":
        text = txt_value(content)
        return Value(("TXT", text), text, {"content": txt_content(text)})
    raise ValueError("type %s is not supported (supported: %s)" % (rtype, ", ".join(SUPPORTED_TYPES)))


def _data_value(rtype: str, content, priority, data) -> Value:
    if data is not None and not isinstance(data, dict):
        raise ValueError("data must be a dictionary")
    if content is not None and data:
        raise ValueError("give either content or data, not both")
    if content is not None:
        data = _parse_data_content(rtype, content, priority)
    if not data:
        raise ValueError("%s needs data (or content in zone-file form)" % rtype)
    if rtype == "SRV":
        known = ("priority", "weight", "port", "target")
        extra = sorted(set(data) - set(known) - {"name", "service", "proto"})
        if extra:
            raise ValueError("unknown SRV data keys: %s (use %s)" % (", ".join(extra), ", ".join(known)))
        srv_priority = priority if data.get("priority") is None else data["priority"]
        missing = [k for k in known if (srv_priority if k == "priority" else data.get(k)) is None]
        if missing:
            raise ValueError("SRV data needs %s" % ", ".join(missing))
        values = (
            _int(srv_priority, "SRV priority", 0, 65535),
            _int(data["weight"], "SRV weight", 0, 65535),
            _int(data["port"], "SRV port", 0, 65535),
            _hostname(data["target"], "SRV target"),
        )
        sent = dict(zip(known, values, strict=True))
        return Value(("SRV", *values), "%d %d %d %s" % values, {"data": sent})
    extra = sorted(set(data) - {"flags", "tag", "value"})
    if extra:
        raise ValueError("unknown CAA data keys: %s (use flags, tag, value)" % ", ".join(extra))
    if not data.get("tag") or data.get("value") is None:
        raise ValueError("CAA data needs tag and value")
    flags = _int(data.get("flags", 0) or 0, "CAA flags", 0, 255)
    tag = str(data["tag"]).strip().lower()
    if not _CAA_TAG_RE.match(tag):
        raise ValueError("CAA tag %r is not valid (issue, issuewild, iodef, ...)" % data["tag"])
    value = _unquote(str(data["value"]))
    text = '%d %s "%s"' % (flags, tag, value)
    return Value(("CAA", flags, tag, value), text, {"data": {"flags": flags, "tag": tag, "value": value}})


def _parse_data_content(rtype: str, content: str, priority) -> dict:
    parts = content.split(None, 2 if rtype == "CAA" else 3)
    if rtype == "SRV":
        if len(parts) == 3 and priority is not None:
            parts = [priority, *parts]
        if len(parts) != 4:
            raise ValueError("SRV content must read 'priority weight port target', not %r" % content)
        return dict(zip(("priority", "weight", "port", "target"), parts, strict=True))
    if len(parts) != 3:
        raise ValueError("CAA content must read 'flags tag \"value\"', not %r" % content)
    return {"flags": parts[0], "tag": parts[1], "value": parts[2]}


def listed_value(record: dict) -> Value:
    """The value of a record as the API lists it; never fails (unknown shapes compare as written)."""
    rtype = str(record.get("type") or "").upper()
    data = record.get("data") if rtype in ("SRV", "CAA") else None
    try:
        if data:
            return make_value(rtype, None, record.get("priority"), data)
        return make_value(rtype, record.get("content"), record.get("priority"))
    except ValueError:
        content = str(record.get("content") or "")
        key = (rtype, content, record.get("priority"), json.dumps(data, sort_keys=True) if data else None)
        return Value(key, content, {"content": content})


# --- records -------------------------------------------------------------------------------


@dataclass
class Record:
    """A record as listed, as wanted, or as it will be.

    For a wanted record, ``ttl``, ``proxied``, ``comment`` and ``tags`` are ``None`` when the
    user did not set them: they are then left as the zone has them.
    """

    name: str
    type: str
    value: Value
    ttl: int | None = None
    proxied: bool | None = None
    comment: str | None = None
    tags: tuple | None = None
    id: str | None = None
    index: int | None = None  # position in the user's list, for messages

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)

    def label(self) -> str:
        return "%s %s %s" % (self.type, self.name, self.value.text)

    def compact(self, with_id: bool = True) -> dict:
        result: dict = {"name": self.name, "type": self.type, "value": self.value.text, "ttl": self.ttl, "proxied": bool(self.proxied)}
        if self.comment:
            result["comment"] = self.comment
        if self.tags:
            result["tags"] = list(self.tags)
        if with_id and self.id:
            result["id"] = self.id
        return result


def listed_record(record: dict) -> Record:
    """A record from ``GET /zones/{zone_id}/dns_records`` (or a batch answer)."""
    tags = record.get("tags")
    return Record(
        name=str(record.get("name") or "").lower().rstrip("."),
        type=str(record.get("type") or "").upper(),
        value=listed_value(record),
        ttl=record.get("ttl"),
        proxied=bool(record.get("proxied")),
        comment=record.get("comment") or None,
        tags=tuple(sorted(tags)) if tags else None,
        id=record.get("id"),
    )


@dataclass
class Entry:
    """One item of the module's ``records`` option, checked but with its name still as written."""

    index: int
    type: str
    name: str
    state: str
    values: list[Value] | None  # None: every value of the set (state absent without content)
    ttl: int | None = None
    proxied: bool | None = None
    comment: str | None = None
    tags: tuple | None = None

    def where(self) -> str:
        return "records[%d] (%s %s)" % (self.index, self.type or "?", self.name)


def parse_entries(items: list[dict]) -> tuple[list[Entry], list[str]]:
    """Check every item of ``records`` without the zone; returns the entries and warnings.

    Raises ``RecordError`` naming the first bad item.
    """
    entries: list[Entry] = []
    warnings: list[str] = []
    for index, item in enumerate(items or []):
        if not isinstance(item, dict):
            raise RecordError("records[%d] must be a dictionary, not %r" % (index, item))
        entry, entry_warnings = _parse_entry(index, item)
        entries.append(entry)
        warnings.extend(entry_warnings)
    return entries, warnings


def _parse_entry(index: int, item: dict) -> tuple[Entry, list[str]]:
    rtype = str(item.get("type") or "").strip().upper()
    name = item.get("name")
    where = "records[%d] (%s %s)" % (index, rtype or "?", name)
    if not rtype:
        raise RecordError("%s: type is missing" % where)
    if rtype not in SUPPORTED_TYPES:
        raise RecordError("%s: unknown or unsupported type %r (supported: %s)" % (where, item.get("type"), ", ".join(SUPPORTED_TYPES)))
    if name is None or not str(name).strip():
        raise RecordError("%s: name is missing (use @ for the zone apex)" % where)
    state = item.get("state") or "present"
    if state not in ("present", "absent"):
        raise RecordError("%s: state must be present or absent, not %r" % (where, state))
    content, values, data, priority = item.get("content"), item.get("values"), item.get("data"), item.get("priority")
    if content is not None and values is not None:
        raise RecordError("%s: give content or values, not both" % where)
    if values is not None and data is not None:
        raise RecordError("%s: with values, put data inside each value" % where)
    warnings: list[str] = []
    ttl, proxied = item.get("ttl"), item.get("proxied")
    try:
        if ttl is not None:
            ttl = _int(ttl, "ttl", TTL_AUTO, TTL_MAX)
            if ttl != TTL_AUTO and ttl < TTL_MIN:
                raise ValueError("ttl must be 1 (automatic) or from %d to %d seconds, not %d" % (TTL_MIN, TTL_MAX, ttl))
        if proxied is not None and not isinstance(proxied, bool):
            raise ValueError("proxied must be true or false")
        if proxied and rtype not in PROXIABLE_TYPES:
            raise ValueError("%s records cannot be proxied (only %s can)" % (rtype, ", ".join(PROXIABLE_TYPES)))
        if priority is not None:
            priority = _int(priority, "priority", 0, 65535)
        if values is not None:
            if not isinstance(values, list) or not values:
                raise ValueError("values must be a non-empty list")
            parsed: list[Value] | None = [_item_value(rtype, value, priority) for value in values]
        elif content is not None or data is not None:
            parsed = [make_value(rtype, content, priority, data)]
        elif state == "present":
            raise ValueError("content (or values%s) is missing" % (", or data" if rtype in ("SRV", "CAA") else ""))
        else:
            parsed = None
        tags = item.get("tags")
        if tags is not None:
            if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
                raise ValueError("tags must be a list of 'name:value' strings")
            tags = tuple(sorted(tags))
        comment = item.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise ValueError("comment must be a string")
    except ValueError as exc:
        raise RecordError("%s: %s" % (where, exc)) from None
    if proxied and ttl not in (None, TTL_AUTO):
        warnings.append("%s: ttl %d is ignored because the record is proxied (Cloudflare keeps proxied records at TTL auto)" % (where, ttl))
        ttl = None
    entry = Entry(index, rtype, str(name).strip(), state, parsed, ttl, proxied, comment, tags)
    return entry, warnings


def _item_value(rtype: str, item, priority) -> Value:
    if isinstance(item, dict):
        extra = sorted(set(item) - {"content", "priority", "data"})
        if extra:
            raise ValueError("unknown keys in a value: %s (use content, priority, data)" % ", ".join(extra))
        item_priority = item.get("priority")
        return make_value(rtype, item.get("content"), priority if item_priority is None else item_priority, item.get("data"))
    return make_value(rtype, item, priority)


@dataclass
class Desired:
    """The wanted state, names made absolute: sets to have and values (or sets) to remove."""

    zone: str | None
    present: dict[tuple[str, str], list[Record]] = field(default_factory=dict)
    absent: dict[tuple[str, str], list[tuple[Entry, Value | None]]] = field(default_factory=dict)

    def names_key(self, key: tuple[str, str]) -> bool:
        return key in self.present or key in self.absent


def bind(entries: list[Entry], zone: str | None) -> Desired:
    """Make every name absolute in ``zone`` and check the wanted sets against each other.

    ``zone`` may be ``None`` when every name is absolute (see ``needs_zone_name``).
    """
    desired = Desired(zone.lower().rstrip(".") if zone else None)
    for entry in entries:
        try:
            name = normalize_name(entry.name, zone)
        except RecordError as exc:
            raise RecordError("%s: %s" % (entry.where(), exc)) from None
        key = (name, entry.type)
        if entry.state == "absent":
            removals = desired.absent.setdefault(key, [])
            if entry.values:
                removals.extend((entry, value) for value in entry.values)
            else:
                removals.append((entry, None))
            continue
        records = desired.present.setdefault(key, [])
        for value in entry.values or []:
            if entry.type == "CNAME" and value.text == name:
                raise RecordError("%s: a CNAME cannot point at its own name" % entry.where())
            twin = next((r for r in records if r.value.key == value.key), None)
            if twin is not None:
                raise RecordError("records[%s] and records[%d] both ask for %s %s %s" % (twin.index, entry.index, entry.type, name, value.text))
            records.append(Record(name, entry.type, value, entry.ttl, entry.proxied, entry.comment, entry.tags, index=entry.index))
    for key, removals in desired.absent.items():
        for entry, removal in removals:
            wanted = desired.present.get(key, [])
            clash = [r for r in wanted if removal is None or r.value.key == removal.key]
            if clash:
                raise RecordError(
                    "%s asks to remove what records[%s] asks to keep (%s)" % (entry.where(), clash[0].index, clash[0].label())
                )
    _check_cname(desired)
    return desired


def _check_cname(desired: Desired) -> None:
    by_name: dict[str, list[Record]] = {}
    for (name, _rtype), records in desired.present.items():
        by_name.setdefault(name, []).extend(records)
    for name, records in sorted(by_name.items()):
        cnames = [r for r in records if r.type == "CNAME"]
        if len(cnames) > 1:
            raise RecordError("records[%s] and records[%s]: %s can have only one CNAME" % (cnames[0].index, cnames[1].index, name))
        others = [r for r in records if r.type != "CNAME"]
        if cnames and others:
            raise RecordError(
                "records[%s]: a CNAME at %s cannot sit beside other records, and records[%s] puts a %s record there"
                % (cnames[0].index, name, others[0].index, others[0].type)
            )


# --- plan ----------------------------------------------------------------------------------


@dataclass
class Create:
    record: Record

    def describe(self) -> str:
        return "create %s" % self.record.label()

    def body(self) -> dict:
        record = self.record
        body: dict = {"type": record.type, "name": record.name, "ttl": record.ttl}
        body.update(record.value.fields)
        if record.proxied is not None:
            body["proxied"] = record.proxied
        if record.comment:
            body["comment"] = record.comment
        if record.tags is not None:
            body["tags"] = list(record.tags)
        return body


@dataclass
class Update:
    before: Record
    after: Record
    changes: dict  # the PATCH body, without the id

    def describe(self) -> str:
        if self.before.value.key != self.after.value.key:
            return "update %s %s from %s to %s" % (self.before.type, self.before.name, self.before.value.text, self.after.value.text)
        return "update %s (%s)" % (self.before.label(), ", ".join(sorted(self.changes)))

    def body(self) -> dict:
        return dict(self.changes, id=self.before.id)


@dataclass
class Delete:
    record: Record
    reason: str  # absent | not_in_set | pruned

    def describe(self) -> str:
        return "delete %s" % self.record.label()

    def body(self) -> dict:
        return {"id": self.record.id}


SECTIONS = ("deletes", "patches", "puts", "posts")


@dataclass
class Batch:
    """The changes one ``POST /zones/{zone_id}/dns_records/batch`` carries.

    Cloudflare runs a batch in one database transaction, in the order deletes, patches, puts,
    posts: if one change fails, none of the batch is applied.
    """

    deletes: list = field(default_factory=list)
    patches: list = field(default_factory=list)
    puts: list = field(default_factory=list)
    posts: list = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(getattr(self, section)) for section in SECTIONS)

    def body(self) -> dict:
        return {section: [change.body() for change in getattr(self, section)] for section in SECTIONS if getattr(self, section)}

    def record_answer(self, result: dict) -> None:
        """Give the records this batch created the ids the API answered with (same order as sent)."""
        for create, answer in zip(self.posts, (result or {}).get("posts") or [], strict=False):
            if isinstance(answer, dict) and answer.get("id"):
                create.record.id = answer["id"]

    def describe(self, section: str, index: int) -> str | None:
        """The change at ``index`` of ``section`` (as an API error points at it), if there is one."""
        changes = getattr(self, section, None) if section in SECTIONS else None
        if changes is None or not 0 <= index < len(changes):
            return None
        return changes[index].describe()


@dataclass
class Plan:
    zone: str | None
    creates: list[Create] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    before: dict[tuple[str, str], list[Record]] = field(default_factory=dict)  # changed sets, as listed
    managed: list[tuple[str, str]] = field(default_factory=list)  # the sets the list keeps
    kept: list[Record] = field(default_factory=list)  # listed records of managed sets left alone
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.creates or self.updates or self.deletes)

    def batches(self, limit: int) -> list[Batch]:
        """Every change, deletes first, in batches of at most ``limit`` changes."""
        if limit < 1:
            raise ValueError("batch limit must be positive")
        ordered = [("deletes", c) for c in self.deletes] + [("patches", c) for c in self.updates] + [("posts", c) for c in self.creates]
        batches = []
        for start in range(0, len(ordered), limit):
            batch = Batch()
            for section, change in ordered[start:start + limit]:
                getattr(batch, section).append(change)
            batches.append(batch)
        return batches

    def as_dict(self, limit: int | None = None) -> dict:
        """The plan as the module returns it: every change with names, types and values."""
        result: dict = {
            "creates": [c.record.compact() for c in self.creates],
            "updates": [
                {
                    "id": u.before.id,
                    "name": u.before.name,
                    "type": u.before.type,
                    "changes": sorted(u.changes),
                    "before": u.before.compact(with_id=False),
                    "after": u.after.compact(with_id=False),
                }
                for u in self.updates
            ],
            "deletes": [dict(d.record.compact(), reason=d.reason) for d in self.deletes],
        }
        if limit is not None:
            result["batches"] = len(self.batches(limit))
        return result

    def after(self) -> dict[tuple[str, str], list[Record]]:
        """Every changed set as it will be."""
        result: dict[tuple[str, str], list[Record]] = {key: [] for key in self.before}
        changed_ids = {u.before.id for u in self.updates} | {d.record.id for d in self.deletes}
        for key, records in self.before.items():
            result[key].extend(r for r in records if r.id not in changed_ids)
        for update in self.updates:
            result.setdefault(update.after.key, []).append(update.after)
        for create in self.creates:
            result.setdefault(create.record.key, []).append(create.record)
        return result

    def diff(self) -> dict:
        """``before``/``after`` of every changed set, keyed ``name TYPE``, values sorted."""

        def side(sets: dict) -> dict:
            result = {}
            for key, records in sorted(sets.items()):
                entries = []
                for record in records:
                    entry = record.compact(with_id=False)
                    del entry["name"], entry["type"]
                    entries.append(entry)
                result["%s %s" % key] = sorted(entries, key=lambda entry: json.dumps(entry, sort_keys=True))
            return result

        return {"before": side(self.before), "after": side(self.after())}

    def records(self) -> list[dict]:
        """The sets the list keeps, as they are once the plan ran (ids of new records once known)."""
        managed = set(self.managed)
        result = [r for r in self.kept if r.key in managed]
        result += [u.after for u in self.updates if u.after.key in managed]
        result += [c.record for c in self.creates if c.record.key in managed]
        return [r.compact() for r in sorted(result, key=lambda r: (r.name, r.type, r.value.text))]


def make_plan(
    desired: Desired,
    listed: list[dict],
    prune: bool = False,
    prune_ignore: list[str] | tuple = (),
    prune_threshold: float = DEFAULT_PRUNE_THRESHOLD,
    force: bool = False,
) -> Plan:
    """Compare the wanted sets with the zone as listed and decide every create, update and delete.

    Values already right are not touched; a value that changed becomes a PATCH of an existing
    record of the set rather than a delete and a create; only the fields the user set are compared.
    """
    zone = desired.zone
    if prune and zone is None:
        raise RecordError("prune needs the zone's name, to keep the apex NS records")
    existing: dict[tuple[str, str], list[Record]] = {}
    for item in listed:
        record = listed_record(item)
        existing.setdefault(record.key, []).append(record)
    plan = Plan(zone, managed=sorted(desired.present))

    for key in sorted(desired.present):
        _plan_set(plan, desired.present[key], existing.get(key, []))
    for key in sorted(desired.absent):
        if key in desired.present:
            continue  # the set is exact already: what it does not list goes
        removals = desired.absent[key]
        for record in sorted(existing.get(key, []), key=_order):
            if any(value is None or value.key == record.value.key for _entry, value in removals):
                plan.deletes.append(Delete(record, "absent"))
    if prune:
        patterns = [p.lower() for p in prune_ignore or ()]
        for key in sorted(existing):
            if desired.names_key(key):
                continue
            for record in sorted(existing[key], key=_order):
                if not _protected(record, zone) and not _ignored(record, zone, patterns):
                    plan.deletes.append(Delete(record, "pruned"))

    changed_keys = {d.record.key for d in plan.deletes} | {u.before.key for u in plan.updates} | {c.record.key for c in plan.creates}
    plan.before = {key: sorted(existing.get(key, []), key=_order) for key in sorted(changed_keys)}
    touched = {u.before.id for u in plan.updates} | {d.record.id for d in plan.deletes}
    for key in sorted(desired.present):
        plan.kept.extend(r for r in existing.get(key, []) if r.id not in touched)
    plan.warnings.extend(_ignored_ttl_warnings(desired, existing))

    _check_cname_conflicts(plan, existing)
    _check_threshold(plan, sum(len(records) for records in existing.values()), prune_threshold, force)
    return plan


def _order(record: Record) -> tuple:
    return (record.value.text, record.id or "")


def _plan_set(plan: Plan, wanted: list[Record], listed: list[Record]) -> None:
    spare = sorted(listed, key=_order)
    missing: list[Record] = []
    for record in sorted(wanted, key=_order):
        match = next((r for r in spare if r.value.key == record.value.key), None)
        if match is None:
            missing.append(record)
            continue
        spare.remove(match)
        _update(plan, record, match)
    for record, old in zip(missing, spare, strict=False):  # the shorter list is all paired
        _update(plan, record, old)
    for record in missing[len(spare):]:
        proxied = record.proxied
        ttl = TTL_AUTO if proxied or record.ttl is None else record.ttl
        plan.creates.append(Create(replace(record, ttl=ttl)))
    for old in spare[len(missing):]:
        plan.deletes.append(Delete(old, "not_in_set"))


def _update(plan: Plan, wanted: Record, old: Record) -> None:
    changes: dict = {}
    if wanted.value.key != old.value.key:
        changes.update(wanted.value.fields)
    proxied = old.proxied if wanted.proxied is None else wanted.proxied
    if wanted.proxied is not None and wanted.proxied != old.proxied:
        changes["proxied"] = wanted.proxied
        if wanted.proxied and old.ttl != TTL_AUTO:
            changes["ttl"] = TTL_AUTO
    # A proxied record's TTL is Cloudflare's (auto): comparing it could never settle.
    if not proxied and wanted.ttl is not None and wanted.ttl != old.ttl:
        changes["ttl"] = wanted.ttl
    if wanted.comment is not None and (wanted.comment or None) != (old.comment or None):
        changes["comment"] = wanted.comment
    if wanted.tags is not None and tuple(sorted(wanted.tags)) != tuple(sorted(old.tags or ())):
        changes["tags"] = list(wanted.tags)
    if not changes:
        return
    after = replace(
        old,
        value=wanted.value,
        proxied=proxied,
        ttl=changes.get("ttl", old.ttl),
        comment=(changes["comment"] or None) if "comment" in changes else old.comment,
        tags=(tuple(sorted(changes["tags"])) or None) if "tags" in changes else old.tags,
    )
    plan.updates.append(Update(old, after, changes))


def _ignored_ttl_warnings(desired: Desired, existing: dict) -> list[str]:
    warnings = []
    for key, records in sorted(desired.present.items()):
        listed = {r.value.key: r for r in existing.get(key, [])}
        for record in records:
            old = listed.get(record.value.key)
            if record.proxied is None and record.ttl not in (None, TTL_AUTO) and old is not None and old.proxied:
                warnings.append(
                    "records[%s]: ttl %s is ignored because %s is proxied (Cloudflare keeps proxied records at TTL auto)"
                    % (record.index, record.ttl, record.label())
                )
    return warnings


def _protected(record: Record, zone: str | None) -> bool:
    return record.type == "SOA" or (record.type == "NS" and record.name == zone)


def _ignored(record: Record, zone: str | None, patterns: list[str]) -> bool:
    relative = relative_name(record.name, zone) if zone else record.name
    rtype = record.type.lower()
    candidates = (record.name, relative, "%s:%s" % (rtype, record.name), "%s:%s" % (rtype, relative))
    return any(fnmatch.fnmatchcase(candidate, pattern) for pattern in patterns for candidate in candidates)


def _check_cname_conflicts(plan: Plan, existing: dict) -> None:
    gone = {d.record.id for d in plan.deletes}
    by_name: dict[str, list[Record]] = {}
    for records in existing.values():
        for record in records:
            if record.id not in gone:
                by_name.setdefault(record.name, []).append(record)
    for create in plan.creates:
        record = create.record
        neighbours = [r for r in by_name.get(record.name, []) if r.type != record.type]
        clash = [r for r in neighbours if record.type == "CNAME" or r.type == "CNAME"]
        if clash:
            raise RecordError(
                "records[%s]: cannot add %s: %s already has %s, which the list does not manage; "
                "a CNAME cannot sit beside other records. Remove it with state: absent, or use prune."
                % (record.index, record.label(), record.name, clash[0].label())
            )


def _check_threshold(plan: Plan, zone_size: int, threshold: float, force: bool) -> None:
    implicit = [d for d in plan.deletes if d.reason != "absent"]
    if force or zone_size < PRUNE_THRESHOLD_MIN_ZONE or not implicit:
        return
    share = 100.0 * len(implicit) / zone_size
    if share > threshold:
        names = ", ".join(d.record.label() for d in implicit[:5]) + (", ..." if len(implicit) > 5 else "")
        raise RecordError(
            "refusing to delete %d of the zone's %d records (%.0f%%, more than prune_threshold %s%%): %s. "
            "Nothing was changed. Check records and prune_ignore, or set force: true to delete them."
            % (len(implicit), zone_size, share, _percent(threshold), names),
            plan=plan,
        )


def _percent(value: float) -> str:
    return ("%f" % value).rstrip("0").rstrip(".")
