# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import random

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _records as r
from ansible_collections.launchready.core.plugins.module_utils._records import RecordError

ZONE = "example.com"


def listed(record_id, rtype, name, content=None, ttl=1, proxied=False, **extra):
    item = {"id": record_id, "type": rtype, "name": name, "content": content, "ttl": ttl, "proxied": proxied, "comment": None, "tags": []}
    item.update(extra)
    return item


def desired(*items, zone=ZONE):
    entries, _warnings = r.parse_entries(list(items))
    return r.bind(entries, zone)


def plan(items, zone_records, **options):
    return r.make_plan(desired(*items), zone_records, **options)


def summary(p):
    """Creates, updates and deletes as short tuples, for readable assertions."""
    return (
        [(c.record.type, c.record.name, c.record.value.text) for c in p.creates],
        [(u.before.id, u.changes) for u in p.updates],
        [(d.record.id, d.reason) for d in p.deletes],
    )


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("@", "example.com"),
        ("", "example.com"),
        ("www", "www.example.com"),
        ("WWW", "www.example.com"),
        ("www.example.com", "www.example.com"),
        ("Www.Example.Com.", "www.example.com"),
        ("example.com.", "example.com"),
        ("*.dev", "*.dev.example.com"),
        ("_dmarc", "_dmarc.example.com"),
        ("other.org", "other.org.example.com"),
        ("bücher", "xn--bcher-kva.example.com"),
    ],
)
def test_names_become_lowercase_fqdns_without_trailing_dot(name, expected):
    assert r.normalize_name(name, "Example.COM.") == expected


@pytest.mark.parametrize("name, message", [("other.org.", "not in the zone"), ("a.*.b", "not a valid DNS name"), ("bad name", "not a valid DNS name")])
def test_bad_names_are_refused(name, message):
    with pytest.raises(RecordError, match=message):
        r.normalize_name(name, ZONE)


def test_absolute_names_need_no_zone_and_relative_ones_do():
    assert r.normalize_name("WWW.example.com.", None) == "www.example.com"
    assert not r.needs_zone_name("www.example.com.")
    assert r.needs_zone_name("www") and r.needs_zone_name("@")
    with pytest.raises(RecordError, match="needs the zone"):
        r.normalize_name("www", None)


# --- TXT -----------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["v=spf1 -all", '"v=spf1 -all"', '"v=spf1" " -all"', '  "v=spf1 "  "-all"  ', '"v=spf1\\032-all"'])
def test_txt_quoting_forms_compare_by_their_joined_value(content):
    assert r.txt_value(content) == "v=spf1 -all"
    assert r.make_value("TXT", content) == r.make_value("TXT", "v=spf1 -all")


def test_txt_is_written_quoted_and_split_into_255_byte_strings():
    value = "k=" + "x" * 598
    content = r.txt_content(value)
    strings = r.txt_strings(content)
    assert [len(s) for s in strings] == [255, 255, 90]
    assert "".join(strings) == value
    assert content.startswith('"k=xxx') and content.count('" "') == 2


def test_txt_split_counts_bytes_and_never_cuts_a_character():
    value = "é" * 200  # 400 bytes
    strings = r.txt_strings(r.txt_content(value))
    assert all(len(s.encode("utf-8")) <= 255 for s in strings)
    assert "".join(strings) == value and len(strings) == 2


def test_txt_quotes_and_backslashes_survive_a_round_trip():
    value = 'say "hi" \\ bye'
    content = r.txt_content(value)
    assert content == '"say \\"hi\\" \\\\ bye"'
    assert r.txt_value(content) == value


def test_short_txt_is_one_quoted_string():
    assert r.make_value("TXT", "v=spf1 -all").fields == {"content": '"v=spf1 -all"'}


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rtype, a, b",
    [
        ("AAAA", "2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("CNAME", "Target.Example.NET.", "target.example.net"),
        ("NS", "NS1.example.net.", "ns1.example.net"),
        ("MX", "10 MX.example.com.", "10 mx.example.com"),
        ("CAA", '0 issue "letsencrypt.org"', "0 ISSUE letsencrypt.org"),
        ("SRV", "10 5 5060 SIP.example.com.", "10 5 5060 sip.example.com"),
    ],
)
def test_content_is_normalised_per_type(rtype, a, b):
    assert r.make_value(rtype, a) == r.make_value(rtype, b)


