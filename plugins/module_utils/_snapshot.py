# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zone snapshots: a Cloudflare zone's edge configuration (DNS records, zone settings, the rules the
collection owns) in one versioned JSON file, and the plan that brings a zone back to it.

Export: ``build_snapshot`` from what the API answered, ``write_snapshot`` to
``<folder>/<zone>-<UTC timestamp>.json`` (atomic, mode 0600). Restore: ``read_snapshot`` checks a
file, ``plan_restore`` reuses the planners of the other Cloudflare modules (the record model with
prune, the zone settings plan, the ruleset plan) so a restore writes exactly what those modules
would. The newest snapshot of a zone is the one whose name carries the latest timestamp: file
times are never read, so copying or touching an old snapshot does not make it the newest.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ansible_collections.launchready.core.plugins.module_utils._files import fsync_dir, write_atomic
from ansible_collections.launchready.core.plugins.module_utils._records import (
    PROXIABLE_TYPES,
    SUPPORTED_TYPES,
    TTL_AUTO,
    TTL_MAX,
    TTL_MIN,
    Desired,
    Plan,
    Record,
    RecordError,
    Value,
    listed_value,
    make_plan,
    make_value,
    normalize_name,
)
from ansible_collections.launchready.core.plugins.module_utils._rulesets import PHASES, RulesError, RulesetPlan, parse_rules, plan_ruleset
from ansible_collections.launchready.core.plugins.module_utils._zone_settings import CATALOG, SettingsError, SettingsPlan, normalise_settings, plan_settings

FORMAT = "launchready.core.cloudflare_zone_snapshot"
FORMAT_VERSION = 1
SECTIONS = ("records", "settings", "rules")
RULE_PHASES = tuple(PHASES)
RULE_FIELDS = ("ref", "description", "expression", "action", "action_parameters", "enabled", "ratelimit")
RECORD_FIELDS = ("name", "type", "content", "priority", "data", "ttl", "proxied", "comment", "tags")
DATA_TYPES = ("SRV", "CAA")
_STAMP = "%Y%m%dT%H%M%S.%fZ"
_STAMP_RE = r"(\d{8}T\d{6}(?:\.\d{1,6})?Z)"


class SnapshotError(ValueError):
    """A snapshot that cannot be written, found, read or restored; raised before any change to the zone."""


# --- files ----------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def snapshot_filename(zone_name: str, created: datetime) -> str:
    """``<zone>-<UTC timestamp, microseconds>.json``: names of one zone sort in the order they were taken."""
    return "%s-%s.json" % (zone_name, created.astimezone(timezone.utc).strftime(_STAMP))


def _stamp_time(stamp: str) -> datetime:
    fmt = "%Y%m%dT%H%M%S.%fZ" if "." in stamp else "%Y%m%dT%H%M%SZ"
    return datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc)


def snapshot_files(folder: str, zone_name: str) -> list[str]:
    """The snapshot files of ``zone_name`` in ``folder``, oldest first, by the timestamp in their names."""
    pattern = re.compile(r"^%s-%s\.json$" % (re.escape(zone_name), _STAMP_RE))
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SnapshotError("cannot list the snapshot folder %s: %s" % (folder, exc.strerror or exc)) from None
    found = []
    for name in names:
        match = pattern.match(name)
        if match and os.path.isfile(os.path.join(folder, name)):
            found.append((_stamp_time(match.group(1)), name))
    return [os.path.join(folder, name) for _when, name in sorted(found)]


def newest_snapshot(folder: str, zone_name: str) -> str:
    files = snapshot_files(folder, zone_name)
    if not files:
        raise SnapshotError("no snapshot of %s in %s (files named %s-<UTC timestamp>.json): export one first, or give path"
                            % (zone_name, folder, zone_name))
    return files[-1]


def write_snapshot(path: str, snapshot: dict) -> None:
    """Write ``snapshot`` to ``path`` atomically (a temporary file in the same folder, then a rename), mode 0600.

    The folder is created (mode 0700) when missing.
    """
    folder = os.path.dirname(os.path.abspath(path))
    text = json.dumps(snapshot, indent=2, sort_keys=True) + "\n"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise SnapshotError("cannot write a snapshot in %s: %s" % (folder, exc.strerror or exc)) from None
    try:
        write_atomic(path, text.encode("utf-8"), 0o600, sync_dir=False)
    except OSError as exc:
        raise SnapshotError("cannot write the snapshot %s: %s" % (path, exc.strerror or exc)) from None
    with contextlib.suppress(OSError):  # some file systems cannot sync a folder; the rename is done either way
        fsync_dir(folder)


