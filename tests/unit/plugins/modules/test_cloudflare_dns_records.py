# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.launchready.core.plugins.modules import cloudflare_dns_records
from ansible_collections.launchready.core.tests.unit.plugins.fake_cloudflare import (
    FakeCloudflare,
    fake_token,
    record,
    run_module,
    zone_id,
)

ZONE = "example.com"


@pytest.fixture
def token():
    return fake_token()


@pytest.fixture
def zid():
    return zone_id()


@pytest.fixture
def fake(token):
    return FakeCloudflare(token)


@pytest.fixture
def run(monkeypatch, capsys, fake, token):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)

    def run(records, check_mode=False, diff=False, **options):
        args = dict(api_token=token, zone=options.pop("zone", ZONE), records=records, **options)
        result = run_module(monkeypatch, capsys, cloudflare_dns_records, args, fake, check_mode=check_mode, diff=diff)
        assert token not in json.dumps(result), "the API token leaked into the result"
        return result

    return run


RECORDS = [
    {"type": "A", "name": "@", "content": "192.0.2.10", "proxied": True},
    {"type": "CNAME", "name": "www", "content": "example.com", "proxied": True},
    {"type": "MX", "name": "@", "values": ["10 mx1.mail.example.net", {"content": "mx2.mail.example.net", "priority": 20}]},
    {"type": "TXT", "name": "@", "values": ["v=spf1 include:_spf.mail.example.net -all", "verify=abc"], "comment": "launch"},
]

BATCH = {
    "posts": [
        {"type": "A", "name": "example.com", "ttl": 1, "content": "192.0.2.10", "proxied": True},
        {"type": "MX", "name": "example.com", "ttl": 1, "content": "mx1.mail.example.net", "priority": 10},
        {"type": "MX", "name": "example.com", "ttl": 1, "content": "mx2.mail.example.net", "priority": 20},
        {"type": "TXT", "name": "example.com", "ttl": 1, "content": '"v=spf1 include:_spf.mail.example.net -all"', "comment": "launch"},
        {"type": "TXT", "name": "example.com", "ttl": 1, "content": '"verify=abc"', "comment": "launch"},
        {"type": "CNAME", "name": "www.example.com", "ttl": 1, "content": "example.com", "proxied": True},
    ]
}


def created(body):
    """The records the API answers a batch of posts with."""
    answers = []
    for number, post in enumerate(body["posts"]):
        extra = {k: v for k, v in post.items() if k not in ("type", "name", "content", "ttl", "proxied")}
        answers.append(record("%032x" % (number + 1), post["type"], post["name"], post.get("content"), post["ttl"], post.get("proxied", False), **extra))
    return answers


def test_creates_a_zone_from_empty_in_one_batch(run, fake, zid):
    fake.zone_lookup(ZONE, zid).list_records(zid, []).batch(zid, BATCH, result={"posts": created(BATCH)})
    result = run(RECORDS)
    fake.assert_done()
    assert result["changed"] is True and "failed" not in result
    assert result["api_calls"] == 3
    assert result["zone"] == {"id": zid, "name": ZONE, "plan": "free"}
    assert len(result["plan"]["creates"]) == 6 and result["plan"]["batches"] == 1
    assert not result["plan"]["updates"] and not result["plan"]["deletes"]
    assert [(x["type"], x["value"], x["id"]) for x in result["records"] if x["name"] == ZONE] == [
        ("A", "192.0.2.10", "%032x" % 1),
        ("MX", "10 mx1.mail.example.net", "%032x" % 2),
        ("MX", "20 mx2.mail.example.net", "%032x" % 3),
        ("TXT", "v=spf1 include:_spf.mail.example.net -all", "%032x" % 4),
        ("TXT", "verify=abc", "%032x" % 5),
    ]
    assert "diff" not in result


def test_check_mode_makes_no_write_and_reports_the_plan_the_real_run_carries_out(run, fake, zid):
    fake.zone_lookup(ZONE, zid).list_records(zid, [])
    checked = run(RECORDS, check_mode=True, diff=True)
    fake.assert_done()
    assert fake.writes == 0 and checked["changed"] is True and checked["api_calls"] == 2

    fake.zone_lookup(ZONE, zid).list_records(zid, []).batch(zid, BATCH, result={"posts": created(BATCH)})
    applied = run(RECORDS, diff=True)
    fake.assert_done()
    assert applied["plan"] == checked["plan"]
    assert applied["diff"] == checked["diff"]
    assert [{k: v for k, v in x.items() if k != "id"} for x in applied["records"]] == checked["records"]


