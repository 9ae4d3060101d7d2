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
from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.launchready.core.plugins.module_utils._dns import DNSPYTHON_IMPORT_ERROR, HAS_DNSPYTHON, DnsConfigError
from ansible_collections.launchready.core.plugins.module_utils._dns_expectations import check_records
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, FAIL_ON_CHOICES, MUST_DO_NOW


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
            fail_on=dict(type="str", choices=list(FAIL_ON_CHOICES), default="never"),
        ),
        supports_check_mode=True,
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_IMPORT_ERROR)
    params = module.params
    try:
        outcome = check_records(
            params["zone"],
            params["records"],
            nameservers=params["nameservers"] or None,
            query_timeout=params["query_timeout"],
            wait_timeout=params["wait_timeout"] if params["wait"] else None,
        )
    except DnsConfigError as exc:
        module.fail_json(msg=str(exc))
    result = outcome.as_result()
    failure = outcome.failure(params["fail_on"])
    if failure:
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