def test_aaaa_is_sent_compressed_and_mx_with_its_priority():
    assert r.make_value("AAAA", "2001:0db8:0000::0001").fields == {"content": "2001:db8::1"}
    assert r.make_value("MX", "mx.example.com", priority=20).fields == {"content": "mx.example.com", "priority": 20}


def test_srv_and_caa_are_sent_as_data_and_equal_their_zone_file_form():
    srv = r.make_value("SRV", None, None, {"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com."})
    assert srv == r.make_value("SRV", "10 5 5060 sip.example.com")
    assert srv.fields == {"data": {"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com"}}
    caa = r.make_value("CAA", None, None, {"flags": 0, "tag": "issue", "value": "letsencrypt.org"})
    assert caa.fields == {"data": {"flags": 0, "tag": "issue", "value": "letsencrypt.org"}}
    assert caa.text == '0 issue "letsencrypt.org"'


def test_listed_srv_and_caa_are_read_from_data():
    srv = listed("1", "SRV", "_sip._tcp.example.com", "5 5060 sip.example.com", priority=10,
                 data={"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com"})
    assert r.listed_value(srv) == r.make_value("SRV", "10 5 5060 sip.example.com")
    caa = listed("2", "CAA", "example.com", '0 issue "letsencrypt.org"', data={"flags": 0, "tag": "issue", "value": "letsencrypt.org"})
    assert r.listed_value(caa) == r.make_value("CAA", '0 issue "letsencrypt.org"')


