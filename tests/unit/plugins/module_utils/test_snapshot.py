# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import errno
import json
import os
import stat
from datetime import datetime, timezone

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _files, _snapshot
from ansible_collections.launchready.core.plugins.module_utils._snapshot import (
    FORMAT,
    FORMAT_VERSION,
    RULE_PHASES,
    SnapshotError,
    build_snapshot,
    newest_snapshot,
    plan_records,
    plan_restore,
    plan_rules_restore,
    plan_settings_restore,
    read_snapshot,
    snapshot_filename,
    snapshot_files,
    snapshot_record,
    write_snapshot,
)

ZONE = "example.com"
CREATED = datetime(2025, 3, 1, 10, 15, 0, 123456, tzinfo=timezone.utc)
CACHE = "http_request_cache_settings"
HSTS = {"strict_transport_security": {"enabled": True, "max_age": 15552000, "include_subdomains": True, "preload": False, "nosniff": True}}
HSTS_OFF = {"strict_transport_security": {"enabled": False, "max_age": 0, "include_subdomains": False, "preload": False, "nosniff": False}}


def rec(record_id, rtype, name, content=None, ttl=1, proxied=False, **extra):
    item = {"id": record_id, "type": rtype, "name": name, "content": content, "ttl": ttl, "proxied": proxied,
            "proxiable": rtype in ("A", "AAAA", "CNAME"), "comment": None, "tags": [], "created_on": "2024-01-01T00:00:00Z",
            "modified_on": "2024-01-01T00:00:00Z"}
    item.update(extra)
    return item


# Every kind of record a zone lists: proxied and not, quoted TXT, MX, SRV and CAA with data, comment and tags,
# and a type the record model does not know (HTTPS), which must still survive a restore.
LISTED = [
    rec("1", "A", "example.com", "192.0.2.10", proxied=True),
    rec("2", "CNAME", "www.example.com", "example.com", proxied=True, comment="canonical", tags=["team:web"]),
    rec("3", "TXT", "example.com", '"v=spf1 include:_spf.example.net -all"', ttl=3600),
    rec("4", "MX", "example.com", "mx1.example.net", ttl=3600, priority=10),
    rec("5", "MX", "example.com", "mx2.example.net", ttl=3600, priority=20),
    rec("6", "CAA", "example.com", '0 issue "letsencrypt.org"', ttl=3600, data={"flags": 0, "tag": "issue", "value": "letsencrypt.org"}),
    rec("7", "SRV", "_sip._tcp.example.com", "5 5060 sip.example.com", ttl=300, priority=10,
        data={"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com"}),
    rec("8", "HTTPS", "example.com", '1 . alpn="h2"', ttl=300, data={"priority": 1, "target": ".", "value": 'alpn="h2"'}),
    rec("9", "A", "help.example.com", "192.0.2.20", ttl=600),
]


def settings_list(**values):
    base = {"ssl": "strict", "always_use_https": "on", "security_header": HSTS, "min_tls_version": "1.2", "nel": {"enabled": False},
            "polish": "off"}
    base.update(values)
    return [{"id": key, "value": value, "editable": key != "polish", "modified_on": None} for key, value in sorted(base.items())]


def cache_rule(ref, expression, rule_id, cache=False):
    return {"id": rule_id, "ref": ref, "description": "", "expression": expression, "action": "set_cache_settings",
            "action_parameters": {"cache": cache}, "enabled": True, "version": "1", "last_updated": "2024-01-01T00:00:00Z"}


MINE = cache_rule("launchready_bypass_admin", 'starts_with(http.request.uri.path, "/admin")', "m" * 32)
THEIRS = cache_rule("theirs", 'http.request.uri.path eq "/"', "t" * 32, cache=True)
THEIRS_TOO = cache_rule("dashboard", 'http.request.uri.path eq "/about"', "d" * 32, cache=True)