def read_snapshot(path: str) -> dict:
    """The snapshot in ``path``, its shape checked; SnapshotError saying what is wrong."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except FileNotFoundError:
        raise SnapshotError("snapshot %s does not exist" % path) from None
    except OSError as exc:
        raise SnapshotError("cannot read the snapshot %s: %s" % (path, exc.strerror or exc)) from None
    except ValueError as exc:
        raise SnapshotError("%s is not valid JSON: %s" % (path, exc)) from None
    try:
        check_snapshot(data)
    except SnapshotError as exc:
        raise SnapshotError("%s: %s" % (path, exc)) from None
    return data


def check_snapshot(data: Any) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SnapshotError("not a zone snapshot (its format is not %s)" % FORMAT)
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SnapshotError("format_version must be a whole number from 1")
    if version > FORMAT_VERSION:
        raise SnapshotError("format_version %d is newer than this collection reads (%d): update launchready.core" % (version, FORMAT_VERSION))
    zone = data.get("zone")
    if not isinstance(zone, dict) or not isinstance(zone.get("name"), str) or not zone["name"]:
        raise SnapshotError("zone.name is missing")
    if not isinstance(data.get("ref_prefix"), str) or not data["ref_prefix"]:
        raise SnapshotError("ref_prefix is missing")
    if "records" in data and (not isinstance(data["records"], list) or not all(isinstance(item, dict) for item in data["records"])):
        raise SnapshotError("records must be a list of records")
    if "settings" in data and not isinstance(data["settings"], dict):
        raise SnapshotError("settings must be a mapping of setting ids to values")
    rules = data.get("rules", {})
    if not isinstance(rules, dict):
        raise SnapshotError("rules must be a mapping of phases")
    for phase, saved in rules.items():
        if phase not in RULE_PHASES:
            raise SnapshotError("rules: unknown phase %s (known: %s)" % (phase, ", ".join(RULE_PHASES)))
        if not isinstance(saved, dict) or not isinstance(saved.get("rules"), list) or saved.get("position", "last") not in ("first", "last"):
            raise SnapshotError("rules.%s must have rules (a list) and position (first or last)" % phase)


# --- export ---------------------------------------------------------------------------------


def export_record(item: dict) -> dict:
    """A record as listed, kept to what a restore writes (no id, no dates)."""
    record: dict = {"name": str(item.get("name") or "").lower().rstrip("."), "type": str(item.get("type") or "").upper()}
    for key in RECORD_FIELDS[2:]:
        value = item.get(key)
        if value is None or (key in ("comment", "tags", "data") and not value):
            continue
        record[key] = copy.deepcopy(value)
    record["proxied"] = bool(item.get("proxied"))
    return record


def export_phase(ruleset: dict | None, prefix: str) -> dict:
    """The owned rules of one phase's entry point, in order, and where they sit among the others."""
    rules = list((ruleset or {}).get("rules") or [])
    owned = [rule for rule in rules if str(rule.get("ref") or "").startswith(prefix)]
    position = "first" if owned and rules[0] is owned[0] else "last"
    kept = [{key: copy.deepcopy(rule[key]) for key in RULE_FIELDS if rule.get(key) is not None} for rule in owned]
    return {"exists": ruleset is not None, "position": position, "rules": kept, "other_rules": len(rules) - len(owned)}


def build_snapshot(zone: dict, created: datetime, prefix: str, records: list[dict] | None = None, settings: list[dict] | None = None,
                   rulesets: dict[str, dict | None] | None = None) -> dict:
    """The snapshot document; a section left as ``None`` is not in it (and a restore leaves it alone)."""
    snapshot: dict = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "zone": {"id": zone.get("id"), "name": zone["name"], "plan": zone.get("plan")},
        "ref_prefix": prefix,
    }
    if records is not None:
        exported = [export_record(item) for item in records]
        snapshot["records"] = sorted(exported, key=lambda r: (r["name"], r["type"], json.dumps(r, sort_keys=True)))
    if settings is not None:
        snapshot["settings"] = {item["id"]: copy.deepcopy(item.get("value")) for item in settings if isinstance(item, dict) and "id" in item}
    if rulesets is not None:
        snapshot["rules"] = {phase: export_phase(rulesets[phase], prefix) for phase in RULE_PHASES if phase in rulesets}
    return snapshot


def summary(snapshot: dict) -> dict:
    """What a snapshot holds, counted: records, settings, owned rules per phase (sections it lacks are left out)."""
    counts: dict = {"created_at": snapshot.get("created_at"), "format_version": snapshot.get("format_version"), "zone": snapshot["zone"]["name"]}
    if "records" in snapshot:
        counts["records"] = len(snapshot["records"])
    if "settings" in snapshot:
        counts["settings"] = len(snapshot["settings"])
    if "rules" in snapshot:
        counts["rules"] = {phase: len(saved["rules"]) for phase, saved in snapshot["rules"].items()}
    return counts


# --- restore --------------------------------------------------------------------------------