def test_a_second_run_changes_nothing_in_two_calls(run, fake, zid):
    zone = created(BATCH)
    for item in zone:
        item["content"] = item["content"].strip('"') if item["type"] == "TXT" else item["content"]  # older records: unquoted TXT
    fake.zone_lookup(ZONE, zid).list_records(zid, zone)
    result = run(RECORDS, diff=True)
    fake.assert_done()
    assert result["changed"] is False and fake.writes == 0 and result["api_calls"] == 2
    assert result["plan"] == {"creates": [], "updates": [], "deletes": [], "batches": 0}
    assert result["diff"] == {"before": {}, "after": {}}
    assert len(result["records"]) == 6


def test_a_zone_given_by_id_with_absolute_names_skips_the_lookup(run, fake, zid):
    fake.list_records(zid, [record("1" * 32, "A", "www.example.com", "192.0.2.1")])
    result = run([{"type": "A", "name": "www.example.com.", "content": "192.0.2.1"}], zone=zid)
    fake.assert_done()
    assert result["changed"] is False and result["api_calls"] == 1 and result["zone"] == {"id": zid}


def test_a_zone_given_by_id_with_relative_names_is_looked_up_by_id(run, fake, zid):
    fake.zone_get(ZONE, zid).list_records(zid, [record("1" * 32, "A", "www.example.com", "192.0.2.1")])
    result = run([{"type": "A", "name": "www", "content": "192.0.2.1"}], zone=zid)
    fake.assert_done()
    assert result["changed"] is False and result["api_calls"] == 2 and result["zone"]["name"] == ZONE


def _hosts(count, content="192.0.2.1"):
    return [{"type": "A", "name": "h%04d" % i, "content": content} for i in range(count)]


def test_200_records_from_empty_take_three_calls(run, fake, zid):
    fake.zone_lookup(ZONE, zid).list_records(zid, [])
    body = {"posts": [{"type": "A", "name": "h%04d.example.com" % i, "ttl": 1, "content": "192.0.2.1"} for i in range(200)]}
    fake.batch(zid, body, result={"posts": created(body)})
    result = run(_hosts(200))
    fake.assert_done()
    assert result["api_calls"] == 3 and result["plan"]["batches"] == 1


@pytest.mark.parametrize("plan, batches", [("pro", 1), ("free", 18)])
def test_3500_records_take_one_call_per_batch_of_the_plan_limit(run, fake, zid, plan, batches):
    fake.zone_lookup(ZONE, zid, plan=plan).list_records(zid, [])
    posts = [{"type": "A", "name": "h%04d.example.com" % i, "ttl": 1, "content": "192.0.2.1"} for i in range(3500)]
    size = 3500 if plan == "pro" else 200
    for start in range(0, 3500, size):
        body = {"posts": posts[start:start + size]}
        fake.batch(zid, body, result={"posts": created(body)})
    result = run(_hosts(3500))
    fake.assert_done()
    assert result["plan"]["batches"] == batches
    assert result["api_calls"] == 2 + batches


def test_a_zone_given_by_id_is_looked_up_when_the_batch_size_matters(run, fake, zid):
    fake.list_records(zid, []).zone_get(ZONE, zid, plan="pro")
    body = {"posts": [{"type": "A", "name": "h%04d.example.com" % i, "ttl": 1, "content": "192.0.2.1"} for i in range(201)]}
    fake.batch(zid, body, result={"posts": created(body)})
    result = run([dict(item, name=item["name"] + ".example.com.") for item in _hosts(201)], zone=zid)
    fake.assert_done()
    assert result["api_calls"] == 3 and result["plan"]["batches"] == 1


def test_changes_are_patches_of_existing_records_and_deletes(run, fake, zid):
    zone = [
        record("a" * 32, "A", "www.example.com", "192.0.2.1", ttl=300, comment="web"),
        record("b" * 32, "TXT", "example.com", '"keep"'),
        record("c" * 32, "TXT", "example.com", '"drop"'),
        record("d" * 32, "A", "old.example.com", "192.0.2.9"),
    ]
    fake.zone_lookup(ZONE, zid).list_records(zid, zone)
    fake.batch(zid, {"deletes": [{"id": "c" * 32}, {"id": "d" * 32}], "patches": [{"id": "a" * 32, "content": "192.0.2.2"}]})
    result = run(
        [
            {"type": "A", "name": "www", "content": "192.0.2.2"},
            {"type": "TXT", "name": "@", "content": "keep"},
            {"type": "A", "name": "old", "state": "absent"},
        ],
        diff=True,
    )
    fake.assert_done()
    assert result["changed"] is True and result["api_calls"] == 3
    assert [(d["name"], d["reason"]) for d in result["plan"]["deletes"]] == [("example.com", "not_in_set"), ("old.example.com", "absent")]
    assert result["diff"]["before"]["www.example.com A"] == [{"value": "192.0.2.1", "ttl": 300, "proxied": False, "comment": "web"}]
    assert result["diff"]["after"]["www.example.com A"] == [{"value": "192.0.2.2", "ttl": 300, "proxied": False, "comment": "web"}]


