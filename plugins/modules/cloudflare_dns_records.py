#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudflare_dns_records
short_description: Declare the DNS record sets of a Cloudflare zone
version_added: 0.1.0
description:
  - Makes the DNS records of a Cloudflare zone match a list of record sets, in as few API calls as possible.
  - Lists the zone once (every page), plans every change, then writes the plan with C(POST /zones/{zone_id}/dns_records/batch),
    one call per batch of at most the zone plan's limit (200 changes on Free, 3,500 on Pro, Business and Enterprise).
  - A record set is every record of one name and type, for example all TXT records at the apex or all MX records.
    The values listed for a set are the whole set; values the zone has beyond them are changed into the missing ones
    (an update of the existing record, never a delete and a create) or deleted.
  - Values already right are not touched. O(records[].ttl), O(records[].proxied), O(records[].comment) and O(records[].tags) are only compared when set;
    when left out, the zone keeps whatever it has.
  - Every input is checked before the first API call, and a plan that would delete too much of the zone
    (O(prune_threshold)) is refused unless O(force=true).
  - Cloudflare applies each batch in one transaction, so a batch that fails leaves the zone as it was before that batch.
author:
  - launchready.core maintainers (@launchready)
extends_documentation_fragment:
  - launchready.core.cloudflare
  - launchready.core.cloudflare.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Lists the zone and returns the plan the real run would carry out; makes no write call.
  diff_mode:
    support: full
    details: Returns the sets that change, before and after, values sorted.
options:
  zone:
    description:
      - The zone, by name (V(example.com)) or by its 32-character id.
      - With an id and only absolute record names (ending with a dot), the module skips the zone lookup when it can.
    type: str
    required: true
  records:
    description:
      - The record sets the zone must have (or not have).
      - Items that name the same O(records[].name) and O(records[].type) add up to one set.
      - An empty list changes nothing unless O(prune=true).
    type: list
    elements: dict
    required: true
    suboptions:
      type:
        description:
          - The record type, one of V(A), V(AAAA), V(CAA), V(CNAME), V(MX), V(NS), V(PTR), V(SRV), V(TXT) (any case).
        type: str
        required: true
      name:
        description:
          - V(@) for the zone apex, a name relative to the zone (V(www)), or a fully qualified name.
          - A name that ends with the zone's name, or with a dot, is absolute; any other name is relative to the zone.
        type: str
        required: true
      content:
        description:
          - The value of a one-value set.
          - An IPv4 address for V(A), an IPv6 address for V(AAAA) (compared compressed), a host name for V(CNAME), V(NS), V(PTR) and V(MX)
            (compared lowercase, without the trailing dot).
          - For V(TXT), the text. Quoting is normalised, so V(v=spf1 -all), V("v=spf1 -all") and V("v=spf1" " -all") are the same value;
            text longer than 255 bytes is written as several 255-byte strings, as Cloudflare expects.
          - V(MX), V(SRV) and V(CAA) also accept the zone-file form, for example V(10 mail.example.com), V(10 5 5060 sip.example.com)
            or V(0 issue "letsencrypt.org").
          - Mutually exclusive with O(records[].values).
        type: str
      values:
        description:
          - The values of a set with several records, for example several TXT records at the apex or several MX records.
          - Each item is a string read like O(records[].content), or a dictionary with the keys C(content), C(priority) and C(data).
          - The other options of the item apply to every value.
        type: list
        elements: raw
      ttl:
        description:
          - Time to live in seconds, V(1) for automatic, otherwise from V(60) to V(86400).
          - Left out, existing records keep theirs and new records get V(1) (automatic).
          - Ignored for proxied records, whose TTL Cloudflare keeps automatic.
        type: int
      proxied:
        description:
          - Whether Cloudflare proxies the record. Only V(A), V(AAAA) and V(CNAME) records can be proxied.
          - Left out, existing records keep theirs and new records are not proxied.
        type: bool
      priority:
        description:
          - The priority of V(MX) records (required for them, unless the content is written V(10 mail.example.com)), or of V(SRV) records.
        type: int
      comment:
        description:
          - A note on the record, not published in DNS. V("") removes it. Left out, the record keeps its comment.
        type: str
      tags:
        description:
          - Tags of the form C(name:value), not published in DNS. V([]) removes them. Left out, the record keeps its tags.
        type: list
        elements: str
      data:
        description:
          - The components of a V(SRV) record (C(priority), C(weight), C(port), C(target)) or a V(CAA) record (C(flags), C(tag), C(value)).
        type: dict
      state:
        description:
          - V(present) makes the set exactly the values given.
          - V(absent) deletes the values given, or the whole set when no value is given.
        type: str
        choices: [present, absent]
        default: present
  prune:
    description:
      - Also delete every record whose name and type no item of O(records) names.
      - Never deletes the apex NS records, nor records matching O(prune_ignore).
    type: bool
    default: false
  prune_ignore:
    description:
      - Shell-style patterns (C(fnmatch), case-insensitive) of records that O(prune) keeps.
      - A pattern is matched against the record's full name, its name relative to the zone (V(@) for the apex),
        and both again prefixed with the type and a colon, so V(_acme-challenge*), V(*.internal.example.com)
        and V(txt:@) all work. C(*) also matches dots.
    type: list
    elements: str
    default: []
  prune_threshold:
    description:
      - In a zone of 10 records or more, refuse (and change nothing) when the plan deletes more than this percentage of the zone's records.
      - Counts records deleted by O(prune) and values dropped from a listed set; records listed with O(records[].state=absent) do not count.
    type: float
    default: 30
  force:
    description:
      - Carry out a plan that exceeds O(prune_threshold).
    type: bool
    default: false