def ruleset(*rules):
    return {"id": "r" * 32, "phase": CACHE, "version": "3", "rules": [dict(rule) for rule in rules]}


def snapshot(**sections):
    rulesets = sections.pop("rulesets", {phase: None for phase in RULE_PHASES})
    return build_snapshot({"id": "z" * 32, "name": ZONE, "plan": "free"}, CREATED, "launchready_", sections.pop("records", LISTED),
                          sections.pop("settings", settings_list()), rulesets)


# --- files ----------------------------------------------------------------------------------


def test_file_names_carry_the_zone_and_a_utc_timestamp():
    assert snapshot_filename(ZONE, CREATED) == "example.com-20250301T101500.123456Z.json"


def test_the_newest_snapshot_is_chosen_by_the_name_never_by_the_file_time(tmp_path):
    names = ["example.com-20250301T101500.000001Z.json", "example.com-20250301T101459Z.json", "example.com-20250302T000000.000000Z.json",
             "example.com-20250301T101500.000000Z.json"]
    for name in names:
        (tmp_path / name).write_text("{}")
    for other in ("sub.example.com-20260101T000000.000000Z.json", "example.com-latest.json", "example.com-20990101T000000Z.json.tmp",
                  ".example.com-20990101T000000.000000Z.json.k2j4x9.tmp", "notes.txt"):
        (tmp_path / other).write_text("{}")
    (tmp_path / "example.com-20990101T000000.000000Z.json").mkdir()  # a folder is not a snapshot
    os.utime(tmp_path / names[1], (4102444800, 4102444800))  # the oldest name, touched in 2100
    files = [os.path.basename(path) for path in snapshot_files(str(tmp_path), ZONE)]
    assert files == [names[1], names[3], names[0], names[2]]
    assert newest_snapshot(str(tmp_path), ZONE) == str(tmp_path / names[2])


def test_no_snapshot_is_a_clear_error(tmp_path):
    with pytest.raises(SnapshotError, match=r"no snapshot of example\.com in .*: export one first"):
        newest_snapshot(str(tmp_path / "missing"), ZONE)


def test_a_snapshot_is_written_atomically_0600_in_a_0700_folder_and_read_back(tmp_path):
    folder = tmp_path / "state" / "snapshots"
    path = folder / snapshot_filename(ZONE, CREATED)
    data = snapshot()
    write_snapshot(str(path), data)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(folder) == [path.name]  # no temporary file left behind
    assert read_snapshot(str(path)) == data
    data["records"] = []
    write_snapshot(str(path), data)  # replaces the file whole
    assert read_snapshot(str(path))["records"] == [] and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_snapshot_write_is_a_snapshot_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / snapshot_filename(ZONE, CREATED)
    write_snapshot(str(path), snapshot())
    before = path.read_bytes()

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files.os, "write", disk_full)
    with pytest.raises(SnapshotError, match=r"^cannot write the snapshot .*: No space left on device$"):
        write_snapshot(str(path), dict(snapshot(), records=[]))
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]


def test_a_folder_that_cannot_be_synced_does_not_fail_the_snapshot(tmp_path, monkeypatch):
    def cannot_sync_folders(path):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(_snapshot, "fsync_dir", cannot_sync_folders)
    path = tmp_path / snapshot_filename(ZONE, CREATED)
    write_snapshot(str(path), snapshot())
    assert read_snapshot(str(path)) == snapshot()


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ('{"format": "something.else"}', "not a zone snapshot"),
    (json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION + 1}), "format_version 2 is newer than this collection reads"),
    (json.dumps({"format": FORMAT, "format_version": 1, "zone": {}}), "zone.name is missing"),
    (json.dumps({"format": FORMAT, "format_version": 1, "zone": {"name": ZONE}, "ref_prefix": "x_", "rules": {"http_bogus": {"rules": []}}}),
     "unknown phase http_bogus"),
    (json.dumps({"format": FORMAT, "format_version": 1, "zone": {"name": ZONE}, "ref_prefix": "x_", "records": {"a": 1}}), "records must be a list"),
])
def test_a_bad_file_is_refused_with_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SnapshotError, match=message):
        read_snapshot(str(path))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(SnapshotError, match=r"snapshot .*nothing\.json does not exist"):
        read_snapshot(str(tmp_path / "nothing.json"))


