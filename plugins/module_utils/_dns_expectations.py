# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expected DNS records checked on a zone's authoritative nameservers, one finding per record.

``check_records`` is what ``launchready.core.dns_check`` runs: it reads the ``records`` option
into :class:`Expectation` objects (``build_expectations``, which raises ``DnsConfigError`` before
any question is asked), asks every nameserver about every expectation at once (``check``, again
with backoff while waiting for a change to propagate), and judges each expectation from every
nameserver's answers (``evaluate``). The :class:`Outcome` gives the module its result and says
whether ``fail_on`` fails the task.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ansible_collections.launchready.core.plugins.module_utils._dns import (
    NOERROR,
    NXDOMAIN,
    Answer,
    AsyncResolver,
    DnsConfigError,
    authoritative_nameservers,
    normalize_name,
    normalize_rdtype,
    normalize_value,
)
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, OK, Finding, failure, ranked, summarize

STAGE = "domain_routing"
# Questions in flight at once: enough for every record of a small zone, few enough to stay far from file limits.
MAX_CONCURRENT_QUERIES = 64
MAX_BACKOFF = 30.0
ADDRESS_TYPES = ("A", "AAAA")


@dataclass(frozen=True)
class Expectation:
    name: str
    rdtype: str | None
    values: frozenset[str] | None
    absent: bool
    ttl: int | None
    severity: str

    @property
    def label(self) -> str:
        return "%s %s" % (self.name, self.rdtype) if self.rdtype else self.name

    @property
    def rdtypes(self) -> tuple[str, ...]:
        return (self.rdtype,) if self.rdtype else ADDRESS_TYPES


def absolute_name(zone: str, name: str) -> str:
    """A record name as a full name: relative to the zone unless it is ``@``, ends with a dot or already ends with the zone."""
    zone = zone.strip().rstrip(".").lower()
    name = name.strip()
    if name in ("", "@"):
        return zone
    if name.endswith("."):
        return name.rstrip(".").lower()
    lowered = name.lower()
    if lowered == zone or lowered.endswith("." + zone):
        return lowered
    return "%s.%s" % (lowered, zone)


def build_expectations(zone: str, records: list[dict]) -> list[Expectation]:
    """The ``records`` option as expectations, values normalised; DnsConfigError names the record that is wrong."""
    expectations = []
    for index, record in enumerate(records):
        where = "records[%d] (%s)" % (index, record["name"])
        try:
            name = normalize_name(absolute_name(zone, record["name"]))
            rdtype = normalize_rdtype(record["type"]) if record.get("type") else None
        except DnsConfigError as exc:
            raise DnsConfigError("%s: %s" % (where, exc)) from exc
        values = record["values"] if record.get("values") is not None else None
        if record.get("content") is not None:
            values = [record["content"]]
        if record["absent"] and (values is not None or record.get("ttl") is not None):
            raise DnsConfigError("%s: a record that must be absent takes no values, content or ttl" % where)
        if not record["absent"] and rdtype is None:
            raise DnsConfigError("%s: type is required unless absent is true" % where)
        try:
            normalised = frozenset(normalize_value(rdtype, value) for value in values) if values is not None and rdtype else None
        except DnsConfigError as exc:
            raise DnsConfigError("%s: %s" % (where, exc)) from exc
        if values is not None and not values:
            raise DnsConfigError("%s: values is empty; leave it out to only require that the record resolves" % where)
        expectations.append(
            Expectation(
                name=name,
                rdtype=rdtype,
                values=normalised,
                absent=record["absent"],
                ttl=record.get("ttl"),
                severity=record["severity"],
            )
        )
    return expectations


def describe(answer: Answer) -> str:
    """What one nameserver answered, in words short enough for evidence."""
    parts = []
    if answer.cname_chain:
        parts.append("CNAME " + " -> ".join(answer.cname_chain))
    if answer.rcode == NOERROR and answer.values:
        parts.append("%s (TTL %s)" % (", ".join(answer.values), answer.ttl))
    elif answer.rcode == NOERROR:
        parts.append("no %s record" % answer.rdtype)
    else:
        parts.append(answer.rcode)
    text = ", ".join(parts)
    return "%s (%s)" % (text, answer.error) if answer.error else text