notes:
  - Makes one C(GET /zones) call (skipped when possible if O(zone) is an id), one C(GET /zones/{zone_id}/dns_records) call per page
    of the zone (one page for any zone Cloudflare allows), and, outside check mode, one batch call per batch of changes.
    A run that changes nothing makes at most two calls.
  - Batches run one after the other. If one fails, Cloudflare has applied none of its changes, but the batches before it stay applied;
    the module is idempotent, so running it again once the cause is fixed finishes the work.
  - Records of other types in the zone (HTTPS, DS, ...) are only ever touched by O(prune).
seealso:
  - name: Cloudflare batch record changes
    description: How batches run, and their size per plan.
    link: https://developers.cloudflare.com/dns/manage-dns-records/how-to/batch-record-changes/
  - name: Cloudflare DNS record attributes
    description: TTL, proxy status, comments and tags.
    link: https://developers.cloudflare.com/dns/manage-dns-records/reference/
"""

EXAMPLES = r"""
# The token lives in Ansible Vault, for instance in group_vars/all/vault.yml:
#   vault_cloudflare_api_token: !vault |
#     $ANSIBLE_VAULT;1.1;AES256
#     ...
- name: Publish the launch DNS records
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/launchready.core.cloudflare:
      api_token: "{{ vault_cloudflare_api_token }}"
  tasks:
    - name: Web, mail and verification records of example.com
      launchready.core.cloudflare_dns_records:
        zone: example.com
        records:
          - type: A
            name: "@"
            content: 203.0.113.10
            proxied: true
          - type: CNAME
            name: www
            content: example.com
            proxied: true
          - type: MX
            name: "@"
            values:
              - "10 mx1.mail.example.net"
              - content: mx2.mail.example.net
                priority: 20
          - type: TXT
            name: "@"
            values:
              - v=spf1 include:_spf.mail.example.net -all
              - google-site-verification=abc123
            comment: managed by launchready
          - type: CAA
            name: "@"
            data:
              flags: 0
              tag: issue
              value: letsencrypt.org
          - type: A
            name: staging
            state: absent