# --- export ---------------------------------------------------------------------------------


def test_the_snapshot_holds_records_settings_and_only_owned_rules():
    rulesets = {phase: None for phase in RULE_PHASES}
    rulesets[CACHE] = ruleset(THEIRS, MINE)
    data = snapshot(rulesets=rulesets)
    assert (data["format"], data["format_version"], data["created_at"]) == (FORMAT, 1, "2025-03-01T10:15:00.123456Z")
    assert data["zone"] == {"id": "z" * 32, "name": ZONE, "plan": "free"} and data["ref_prefix"] == "launchready_"
    www = next(r for r in data["records"] if r["name"] == "www.example.com")
    assert www == {"name": "www.example.com", "type": "CNAME", "content": "example.com", "ttl": 1, "proxied": True, "comment": "canonical",
                   "tags": ["team:web"]}
    assert next(r for r in data["records"] if r["type"] == "CAA")["data"] == {"flags": 0, "tag": "issue", "value": "letsencrypt.org"}
    assert all("id" not in r and "created_on" not in r for r in data["records"])
    assert data["settings"]["security_header"] == HSTS and data["settings"]["nel"] == {"enabled": False}
    assert data["rules"][CACHE] == {"exists": True, "position": "last", "other_rules": 1, "rules": [
        {"ref": "launchready_bypass_admin", "description": "", "expression": MINE["expression"], "action": "set_cache_settings",
         "action_parameters": {"cache": False}, "enabled": True}]}
    assert data["rules"]["http_ratelimit"] == {"exists": False, "position": "last", "other_rules": 0, "rules": []}


def test_sections_left_out_are_not_in_the_file():
    data = build_snapshot({"id": "z" * 32, "name": ZONE, "plan": "free"}, CREATED, "launchready_", records=LISTED)
    assert "records" in data and "settings" not in data and "rules" not in data


# --- restore: records -----------------------------------------------------------------------


def test_restoring_a_zone_onto_itself_changes_nothing():
    plan = plan_records(snapshot()["records"], LISTED, ZONE)
    assert not plan.changed, plan.as_dict()


def test_a_bad_change_is_undone_and_extra_records_are_pruned_without_a_threshold():
    current = [dict(item) for item in LISTED if item["id"] not in ("4", "8")]  # an MX and the HTTPS record deleted
    current[0] = dict(current[0], content="203.0.113.66")  # the apex moved to a wrong address
    current.append(rec("10", "A", "evil.example.com", "203.0.113.66"))
    current.append(rec("11", "TXT", "_acme-challenge.example.com", "token"))
    current.append(rec("12", "NS", "example.com", "ns1.example.net"))  # apex NS records are never pruned
    plan = plan_records(snapshot()["records"], current, ZONE, keep=["_acme-challenge*"])
    assert [(u.before.value.text, u.after.value.text) for u in plan.updates] == [("203.0.113.66", "192.0.2.10")]
    assert sorted(c.record.label() for c in plan.creates) == ['HTTPS example.com 1 . alpn="h2"', "MX example.com 10 mx1.example.net"]
    https = next(c for c in plan.creates if c.record.type == "HTTPS").body()
    assert https == {"type": "HTTPS", "name": "example.com", "ttl": 300, "data": {"priority": 1, "target": ".", "value": 'alpn="h2"'}, "tags": []}
    assert [(d.record.label(), d.reason) for d in plan.deletes] == [("A evil.example.com 203.0.113.66", "pruned")]


