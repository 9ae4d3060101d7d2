# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DMARC: parsing and judging records (RFC 7489, RFC 9989), building them, the DNS Tree Walk."""

from __future__ import annotations

import asyncio

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _dmarc, _email_auth
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK
from ansible_collections.launchready.core.tests.unit.plugins.module_utils.test_spf import FakeResolver


def judge(text: str, domain: str = "example.com"):
    return _dmarc.record_findings(_dmarc.parse(text), domain)


def find(findings, fragment: str):
    match = [f for f in findings if fragment in f.title]
    assert match, [f.title for f in findings]
    return match[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("v=DMARC1; p=none", True),
        ("v=DMARC1;p=reject", True),
        ("v = DMARC1 ; p=reject", True),
        ("v=DMARC1", True),
        ("v=dmarc1; p=none", True),  # selected, then reported: the version must be upper case
        ("v=DMARC10; p=none", False),
        ("p=none; v=DMARC1", False),
        ("v=spf1 -all", False),
    ],
)
def test_is_dmarc(text, expected):
    assert _dmarc.is_dmarc(text) is expected


def test_parse_tags():
    record = _dmarc.parse("v=DMARC1; p=Reject; SP=none ;rua=mailto:a@example.com, mailto:b@example.net!10m; fo=1;")
    assert record.errors == []
    assert record.tags == {"v": "DMARC1", "p": "Reject", "sp": "none", "rua": "mailto:a@example.com, mailto:b@example.net!10m", "fo": "1"}
    assert record.policy == "reject"
    uris = record.uris("rua")
    assert [(u.address, u.domain, u.size) for u in uris] == [("a@example.com", "example.com", ""), ("b@example.net", "example.net", "!10m")]


@pytest.mark.parametrize(
    "text, error",
    [
        ("v=DMARC1; p=none; p=reject", "appears more than once"),
        ("v=DMARC1; p=none; garbage", "is not tag=value"),
        ("v=dmarc1; p=none", "must start with v=DMARC1"),
        ("p=none; v=DMARC1", "must be the first tag"),
    ],
)
def test_tag_list_errors(text, error):
    record = _dmarc.parse(text)
    assert any(error in e for e in record.errors), record.errors
    assert find(judge(text), "syntax error").severity == MUST_DO_NOW


def test_good_record_has_no_blockers():
    findings = judge("v=DMARC1; p=reject; rua=mailto:dmarc@example.com")
    assert findings == []


