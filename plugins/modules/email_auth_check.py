#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: email_auth_check
short_description: Check the SPF, DKIM, DMARC and MX records of mail domains from the outside
version_added: 0.1.0
description:
  - Checks many domains at once, all DNS questions in flight together, on each domain's authoritative nameservers (or on
    O(nameservers)), and reports findings in the collection's findings shape (stage C(secrets_env)). Each finding names the RFC
    section it rests on and says what to change.
  - SPF (RFC 7208) exactly one record; the grammar; C(+all), C(?all), no C(all), C(ptr); the DNS lookups it causes through nested
    C(include), C(redirect), C(a), C(mx) and C(exists) (at most 10), void lookups (at most 2), include loops, record length.
  - DMARC (RFC 7489 and RFC 9989) exactly one record at C(_dmarc); every tag's syntax and value (C(p), C(sp), C(np), C(adkim), C(aspf),
    C(fo), C(t), C(psd)); C(rua) and C(ruf) URIs; whether an outside report destination has agreed to receive the reports
    (RFC 9990 section 4); the tags RFC 9989 removed (C(pct), C(rf), C(ri)). The Organizational Domain comes from the DNS Tree Walk
    of RFC 9989 section 4.10.
  - DKIM (RFC 6376, RFC 8463, RFC 8301) for each selector given, through a provider's CNAME delegation; key type and size
    (under 1024 bits is a blocker, under 2048 a warning); whether it is the public half of a local private key when one is given.
  - MX present, or a null MX (RFC 7505) for a domain that receives no mail.
  - Read-only; it runs the same in check mode.
author:
  - launchready.core maintainers (@launchready)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Only asks DNS questions, so it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  domains:
    description:
      - The domains to check.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The domain, for example V(example.com).
        type: str
        required: true
      dkim:
        description:
          - The DKIM selectors that sign mail for this domain.
        type: list
        elements: dict
        default: []
        suboptions:
          selector:
            description:
              - The selector; its key is looked up at C(<selector>._domainkey.<name>).
            type: str
            required: true
          private_key_path:
            description:
              - A local PEM private key (on the controller) that must match the published key.
            type: path
          private_key:
            description:
              - The same, given as PEM text (for example from Ansible Vault).
            type: str
      check_mx:
        description:
          - Check that the domain has MX records or a null MX.
        type: bool
        default: true
  nameservers:
    description:
      - Nameservers to ask for every name, each V(host), V(host:port) or V([IPv6]:port), for example the collection's lab.
      - Left out, names under each domain are asked of that domain's authoritative nameservers (from its NS records, found
        through the system resolver) and other names (provider includes, report domains) of the system resolver.
    type: list
    elements: str
  query_timeout:
    description:
      - Seconds to wait for each DNS answer.
    type: float
    default: 3.0
  fail_on:
    description:
      - Fail the task when a finding is at least this severe. V(never) only reports.
    type: str
    choices: [never, must_do_now, can_wait]
    default: never
requirements:
  - dnspython >= 2.6 (on the controller)
  - cryptography >= 41.0 (on the controller, to read DKIM keys)
seealso:
  - module: launchready.core.email_auth_records
  - module: launchready.core.dkim_key
  - name: RFC 7208 (SPF)
    description: Section 4.6.4 sets the DNS lookup limits.
    link: https://www.rfc-editor.org/rfc/rfc7208
  - name: RFC 9989 (DMARC)
    description: The record (section 4.7) and policy discovery (section 4.10).
    link: https://www.rfc-editor.org/rfc/rfc9989
"""

EXAMPLES = r"""
- name: Check mail authentication of the client's domains
  launchready.core.email_auth_check:
    domains:
      - name: example.com
        dkim:
          - selector: lr2026a
            private_key_path: "{{ playbook_dir }}/keys/dkim/example.com/lr2026a.pem"
          - selector: s1
      - name: example.org
        check_mx: false
  register: mail

- name: Stop when something blocks the launch
  launchready.core.email_auth_check:
    domains: [{name: example.com}]
    fail_on: must_do_now

- name: Against the collection's lab DNS
  launchready.core.email_auth_check:
    domains: [{name: launch-demo.test, dkim: [{selector: lr2026a}]}]
    nameservers: ["127.0.0.1:5353"]