def test_prune_with_ignore_patterns(run, fake, zid):
    zone = [
        record("a" * 32, "A", "www.example.com", "192.0.2.1"),
        record("b" * 32, "TXT", "_acme-challenge.example.com", '"token"'),
        record("c" * 32, "A", "stale.example.com", "192.0.2.9"),
        record("d" * 32, "NS", "example.com", "ada.ns.cloudflare.com"),
    ]
    fake.zone_lookup(ZONE, zid).list_records(zid, zone).batch(zid, {"deletes": [{"id": "c" * 32}]})
    result = run([{"type": "A", "name": "www", "content": "192.0.2.1"}], prune=True, prune_ignore=["_acme-challenge*"])
    fake.assert_done()
    assert [d["name"] for d in result["plan"]["deletes"]] == ["stale.example.com"]


def test_the_prune_threshold_refuses_and_changes_nothing_unless_forced(run, fake, zid):
    zone = [record("%032x" % i, "A", "h%04d.example.com" % i, "192.0.2.1") for i in range(20)]
    fake.zone_lookup(ZONE, zid).list_records(zid, zone)
    refused = run(_hosts(10), prune=True)
    fake.assert_done()
    assert refused["failed"] is True and fake.writes == 0 and refused["changed"] is False
    assert "refusing to delete 10 of the zone's 20 records (50%, more than prune_threshold 30%)" in refused["msg"]
    assert len(refused["plan"]["deletes"]) == 10 and refused["api_calls"] == 2

    fake.zone_lookup(ZONE, zid).list_records(zid, zone).batch(zid, {"deletes": [{"id": "%032x" % i} for i in range(10, 20)]})
    forced = run(_hosts(10), prune=True, force=True)
    fake.assert_done()
    assert forced["changed"] is True and len(forced["plan"]["deletes"]) == 10