def test_fields_changed_since_are_put_back():
    current = [dict(item) for item in LISTED]
    current[1] = dict(current[1], proxied=False, ttl=300, comment="hacked", tags=["x:y"])
    current[8] = dict(current[8], ttl=60, comment="added later", tags=["new:tag"])
    plan = plan_records(snapshot()["records"], current, ZONE)
    changes = {u.before.name: u.body() for u in plan.updates}
    assert changes == {"www.example.com": {"id": "2", "proxied": True, "ttl": 1, "comment": "canonical", "tags": ["team:web"]},
                       "help.example.com": {"id": "9", "ttl": 600, "comment": "", "tags": []}}


def test_a_value_record_the_zone_lost_is_created_with_every_field():
    current = [item for item in LISTED if item["id"] != "2"]
    plan = plan_records(snapshot()["records"], current, ZONE)
    assert [c.body() for c in plan.creates] == [{"type": "CNAME", "name": "www.example.com", "content": "example.com", "ttl": 1, "proxied": True,
                                                 "comment": "canonical", "tags": ["team:web"]}]


@pytest.mark.parametrize("item, message", [
    ({"type": "A", "name": "x.example.com", "content": "not-an-ip"}, "records\\[0\\] \\(A x.example.com\\): 'not-an-ip' is not a valid IPv4"),
    ({"type": "TXT", "name": "x.example.com", "content": "a", "proxied": True}, "proxied must be true or false, and true only for A, AAAA, CNAME"),
    ({"type": "A", "name": "x.example.com", "content": "192.0.2.1", "ttl": 30}, "ttl must be 1 \\(automatic\\) or from 60 to 86400"),
    ({"type": "A", "content": "192.0.2.1"}, "name and type are required"),
    ({"type": "HTTPS", "name": "x.example.com"}, "content or data is required"),
    ({"type": "A", "name": "x.other.org.", "content": "192.0.2.1"}, "is not in the zone example.com"),
])
def test_a_bad_record_in_a_snapshot_is_refused(item, message):
    with pytest.raises(SnapshotError, match=message):
        snapshot_record(0, item, ZONE)


def test_the_same_record_twice_is_refused():
    with pytest.raises(SnapshotError, match="records\\[0\\] and records\\[1\\] are the same record"):
        plan_records([{"type": "A", "name": "a.example.com", "content": "192.0.2.1"}] * 2, [], ZONE)


# --- restore: settings and rules ------------------------------------------------------------


def test_only_settings_that_differ_are_written_and_unknown_ones_are_named():
    saved = snapshot()["settings"]
    listed = settings_list(ssl="flexible", security_header=HSTS_OFF, nel={"enabled": True}, polish="lossless")
    plan, not_restored = plan_settings_restore(saved, listed)
    assert plan.items == [{"id": "security_header", "value": HSTS}, {"id": "ssl", "value": "strict"}]
    assert not_restored == ["nel"]
    assert [f.title for f in plan.findings] == ["Zone setting polish cannot be changed on this zone's plan"]
    assert plan_settings_restore(saved, settings_list())[0].items == []


def test_a_setting_value_the_collection_refuses_fails_before_any_write():
    with pytest.raises(SnapshotError, match="the snapshot's settings cannot be written back: ssl: 'strictest'"):
        plan_settings_restore({"ssl": "strictest"}, settings_list())


def test_owned_rules_are_put_back_in_place_and_the_others_are_left_in_their_order():
    saved = snapshot(rulesets={CACHE: ruleset(THEIRS, MINE, THEIRS_TOO)})["rules"][CACHE]
    assert saved["position"] == "last"
    changed = dict(MINE, expression='starts_with(http.request.uri.path, "/")')
    extra = cache_rule("launchready_added_later", 'http.request.uri.path eq "/x"', "n" * 32)
    plan = plan_rules_restore(CACHE, saved, ruleset(THEIRS, changed, THEIRS_TOO, extra), "launchready_")
    assert [c["ref"] for c in plan.changed_rules] == ["launchready_bypass_admin"] and plan.changed_rules[0]["fields"] == ["expression"]
    assert [r["ref"] for r in plan.removed] == ["launchready_added_later"]
    assert [r.get("id") for r in plan.body()["rules"]] == ["t" * 32, "d" * 32, "m" * 32]
    assert plan.body()["rules"][0] == {k: v for k, v in THEIRS.items() if k not in ("version", "last_updated")}
    assert plan.body()["rules"][2]["expression"] == MINE["expression"]
    assert not plan_rules_restore(CACHE, saved, ruleset(THEIRS, MINE, THEIRS_TOO), "launchready_").changed