# How one nameserver's answers compare with an expectation.
RIGHT = "right"
WRONG = "wrong"
MISSING = "missing"
UNANSWERED = "unanswered"
PRESENT = "present"
LOOP = "loop"
TTL = "ttl"


def judge(expectation: Expectation, answers: list[Answer]) -> str:
    if any(answer.error.startswith("CNAME loop") or answer.error.startswith("CNAME chain") for answer in answers):
        return LOOP
    if any(answer.rcode not in (NOERROR, NXDOMAIN) for answer in answers):
        return UNANSWERED
    if expectation.absent:
        return PRESENT if any(answer.values or answer.cname_chain for answer in answers) else RIGHT
    (answer,) = answers
    if not answer.values:
        return MISSING
    if expectation.values is not None and frozenset(answer.values) != expectation.values:
        return WRONG
    if expectation.ttl is not None and answer.ttl != expectation.ttl:
        return TTL
    return RIGHT


def evaluate(zone: str, expectation: Expectation, observed: dict[str, list[Answer]]) -> Finding:
    """One finding for one expected record from every nameserver's answers (nameserver label -> its answers)."""
    verdicts = {server: judge(expectation, answers) for server, answers in observed.items()}
    grouped: dict[str, list[str]] = {}
    for server, answers in observed.items():
        grouped.setdefault("; ".join(describe(answer) for answer in answers), []).append(server)
    seen = "; ".join("%s: %s" % (", ".join(servers), text) for text, servers in grouped.items())
    if expectation.absent:
        evidence = "expected no %s record; %s" % ("A, AAAA or CNAME" if expectation.rdtype is None else expectation.rdtype, seen)
    elif expectation.values is None:
        evidence = "expected any %s record; %s" % (expectation.rdtype, seen)
    else:
        evidence = "expected %s%s; %s" % (
            ", ".join(sorted(expectation.values)),
            " (TTL %d)" % expectation.ttl if expectation.ttl is not None else "",
            seen,
        )
    kinds = set(verdicts.values())
    name, label, count = expectation.name, expectation.label, len(verdicts)
    wanted = "%s %s" % (label, ", ".join(sorted(expectation.values))) if expectation.values else "an %s record for %s" % (expectation.rdtype, name)
    propagation = " If it was changed minutes ago, run again with wait: true to follow the propagation."

    def problem(title: str, fix: str) -> Finding:
        return Finding(STAGE, expectation.severity, title, evidence, fix)

    if kinds == {RIGHT}:
        if expectation.absent:
            title = "%s does not resolve, as intended" % name if expectation.rdtype is None else "%s has no %s record, as intended" % (name, expectation.rdtype)
        else:
            title = "%s is published on %s" % (label, "its nameserver" if count == 1 else "all %d nameservers" % count)
        return Finding(STAGE, OK, title, evidence)
    if LOOP in kinds:
        return problem("%s is a CNAME loop" % name, "Point one of the CNAMEs in the chain at a name that resolves, in zone %s." % zone)
    if PRESENT in kinds:
        what = "A, AAAA and CNAME records" if expectation.rdtype is None else "%s records" % expectation.rdtype
        title = "%s still resolves but must not" % name if expectation.rdtype is None else "%s still exists but must not" % label
        return problem(title, "Delete the %s of %s in zone %s (state: absent with launchready.core.cloudflare_dns_records)." % (what, name, zone))
    if RIGHT in kinds and kinds & {WRONG, MISSING}:
        return problem(
            "%s is not the same on every nameserver" % label,
            "The zone's nameservers disagree. If the record was changed minutes ago, run again with wait: true; otherwise check that every "
            "NS record of %s at the registrar names the DNS provider's current nameservers." % zone,
        )
    if kinds == {MISSING}:
        title = "%s does not resolve" % name if expectation.rdtype in ADDRESS_TYPES else "%s has no %s record" % (name, expectation.rdtype)
        return problem(title, "Publish %s in zone %s (the domain_routing role, or the DNS provider).%s" % (wanted, zone, propagation))
    if WRONG in kinds or MISSING in kinds:
        return problem("%s has the wrong value" % label, "Publish %s in zone %s, and only that.%s" % (wanted, zone, propagation))
    if UNANSWERED in kinds:
        return problem(
            "%s could not be checked on every nameserver" % label,
            "Make sure every nameserver of %s answers for the zone: one that times out or refuses makes lookups slow or fail." % zone,
        )
    return Finding(
        STAGE,
        CAN_WAIT,
        "%s has a TTL other than %d" % (label, expectation.ttl or 0),
        evidence,
        "Set the TTL of %s to %d seconds (proxied Cloudflare records always have an automatic TTL)." % (label, expectation.ttl or 0),
    )


