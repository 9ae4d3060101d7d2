# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dns_check
short_description: Check that a zone's records are published on every one of its authoritative nameservers
version_added: 0.1.0
description:
  - Asks every authoritative nameserver of O(zone) directly (no recursion, no cache) for each expected record, all questions at once,
    and reports one finding per record in the collection's findings shape (stage C(domain_routing)).
  - A record is right only when every nameserver answers it the same, expected way. Values compare regardless of order;
    the strings of a TXT record are joined, names compare without case and trailing dot; CNAME chains are followed,
    and a CNAME loop is reported, not followed.
  - A name that does not resolve, or resolves to the wrong values, is a C(must_do_now) finding (or the record's O(records[].severity));
    a TTL other than O(records[].ttl) is a C(can_wait) finding.
  - Read-only; it asks its questions in check mode too.
author:
  - launchready.core maintainers (@launchready)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Only asks questions, so it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  zone:
    description:
      - The zone the records belong to, for example V(example.com).
      - Unless O(nameservers) is given, the zone's NS records, looked up through the system resolver, name the nameservers to ask.
    type: str
    required: true
  records:
    description:
      - The records the zone must (or must not) publish.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The record's name, relative to O(zone) (V(www)), V(@) for the zone apex, or a full name (V(www.example.com)).
          - A name ending with a dot is taken as a full name as it is.
        type: str
        required: true
      type:
        description:
          - The record type, for example V(A), V(AAAA), V(CNAME), V(MX), V(TXT), V(NS), V(CAA).
          - Required unless O(records[].absent=true); an absent record without a type means the name must not resolve
            at all (no A, AAAA or CNAME).
          - For any type but V(CNAME), a CNAME at the name is followed to its target; give V(CNAME) to check the CNAME itself.
        type: str
      values:
        description:
          - The full set of values the record must have, in any order, in presentation form (V(192.0.2.10), V(10 mx.example.com),
            V(v=spf1 -all)). A TXT value is taken literally unless written as quoted strings (V("v=spf1 " "-all")).
          - Without O(records[].values) or O(records[].content), the record only has to resolve to something.
        type: list
        elements: str
      content:
        description:
          - The one value the record must have; the same as O(records[].values) with a single element.
        type: str
      absent:
        description:
          - The record must not exist (the name answers NXDOMAIN or has no record of that type).
        type: bool
        default: false
      ttl:
        description:
          - The TTL, in seconds, the nameservers must give. A different TTL is a C(can_wait) finding.
        type: int
      severity:
        description:
          - How much a missing or wrong record matters for the launch.
        type: str
        choices: [must_do_now, can_wait]
        default: must_do_now
  nameservers:
    description:
      - The nameservers to ask instead of the zone's NS records, each V(host), V(host:port) or V([IPv6]:port); V(host) may be a name.
      - Use it for a stand-in such as the collection's lab (V(127.0.0.1:5353)), or to check new nameservers before the delegation moves.
    type: list
    elements: str
  wait:
    description:
      - Ask again, with an exponential backoff (1, 2, 4 ... up to 30 seconds between rounds), until every record is as expected
        or O(wait_timeout) has passed; then report the last round. For following a change while it propagates.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to keep asking when O(wait=true).
    type: int
    default: 300
  query_timeout:
    description:
      - Seconds to wait for each answer; a question that gets none is asked once more before it counts as unanswered.
    type: float
    default: 3
  fail_on:
    description:
      - When the task fails. V(never) only reports findings; V(must_do_now) fails when any finding is C(must_do_now);
        V(can_wait) fails when any finding is C(must_do_now) or C(can_wait).
    type: str
    choices: [never, must_do_now, can_wait]
    default: never
requirements:
  - dnspython >= 2.6 (on the controller)
notes:
  - "Runs where the task runs; use C(delegate_to: localhost) or a C(localhost) play."
seealso:
  - module: launchready.core.cloudflare_dns_records
"""

EXAMPLES = r"""
- name: Check the launch names on the zone's authoritative nameservers
  launchready.core.dns_check:
    zone: example.com
    records:
      - name: "@"
        type: A
        values: [203.0.113.10]
      - name: www
        type: CNAME
        content: example.com
      - name: "@"
        type: MX
        values: ["10 mx1.mail.example.net", "20 mx2.mail.example.net"]
      - name: "@"
        type: TXT
        content: v=spf1 include:_spf.mail.example.net -all
      - name: staging
        absent: true
    fail_on: must_do_now
  delegate_to: localhost
  register: dns

- name: Follow a change until it has reached every nameserver (at most 5 minutes)
  launchready.core.dns_check:
    zone: example.com
    records:
      - name: app
        type: A
        content: 203.0.113.20
    wait: true
    wait_timeout: 300
  delegate_to: localhost

- name: Check the records the collection's lab serves
  launchready.core.dns_check:
    zone: launch-demo.test
    nameservers: ["127.0.0.1:5353"]
    records:
      - name: app
        type: A
"""

RETURN = r"""
findings:
  description:
    - One finding per expected record, launch blockers first, then what can wait, then what is fine.
  returned: always
  type: list
  elements: dict
  contains:
    stage:
      description: Always C(domain_routing).
      type: str
      sample: domain_routing
    severity:
      description: C(must_do_now), C(can_wait) or C(ok).
      type: str
      sample: must_do_now
    title:
      description: What was checked and how it went.
      type: str
      sample: www.example.com A has the wrong value
    evidence:
      description: What was expected and what each nameserver answered.
      type: str
      sample: "expected 203.0.113.10; ns1.example.net, ns2.example.net: 198.51.100.7 (TTL 300)"
    fix:
      description: What to do about it; empty when the record is fine.
      type: str
      sample: Publish www.example.com A 203.0.113.10 in zone example.com.
  sample:
    - stage: domain_routing
      severity: ok
      title: example.com A is published on all 2 nameservers
      evidence: "expected 203.0.113.10; ns1.example.net, ns2.example.net: 203.0.113.10 (TTL 300)"
      fix: ""
summary:
  description: How many findings of each severity.
  returned: always
  type: dict
  sample: {"must_do_now": 1, "can_wait": 0, "ok": 4}
checked:
  description: How many expected records were checked.
  returned: always
  type: int
  sample: 5
nameservers:
  description: The nameservers that were asked, as given in O(nameservers) or as named by the zone's NS records.
  returned: always
  type: list
  elements: str
  sample: [ns1.example.net, ns2.example.net]
"""

# Ansible modules import after their documentation (validate-modules checks it).
import asyncio  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.launchready.core.plugins.module_utils._dns import (  # noqa: E402
    DNSPYTHON_IMPORT_ERROR,
    HAS_DNSPYTHON,
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
from ansible_collections.launchready.core.plugins.module_utils._findings import (  # noqa: E402
    CAN_WAIT,
    MUST_DO_NOW,
    OK,
    Finding,
    ranked,
    summarize,
)

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


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            zone=dict(type="str", required=True),
            records=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    type=dict(type="str"),
                    values=dict(type="list", elements="str"),
                    content=dict(type="str"),
                    absent=dict(type="bool", default=False),
                    ttl=dict(type="int"),
                    severity=dict(type="str", choices=[MUST_DO_NOW, CAN_WAIT], default=MUST_DO_NOW),
                ),
                mutually_exclusive=[("values", "content")],
            ),
            nameservers=dict(type="list", elements="str"),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=300),
            query_timeout=dict(type="float", default=3.0),
            fail_on=dict(type="str", choices=["never", MUST_DO_NOW, CAN_WAIT], default="never"),
        ),
        supports_check_mode=True,
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_IMPORT_ERROR)
    params = module.params
    try:
        expectations = build_expectations(params["zone"], params["records"])
        findings, servers = asyncio.run(
            check(
                params["zone"].strip().rstrip(".").lower(),
                expectations,
                params["nameservers"] or None,
                params["query_timeout"],
                params["wait_timeout"] if params["wait"] else None,
            )
        )
    except DnsConfigError as exc:
        module.fail_json(msg=str(exc))
    summary = summarize(findings)
    result = dict(changed=False, findings=ranked(findings), summary=summary, checked=len(expectations), nameservers=servers)
    failing = {"never": (), MUST_DO_NOW: (MUST_DO_NOW,), CAN_WAIT: (MUST_DO_NOW, CAN_WAIT)}[params["fail_on"]]
    blockers = [finding.title for finding in findings if finding.severity in failing]
    if blockers:
        module.fail_json(msg="%d DNS finding(s) at or above %s: %s" % (len(blockers), params["fail_on"], "; ".join(blockers)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
