# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.launchready.core.plugins.modules import cloudflare_zone_snapshot
from ansible_collections.launchready.core.tests.unit.plugins.fake_cloudflare import FakeCloudflare, fake_token, record, run_module, zone_id

ZONE = "example.com"
PHASES = ("http_request_dynamic_redirect", "http_request_cache_settings", "http_ratelimit", "http_request_firewall_custom")
CACHE = "http_request_cache_settings"
RATELIMIT = "http_ratelimit"
HSTS = {"strict_transport_security": {"enabled": True, "max_age": 15552000, "include_subdomains": True, "preload": False, "nosniff": True}}
HSTS_OFF = {"strict_transport_security": {"enabled": False, "max_age": 0, "include_subdomains": False, "preload": False, "nosniff": False}}

RECORDS = [
    record("a1", "A", "example.com", "192.0.2.10", proxied=True),
    record("c1", "CNAME", "www.example.com", "example.com", proxied=True),
    record("t1", "TXT", "example.com", '"v=spf1 -all"', ttl=3600),
    record("m1", "MX", "example.com", "mx1.example.net", ttl=3600, priority=10),
]
MINE = {"id": "m" * 32, "ref": "launchready_bypass_admin", "description": "", "expression": 'starts_with(http.request.uri.path, "/admin")',
        "action": "set_cache_settings", "action_parameters": {"cache": False}, "enabled": True, "version": "1", "last_updated": "2024-01-01T00:00:00Z"}
THEIRS = {"id": "t" * 32, "ref": "theirs", "description": "from the dashboard", "expression": 'http.request.uri.path eq "/"',
          "action": "set_cache_settings", "action_parameters": {"cache": True}, "enabled": True, "version": "2", "last_updated": "2024-01-01T00:00:00Z"}
LOGIN = {"id": "l" * 32, "ref": "launchready_login", "description": "", "expression": 'http.request.uri.path eq "/login"', "action": "block",
         "ratelimit": {"characteristics": ["cf.colo.id", "ip.src"], "period": 10, "requests_per_period": 5, "mitigation_timeout": 10},
         "enabled": True, "version": "1", "last_updated": "2024-01-01T00:00:00Z"}


def settings(**values):
    base = {"ssl": "strict", "always_use_https": "on", "min_tls_version": "1.2", "security_header": HSTS, "polish": "off"}
    base.update(values)
    return [{"id": key, "value": value, "editable": key != "polish", "modified_on": None} for key, value in sorted(base.items())]


def ruleset(phase, *rules):
    return {"id": "r" * 32, "name": "default", "kind": "zone", "phase": phase, "version": "3", "last_updated": "2024-01-01T00:00:00Z",
            "rules": [dict(rule) for rule in rules]}


def sent(rule):
    return {k: v for k, v in rule.items() if k not in ("version", "last_updated")}


def entrypoint(zid, phase):
    return "/zones/%s/rulesets/phases/%s/entrypoint" % (zid, phase)


class Zone:
    """The zone as the fake API answers it; ``read`` scripts the reads of an export or a restore."""

    def __init__(self, zid):
        self.id = zid
        self.records = [dict(item) for item in RECORDS]
        self.settings = settings()
        self.rulesets = {CACHE: ruleset(CACHE, THEIRS, MINE), RATELIMIT: ruleset(RATELIMIT, LOGIN)}

    def read(self, fake, phases=PHASES, records=True, settings_too=True, lookup=True):
        if lookup:
            fake.zone_lookup(ZONE, self.id)
        if records:
            fake.list_records(self.id, self.records)
        if settings_too:
            fake.expect("GET", "/zones/%s/settings" % self.id, result=self.settings)
        for phase in phases:
            if phase in self.rulesets:
                fake.expect("GET", entrypoint(self.id, phase), result=self.rulesets[phase])
            else:
                fake.expect("GET", entrypoint(self.id, phase), status=404,
                            errors=[{"code": 10003, "message": "could not find entrypoint ruleset in the %s phase" % phase}])


@pytest.fixture
def token():
    return fake_token()


@pytest.fixture
def zone():
    return Zone(zone_id())