def unreachable(zone: str, expectation: Expectation) -> Finding:
    return Finding(
        STAGE,
        expectation.severity,
        "%s could not be checked: %s has no nameservers" % (expectation.label, zone),
        "the system resolver found no NS records for %s" % zone,
        "Delegate %s at the registrar to the DNS provider's nameservers (Cloudflare lists them on the zone's overview)." % zone,
    )


async def check_once(zone: str, expectations: list[Expectation], resolvers: dict[str, AsyncResolver]) -> list[Finding]:
    """Ask every nameserver about every expectation at once, then judge each expectation."""
    if not resolvers:
        return [unreachable(zone, expectation) for expectation in expectations]
    limit = asyncio.Semaphore(MAX_CONCURRENT_QUERIES)

    async def ask(resolver: AsyncResolver, name: str, rdtype: str) -> Answer:
        async with limit:
            return await resolver.query(name, rdtype)

    questions = [(index, server, rdtype) for index, exp in enumerate(expectations) for server in resolvers for rdtype in exp.rdtypes]
    answers = await asyncio.gather(*(ask(resolvers[server], expectations[index].name, rdtype) for index, server, rdtype in questions))
    observed: list[dict[str, list[Answer]]] = [{server: [] for server in resolvers} for _expectation in expectations]
    for (index, server, _rdtype), answer in zip(questions, answers, strict=True):
        observed[index][server].append(answer)
    return [evaluate(zone, expectation, observed[index]) for index, expectation in enumerate(expectations)]


async def check(
    zone: str,
    expectations: list[Expectation],
    nameservers: list[str] | None,
    query_timeout: float,
    wait_timeout: float | None,
) -> tuple[list[Finding], list[str]]:
    """Check every expectation; with a ``wait_timeout``, again with backoff until all are fine or the time is up."""
    deadline = time.monotonic() + (wait_timeout or 0)
    delay = 1.0
    while True:
        if nameservers is None:
            servers = await authoritative_nameservers(zone, AsyncResolver(timeout=query_timeout))
        else:
            servers = nameservers
        resolvers = {server: AsyncResolver([server], timeout=query_timeout) for server in servers}
        findings = await check_once(zone, expectations, resolvers)
        remaining = deadline - time.monotonic()
        if wait_timeout is None or remaining <= 0 or all(finding.severity == OK for finding in findings):
            return findings, list(servers)
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, MAX_BACKOFF)


@dataclass(frozen=True)
class Outcome:
    """What one check found: a finding per expected record, in the order of the records, and the nameservers asked."""

    findings: list[Finding]
    nameservers: list[str]

    def as_result(self) -> dict:
        """The module's return values (see dns_check's RETURN)."""
        return dict(
            changed=False,
            findings=ranked(self.findings),
            summary=summarize(self.findings),
            checked=len(self.findings),
            nameservers=self.nameservers,
        )

    def failure(self, fail_on: str) -> str:
        """Why ``fail_on`` (never, must_do_now, can_wait) fails the task, naming every finding at or above it; empty when it does not."""
        return failure(self.findings, fail_on, "DNS")


def check_records(
    zone: str,
    records: list[dict],
    nameservers: list[str] | None = None,
    query_timeout: float = 3.0,
    wait_timeout: float | None = None,
) -> Outcome:
    """Check ``records`` (dns_check's option) on ``nameservers``, or on the zone's own when None.

    With a ``wait_timeout`` (seconds), ask again with backoff until every record is right or the
    time is up. Raises DnsConfigError for a record or nameserver that cannot be used, before any
    question is asked about the records.
    """
    expectations = build_expectations(zone, records)
    findings, servers = asyncio.run(check(zone.strip().rstrip(".").lower(), expectations, nameservers, query_timeout, wait_timeout))
    return Outcome(findings, servers)