@pytest.mark.parametrize(
    "records, message",
    [
        ([{"type": "A", "name": "www", "content": "192.0.2.300"}], "records[0] (A www): '192.0.2.300' is not a valid IPv4 address"),
        ([{"type": "AAA", "name": "www", "content": "192.0.2.1"}], "records[0] (AAA www): unknown or unsupported type 'AAA'"),
        ([{"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 90000}], "ttl must be from 1 to 86400, not 90000"),
        ([{"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 59}], "ttl must be 1 (automatic) or from 60 to 86400 seconds, not 59"),
        ([{"type": "MX", "name": "@", "content": "mx.example.net"}], "MX needs a priority"),
        ([{"type": "TXT", "name": "@", "content": "x", "proxied": True}], "TXT records cannot be proxied"),
        (
            [{"type": "CNAME", "name": "www", "content": "x.example.net"}, {"type": "TXT", "name": "www", "content": "y"}],
            "a CNAME at www.example.com cannot sit beside other records",
        ),
        ([{"type": "A", "name": "www", "content": "192.0.2.1", "values": ["192.0.2.2"]}], "parameters are mutually exclusive: content|values"),
        ([{"type": "A", "content": "192.0.2.1"}], "missing required arguments: name"),
    ],
)
def test_bad_input_fails_before_any_api_call(run, fake, records, message):
    result = run(records)
    assert result["failed"] is True and message in result["msg"]
    assert fake.calls == []


def test_a_missing_token_fails_before_any_api_call(monkeypatch, capsys, fake):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    result = run_module(monkeypatch, capsys, cloudflare_dns_records, {"zone": ZONE, "records": []}, fake)
    assert result["failed"] is True and "api_token" in result["msg"] and fake.calls == []


def test_the_token_can_come_from_the_environment(monkeypatch, capsys, zid):
    token = fake_token()
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", token)
    fake = FakeCloudflare(token)
    fake.zone_lookup(ZONE, zid).list_records(zid, [])
    result = run_module(monkeypatch, capsys, cloudflare_dns_records, {"zone": ZONE, "records": []}, fake)
    fake.assert_done()
    assert result["changed"] is False and token not in json.dumps(result)


def test_a_wrong_token_gives_a_clear_error_and_no_write(run, fake):
    fake.expect("GET", "/zones", params={"name": ZONE, "page": "1", "per_page": "50"}, status=401,
                errors=[{"code": 1000, "message": "Invalid API Token"}])
    result = run(RECORDS)
    fake.assert_done()
    assert result["failed"] is True and fake.writes == 0
    assert "GET /zones failed with HTTP 401: 1000 Invalid API Token. Check that api_token is valid" in result["msg"]
    assert result["status"] == 401 and result["error_codes"] == [1000] and result["api_calls"] == 1


def test_a_zone_that_does_not_exist_gives_a_clear_error(run, fake):
    fake.expect("GET", "/zones", params={"name": "nope.test", "page": "1", "per_page": "50"}, result=[], result_info={"total_pages": 0})
    result = run([], zone="nope.test")
    fake.assert_done()
    assert result["failed"] is True and "zone nope.test not found" in result["msg"]


def test_a_rejected_batch_names_the_record_and_says_nothing_was_applied(run, fake, zid):
    fake.zone_lookup(ZONE, zid).list_records(zid, [])
    fake.batch(zid, BATCH, status=400, errors=[{"code": 9005, "message": "Content for CNAME record is invalid", "source": {"pointer": "/posts/5/content"}}])
    result = run(RECORDS)
    fake.assert_done()
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(
        "batch 1 of 1 was rejected: POST /zones/%s/dns_records/batch failed with HTTP 400: 9005 Content for CNAME record is invalid." % zid
    )
    assert "Caused by: create CNAME www.example.com example.com." in result["msg"]
    assert "none of its 6 changes were applied; the zone is as it was before this task." in result["msg"]
    assert result["error_codes"] == [9005] and len(result["plan"]["creates"]) == 6


def test_a_rejected_later_batch_says_what_was_applied_before_it(run, fake, zid):
    fake.zone_lookup(ZONE, zid).list_records(zid, [])
    posts = [{"type": "A", "name": "h%04d.example.com" % i, "ttl": 1, "content": "192.0.2.1"} for i in range(250)]
    fake.batch(zid, {"posts": posts[:200]}, result={"posts": created({"posts": posts[:200]})})
    fake.batch(zid, {"posts": posts[200:]}, status=400, errors=[{"code": 81058, "message": "An identical record already exists."}])
    result = run(_hosts(250))
    fake.assert_done()
    assert result["failed"] is True and result["changed"] is True
    assert "batch 2 of 2 was rejected" in result["msg"] and "Caused by" not in result["msg"]
    assert "the 200 changes of the batches before it were applied. Fix the cause and run the task again" in result["msg"]


def test_rate_limits_and_server_errors_are_retried_transparently(run, fake, zid, monkeypatch):
    fake.expect("GET", "/zones", params={"name": ZONE, "page": "1", "per_page": "50"}, status=429, headers={"Retry-After": "3"},
                errors=[{"code": 971, "message": "Please wait"}])
    fake.zone_lookup(ZONE, zid)
    fake.expect("GET", "/zones/%s/dns_records" % zid, params={"page": "1", "per_page": "5000000"}, status=502, body="bad gateway")
    fake.list_records(zid, [])
    fake.batch(zid, BATCH, status=503, errors=[{"code": 10001, "message": "unavailable"}])
    fake.batch(zid, BATCH, result={"posts": created(BATCH)})
    result = run(RECORDS)
    fake.assert_done()
    assert result["changed"] is True and result["api_calls"] == 6


def test_proxied_records_with_a_ttl_warn_and_never_diff(run, fake, zid):
    fake.zone_lookup(ZONE, zid).list_records(zid, [record("a" * 32, "A", "www.example.com", "192.0.2.1", ttl=1, proxied=True)])
    result = run([{"type": "A", "name": "www", "content": "192.0.2.1", "proxied": True, "ttl": 300}])
    fake.assert_done()
    assert result["changed"] is False
    assert "ttl 300 is ignored" in json.dumps(result["warnings"])  # plain strings before ansible-core 2.19, summaries since


def test_prune_threshold_must_be_a_percentage(run, fake):
    result = run([], prune_threshold=120)
    assert result["failed"] is True and "prune_threshold must be a percentage" in result["msg"] and fake.calls == []