- name: Own the whole zone, keeping ACME challenges and anything under internal
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/launchready.core.cloudflare:
      api_token: "{{ vault_cloudflare_api_token }}"
  tasks:
    - name: Delete every record the list does not name
      launchready.core.cloudflare_dns_records:
        zone: example.com
        records: "{{ dns_records }}"
        prune: true
        prune_ignore:
          - "_acme-challenge*"
          - "*.internal"
      register: dns

    - name: Show what changed
      ansible.builtin.debug:
        msg: >-
          {{ dns.plan.creates | length }} created, {{ dns.plan.updates | length }} updated,
          {{ dns.plan.deletes | length }} deleted in {{ dns.api_calls }} API calls
"""

RETURN = r"""
zone:
  description: The zone. Without a lookup (O(zone) given as an id), only RV(zone.id) is known.
  returned: success
  type: dict
  contains:
    id:
      description: The zone id.
      type: str
      sample: 023e105f4ecef8ad9ca31a8372d0c353
    name:
      description: The zone name.
      type: str
      sample: example.com
    plan:
      description: The zone's plan, which sets the batch size.
      type: str
      sample: free
plan:
  description:
    - Every change, in check mode as in a real run. Values read as in zone files (TXT unquoted and joined).
    - Also returned when the plan is refused by O(prune_threshold).
  returned: success and on a refused plan
  type: dict
  contains:
    creates:
      description: Records to create, each with C(name), C(type), C(value), C(ttl), C(proxied) and, when set, C(comment) and C(tags).
      type: list
      elements: dict
      sample: [{name: www.example.com, type: A, value: 203.0.113.10, ttl: 1, proxied: true}]
    updates:
      description: Records to change in place, each with C(id), C(name), C(type), the fields that change (C(changes)), C(before) and C(after).
      type: list
      elements: dict
    deletes:
      description:
        - Records to delete, each with C(id), C(name), C(type), C(value), C(ttl), C(proxied) and C(reason).
        - C(reason) is V(absent) (listed with O(records[].state=absent)), V(not_in_set) (a value the listed set no longer has) or V(pruned).
      type: list
      elements: dict
    batches:
      description: How many batch calls the plan takes.
      type: int
      sample: 1
records:
  description: The sets the list keeps, as they are after the run (as they would be, in check mode), sorted by name, type and value.
  returned: success
  type: list
  elements: dict
  sample: [{id: 372e67954025e0ba6aaa6d586b9e0b59, name: example.com, type: TXT, value: v=spf1 -all, ttl: 1, proxied: false}]
api_calls:
  description: How many Cloudflare API calls the run made, retries included.
  returned: always
  type: int
  sample: 3
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.launchready.core.plugins.module_utils._cloudflare import (
    CloudflareClient,
    CloudflareError,
    cloudflare_argument_spec,
    is_zone_id,
)
from ansible_collections.launchready.core.plugins.module_utils._records import (
    DEFAULT_BATCH_LIMIT,
    RecordError,
    batch_limit,
    bind,
    make_plan,
    needs_zone_name,
    parse_entries,
)


def argument_spec() -> dict:
    spec = cloudflare_argument_spec()
    spec.update(
        zone=dict(type="str", required=True),
        records=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                type=dict(type="str", required=True),
                name=dict(type="str", required=True),
                content=dict(type="str"),
                values=dict(type="list", elements="raw"),
                ttl=dict(type="int"),
                proxied=dict(type="bool"),
                priority=dict(type="int"),
                comment=dict(type="str"),
                tags=dict(type="list", elements="str"),
                data=dict(type="dict"),
                state=dict(type="str", choices=["present", "absent"], default="present"),
            ),
            mutually_exclusive=[("content", "values")],
        ),
        prune=dict(type="bool", default=False),
        prune_ignore=dict(type="list", elements="str", default=[]),
        prune_threshold=dict(type="float", default=30),
        force=dict(type="bool", default=False),
    )
    return spec