def _ttl(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (value == TTL_AUTO or TTL_MIN <= value <= TTL_MAX):
        raise SnapshotError("%s: ttl must be 1 (automatic) or from %d to %d, not %r" % (where, TTL_MIN, TTL_MAX, value))
    return value


def snapshot_record(index: int, item: dict, zone_name: str) -> Record:
    """A record of the snapshot as the record model wants it: every field set, so the restore compares and writes them all."""
    rtype = str(item.get("type") or "").strip().upper()
    where = "records[%d] (%s %s)" % (index, rtype or "?", item.get("name"))
    if not rtype or not isinstance(item.get("name"), str) or not item["name"].strip():
        raise SnapshotError("%s: name and type are required" % where)
    try:
        name = normalize_name(item["name"], zone_name)
    except RecordError as exc:
        raise SnapshotError("%s: %s" % (where, exc)) from None
    content, priority, data = item.get("content"), item.get("priority"), item.get("data")
    if rtype in SUPPORTED_TYPES:
        try:
            value = make_value(rtype, None, priority, data) if rtype in DATA_TYPES and data else make_value(rtype, content, priority)
        except ValueError as exc:
            raise SnapshotError("%s: %s" % (where, exc)) from None
    else:
        # Types the record model does not read (HTTPS, SVCB, DS, TLSA, ...) compare as the API lists them and are written back as saved.
        if content is None and not data:
            raise SnapshotError("%s: content or data is required" % where)
        listed = listed_value(item)
        fields: dict = {"data": copy.deepcopy(data)} if data else {"content": content}
        if priority is not None:
            fields["priority"] = priority
        value = Value(listed.key, listed.text, fields)
    proxied = item.get("proxied", False)
    if not isinstance(proxied, bool) or (proxied and rtype not in PROXIABLE_TYPES):
        raise SnapshotError("%s: proxied must be true or false, and true only for %s" % (where, ", ".join(PROXIABLE_TYPES)))
    comment = item.get("comment") or ""
    tags = item.get("tags") or []
    if not isinstance(comment, str) or not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise SnapshotError("%s: comment must be text and tags a list of text" % where)
    return Record(
        name=name,
        type=rtype,
        value=value,
        ttl=_ttl(item.get("ttl", TTL_AUTO), where),
        proxied=proxied if rtype in PROXIABLE_TYPES else None,
        comment=comment,  # "" removes a comment added since
        tags=tuple(sorted(tags)),  # () removes tags added since
        index=index,
    )


def plan_records(saved: list[dict], listed: list[dict], zone_name: str, keep: list[str] | tuple = ()) -> Plan:
    """The record model's plan from the zone as listed to exactly the snapshot's records.

    Every other record is pruned (but the apex NS records and those matching ``keep``); the prune
    threshold does not apply, since a restore is asked for explicitly.
    """
    desired = Desired(zone_name)
    for index, item in enumerate(saved):
        record = snapshot_record(index, item, zone_name)
        records = desired.present.setdefault(record.key, [])
        twin = next((r for r in records if r.value.key == record.value.key), None)
        if twin is not None:
            raise SnapshotError("records[%s] and records[%d] are the same record (%s)" % (twin.index, index, record.label()))
        records.append(record)
    try:
        return make_plan(desired, listed, prune=True, prune_ignore=list(keep), force=True)
    except RecordError as exc:
        raise SnapshotError("the records cannot be restored: %s" % exc) from None


def plan_settings_restore(saved: dict, listed: list[dict]) -> tuple[SettingsPlan, list[str]]:
    """The settings plan back to the snapshot's values, and the ids of changed settings the collection does not write.

    Only the settings whose value differs from the snapshot are planned; the zone settings plan then
    writes those that are editable and reports the others.
    """
    current = {item["id"]: item.get("value") for item in listed if isinstance(item, dict) and "id" in item}
    differing = {setting_id: value for setting_id, value in saved.items() if setting_id not in current or current[setting_id] != value}
    not_restored = sorted(setting_id for setting_id in differing if setting_id not in CATALOG)
    try:
        desired, _warnings = normalise_settings({setting_id: value for setting_id, value in differing.items() if setting_id in CATALOG})
    except SettingsError as exc:
        raise SnapshotError("the snapshot's settings cannot be written back: %s" % exc) from None
    return plan_settings(desired, listed), not_restored


def plan_rules_restore(phase: str, saved: dict, ruleset: dict | None, prefix: str) -> RulesetPlan:
    """The ruleset plan that makes the owned rules of ``phase`` the snapshot's, in its order and position; other rules stay as they are."""
    items = []
    for index, rule in enumerate(saved["rules"]):
        if not isinstance(rule, dict) or not str(rule.get("ref") or "").startswith(prefix):
            raise SnapshotError("rules.%s[%d]: every saved rule must have a ref starting with %s" % (phase, index, prefix))
        items.append({key: copy.deepcopy(rule[key]) for key in RULE_FIELDS if rule.get(key) is not None})
    try:
        rules = parse_rules(items, phase, prefix)
    except RulesError as exc:
        raise SnapshotError("rules.%s: %s" % (phase, exc)) from None
    plan = plan_ruleset(ruleset, rules, saved.get("position", "last"), prefix)
    current = [rule.get("ref") for rule in (ruleset or {}).get("rules") or [] if str(rule.get("ref") or "").startswith(prefix)]
    if plan.moved and current == [rule.ref for rule in rules]:
        # Same owned rules in the same order, only interleaved with the others (moved in the dashboard): not worth a write.
        plan.moved = False
    return plan


@dataclass
class RestorePlan:
    """Every change a restore makes, planned before the first write."""

    zone_name: str
    records: Plan | None = None
    settings: SettingsPlan | None = None
    settings_not_restored: list[str] = field(default_factory=list)
    rules: dict[str, RulesetPlan] | None = None  # by phase; None when rules are not restored

    @property
    def changed(self) -> bool:
        return bool((self.records and self.records.changed) or (self.settings and self.settings.changed)
                    or any(plan.changed for plan in (self.rules or {}).values()))

    def warnings(self) -> list[str]:
        warnings = list(self.records.warnings if self.records else [])
        warnings.extend(self.settings.warnings if self.settings else [])
        if self.settings_not_restored:
            many = len(self.settings_not_restored) > 1
            warnings.append("zone setting%s %s differ%s from the snapshot but %s not restored: this collection does not write %s"
                            % ("s" if many else "", ", ".join(self.settings_not_restored), "" if many else "s", "are" if many else "is",
                               "them" if many else "it"))
        return warnings

    def diffs(self) -> list[dict]:
        """One before/after per object that changes: the records, the settings, each phase's rules."""
        diffs = []
        if self.records and self.records.changed:
            diffs.append(dict(self.records.diff(), before_header="%s DNS records" % self.zone_name, after_header="%s DNS records" % self.zone_name))
        if self.settings and self.settings.changed:
            diffs.append(dict(self.settings.diff(), before_header="%s zone settings" % self.zone_name, after_header="%s zone settings" % self.zone_name))
        for phase, plan in (self.rules or {}).items():
            if plan.changed:
                header = "%s rules of %s" % (self.zone_name, phase)
                diffs.append(dict(plan.diff(), before_header=header, after_header=header))
        return diffs

    def result(self, batch_size: int) -> dict:
        """What the module returns about the changes (made, or to make in check mode)."""
        result: dict = {}
        if self.records is not None:
            plan = self.records
            result["records"] = {"created": len(plan.creates), "updated": len(plan.updates), "deleted": len(plan.deletes),
                                 "plan": plan.as_dict(batch_size)}
        if self.settings is not None:
            result["settings"] = {"changes": self.settings.changes, "not_restored": self.settings_not_restored,
                                  "findings": [finding.as_dict() for finding in self.settings.findings]}
        if self.rules is not None:
            result["rules"] = {phase: {"added": plan.added, "changed_rules": plan.changed_rules, "removed": plan.removed, "moved": plan.moved}
                               for phase, plan in self.rules.items()}
        return result


def plan_restore(snapshot: dict, include: list[str], keep_records: list[str] | tuple = (), listed_records: list[dict] | None = None,
                 listed_settings: list[dict] | None = None, rulesets: dict[str, dict | None] | None = None) -> RestorePlan:
    """The whole restore from what the API answered; each section only when it is in ``include`` and in the snapshot."""
    zone_name = snapshot["zone"]["name"]
    plan = RestorePlan(zone_name)
    if "records" in include and "records" in snapshot:
        plan.records = plan_records(snapshot["records"], listed_records or [], zone_name, keep_records)
    if "settings" in include and "settings" in snapshot:
        plan.settings, plan.settings_not_restored = plan_settings_restore(snapshot["settings"], listed_settings or [])
    if "rules" in include and "rules" in snapshot:
        plan.rules = {}
        for phase in RULE_PHASES:
            if phase in snapshot["rules"]:
                plan.rules[phase] = plan_rules_restore(phase, snapshot["rules"][phase], (rulesets or {}).get(phase), snapshot["ref_prefix"])
    return plan


def sections_to_read(snapshot: dict, include: list[str]) -> tuple[bool, bool, list[str]]:
    """Which reads a restore needs: (records, settings, the phases)."""
    phases = [phase for phase in RULE_PHASES if phase in snapshot.get("rules", {})] if "rules" in include else []
    return "records" in include and "records" in snapshot, "settings" in include and "settings" in snapshot, phases