def test_owned_rules_that_came_first_go_back_first():
    saved = snapshot(rulesets={CACHE: ruleset(MINE, THEIRS)})["rules"][CACHE]
    assert saved["position"] == "first"
    plan = plan_rules_restore(CACHE, saved, ruleset(THEIRS), "launchready_")
    assert [r["ref"] for r in plan.body()["rules"]] == ["launchready_bypass_admin", "theirs"]


def test_a_phase_without_owned_rules_in_the_snapshot_loses_those_added_since():
    saved = snapshot()["rules"][CACHE]
    plan = plan_rules_restore(CACHE, saved, ruleset(THEIRS, MINE), "launchready_")
    assert [r["ref"] for r in plan.removed] == ["launchready_bypass_admin"] and plan.body() == {"rules": [
        {k: v for k, v in THEIRS.items() if k not in ("version", "last_updated")}]}
    assert not plan_rules_restore(CACHE, saved, None, "launchready_").changed


def test_a_saved_rule_without_the_prefix_is_refused():
    saved = {"position": "last", "rules": [{"ref": "theirs", "expression": "true", "action": "block"}]}
    with pytest.raises(SnapshotError, match=r"rules\.http_ratelimit\[0\]: every saved rule must have a ref starting with launchready_"):
        plan_rules_restore("http_ratelimit", saved, None, "launchready_")


def test_the_whole_plan_shows_one_diff_per_object_that_changes():
    data = snapshot(rulesets={CACHE: ruleset(MINE)})
    current_records = [item for item in LISTED if item["id"] != "9"]
    plan = plan_restore(data, ["records", "settings", "rules"], (), current_records, settings_list(always_use_https="off"),
                        {CACHE: ruleset(dict(MINE, enabled=False))})
    assert plan.changed and set(plan.rules or {}) == {CACHE}
    assert [d["before_header"] for d in plan.diffs()] == ["example.com DNS records", "example.com zone settings",
                                                          "example.com rules of http_request_cache_settings"]
    assert plan.diffs()[1]["before"] == {"always_use_https": "off"} and plan.diffs()[1]["after"] == {"always_use_https": "on"}
    result = plan.result(200)
    assert (result["records"]["created"], result["records"]["updated"], result["records"]["deleted"]) == (1, 0, 0)
    assert result["records"]["plan"]["batches"] == 1 and [c["id"] for c in result["settings"]["changes"]] == ["always_use_https"]
    assert [c["fields"] for c in result["rules"][CACHE]["changed_rules"]] == [["enabled"]]

    only_settings = plan_restore(data, ["settings"], (), None, settings_list(), None)
    assert only_settings.records is None and only_settings.rules is None and not only_settings.changed
    assert set(only_settings.result(200)) == {"settings"}


def test_owned_rules_reordered_since_are_put_back_in_the_snapshot_order():
    second = cache_rule("launchready_cache_static", 'starts_with(http.request.uri.path, "/static/")', "s" * 32, cache=True)
    saved = snapshot(rulesets={CACHE: ruleset(THEIRS, MINE, second)})["rules"][CACHE]
    plan = plan_rules_restore(CACHE, saved, ruleset(THEIRS, second, MINE), "launchready_")
    assert plan.changed and plan.moved and [r["ref"] for r in plan.body()["rules"]] == ["theirs", "launchready_bypass_admin", "launchready_cache_static"]