@pytest.mark.parametrize(
    "text, title, severity, section",
    [
        ("v=DMARC1; p=rejct; rua=mailto:d@example.com", "p=rejct is not a policy", CAN_WAIT, "RFC 7489 section 6.6.3"),
        ("v=DMARC1; p=rejct", "p=rejct is not a policy", MUST_DO_NOW, "RFC 7489 section 6.6.3"),
        ("v=DMARC1; p=rejct; rua=d@example.com", "p=rejct is not a policy", MUST_DO_NOW, "RFC 7489 section 6.6.3"),
        ("v=DMARC1; rua=mailto:d@example.com", "no p= tag", CAN_WAIT, "RFC 7489 section 6.6.3"),
        ("v=DMARC1; rua=d@example.com", "no p= tag", MUST_DO_NOW, "RFC 7489 section 6.6.3"),
        ("v=DMARC1; adkim=s", "no p= tag", MUST_DO_NOW, "RFC 7489 section 6.6.3"),
        ("v=DMARC1; p=reject; sp=never", "sp=never is not a policy", MUST_DO_NOW, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; np=block", "np=block is not a policy", MUST_DO_NOW, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; adkim=x", "adkim=x is not an alignment mode", MUST_DO_NOW, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; pct=150", "pct=150 is out of range", MUST_DO_NOW, "RFC 7489 section 6.3"),
        ("v=DMARC1; p=reject; pct=abc", "pct=abc is out of range", MUST_DO_NOW, "RFC 7489 section 6.3"),
        ("v=DMARC1; p=reject; pct=50", "pct is no longer part of DMARC", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; rf=afrf", "rf is no longer part of DMARC", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; ri=3600", "ri is no longer part of DMARC", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; t=y", "test mode is on (t=y)", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; t=maybe", "t=maybe is not y or n", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; psd=y", "psd=y declares a public suffix", MUST_DO_NOW, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; fo=1", "fo without ruf", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; fo=2; ruf=mailto:f@example.com", "fo=2 is not valid", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=none; rua=dmarc@example.com", "rua entry dmarc@example.com is not a report address", MUST_DO_NOW,
         "RFC 7489 section 6.2"),
        ("v=DMARC1; p=none; rua=mailto:not-an-address", "rua entry mailto:not-an-address is not a report address", MUST_DO_NOW,
         "RFC 7489 section 6.2"),
        ("v=DMARC1; p=reject; ruf=f@example.com", "ruf entry f@example.com is not a report address", CAN_WAIT, "RFC 7489 section 6.2"),
        ("v=DMARC1; p=reject; rua=https://reports.example.com/dmarc", "is not mailto:", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; rua=mailto:d@example.com!10m", "has a size limit", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=none", "no rua", MUST_DO_NOW, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=quarantine", "no rua", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=reject; foo=bar", "unknown tags foo", CAN_WAIT, "RFC 9989 section 4.7"),
        ("v=DMARC1; p=none; rua=mailto:d@example.com", "policy is p=none (monitoring only)", CAN_WAIT, "RFC 9989 section 7.4"),
        ("v=DMARC1; p=reject; sp=none; rua=mailto:d@example.com", "subdomains are not protected", CAN_WAIT, "RFC 9989 section 4.7"),
    ],
)
def test_findings(text, title, severity, section):
    found = find(judge(text), title)
    assert found.severity == severity
    assert section in found.evidence
    assert found.fix
    assert found.title.startswith("DMARC record of example.com: ")


def test_an_invalid_p_with_a_valid_rua_is_read_as_p_none():
    # RFC 7489 section 6.6.3 step 6: receivers act as if the record said p=none, so it is ranked like p=none.
    (found,) = [f for f in judge("v=DMARC1; p=rejct; rua=mailto:d@example.com") if "p=rejct" in f.title]
    assert found.severity == CAN_WAIT == find(judge("v=DMARC1; p=none; rua=mailto:d@example.com"), "p=none").severity
    assert found.title == "DMARC record of example.com: p=rejct is not a policy, so receivers read it as p=none"
    assert "receivers act as if it said p=none" in found.evidence
    assert "p=none, p=quarantine or p=reject" in found.fix
    # Without a valid rua the record is ignored: no DMARC at all.
    for text in ("v=DMARC1; p=rejct", "v=DMARC1; p=rejct; rua=d@example.com"):
        (ignored,) = [f for f in judge(text) if "p=rejct" in f.title]
        assert ignored.severity == MUST_DO_NOW
        assert ignored.title == "DMARC record of example.com: p=rejct is not a policy"
        assert "receivers ignore the record" in ignored.evidence
        assert "p=none, p=quarantine or p=reject" in ignored.fix


def test_a_record_read_as_p_none_is_not_reported_valid():
    records = {"_dmarc.example.com": {"TXT": ["v=DMARC1; p=rejct; rua=mailto:d@example.com"]}}
    checked = asyncio.run(_email_auth.check_domain({"name": "example.com", "check_mx": False}, FakeResolver(records)))
    dmarc = [(f.severity, f.title) for f in checked.findings if f.title.startswith("DMARC")]
    assert dmarc == [(CAN_WAIT, "DMARC record of example.com: p=rejct is not a policy, so receivers read it as p=none")]
    records["_dmarc.example.com"] = {"TXT": ["v=DMARC1; rua=mailto:d@example.com"]}  # no p: valid under RFC 9989, p=none applies
    checked = asyncio.run(_email_auth.check_domain({"name": "example.com", "check_mx": False}, FakeResolver(records)))
    valid = [f for f in checked.findings if f.title == "DMARC record of example.com is valid"]
    assert [f.evidence for f in valid] == ["p=none, reports to mailto:d@example.com (RFC 9989 section 4.7)"]


def test_dmarcbis_tags_are_accepted():
    assert judge("v=DMARC1; p=reject; sp=quarantine; np=reject; psd=n; t=n; rua=mailto:d@example.com") == []


def test_tags_are_case_insensitive_but_version_is_not():
    assert judge("v=DMARC1; P=REJECT; RUA=mailto:d@example.com") == []
    assert find(judge("v=Dmarc1; p=reject; rua=mailto:d@example.com"), "syntax error")


# --- building ----------------------------------------------------------------------------------


def test_build_minimal_monitoring_stage():
    record, warnings = _dmarc.build("none", rua=["mailto:dmarc@example.com"])
    assert record == "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
    assert warnings == []
    assert judge(record)[0].title.endswith("policy is p=none (monitoring only)")


def test_build_every_option_in_order():
    record, warnings = _dmarc.build(
        "reject", rua=["mailto:a@example.com", "mailto:b@reports.example.net"], ruf=["mailto:f@example.com"], subdomain_policy="quarantine",
        nonexistent_subdomain_policy="reject", dkim_alignment="strict", spf_alignment="relaxed", failure_options="1:d", testing=True,
        percent=50)
    assert record == ("v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; aspf=r; pct=50; t=y; fo=1:d; "
                      "rua=mailto:a@example.com,mailto:b@reports.example.net; ruf=mailto:f@example.com")
    assert warnings == ["dmarc.percent (pct) was removed by RFC 9989 and newer receivers ignore it; prefer dmarc.testing (t=y)"]
    assert _dmarc.parse(record).errors == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(policy="rejct", rua=["mailto:d@example.com"]), "dmarc.policy='rejct' is not a policy: use none, quarantine or reject"),
        (dict(policy="reject", subdomain_policy="nope"), "dmarc.subdomain_policy='nope' is not a policy"),
        (dict(policy="reject", percent=150), "dmarc.percent=150 is out of range: pct is an integer from 0 to 100 (RFC 7489 section 6.3)"),
        (dict(policy="reject", percent=-1), "dmarc.percent=-1 is out of range"),
        (dict(policy="none", rua=["dmarc@example.com"]), "dmarc.rua entry 'dmarc@example.com' must be a mailto: URI such as mailto:dmarc@example.com"),
        (dict(policy="reject", rua=["https://example.com/r"]), "must be a mailto: URI"),
        (dict(policy="reject", ruf=["mailto:x"]), "dmarc.ruf entry 'mailto:x' must be a mailto: URI"),
        (dict(policy="reject", rua=["mailto:d@example.com!10m"]), "the !size suffix is obsolete"),
        (dict(policy="none"), "dmarc.policy=none without dmarc.rua collects nothing"),
        (dict(policy="reject", dkim_alignment="loose"), "dmarc.dkim_alignment='loose' must be relaxed or strict"),
        (dict(policy="reject", failure_options="2"), "dmarc.failure_options='2' must be 0, 1, d, s"),
    ],
)
def test_build_refuses_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=None) as info:
        _dmarc.build(**kwargs)
    assert message in str(info.value)