"""

RETURN = r"""
findings:
  description: Every finding of every domain, launch blockers first; each has C(stage), C(severity), C(title), C(evidence) and C(fix).
  returned: always
  type: list
  elements: dict
  sample:
    - stage: secrets_env
      severity: must_do_now
      title: SPF of example.com needs 12 DNS lookups (limit 10)
      evidence: "v=spf1 include:_spf.google.com ...: include:_spf.google.com costs 4, ... (RFC 7208 section 4.6.4)"
      fix: Drop an include you no longer use, move a provider to its own MAIL FROM subdomain, or flatten the costliest include.
summary:
  description: How many findings there are of each severity.
  returned: always
  type: dict
  sample: {must_do_now: 1, can_wait: 2, ok: 5}
domains:
  description:
    - Per domain, what was seen. C(spf) has C(record), C(status), C(lookups), C(void_lookups) and the include C(tree) with the cost of
      each term; C(dmarc) has C(record), C(policy), C(tags) and C(organizational_domain); C(dkim) lists each selector with C(cname),
      C(key_type), C(bits) and C(matches_local_key); C(mx) has C(records); C(findings) are this domain's findings.
  returned: always
  type: dict
nameservers:
  description: The nameservers asked for each domain (empty when the system resolver was used), or the given O(nameservers).
  returned: always
  type: dict
  sample: {example.com: [ada.ns.cloudflare.com, bob.ns.cloudflare.com]}
queries:
  description: How many distinct DNS questions were asked.
  returned: always
  type: int
  sample: 42
"""

# Ansible modules import after their documentation (validate-modules checks it; ruff ignores E402 here).
import asyncio

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.launchready.core.plugins.module_utils._dkim import CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY
from ansible_collections.launchready.core.plugins.module_utils._dns import (
    DNSPYTHON_IMPORT_ERROR,
    HAS_DNSPYTHON,
    AsyncResolver,
    DnsConfigError,
)
from ansible_collections.launchready.core.plugins.module_utils._email_auth import AuthoritativeRouter, check_domains, make_resolver
from ansible_collections.launchready.core.plugins.module_utils._findings import FAIL_ON_CHOICES, failure, ranked, summarize


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            domains=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                dkim=dict(type="list", elements="dict", default=[], options=dict(
                    selector=dict(type="str", required=True),
                    private_key_path=dict(type="path"),
                    private_key=dict(type="str", no_log=True),
                ), mutually_exclusive=[("private_key_path", "private_key")]),
                check_mx=dict(type="bool", default=True),
            )),
            nameservers=dict(type="list", elements="str"),
            query_timeout=dict(type="float", default=3.0),
            fail_on=dict(type="str", choices=list(FAIL_ON_CHOICES), default="never"),
        ),
        supports_check_mode=True,
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_IMPORT_ERROR)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    specs: list[dict] = []
    for item in params["domains"]:
        name = item["name"].strip().rstrip(".").lower()
        if name in (s["name"] for s in specs):
            module.fail_json(msg="domain %s is listed twice" % name)
        specs.append(dict(item, name=name))
    try:
        resolver = make_resolver([s["name"] for s in specs], params["nameservers"] or None,
                                 lambda servers: AsyncResolver(servers, timeout=params["query_timeout"]))
        checks = asyncio.run(check_domains(specs, resolver))
    except DnsConfigError as exc:
        module.fail_json(msg=str(exc))
    findings = [finding for check in checks for finding in check.findings]
    if isinstance(resolver.inner, AuthoritativeRouter):
        nameservers = {s["name"]: resolver.inner.nameservers.get(s["name"], []) for s in specs}
    else:
        nameservers = {s["name"]: list(params["nameservers"]) for s in specs}
    result = dict(
        changed=False,
        findings=ranked(findings),
        summary=summarize(findings),
        domains={check.domain: check.as_dict() for check in checks},
        nameservers=nameservers,
        queries=resolver.questions,
    )
    blocked = failure(findings, params["fail_on"], "mail authentication")
    if blocked:
        module.fail_json(msg=blocked, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
