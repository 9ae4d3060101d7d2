# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.launchready.core.plugins.module_utils._findings import Finding, failure, ranked, summarize
from ansible_collections.launchready.core.plugins.module_utils._redact import MASK, fingerprint, redact, scrub

FINDINGS = [
    Finding("domain_routing", "ok", "apex resolves", "203.0.113.10"),
    Finding("domain_routing", "can_wait", "long TTL", "86400"),
    Finding("domain_routing", "must_do_now", "app missing", "NXDOMAIN", "publish app"),
]


def test_a_severity_outside_the_three_is_refused():
    with pytest.raises(ValueError, match="must_do_now, can_wait, ok"):
        Finding("x", "critical", "t", "e")


def test_ranked_puts_launch_blockers_first_and_summary_counts_every_severity():
    assert [f["title"] for f in ranked(FINDINGS)] == ["app missing", "long TTL", "apex resolves"]
    assert summarize(FINDINGS) == {"must_do_now": 1, "can_wait": 1, "ok": 1}
    assert summarize([]) == {"must_do_now": 0, "can_wait": 0, "ok": 0}


@pytest.mark.parametrize("fail_on, expected", [
    ("never", ""),
    ("must_do_now", "1 DNS finding(s) at or above must_do_now: app missing"),
    ("can_wait", "2 DNS finding(s) at or above can_wait: long TTL; app missing"),
])
def test_failure_names_every_finding_at_or_above_fail_on(fail_on, expected):
    assert failure(FINDINGS, fail_on, "DNS") == expected


def test_redaction_never_returns_the_secret():
    secret = "sk_live_" + "a1B2" * 6
    assert secret not in redact(secret) and redact(secret).startswith("sk_l")
    assert redact("short") == MASK
    assert scrub("token %s rejected" % secret, [secret, ""]) == "token %s rejected" % MASK
    assert fingerprint(secret) == fingerprint(secret) != fingerprint(secret + "x")
    assert secret not in fingerprint(secret)