def test_build_reports_every_error_at_once():
    with pytest.raises(ValueError) as info:
        _dmarc.build("rejct", rua=["dmarc@example.com"], percent=150)
    assert str(info.value).count(";") >= 2


# --- discovery -----------------------------------------------------------------------------------


def test_tree_walk_names():
    assert _dmarc.tree_walk_names("a.mail.example.com") == ["a.mail.example.com", "mail.example.com", "example.com", "com"]
    long = "a.b.c.d.e.f.g.h.i.example.com"  # 11 labels: after the first query, jump to 7 labels
    assert _dmarc.tree_walk_names(long) == [long, "e.f.g.h.i.example.com", "f.g.h.i.example.com", "g.h.i.example.com", "h.i.example.com",
                                            "i.example.com", "example.com", "com"]


def _walk(records: dict, domain: str):
    resolver = FakeResolver({"_dmarc." + name: {"TXT": values} for name, values in records.items()})
    steps = asyncio.run(_dmarc.tree_walk(domain, resolver))
    return steps, _dmarc.organizational_domain(domain, steps)


def test_org_domain_is_the_shortest_with_a_record():
    # RFC 9989 section 4.10.2, first example
    steps, org = _walk({"mail.example.com": ["v=DMARC1; p=none"], "example.com": ["v=DMARC1; p=reject"]}, "a.mail.example.com")
    assert [s.name for s in steps] == ["a.mail.example.com", "mail.example.com", "example.com", "com"]
    assert org == "example.com"


def test_org_domain_below_a_psd():
    # RFC 9989 section 4.10.2, second example: only _dmarc.com with psd=y
    _steps, org = _walk({"com": ["v=DMARC1; p=reject; psd=y"]}, "a.mail.example.com")
    assert org == "example.com"


def test_org_domain_psd_n_stops_the_walk():
    steps, org = _walk({"mail.example.com": ["v=DMARC1; p=none; psd=n"], "example.com": ["v=DMARC1; p=reject"]}, "a.mail.example.com")
    assert org == "mail.example.com"
    assert [s.name for s in steps] == ["a.mail.example.com", "mail.example.com"]


def test_org_domain_without_records_is_the_domain():
    _steps, org = _walk({}, "a.example.com")
    assert org == "a.example.com"


def test_two_records_at_a_step_are_discarded():
    _steps, org = _walk({"example.com": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]}, "a.example.com")
    assert org == "a.example.com"


def test_authorization_name():
    assert _dmarc.authorization_name("Example.com.", "reports.example.net") == "example.com._report._dmarc.reports.example.net"


def test_ok_finding():
    finding = _dmarc.ok_finding("example.com", _dmarc.parse("v=DMARC1; p=reject; rua=mailto:d@example.com"))
    assert finding.severity == OK
    assert finding.evidence.startswith("p=reject, reports to mailto:d@example.com")
