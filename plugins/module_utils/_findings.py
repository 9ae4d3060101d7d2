# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one shape every verification reports: a finding.

A finding says what was checked (``title``), what was seen (``evidence``), how much it
matters for the launch (``severity``) and what to do about it (``fix``). The audit and
handover stages collect findings from every stage into the launch report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

MUST_DO_NOW = "must_do_now"
CAN_WAIT = "can_wait"
OK = "ok"
SEVERITIES = (MUST_DO_NOW, CAN_WAIT, OK)


@dataclass(frozen=True)
class Finding:
    stage: str
    severity: str
    title: str
    evidence: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError("severity must be one of %s, not %r" % (", ".join(SEVERITIES), self.severity))

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(findings: list[Finding]) -> dict[str, int]:
    """Count findings per severity, every severity present (zero included)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts


def ranked(findings: list[Finding]) -> list[dict]:
    """Findings as dicts, launch blockers first, then what can wait, then what is fine."""
    order = {severity: index for index, severity in enumerate(SEVERITIES)}
    return [f.as_dict() for f in sorted(findings, key=lambda f: order[f.severity])]


# A check's `fail_on` option: the lowest severity that fails the task ("never": report only).
FAIL_ON_CHOICES = ("never", MUST_DO_NOW, CAN_WAIT)
_FAILING = {"never": (), MUST_DO_NOW: (MUST_DO_NOW,), CAN_WAIT: (MUST_DO_NOW, CAN_WAIT)}


def failure(findings: list[Finding], fail_on: str, subject: str) -> str:
    """Why a check with this ``fail_on`` fails, naming every finding at or above it; empty when it does not fail."""
    blockers = [finding.title for finding in findings if finding.severity in _FAILING[fail_on]]
    if not blockers:
        return ""
    return "%d %s finding(s) at or above %s: %s" % (len(blockers), subject, fail_on, "; ".join(blockers))
