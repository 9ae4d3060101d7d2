#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: email_auth_records
short_description: Build the SPF, DKIM and DMARC records that let a domain send authenticated mail
version_added: 0.1.0
description:
  - From a domain, the providers that send its mail and a DMARC policy, builds the DNS records to publish, ready to give to
    M(launchready.core.cloudflare_dns_records) as its O(launchready.core.cloudflare_dns_records#module:records).
  - SPF goes at the domain or at a provider's MAIL FROM subdomain (Amazon SES, Resend, Mailgun), DKIM as a TXT key or as the
    provider's CNAME delegation, DMARC at C(_dmarc). When a report address of O(dmarc.rua) or O(dmarc.ruf) is in another domain,
    the record that domain must publish to accept the reports is returned in RV(report_authorization_records).
  - The SPF lookup cost of a record is not taken from a table. Every include is resolved and the DNS lookups the record would
    cause are counted (RFC 7208 section 4.6.4, at most 10, at most 2 void lookups). A record over a limit is refused with an error
    that names what each term costs, unless O(spf.flatten=true).
  - Builds nothing and fails when any input is wrong (an unknown provider or setting, a DMARC value out of range, a report address
    that is not C(mailto:), a DKIM key that cannot be used) or when an SPF record would not work, so that nothing is published.
  - Changes nothing itself. It reads DNS to count SPF lookups and, with O(keep_other_txt=true), to keep the TXT records that are not
    its own at the names it writes.
author:
  - launchready.core maintainers (@launchready)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Builds the same records; it never writes anything.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  domain:
    description:
      - The domain mail is sent from (the domain of the From address), for example V(example.com).
    type: str
    required: true
  providers:
    description:
      - The services that send mail as O(domain). See the provider catalog in the collection's C(docs/email.md) for what each builds
        and where its settings come from.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The provider.
        type: str
        required: true
        choices: [amazon_ses, google_workspace, mailchimp_transactional, mailgun, microsoft_365, postmark, resend, sendgrid]
      settings:
        description:
          - Values copied from the provider's dashboard, such as its DKIM key or account host. Every provider also takes C(dkim),
            a list of C({selector, value}) or C({selector, target}) entries.
          - V(google_workspace) takes C(dkim_selector) (default V(google)) and C(dkim_value).
          - V(microsoft_365) takes C(dkim_targets), the two CNAME targets for C(selector1) and C(selector2).
          - V(amazon_ses) takes C(region), C(mail_from) (default V(mail); empty for the SES default) and C(dkim_tokens).
          - V(sendgrid) takes C(host) (such as V(u1234567.wl123.sendgrid.net)), C(return_path) (such as V(em1234)) and
            C(dkim_selectors) (default V([s1, s2])).
          - V(mailgun) takes C(sending_domain) (default V(mg); V(@) for the domain itself), C(region) (V(us) or V(eu)), C(spf_include),
            C(dkim_selector), C(dkim_value) and C(receiving_mx).
          - V(postmark) takes C(dkim_selector), C(dkim_value) and C(return_path) (default V(pm-bounces)).
          - V(resend) takes C(return_path) (default V(send)), C(region) (default V(us-east-1)) and C(dkim_value).
          - V(mailchimp_transactional) takes C(spf_include) (default V(false)).
        type: dict
        default: {}
  spf:
    description:
      - What the SPF record at O(domain) lists besides the providers' includes.
    type: dict
    default: {}
    suboptions:
      include:
        description:
          - Extra domains to include, for senders not in the catalog.
        type: list
        elements: str
        default: []
      ip4:
        description:
          - IPv4 addresses or networks (V(192.0.2.10), V(192.0.2.0/24)) of servers that send as O(domain).
        type: list
        elements: str
        default: []
      ip6:
        description:
          - IPv6 addresses or networks of servers that send as O(domain).
        type: list
        elements: str
        default: []
      a:
        description:
          - Add the C(a) mechanism (the addresses of O(domain) itself may send).
        type: bool
        default: false
      mx:
        description:
          - Add the C(mx) mechanism (the mail servers of O(domain) may send).
        type: bool
        default: false
      all:
        description:
          - How receivers treat servers the record does not list. V(softfail) (C(~all)) is the usual choice with DMARC,
            V(fail) (C(-all)) the strict one.
        type: str
        choices: [softfail, fail]
        default: softfail
      flatten:
        description:
          - When a record needs more than 10 lookups, replace includes by the addresses they allow, in as many extra records
            (C(_spf1.<name>), C(_spf2.<name>), ...) as needed.
          - Providers change their addresses without notice, so a flattened record must be rebuilt regularly (run the task daily).
            The module warns every time it flattens.
          - Includes whose records depend on the message (macros, C(exists), C(ptr)) are kept as they are.
        type: bool
        default: false
  dkim:
    description:
      - DKIM keys of your own, such as the RV(launchready.core.dkim_key#module:dkim_records) of M(launchready.core.dkim_key),
        published at C(<selector>._domainkey.<domain>).
    type: list
    elements: dict
    default: []
    suboptions:
      selector:
        description:
          - The selector.
        type: str
        required: true
      value:
        description:
          - The TXT value, C(v=DKIM1; k=rsa; p=...). Keys under 1024 bits are refused, keys under 2048 bits give a warning.
        type: str
      target:
        description:
          - A host name to delegate the selector to with a CNAME, instead of O(dkim[].value).
        type: str
  dmarc:
    description:
      - The DMARC policy. Left out, no DMARC record is built.
      - Roll out in stages, looking at the aggregate reports between each, as RFC 9989 section 7.4 advises, V(none) with O(dmarc.rua)
        first, then V(quarantine), then V(reject).
    type: dict
    suboptions:
      policy:
        description:
          - C(p), what receivers should do with mail that fails DMARC. V(none) needs O(dmarc.rua).
        type: str
        required: true
        choices: [none, quarantine, reject]
      subdomain_policy:
        description:
          - C(sp), the policy for subdomains; left out, they follow O(dmarc.policy).
        type: str
        choices: [none, quarantine, reject]
      nonexistent_subdomain_policy:
        description:
          - C(np) (RFC 9989), the policy for subdomains that do not exist.
        type: str
        choices: [none, quarantine, reject]
      rua:
        description:
          - Where aggregate reports go, as C(mailto:) URIs (V(mailto:dmarc@example.com)).
        type: list
        elements: str
        default: []
      ruf:
        description:
          - Where failure reports go, as C(mailto:) URIs. Few receivers send them.
        type: list
        elements: str
        default: []
      dkim_alignment:
        description:
          - C(adkim). Left out, relaxed.
        type: str
        choices: [relaxed, strict]
      spf_alignment:
        description:
          - C(aspf). Left out, relaxed.
        type: str
        choices: [relaxed, strict]
      failure_options:
        description:
          - C(fo), when failure reports are asked for, V(0), V(1), V(d), V(s) or several joined by C(:).
        type: str
      testing:
        description:
          - C(t=y) (RFC 9989), ask receivers to apply the policy one step weaker while you test it.
        type: bool
        default: false
      percent:
        description:
          - C(pct) (RFC 7489), from 0 to 100. RFC 9989 removed it and newer receivers ignore it; prefer O(dmarc.testing).
        type: int
  ttl:
    description:
      - TTL of every record built, in seconds (V(1) for Cloudflare's automatic TTL).
    type: int
    default: 3600
  keep_other_txt:
    description:
      - The record sets of M(launchready.core.cloudflare_dns_records) are whole sets, so a TXT set at the apex must also list the
        verification records already there. With V(true), the TXT records at each name this module writes are read from DNS and
        the ones that are not its own kind (not SPF at an SPF name, not DMARC at C(_dmarc)) are added to the set.
    type: bool
    default: true
  nameservers:
    description:
      - Nameservers to ask for everything, each V(host), V(host:port) or V([IPv6]:port), for example the collection's lab.
      - Left out, names under O(domain) are asked of its authoritative nameservers and other names of the system resolver.
    type: list
    elements: str
  query_timeout:
    description:
      - Seconds to wait for each DNS answer.
    type: float
    default: 3.0
notes:
  - SPF lookups are counted as a receiver checking mail from a server no mechanism matches would count them, the worst case.
  - A provider's DKIM key or account host comes from its dashboard; when one is missing the module says so in RV(notes) and builds
    the rest.
requirements:
  - dnspython >= 2.6 (on the controller)
  - cryptography >= 41.0 (on the controller, to read DKIM keys)
seealso:
  - module: launchready.core.cloudflare_dns_records
  - module: launchready.core.dkim_key
  - module: launchready.core.email_auth_check
  - name: RFC 7208 (SPF)
    description: Section 4.6.4 sets the DNS lookup limits.
    link: https://www.rfc-editor.org/rfc/rfc7208#section-4.6.4
  - name: RFC 9989 (DMARC)
    description: The DMARC record and its tags, section 4.7.
    link: https://www.rfc-editor.org/rfc/rfc9989#section-4.7
"""

EXAMPLES = r"""
- name: Build the records for example.com, sent by Google Workspace and SendGrid
  launchready.core.email_auth_records:
    domain: example.com
    providers:
      - name: google_workspace
        settings:
          dkim_value: "{{ google_dkim_value }}"
      - name: sendgrid
        settings:
          host: u1234567.wl123.sendgrid.net
          return_path: em1234
    dmarc:
      policy: none
      rua:
        - mailto:dmarc@example.com
  register: email_records

- name: Publish them
  launchready.core.cloudflare_dns_records:
    zone: example.com
    api_token: "{{ vault_cloudflare_api_token }}"
    records: "{{ email_records.records }}"

- name: A key of your own plus Amazon SES with a MAIL FROM subdomain, policy tightened to quarantine
  launchready.core.email_auth_records:
    domain: example.com
    providers:
      - name: amazon_ses
        settings:
          region: eu-west-1
          mail_from: bounce
          dkim_tokens: [abcdef1, abcdef2, abcdef3]
    dkim: "{{ dkim.dkim_records }}"
    spf:
      ip4: [192.0.2.10]
      all: fail
    dmarc:
      policy: quarantine
      subdomain_policy: reject
      rua: [mailto:reports@dmarc.example.net]
  register: email_records
"""

RETURN = r"""
records:
  description:
    - The record sets to publish, each with C(type), C(name) (fully qualified), C(content) or C(values), C(ttl) and C(comment),
      the shape O(launchready.core.cloudflare_dns_records#module:records) takes.
  returned: success
  type: list
  elements: dict
  sample:
    - {type: TXT, name: example.com, values: ["google-site-verification=abc", "v=spf1 include:_spf.google.com ~all"], ttl: 3600,
       comment: "launchready email_auth_records: SPF (google_workspace)"}
    - {type: TXT, name: _dmarc.example.com, content: "v=DMARC1; p=none; rua=mailto:dmarc@example.com", ttl: 3600,
       comment: "launchready email_auth_records: DMARC"}
report_authorization_records:
  description:
    - Records other domains must publish to accept DMARC reports about O(domain) (RFC 7489 section 7.1), each with C(zone),
      C(type), C(name), C(content), C(ttl) and C(comment). Publish them in that zone if it is yours; a DMARC report service
      publishes its own.
  returned: success
  type: list
  elements: dict
  sample: [{zone: example.net, type: TXT, name: example.com._report._dmarc.example.net, content: v=DMARC1, ttl: 3600}]
spf:
  description: Each SPF record built, with C(name), C(record), C(lookups), C(void_lookups), C(costs) (per term, with its C(source), the provider,
    V(spf) for O(spf), V(flattened), or empty for C(all)),
    C(flattened) (the includes replaced by addresses) and C(parts) (the extra records of a flattened record).
  returned: success
  type: list
  elements: dict
  sample: [{name: example.com, record: "v=spf1 include:_spf.google.com ~all", lookups: 4, void_lookups: 0, flattened: [], parts: [],
            costs: [{term: "include:_spf.google.com", lookups: 4, source: google_workspace}, {term: "~all", lookups: 0, source: ""}]}]
dkim:
  description: Each DKIM entry, with C(selector), C(name), C(source), C(type) (V(TXT) or V(CNAME)), and C(value), C(key_type) and
    C(bits) for a TXT key, or C(target) for a CNAME.
  returned: success
  type: list
  elements: dict
dmarc:
  description: The DMARC record built, with C(name) and C(record); null without O(dmarc).
  returned: success
  type: dict
  sample: {name: _dmarc.example.com, record: "v=DMARC1; p=none; rua=mailto:dmarc@example.com"}
notes:
  description: What was not built and why (a provider's DKIM key not given, no DMARC policy).
  returned: success
  type: list
  elements: str
errors:
  description: Every reason nothing was built.
  returned: failure
  type: list
  elements: str
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
from ansible_collections.launchready.core.plugins.module_utils._email_auth import BuildError, build_records, make_resolver
from ansible_collections.launchready.core.plugins.module_utils._email_providers import PROVIDERS

POLICIES = ["none", "quarantine", "reject"]


def argument_spec() -> dict:
    return dict(
        domain=dict(type="str", required=True),
        providers=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True, choices=sorted(PROVIDERS)),
            settings=dict(type="dict", default={}),
        )),
        spf=dict(type="dict", default={}, options=dict(
            include=dict(type="list", elements="str", default=[]),
            ip4=dict(type="list", elements="str", default=[]),
            ip6=dict(type="list", elements="str", default=[]),
            a=dict(type="bool", default=False),
            mx=dict(type="bool", default=False),
            all=dict(type="str", choices=["softfail", "fail"], default="softfail"),
            flatten=dict(type="bool", default=False),
        )),
        dkim=dict(type="list", elements="dict", default=[], options=dict(
            selector=dict(type="str", required=True),
            value=dict(type="str"),
            target=dict(type="str"),
        ), mutually_exclusive=[("value", "target")], required_one_of=[("value", "target")]),
        dmarc=dict(type="dict", options=dict(
            policy=dict(type="str", required=True, choices=POLICIES),
            subdomain_policy=dict(type="str", choices=POLICIES),
            nonexistent_subdomain_policy=dict(type="str", choices=POLICIES),
            rua=dict(type="list", elements="str", default=[]),
            ruf=dict(type="list", elements="str", default=[]),
            dkim_alignment=dict(type="str", choices=["relaxed", "strict"]),
            spf_alignment=dict(type="str", choices=["relaxed", "strict"]),
            failure_options=dict(type="str"),
            testing=dict(type="bool", default=False),
            percent=dict(type="int"),
        )),
        ttl=dict(type="int", default=3600),
        keep_other_txt=dict(type="bool", default=True),
        nameservers=dict(type="list", elements="str"),
        query_timeout=dict(type="float", default=3.0),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_IMPORT_ERROR)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    domain = params["domain"].strip().rstrip(".").lower()
    try:
        resolver = make_resolver([domain], params["nameservers"] or None, lambda servers: AsyncResolver(servers, timeout=params["query_timeout"]))
        result = asyncio.run(build_records(
            domain, params["providers"], params["spf"], params["dkim"], params["dmarc"], resolver,
            ttl=params["ttl"], keep_other_txt=params["keep_other_txt"]))
    except BuildError as exc:
        module.fail_json(msg="Nothing was built for %s: %s" % (domain, exc), errors=exc.errors)
    except DnsConfigError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.warnings:
        module.warn(warning)
    module.exit_json(
        changed=False,
        records=result.records,
        report_authorization_records=result.authorization_records,
        spf=result.spf,
        dkim=result.dkim,
        dmarc=result.dmarc,
        notes=result.notes,
    )


if __name__ == "__main__":
    main()