def test_listed_records_of_unsupported_types_compare_as_written():
    value = r.listed_value(listed("1", "HTTPS", "example.com", "1 . alpn=h2"))
    assert value.text == "1 . alpn=h2"
    assert value == r.listed_value(listed("2", "HTTPS", "example.com", "1 . alpn=h2"))


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, message",
    [
        ({"type": "A", "name": "www", "content": "300.1.2.3"}, r"records\[0\] \(A www\): '300.1.2.3' is not a valid IPv4 address"),
        ({"type": "A", "name": "www", "content": "192.0.2"}, "not a valid IPv4 address"),
        ({"type": "A", "name": "www", "content": "2001:db8::1"}, "not a valid IPv4 address"),
        ({"type": "AAAA", "name": "www", "content": "2001:db8::g"}, "not a valid IPv6 address"),
        ({"type": "AAA", "name": "www", "content": "192.0.2.1"}, r"unknown or unsupported type 'AAA' \(supported: A, AAAA"),
        ({"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 30}, "ttl must be 1 .automatic. or from 60 to 86400 seconds, not 30"),
        ({"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 0}, "ttl must be from 1 to 86400"),
        ({"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 86401}, "ttl must be from 1 to 86400"),
        ({"type": "MX", "name": "@", "content": "mx.example.com"}, "MX needs a priority"),
        ({"type": "MX", "name": "@", "content": "mx.example.com", "priority": 70000}, "priority must be from 0 to 65535"),
        ({"type": "TXT", "name": "@", "content": "x", "proxied": True}, "TXT records cannot be proxied"),
        ({"type": "MX", "name": "@", "content": "10 mx.example.com", "proxied": True}, "MX records cannot be proxied"),
        ({"type": "A", "name": "www"}, "content .* is missing"),
        ({"type": "A", "name": "www", "content": "192.0.2.1", "values": ["192.0.2.2"]}, "content or values, not both"),
        ({"type": "A", "name": "www", "values": []}, "values must be a non-empty list"),
        ({"type": "A", "name": "", "content": "192.0.2.1"}, "name is missing"),
        ({"type": "SRV", "name": "_sip._tcp", "data": {"priority": 1, "port": 5060, "target": "x.example.com"}}, "SRV data needs weight"),
        ({"type": "CAA", "name": "@", "data": {"flags": 0, "value": "x"}}, "CAA data needs tag and value"),
        ({"type": "A", "name": "www", "content": "192.0.2.1", "state": "gone"}, "state must be present or absent"),
        ({"type": "A", "name": "www", "values": [{"content": "192.0.2.1", "ttl": 60}]}, "unknown keys in a value: ttl"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(item, message):
    with pytest.raises(RecordError, match=message):
        r.parse_entries([item])


def test_errors_name_the_item_by_its_position():
    good = {"type": "A", "name": "www", "content": "192.0.2.1"}
    with pytest.raises(RecordError, match=r"^records\[2\] \(TXT @\)"):
        r.parse_entries([good, good, {"type": "TXT", "name": "@", "content": "x", "proxied": True}])


def test_ttl_1_and_60_to_86400_are_accepted():
    for ttl in (1, 60, 3600, 86400):
        r.parse_entries([{"type": "A", "name": "www", "content": "192.0.2.1", "ttl": ttl}])


def test_ttl_on_a_proxied_record_is_ignored_with_a_warning():
    entries, warnings = r.parse_entries([{"type": "A", "name": "www", "content": "192.0.2.1", "proxied": True, "ttl": 300}])
    assert entries[0].ttl is None
    assert warnings and "ttl 300 is ignored" in warnings[0]


@pytest.mark.parametrize(
    "items, message",
    [
        (
            [{"type": "CNAME", "name": "www", "content": "a.example.net"}, {"type": "A", "name": "WWW.example.com.", "content": "192.0.2.1"}],
            r"records\[0\]: a CNAME at www.example.com cannot sit beside other records, and records\[1\] puts a A record there",
        ),
        ([{"type": "CNAME", "name": "www", "values": ["a.example.net", "b.example.net"]}], "can have only one CNAME"),
        ([{"type": "CNAME", "name": "www", "content": "WWW.example.com."}], r"records\[0\] \(CNAME www\): a CNAME cannot point at its own name"),
        (
            [{"type": "TXT", "name": "@", "content": "x"}, {"type": "TXT", "name": "example.com.", "content": '"x"'}],
            r"records\[0\] and records\[1\] both ask for TXT",
        ),
        (
            [{"type": "TXT", "name": "@", "content": "x"}, {"type": "TXT", "name": "@", "content": "x", "state": "absent"}],
            r"records\[1\] \(TXT @\) asks to remove what records\[0\] asks to keep",
        ),
        ([{"type": "A", "name": "other.org.", "content": "192.0.2.1"}], r"records\[0\] \(A other.org.\): name 'other.org.' is not in the zone"),
    ],
)
def test_the_wanted_sets_are_checked_against_each_other(items, message):
    entries, _warnings = r.parse_entries(items)
    with pytest.raises(RecordError, match=message):
        r.bind(entries, ZONE)


def test_items_naming_the_same_set_add_up():
    d = desired({"type": "TXT", "name": "@", "content": "a"}, {"type": "txt", "name": "example.com", "values": ["b", {"content": "c"}]})
    assert sorted(x.value.text for x in d.present[("example.com", "TXT")]) == ["a", "b", "c"]


# --- plan ----------------------------------------------------------------------------------


def test_an_empty_zone_gets_every_record_created_with_ttl_auto_by_default():
    p = plan(
        [
            {"type": "A", "name": "@", "content": "192.0.2.1", "proxied": True},
            {"type": "MX", "name": "@", "values": ["10 mx1.example.net", "20 mx2.example.net"], "ttl": 3600},
            {"type": "TXT", "name": "@", "content": "v=spf1 -all", "comment": "spf", "tags": ["team:web"]},
        ],
        [],
    )
    assert [c.body() for c in p.creates] == [
        {"type": "A", "name": "example.com", "ttl": 1, "content": "192.0.2.1", "proxied": True},
        {"type": "MX", "name": "example.com", "ttl": 3600, "content": "mx1.example.net", "priority": 10},
        {"type": "MX", "name": "example.com", "ttl": 3600, "content": "mx2.example.net", "priority": 20},
        {"type": "TXT", "name": "example.com", "ttl": 1, "content": '"v=spf1 -all"', "comment": "spf", "tags": ["team:web"]},
    ]
    assert not p.updates and not p.deletes and p.changed


def test_records_already_right_in_another_spelling_are_left_alone():
    zone = [
        listed("1", "TXT", "example.com", '"v=spf1" " -all"'),
        listed("2", "AAAA", "www.example.com", "2001:db8::1"),
        listed("3", "CNAME", "app.example.com", "target.example.net"),
        listed("4", "MX", "example.com", "mx.example.net", priority=10),
    ]
    p = plan(
        [
            {"type": "TXT", "name": "@", "content": "v=spf1 -all"},
            {"type": "AAAA", "name": "www", "content": "2001:0DB8::0001"},
            {"type": "CNAME", "name": "APP", "content": "Target.Example.NET."},
            {"type": "MX", "name": "@", "content": "10 mx.example.net."},
        ],
        zone,
    )
    assert not p.changed and p.diff() == {"before": {}, "after": {}}


def test_a_changed_value_is_a_patch_of_the_existing_record_not_a_delete_and_create():
    p = plan([{"type": "A", "name": "www", "content": "192.0.2.2"}], [listed("1", "A", "www.example.com", "192.0.2.1", ttl=300, comment="web")])
    assert summary(p) == ([], [("1", {"content": "192.0.2.2"})], [])
    assert p.updates[0].body() == {"id": "1", "content": "192.0.2.2"}
    assert p.updates[0].after.ttl == 300 and p.updates[0].after.comment == "web"


def test_fields_the_user_did_not_set_are_left_as_they_are():
    zone = [listed("1", "A", "www.example.com", "192.0.2.1", ttl=3600, proxied=False, comment="keep", tags=["a:b"])]
    assert not plan([{"type": "A", "name": "www", "content": "192.0.2.1"}], zone).changed


def test_only_the_fields_that_differ_are_sent():
    zone = [listed("1", "A", "www.example.com", "192.0.2.1", ttl=3600, comment="old", tags=["a:b"])]
    p = plan([{"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 300, "comment": "old", "tags": ["team:web"]}], zone)
    assert summary(p)[1] == [("1", {"ttl": 300, "tags": ["team:web"]})]
    p = plan([{"type": "A", "name": "www", "content": "192.0.2.1", "comment": "", "tags": []}], zone)
    assert summary(p)[1] == [("1", {"comment": "", "tags": []})]


def test_an_empty_comment_matches_a_missing_one():
    assert not plan([{"type": "A", "name": "www", "content": "192.0.2.1", "comment": ""}], [listed("1", "A", "www.example.com", "192.0.2.1")]).changed


def test_turning_the_proxy_on_sets_ttl_auto_and_then_settles():
    zone = [listed("1", "A", "www.example.com", "192.0.2.1", ttl=3600)]
    item = {"type": "A", "name": "www", "content": "192.0.2.1", "proxied": True, "ttl": 300}
    p = plan([item], zone)
    assert summary(p)[1] == [("1", {"proxied": True, "ttl": 1})]
    after = [listed("1", "A", "www.example.com", "192.0.2.1", ttl=1, proxied=True)]
    assert not plan([item], after).changed


def test_a_proxied_record_never_diffs_on_ttl():
    zone = [listed("1", "A", "www.example.com", "192.0.2.1", ttl=1, proxied=True)]
    p = plan([{"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 300}], zone)
    assert not p.changed
    assert p.warnings and "ttl 300 is ignored" in p.warnings[0]


def test_turning_the_proxy_off_applies_the_wanted_ttl():
    zone = [listed("1", "A", "www.example.com", "192.0.2.1", ttl=1, proxied=True)]
    p = plan([{"type": "A", "name": "www", "content": "192.0.2.1", "proxied": False, "ttl": 300}], zone)
    assert summary(p)[1] == [("1", {"proxied": False, "ttl": 300})]


def test_a_set_is_exact_values_are_reused_then_created_or_deleted():
    zone = [listed("1", "TXT", "example.com", "keep"), listed("2", "TXT", "example.com", "old-a"), listed("3", "TXT", "example.com", "old-b")]
    p = plan([{"type": "TXT", "name": "@", "values": ["keep", "new"]}], zone)
    assert summary(p) == ([], [("2", {"content": '"new"'})], [("3", "not_in_set")])
    p = plan([{"type": "TXT", "name": "@", "values": ["keep", "n1", "n2", "n3"]}], zone)
    assert summary(p) == ([("TXT", "example.com", "n3")], [("2", {"content": '"n1"'}), ("3", {"content": '"n2"'})], [])


def test_state_absent_deletes_the_values_given_or_the_whole_set():
    zone = [listed("1", "TXT", "example.com", "a"), listed("2", "TXT", "example.com", "b"), listed("3", "A", "old.example.com", "192.0.2.9")]
    p = plan([{"type": "TXT", "name": "@", "content": "b", "state": "absent"}], zone)
    assert summary(p) == ([], [], [("2", "absent")])
    p = plan([{"type": "TXT", "name": "@", "state": "absent"}, {"type": "A", "name": "old", "state": "absent"}], zone)
    assert summary(p)[2] == [("1", "absent"), ("2", "absent"), ("3", "absent")]
    assert not plan([{"type": "A", "name": "never", "state": "absent"}], zone).changed


def test_prune_deletes_what_the_list_does_not_name_but_never_the_apex_ns():
    zone = [
        listed("1", "A", "www.example.com", "192.0.2.1"),
        listed("2", "A", "old.example.com", "192.0.2.2"),
        listed("3", "NS", "example.com", "ada.ns.cloudflare.com"),
        listed("4", "NS", "sub.example.com", "ns.elsewhere.net"),
        listed("5", "TXT", "example.com", "x"),
    ]
    items = [{"type": "A", "name": "www", "content": "192.0.2.1"}, {"type": "TXT", "name": "@", "state": "absent", "content": "other"}]
    assert summary(plan(items, zone, prune=False)) == ([], [], [])
    assert summary(plan(items, zone, prune=True)) == ([], [], [("2", "pruned"), ("4", "pruned")])


@pytest.mark.parametrize(
    "pattern",
    ["old.example.com", "old", "OLD", "o*", "a:old", "A:old.example.com", "*.example.com"],
)
def test_prune_ignore_matches_full_or_relative_names_with_or_without_type(pattern):
    zone = [listed("1", "A", "old.example.com", "192.0.2.2")]
    assert not plan([], zone, prune=True, prune_ignore=[pattern]).changed


def test_prune_ignore_of_another_type_does_not_protect():
    zone = [listed("1", "A", "old.example.com", "192.0.2.2"), listed("2", "TXT", "_acme-challenge.example.com", "token")]
    p = plan([], zone, prune=True, prune_ignore=["txt:old", "_acme-challenge*"])
    assert summary(p)[2] == [("1", "pruned")]


def _zone_of(count):
    return [listed(str(i), "A", "h%02d.example.com" % i, "192.0.2.%d" % (i + 1)) for i in range(count)]


def test_the_prune_threshold_refuses_a_plan_deleting_too_much_and_says_so():
    keep = [{"type": "A", "name": "h%02d" % i, "content": "192.0.2.%d" % (i + 1)} for i in range(13)]
    with pytest.raises(RecordError) as caught:
        plan(keep, _zone_of(20), prune=True)
    assert "refusing to delete 7 of the zone's 20 records (35%, more than prune_threshold 30%)" in str(caught.value)
    assert "Nothing was changed" in str(caught.value) and "force: true" in str(caught.value)
    assert len(caught.value.plan.deletes) == 7
    assert len(plan(keep, _zone_of(20), prune=True, force=True).deletes) == 7
    assert len(plan(keep, _zone_of(20), prune=True, prune_threshold=40).deletes) == 7


def test_the_prune_threshold_allows_exactly_the_threshold():
    keep = [{"type": "A", "name": "h%02d" % i, "content": "192.0.2.%d" % (i + 1)} for i in range(14)]
    assert len(plan(keep, _zone_of(20), prune=True).deletes) == 6


def test_the_prune_threshold_ignores_small_zones_and_explicit_absent():
    assert len(plan([], _zone_of(9), prune=True).deletes) == 9
    gone = [{"type": "A", "name": "h%02d" % i, "state": "absent"} for i in range(15)]
    assert len(plan(gone, _zone_of(20)).deletes) == 15


def test_values_dropped_from_a_set_count_towards_the_threshold():
    zone = [listed(str(i), "TXT", "example.com", "v%d" % i) for i in range(10)]
    with pytest.raises(RecordError, match="refusing to delete 9 of the zone's 10"):
        plan([{"type": "TXT", "name": "@", "content": "v0"}], zone)


def test_a_cname_cannot_be_added_beside_records_the_list_does_not_manage():
    zone = [listed("1", "A", "www.example.com", "192.0.2.1")]
    item = {"type": "CNAME", "name": "www", "content": "target.example.net"}
    with pytest.raises(RecordError, match=r"records\[0\]: cannot add CNAME www.example.com target.example.net: www.example.com already has A"):
        plan([item], zone)
    p = plan([item, {"type": "A", "name": "www", "state": "absent"}], zone)
    assert summary(p) == ([("CNAME", "www.example.com", "target.example.net")], [], [("1", "absent")])
    with pytest.raises(RecordError, match="already has CNAME"):
        plan([{"type": "A", "name": "app", "content": "192.0.2.1"}], [listed("2", "CNAME", "app.example.com", "x.example.net")])


def test_batches_hold_at_most_the_limit_deletes_first():
    zone = [listed("d%d" % i, "A", "old%d.example.com" % i, "192.0.2.1") for i in range(150)]
    zone += [listed("u%d" % i, "A", "u%d.example.com" % i, "192.0.2.1") for i in range(100)]
    items = [{"type": "A", "name": "u%d" % i, "content": "198.51.100.1"} for i in range(100)]
    items += [{"type": "A", "name": "new%d" % i, "content": "192.0.2.1"} for i in range(200)]
    p = plan(items, zone, prune=True, force=True)
    batches = p.batches(200)
    assert [len(b) for b in batches] == [200, 200, 50]
    assert [(len(b.deletes), len(b.patches), len(b.posts)) for b in batches] == [(150, 50, 0), (0, 50, 150), (0, 0, 50)]
    assert set(batches[0].body()) == {"deletes", "patches"} and set(batches[1].body()) == {"patches", "posts"}
    assert batches[0].body()["deletes"][0] == {"id": "d0"}
    assert [len(b) for b in p.batches(3500)] == [450]
    assert p.as_dict(200)["batches"] == 3


def test_a_batch_names_the_change_an_error_points_at():
    p = plan([{"type": "A", "name": "www", "content": "192.0.2.1"}, {"type": "TXT", "name": "@", "content": "x"}], [])
    batch = p.batches(200)[0]
    assert batch.describe("posts", 0) == "create TXT example.com x"
    assert batch.describe("posts", 1) == "create A www.example.com 192.0.2.1"
    assert batch.describe("posts", 5) is None and batch.describe("nonsense", 0) is None


def test_batch_answers_give_new_records_their_ids():
    p = plan([{"type": "A", "name": "www", "content": "192.0.2.1"}], [])
    p.batches(200)[0].record_answer({"posts": [listed("new1", "A", "www.example.com", "192.0.2.1")]})
    assert p.records() == [{"name": "www.example.com", "type": "A", "value": "192.0.2.1", "ttl": 1, "proxied": False, "id": "new1"}]


@pytest.mark.parametrize(
    "plan_name, limit", [("free", 200), ("pro", 3500), ("business", 3500), ("enterprise", 3500), ("Enterprise", 3500), ("unknown", 200), (None, 200)]
)
def test_batch_limits_follow_the_documented_plan_limits(plan_name, limit):
    assert r.batch_limit(plan_name) == limit


def test_the_diff_shows_only_changed_sets_sorted_and_stable():
    zone = [
        listed("1", "TXT", "example.com", "b"),
        listed("2", "TXT", "example.com", "a"),
        listed("3", "A", "www.example.com", "192.0.2.1"),
        listed("4", "A", "same.example.com", "192.0.2.1"),
    ]
    items = [
        {"type": "TXT", "name": "@", "values": ["a", "c"]},
        {"type": "A", "name": "www", "content": "192.0.2.1", "ttl": 120},
        {"type": "A", "name": "same", "content": "192.0.2.1"},
    ]
    p = plan(items, zone)
    expected = {
        "before": {
            "example.com TXT": [{"value": "a", "ttl": 1, "proxied": False}, {"value": "b", "ttl": 1, "proxied": False}],
            "www.example.com A": [{"value": "192.0.2.1", "ttl": 1, "proxied": False}],
        },
        "after": {
            "example.com TXT": [{"value": "a", "ttl": 1, "proxied": False}, {"value": "c", "ttl": 1, "proxied": False}],
            "www.example.com A": [{"value": "192.0.2.1", "ttl": 120, "proxied": False}],
        },
    }
    assert p.diff() == expected
    shuffled = list(zone)
    random.Random(4).shuffle(shuffled)
    assert plan(list(reversed(items)), shuffled).diff() == expected
    assert plan(list(reversed(items)), shuffled).as_dict() == p.as_dict()


def test_the_plan_reports_names_types_values_and_reasons():
    zone = [listed("1", "A", "www.example.com", "192.0.2.1"), listed("2", "A", "old.example.com", "192.0.2.2")]
    p = plan([{"type": "A", "name": "www", "content": "192.0.2.3"}, {"type": "TXT", "name": "@", "content": "x"}], zone, prune=True)
    assert p.as_dict(200) == {
        "creates": [{"name": "example.com", "type": "TXT", "value": "x", "ttl": 1, "proxied": False}],
        "updates": [
            {
                "id": "1", "name": "www.example.com", "type": "A", "changes": ["content"],
                "before": {"name": "www.example.com", "type": "A", "value": "192.0.2.1", "ttl": 1, "proxied": False},
                "after": {"name": "www.example.com", "type": "A", "value": "192.0.2.3", "ttl": 1, "proxied": False},
            }
        ],
        "deletes": [{"id": "2", "name": "old.example.com", "type": "A", "value": "192.0.2.2", "ttl": 1, "proxied": False, "reason": "pruned"}],
        "batches": 1,
    }


def test_the_resulting_records_are_the_managed_sets_only():
    zone = [listed("1", "A", "www.example.com", "192.0.2.1"), listed("2", "A", "other.example.com", "192.0.2.2")]
    p = plan([{"type": "A", "name": "www", "values": ["192.0.2.1", "192.0.2.5"]}], zone)
    assert [(x["name"], x["value"], x.get("id")) for x in p.records()] == [("www.example.com", "192.0.2.1", "1"), ("www.example.com", "192.0.2.5", None)]


def test_without_the_zone_name_prune_is_refused():
    entries, _warnings = r.parse_entries([{"type": "A", "name": "www.example.com.", "content": "192.0.2.1"}])
    d = r.bind(entries, None)
    assert not r.make_plan(d, [listed("1", "A", "www.example.com", "192.0.2.1")]).changed
    with pytest.raises(RecordError, match="prune needs the zone's name"):
        r.make_plan(d, [], prune=True)