@pytest.fixture
def run(monkeypatch, capsys, token):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)

    def run(fake, check_mode=False, diff=False, **options):
        args = dict(api_token=token, zone=options.pop("zone", ZONE), **options)
        result = run_module(monkeypatch, capsys, cloudflare_zone_snapshot, args, fake, check_mode=check_mode, diff=diff)
        assert token not in json.dumps(result), "the API token leaked into the result"
        return result

    return run


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "state" / "snapshots"


def export(run, token, zone, folder, **options):
    fake = FakeCloudflare(token)
    zone.read(fake)
    result = run(fake, folder=str(folder), **options)
    fake.assert_done()
    assert "failed" not in result, result
    return result


# --- export ---------------------------------------------------------------------------------


def test_export_reads_each_part_once_and_writes_one_0600_file(run, token, zone, folder):
    result = export(run, token, zone, folder)
    assert result["changed"] is True and result["api_calls"] == 7  # zone, records, settings, four phases
    path = result["snapshot"]["path"]
    assert os.path.dirname(path) == str(folder) and os.listdir(folder) == [os.path.basename(path)]
    assert os.path.basename(path).startswith("example.com-") and path.endswith("Z.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    assert token not in text
    saved = json.loads(text)
    assert saved["format"] == "launchready.core.cloudflare_zone_snapshot" and saved["format_version"] == 1
    assert saved["zone"] == {"id": zone.id, "name": ZONE, "plan": "free"}
    assert [(r["type"], r["name"]) for r in saved["records"]] == [("A", "example.com"), ("MX", "example.com"), ("TXT", "example.com"),
                                                                  ("CNAME", "www.example.com")]
    assert saved["settings"]["security_header"] == HSTS
    assert [r["ref"] for r in saved["rules"][CACHE]["rules"]] == ["launchready_bypass_admin"] and saved["rules"][CACHE]["other_rules"] == 1
    assert saved["rules"][RATELIMIT]["rules"][0]["ratelimit"]["period"] == 10
    assert saved["rules"]["http_request_firewall_custom"] == {"exists": False, "position": "last", "rules": [], "other_rules": 0}
    assert result["snapshot"] == {"path": path, "created_at": saved["created_at"], "format_version": 1, "zone": ZONE, "records": 4, "settings": 5,
                                  "rules": {PHASES[0]: 0, CACHE: 1, RATELIMIT: 1, PHASES[3]: 0}}


def test_export_in_check_mode_reads_and_writes_no_file(run, token, zone, folder):
    fake = FakeCloudflare(token)
    zone.read(fake)
    result = run(fake, check_mode=True, folder=str(folder))
    fake.assert_done()
    assert fake.writes == 0 and result["changed"] is True and result["snapshot"]["path"].startswith(str(folder))
    assert not folder.exists()


def test_export_of_only_some_parts_reads_only_those(run, token, zone, folder):
    fake = FakeCloudflare(token)
    zone.read(fake, phases=[], settings_too=False)
    result = run(fake, folder=str(folder), include=["records"], path="before-launch.json")
    fake.assert_done()
    assert result["api_calls"] == 2 and result["snapshot"]["path"] == str(folder / "before-launch.json")
    saved = json.loads((folder / "before-launch.json").read_text())
    assert "records" in saved and "settings" not in saved and "rules" not in saved


def test_a_phase_the_token_may_not_read_fails_the_export_and_writes_nothing(run, token, zone, folder):
    fake = FakeCloudflare(token)
    zone.read(fake, phases=PHASES[:2])
    fake.expect("GET", entrypoint(zone.id, RATELIMIT), status=403, errors=[{"code": 10000, "message": "Authentication error"}])
    result = run(fake, folder=str(folder))
    fake.assert_done()
    assert result["failed"] is True and result["status"] == 403
    assert result["msg"].startswith("reading the rules of http_ratelimit: GET ") and "leave rules out with include" in result["msg"]
    assert not folder.exists()


# --- restore --------------------------------------------------------------------------------


def bad_changes(zone):
    """A bad evening: the apex moved, www deleted, a stray record, HTTPS forced off, HSTS off, the admin bypass changed, the login limit removed."""
    zone.records = [dict(zone.records[0], content="203.0.113.66"), *zone.records[2:], record("x1", "A", "stray.example.com", "203.0.113.66")]
    zone.settings = settings(always_use_https="off", security_header=HSTS_OFF)
    zone.rulesets[CACHE] = ruleset(CACHE, THEIRS, dict(MINE, action_parameters={"cache": True}))
    zone.rulesets[RATELIMIT] = ruleset(RATELIMIT)


def restore_writes(fake, zone):
    fake.batch(zone.id, {"deletes": [{"id": "x1"}], "patches": [{"id": "a1", "content": "192.0.2.10"}],
                         "posts": [{"type": "CNAME", "name": "www.example.com", "content": "example.com", "ttl": 1, "proxied": True, "tags": []}]},
               result={"deletes": [], "patches": [], "posts": [record("c2", "CNAME", "www.example.com", "example.com", proxied=True)]})
    fake.expect("PATCH", "/zones/%s/settings" % zone.id, json={"items": [{"id": "always_use_https", "value": "on"}, {"id": "security_header", "value": HSTS}]},
                result=[{"id": "always_use_https", "value": "on"}, {"id": "security_header", "value": HSTS}])
    fake.expect("PUT", entrypoint(zone.id, CACHE), json={"rules": [sent(THEIRS), sent(MINE)]}, result=ruleset(CACHE, THEIRS, MINE))
    fake.expect("PUT", entrypoint(zone.id, RATELIMIT), json={"rules": [sent({k: v for k, v in LOGIN.items() if k != "id"})]},
                result=ruleset(RATELIMIT, LOGIN))


def test_restore_of_the_latest_snapshot_undoes_every_change_in_one_write_per_object(run, token, zone, folder):
    exported = export(run, token, zone, folder)
    bad_changes(zone)
    fake = FakeCloudflare(token)
    zone.read(fake, phases=PHASES)
    restore_writes(fake, zone)
    result = run(fake, state="restored", folder=str(folder), latest=True, diff=True)
    fake.assert_done()
    assert "failed" not in result, result
    assert result["changed"] is True and result["snapshot"]["path"] == exported["snapshot"]["path"] and result["api_calls"] == 7 + 4
    assert (result["records"]["created"], result["records"]["updated"], result["records"]["deleted"]) == (1, 1, 1)
    assert [c["id"] for c in result["settings"]["changes"]] == ["always_use_https", "security_header"]
    assert result["settings"]["not_restored"] == [] and result["settings"]["findings"] == []
    assert result["rules"][CACHE]["changed_rules"][0]["fields"] == ["action_parameters"]
    assert [a["ref"] for a in result["rules"][RATELIMIT]["added"]] == ["launchready_login"]
    assert result["rules"][PHASES[0]] == {"added": [], "changed_rules": [], "removed": [], "moved": False}
    assert [d["before_header"] for d in result["diff"]] == ["example.com DNS records", "example.com zone settings",
                                                            "example.com rules of http_request_cache_settings", "example.com rules of http_ratelimit"]
    assert result["diff"][1] == {"before": {"always_use_https": "off", "security_header": HSTS_OFF},
                                 "after": {"always_use_https": "on", "security_header": HSTS},
                                 "before_header": "example.com zone settings", "after_header": "example.com zone settings"}


def test_restore_in_check_mode_shows_the_diff_and_makes_no_write(run, token, zone, folder):
    exported = export(run, token, zone, folder)
    bad_changes(zone)
    fake = FakeCloudflare(token)
    zone.read(fake)
    result = run(fake, check_mode=True, diff=True, state="restored", folder=str(folder), path=os.path.basename(exported["snapshot"]["path"]))
    fake.assert_done()
    assert fake.writes == 0 and result["changed"] is True and result["api_calls"] == 7
    assert (result["records"]["created"], result["records"]["updated"], result["records"]["deleted"]) == (1, 1, 1)
    assert len(result["diff"]) == 4
    records_diff = result["diff"][0]
    assert records_diff["before"]["example.com A"] == [{"value": "203.0.113.66", "ttl": 1, "proxied": True}]
    assert records_diff["after"]["example.com A"] == [{"value": "192.0.2.10", "ttl": 1, "proxied": True}]
    assert records_diff["after"]["stray.example.com A"] == [] and "www.example.com CNAME" in records_diff["after"]


def test_a_zone_that_matches_its_snapshot_is_only_read(run, token, zone, folder):
    exported = export(run, token, zone, folder)
    fake = FakeCloudflare(token)
    zone.read(fake)
    result = run(fake, diff=True, state="restored", path=exported["snapshot"]["path"])
    fake.assert_done()
    assert result["changed"] is False and fake.writes == 0 and result["api_calls"] == 7 and result["diff"] == []


def test_restore_keeps_records_matching_prune_ignore_and_leaves_parts_not_included(run, token, zone, folder):
    exported = export(run, token, zone, folder)
    zone.records.append(record("acme", "TXT", "_acme-challenge.example.com", "pending-token"))
    zone.records.append(record("x1", "A", "stray.example.com", "203.0.113.66"))
    zone.settings = settings(always_use_https="off")
    fake = FakeCloudflare(token)
    zone.read(fake, phases=[], settings_too=False)
    fake.batch(zone.id, {"deletes": [{"id": "x1"}]})
    result = run(fake, state="restored", path=exported["snapshot"]["path"], include=["records"], prune_ignore=["_acme-challenge*"])
    fake.assert_done()
    assert result["changed"] is True and result["records"]["deleted"] == 1 and "settings" not in result and "rules" not in result


def test_a_failed_write_says_what_was_already_restored(run, token, zone, folder):
    exported = export(run, token, zone, folder)
    bad_changes(zone)
    fake = FakeCloudflare(token)
    zone.read(fake)
    fake.batch(zone.id, {"deletes": [{"id": "x1"}], "patches": [{"id": "a1", "content": "192.0.2.10"}],
                         "posts": [{"type": "CNAME", "name": "www.example.com", "content": "example.com", "ttl": 1, "proxied": True, "tags": []}]})
    fake.expect("PATCH", "/zones/%s/settings" % zone.id, json={"items": [{"id": "always_use_https", "value": "on"}, {"id": "security_header", "value": HSTS}]},
                status=400, errors=[{"code": 1007, "message": "Invalid value for zone setting"}])
    result = run(fake, state="restored", path=exported["snapshot"]["path"])
    fake.assert_done()
    assert result["failed"] is True and result["changed"] is True and result["status"] == 400 and result["api_calls"] == 9
    assert result["msg"].startswith("restoring the zone settings failed: PATCH /zones/%s/settings failed with HTTP 400: 1007" % zone.id)
    assert "Already restored: DNS records (batch 1 of 1)." in result["msg"] and "run the restore again" in result["msg"]


def test_a_rejected_batch_names_the_record_and_says_nothing_was_written(run, token, zone, folder):
    exported = export(run, token, zone, folder)
    zone.records = zone.records[1:]
    fake = FakeCloudflare(token)
    zone.read(fake, phases=[], settings_too=False)
    fake.batch(zone.id, {"posts": [{"type": "A", "name": "example.com", "content": "192.0.2.10", "ttl": 1, "proxied": True, "tags": []}]},
               status=400, errors=[{"code": 9000, "message": "DNS name is invalid", "source": {"pointer": "/posts/0/name"}}])
    result = run(fake, state="restored", path=exported["snapshot"]["path"], include=["records"])
    fake.assert_done()
    assert result["failed"] is True and result["changed"] is False
    assert "Caused by: create A example.com 192.0.2.10." in result["msg"] and "Nothing was written before it." in result["msg"]


def test_the_newest_snapshot_is_found_by_its_name_not_its_file_time(run, token, zone, folder):
    old = export(run, token, zone, folder)
    zone.settings = settings(min_tls_version="1.3")
    new = export(run, token, zone, folder)
    os.utime(old["snapshot"]["path"], (4102444800, 4102444800))  # the older snapshot, touched later
    fake = FakeCloudflare(token)
    zone.read(fake)
    result = run(fake, check_mode=True, state="restored", folder=str(folder), latest=True)
    fake.assert_done()
    assert result["snapshot"]["path"] == new["snapshot"]["path"] and result["changed"] is False


def test_a_zone_id_finds_the_latest_snapshot_by_the_zone_name(run, token, zone, folder):
    export(run, token, zone, folder)
    fake = FakeCloudflare(token)
    fake.zone_get(ZONE, zone.id)
    zone.read(fake, lookup=False)
    result = run(fake, zone=zone.id, state="restored", folder=str(folder), latest=True)
    fake.assert_done()
    assert "failed" not in result and result["changed"] is False and result["api_calls"] == 7


def test_a_snapshot_of_another_zone_is_refused_after_the_lookup(run, token, zone, folder, tmp_path):
    exported = export(run, token, zone, folder)
    other = tmp_path / "other.json"
    with open(exported["snapshot"]["path"], encoding="utf-8") as stream:
        data = json.load(stream)
    data["zone"]["name"] = "example.org"
    other.write_text(json.dumps(data))
    fake = FakeCloudflare(token)
    fake.zone_lookup(ZONE, zone.id)
    result = run(fake, state="restored", path=str(other))
    fake.assert_done()
    assert result["failed"] is True and result["api_calls"] == 1
    assert result["msg"] == "%s is a snapshot of example.org, not of example.com: nothing was changed" % other


@pytest.mark.parametrize("options, message", [
    ({"state": "restored"}, "state=restored needs path (a snapshot file) or latest=true (the newest in folder)"),
    ({"state": "restored", "latest": True}, "latest=true needs folder"),
    ({"state": "restored", "latest": True, "path": "/x.json", "folder": "/tmp"}, "give path or latest=true, not both"),
    ({"state": "restored", "path": "x.json"}, "path x.json is relative: give an absolute path, or folder to take it in"),
    ({}, "state=exported needs folder (where timestamped snapshots go) or path"),
    ({"folder": "/tmp", "latest": True}, "latest only goes with state=restored"),
    ({"folder": "/tmp", "include": []}, "include is empty"),
    ({"folder": "/tmp", "ref_prefix": "bad prefix"}, "ref_prefix 'bad prefix' must be non-empty letters"),
])
def test_bad_options_fail_before_any_call(run, token, options, message):
    fake = FakeCloudflare(token)
    result = run(fake, **options)
    assert result["failed"] is True and message in result["msg"] and result["api_calls"] == 0 and fake.calls == []


@pytest.mark.parametrize("content, message", [
    ("[]", "not a zone snapshot"),
    ("{", "is not valid JSON"),
    (None, "does not exist"),
])
def test_a_bad_or_missing_snapshot_fails_before_any_call(run, token, tmp_path, content, message):
    path = tmp_path / "snapshot.json"
    if content is not None:
        path.write_text(content)
    fake = FakeCloudflare(token)
    result = run(fake, state="restored", path=str(path))
    assert result["failed"] is True and message in result["msg"] and fake.calls == []


def test_no_snapshot_in_the_folder_fails_before_any_call(run, token, folder):
    fake = FakeCloudflare(token)
    result = run(fake, state="restored", folder=str(folder), latest=True)
    assert result["failed"] is True and result["msg"].startswith("no snapshot of example.com in ") and fake.calls == []


def test_settings_the_collection_does_not_write_are_named_in_a_warning(run, token, zone, folder):
    zone.settings.append({"id": "ciphers", "value": ["ECDHE-RSA-AES128-GCM-SHA256"], "editable": True, "modified_on": None})
    exported = export(run, token, zone, folder)
    zone.settings[-1] = dict(zone.settings[-1], value=[])
    fake = FakeCloudflare(token)
    zone.read(fake, phases=[], records=False)
    result = run(fake, state="restored", path=exported["snapshot"]["path"], include=["settings"])
    fake.assert_done()
    assert result["changed"] is False and result["settings"]["not_restored"] == ["ciphers"]
    assert "zone setting ciphers differs from the snapshot but is not restored" in json.dumps(result["warnings"])