def batch_failure(exc: CloudflareError, batch, number: int, batches: list) -> str:
    culprits = [batch.describe(section, index) for section, index in exc.batch_pointers()]
    culprits = [c for c in culprits if c]
    if not culprits and len(batch) == 1:
        culprits = [batch.describe(section, 0) for section in ("deletes", "patches", "puts", "posts") if batch.describe(section, 0)]
    message = "batch %d of %d was rejected: %s. " % (number, len(batches), exc)
    if culprits:
        message += "Caused by: %s. " % "; ".join(culprits)
    message += "Cloudflare applies a batch all-or-nothing, so none of its %d changes were applied" % len(batch)
    if number == 1:
        return message + "; the zone is as it was before this task."
    applied = sum(len(b) for b in batches[: number - 1])
    return message + "; the %d changes of the batches before it were applied. Fix the cause and run the task again to finish." % applied


def run(module: AnsibleModule, client: CloudflareClient, entries: list, desired) -> dict:
    params = module.params
    zone_ref = params["zone"].strip().lower().rstrip(".")
    zone = None
    if desired is None:  # zone given as an id
        if params["prune"] or any(needs_zone_name(entry.name) for entry in entries):
            zone = client.zone(zone_ref)
            desired = bind(entries, zone["name"])
        else:
            desired = bind(entries, None)
    else:
        zone = client.zone(zone_ref)
    zone_id = zone["id"] if zone else zone_ref

    listed = client.dns_records(zone_id)
    try:
        plan = make_plan(desired, listed, params["prune"], params["prune_ignore"], params["prune_threshold"], params["force"])
    except RecordError as exc:
        failure = dict(msg=str(exc), api_calls=client.api_calls, changed=False)
        if exc.plan is not None:
            failure["plan"] = exc.plan.as_dict()
        module.fail_json(**failure)
    for warning in plan.warnings:
        module.warn(warning)

    changes = len(plan.creates) + len(plan.updates) + len(plan.deletes)
    if zone is None and changes > DEFAULT_BATCH_LIMIT:
        zone = client.zone(zone_ref)  # the plan's batch size depends on the zone's plan
    limit = batch_limit(zone["plan"]) if zone else DEFAULT_BATCH_LIMIT
    batches = plan.batches(limit)
    planned = plan.as_dict(limit)  # before writing: check mode and the real run report the same plan

    if not module.check_mode:
        for number, batch in enumerate(batches, 1):
            try:
                answer = client.dns_batch(zone_id, batch.body())
            except CloudflareError as exc:
                module.fail_json(
                    msg=batch_failure(exc, batch, number, batches),
                    changed=number > 1,
                    api_calls=client.api_calls,
                    plan=planned,
                    **exc.as_result()
                )
            batch.record_answer(answer)

    result = dict(
        changed=plan.changed,
        zone=zone or {"id": zone_id},
        plan=planned,
        records=plan.records(),
        api_calls=client.api_calls,
    )
    if module._diff:
        result["diff"] = plan.diff()
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if not 0 <= params["prune_threshold"] <= 100:
        module.fail_json(msg="prune_threshold must be a percentage from 0 to 100, not %s" % params["prune_threshold"], api_calls=0)
    try:
        entries, warnings = parse_entries(params["records"])
        desired = None if is_zone_id(params["zone"]) else bind(entries, params["zone"])
    except RecordError as exc:
        module.fail_json(msg=str(exc), api_calls=0)
    for warning in warnings:
        module.warn(warning)

    client = CloudflareClient.from_module(module)
    try:
        with client:
            result = run(module, client, entries, desired)
    except (CloudflareError, RecordError) as exc:
        failure = exc.as_result() if isinstance(exc, CloudflareError) else {}
        module.fail_json(msg=client.scrub(str(exc)), api_calls=client.api_calls, **failure)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
