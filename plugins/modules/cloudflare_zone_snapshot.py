#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudflare_zone_snapshot
short_description: Export a Cloudflare zone's records, settings and owned rules to a file, and restore them
version_added: 0.1.0
description:
  - With O(state=exported), reads a Cloudflare zone's DNS records, its zone settings and, in the four rule phases
    the collection manages (single redirects, cache rules, rate limiting rules, custom firewall rules), the rules this collection owns,
    and writes them to one JSON file, the snapshot.
  - The file is written atomically with mode C(0600), named C(<zone>-<UTC timestamp>.json) in O(folder) (created with mode C(0700)
    when missing), or at O(path). It holds a format name and C(format_version), never the API token.
  - With O(state=restored), makes the zone match a snapshot, planning every change before the first write.
    DNS records become exactly the snapshot's (one C(POST /zones/{zone_id}/dns_records/batch) per batch; records the snapshot does not
    have are deleted, except the apex NS records and those matching O(prune_ignore)). Zone settings that differ are written back in one
    C(PATCH /zones/{zone_id}/settings). In each phase whose owned rules differ, one C(PUT) of the entry point puts the snapshot's owned
    rules back, in their order; rules the collection does not own stay as they are, in their order.
  - A restore is asked for explicitly, so it is not held back by the prune threshold of M(launchready.core.cloudflare_dns_records);
    it reports how many records it creates, updates and deletes. Run it with C(--check --diff) first to read what it will change.
  - The newest snapshot (O(latest=true)) is the one whose file name carries the latest timestamp; file modification times are never used.
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
    details:
      - With O(state=exported), reads the zone and returns the path and content counts of the snapshot; writes no file.
      - With O(state=restored), reads the snapshot and the zone and returns every change a real run would make; makes no write call.
  diff_mode:
    support: partial
    details: With O(state=restored), returns before and after of each object that changes (the DNS records, the zone settings, the rules of each phase).
options:
  zone:
    description:
      - The zone, by name (V(example.com)) or by its 32-character id.
      - With O(state=restored), the snapshot must be of this zone.
    type: str
    required: true
  state:
    description:
      - V(exported) writes a snapshot of the zone.
      - V(restored) makes the zone match a snapshot.
    type: str
    choices: [exported, restored]
    default: exported
  folder:
    description:
      - The folder of the zone's snapshots, for example the C(state/snapshots) folder of the client's inventory.
      - With O(state=exported), the snapshot is written there unless O(path) is given. With O(latest=true), the newest snapshot of the zone there is restored.
      - A relative O(path) is read in this folder.
    type: path
  path:
    description:
      - With O(state=exported), the file to write instead of a new timestamped file in O(folder).
      - With O(state=restored), the snapshot to restore. A relative path is taken in O(folder).
      - Mutually exclusive with O(latest).
    type: path
  latest:
    description:
      - With O(state=restored), restore the newest snapshot of the zone in O(folder).
    type: bool
    default: false
  include:
    description:
      - What to export or restore. V(rules) means the owned rules of the four phases.
      - A restore only touches what the snapshot holds, so a snapshot exported without V(rules) leaves rules alone.
    type: list
    elements: str
    choices: [records, settings, rules]
    default: [records, settings, rules]
  ref_prefix:
    description:
      - With O(state=exported), the C(ref) prefix that marks the rules this collection owns, as in M(launchready.core.cloudflare_rules).
      - A restore uses the prefix saved in the snapshot.
    type: str
    default: launchready_
  prune_ignore:
    description:
      - With O(state=restored), shell-style patterns of records that the restore keeps although the snapshot does not have them,
        matched as O(launchready.core.cloudflare_dns_records#module:prune_ignore) is, for example V(_acme-challenge*).
    type: list
    elements: str
    default: []
notes:
  - Exporting needs read access on the zone to DNS records, zone settings and the rules of the four phases (C(Zone:Read) when O(zone) is a name);
    restoring needs the matching edit permissions. Leave out what the token cannot read with O(include).
  - All readable zone settings are saved. A restore writes back those that M(launchready.core.cloudflare_zone_settings) knows and the zone's
    plan lets the token edit; other settings that differ from the snapshot are named in a warning and RV(settings.not_restored).
  - A restore reads the zone (one call for the zone, one per page of records, one for the settings, one per phase) and writes at most one batch call
    per batch of record changes, one settings call and one call per phase that changes. If a write fails, the writes before it stay applied;
    run the restore again, it plans from the zone as it is then.
  - Records keep their values, TTL, proxy status, comments and tags; they get new ids when they are created again.
    Per-record C(settings) (such as C(flatten_cname)) are not saved.
seealso:
  - module: launchready.core.cloudflare_dns_records
  - module: launchready.core.cloudflare_zone_settings
  - module: launchready.core.cloudflare_rules
"""

EXAMPLES = r"""
- name: Snapshot the zone before the launch changes the edge
  launchready.core.cloudflare_zone_snapshot:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    state: exported
    folder: "{{ inventory_dir }}/state/snapshots"
  delegate_to: localhost
  register: snapshot

- name: Preview the restore of the newest snapshot (ansible-playbook --check --diff shows the same)
  launchready.core.cloudflare_zone_snapshot:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    state: restored
    folder: "{{ inventory_dir }}/state/snapshots"
    latest: true
  check_mode: true
  diff: true
  delegate_to: localhost

- name: Put the zone back as it was in a given snapshot, keeping pending ACME challenges
  launchready.core.cloudflare_zone_snapshot:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    state: restored
    folder: "{{ inventory_dir }}/state/snapshots"
    path: example.com-20250301T101500.000000Z.json
    prune_ignore: ["_acme-challenge*"]
  delegate_to: localhost
  register: restore

- name: Say what the restore did
  ansible.builtin.debug:
    msg: >-
      records {{ restore.records.created }} created, {{ restore.records.updated }} updated, {{ restore.records.deleted }} deleted;
      {{ restore.settings.changes | length }} settings; in {{ restore.api_calls }} API calls
"""

RETURN = r"""
zone:
  description: The zone.
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
      description: The zone's plan.
      type: str
      sample: free
snapshot:
  description: The snapshot written (in check mode, that would be written), or restored, and what it holds.
  returned: success
  type: dict
  contains:
    path:
      description: The snapshot file.
      type: str
      sample: /home/me/clients/acme/state/snapshots/example.com-20250301T101500.123456Z.json
    created_at:
      description: When the snapshot was taken (UTC).
      type: str
      sample: "2025-03-01T10:15:00.123456Z"
    format_version:
      description: The version of the snapshot format.
      type: int
      sample: 1
    zone:
      description: The zone the snapshot is of.
      type: str
      sample: example.com
    records:
      description: How many DNS records it holds (absent when it holds none because of O(include)).
      type: int
      sample: 12
    settings:
      description: How many zone settings it holds (absent when left out).
      type: int
      sample: 52
    rules:
      description: How many owned rules it holds per phase (absent when left out).
      type: dict
      sample: {http_request_cache_settings: 2, http_ratelimit: 1}
records:
  description: With O(state=restored), the record changes (made, or that would be made in check mode); when the records were restored.
  returned: success
  type: dict
  contains:
    created:
      description: How many records are created.
      type: int
    updated:
      description: How many records are changed in place.
      type: int
    deleted:
      description: How many records are deleted.
      type: int
    plan:
      description: Every change, as M(launchready.core.cloudflare_dns_records) returns it (C(creates), C(updates), C(deletes), C(batches)).
      type: dict
settings:
  description: With O(state=restored), the zone setting changes; when the settings were restored.
  returned: success
  type: dict
  contains:
    changes:
      description: The settings written back, each with C(id), C(before) and C(after).
      type: list
      elements: dict
      sample: [{id: always_use_https, before: "off", after: "on"}]
    not_restored:
      description: Settings that differ from the snapshot but that the collection does not write.
      type: list
      elements: str
    findings:
      description: Settings that differ but that the zone's plan does not let the token change, as findings (stage, severity, title, evidence, fix).
      type: list
      elements: dict
rules:
  description:
    - With O(state=restored), per phase of the snapshot, the owned rules C(added), changed (C(changed_rules)) and C(removed),
      and whether they only C(moved), as M(launchready.core.cloudflare_rules) returns them; when the rules were restored.
  returned: success
  type: dict
  sample: {http_request_cache_settings: {added: [], changed_rules: [], removed: [], moved: false}}
api_calls:
  description: How many Cloudflare API calls the run made, retries included.
  returned: always
  type: int
  sample: 7
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.launchready.core.plugins.module_utils._cloudflare import (
    CloudflareClient,
    CloudflareError,
    cloudflare_argument_spec,
    is_zone_id,
)
from ansible_collections.launchready.core.plugins.module_utils._records import batch_limit
from ansible_collections.launchready.core.plugins.module_utils._rulesets import RulesError, check_prefix
from ansible_collections.launchready.core.plugins.module_utils._snapshot import (
    RULE_PHASES,
    SECTIONS,
    RestorePlan,
    SnapshotError,
    build_snapshot,
    newest_snapshot,
    plan_restore,
    read_snapshot,
    sections_to_read,
    snapshot_filename,
    summary,
    utc_now,
    write_snapshot,
)


def argument_spec() -> dict:
    spec = cloudflare_argument_spec()
    spec.update(
        zone=dict(type="str", required=True),
        state=dict(type="str", choices=["exported", "restored"], default="exported"),
        folder=dict(type="path"),
        path=dict(type="path"),
        latest=dict(type="bool", default=False),
        include=dict(type="list", elements="str", choices=list(SECTIONS), default=list(SECTIONS)),
        ref_prefix=dict(type="str", default="launchready_"),
        prune_ignore=dict(type="list", elements="str", default=[]),
    )
    return spec


def option_problems(params: dict) -> str | None:
    """What is wrong with the options, checked before any call; None when they are fine."""
    if not params["include"]:
        return "include is empty: name at least one of records, settings, rules"
    if params["path"] and not os.path.isabs(params["path"]) and not params["folder"]:
        return "path %s is relative: give an absolute path, or folder to take it in" % params["path"]
    if params["state"] == "exported":
        if params["latest"]:
            return "latest only goes with state=restored"
        if not params["path"] and not params["folder"]:
            return "state=exported needs folder (where timestamped snapshots go) or path"
        try:
            check_prefix(params["ref_prefix"])
        except RulesError as exc:
            return str(exc)
        return None
    if params["path"] and params["latest"]:
        return "give path or latest=true, not both"
    if not params["path"] and not params["latest"]:
        return "state=restored needs path (a snapshot file) or latest=true (the newest in folder)"
    if params["latest"] and not params["folder"]:
        return "latest=true needs folder"
    return None


def given_path(params: dict) -> str:
    path = params["path"]
    return path if os.path.isabs(path) else os.path.join(params["folder"], path)


class RestoreFailed(Exception):
    """A write of a restore that Cloudflare refused, with what was written before it."""

    def __init__(self, message: str, changed: bool, error: CloudflareError):
        super().__init__(message)
        self.changed = changed
        self.error = error


def read_rulesets(client: CloudflareClient, zone_id: str, phases) -> dict:
    rulesets = {}
    for phase in phases:
        try:
            rulesets[phase] = client.entrypoint_ruleset(zone_id, phase)
        except CloudflareError as exc:
            raise CloudflareError("reading the rules of %s: %s (leave rules out with include if the token may not read them)" % (phase, exc),
                                  exc.status, exc.errors, exc.method, exc.path) from None
    return rulesets


def export(module: AnsibleModule, client: CloudflareClient) -> dict:
    params = module.params
    include = params["include"]
    zone = client.zone(params["zone"])
    created = utc_now()
    records = client.dns_records(zone["id"]) if "records" in include else None
    settings = client.zone_settings(zone["id"]) if "settings" in include else None
    rulesets = read_rulesets(client, zone["id"], RULE_PHASES) if "rules" in include else None
    snapshot = build_snapshot(zone, created, params["ref_prefix"], records, settings, rulesets)
    path = given_path(params) if params["path"] else os.path.join(params["folder"], snapshot_filename(zone["name"], created))
    if not module.check_mode:
        write_snapshot(path, snapshot)
    return dict(changed=True, zone=zone, snapshot=dict(summary(snapshot), path=os.path.abspath(path)), api_calls=client.api_calls)


class Writer:
    """Carries out a restore plan, remembering what it has written for the message of a later failure."""

    def __init__(self, client: CloudflareClient, zone_id: str, plan: RestorePlan, batch_size: int):
        self.client = client
        self.zone_id = zone_id
        self.plan = plan
        self.batch_size = batch_size
        self.done: list[str] = []

    def write(self) -> None:
        plan = self.plan
        if plan.records and plan.records.changed:
            batches = plan.records.batches(self.batch_size)
            for number, batch in enumerate(batches, 1):
                self.step("DNS records (batch %d of %d)" % (number, len(batches)), lambda batch=batch: self.client.dns_batch(self.zone_id, batch.body()),
                          batch)
        if plan.settings and plan.settings.changed:
            items = plan.settings.items
            self.step("zone settings", lambda: self.client.edit_zone_settings(self.zone_id, items))
        for phase, ruleset in (plan.rules or {}).items():
            if ruleset.changed:
                self.step("rules of %s" % phase, lambda phase=phase, ruleset=ruleset: self.client.put_entrypoint_ruleset(self.zone_id, phase, ruleset.body()))

    def step(self, what: str, call, batch=None) -> None:
        try:
            call()
        except CloudflareError as exc:
            culprits = [batch.describe(section, index) for section, index in exc.batch_pointers()] if batch is not None else []
            cause = ("Caused by: %s. " % "; ".join(c for c in culprits if c)) if any(culprits) else ""
            written = ("Already restored: %s. " % ", ".join(self.done)) if self.done else "Nothing was written before it. "
            raise RestoreFailed("restoring the %s failed: %s. %sCloudflare applies each write whole or not at all. %s"
                                "Fix the cause and run the restore again: it plans from the zone as it is then." % (what, exc, cause, written),
                                bool(self.done), exc) from None
        self.done.append(what)


def restore(module: AnsibleModule, client: CloudflareClient) -> dict:
    params = module.params
    ref = params["zone"].strip().lower().rstrip(".")
    zone = None
    if params["latest"]:
        if is_zone_id(ref):  # the files are named after the zone's name
            zone = client.zone(ref)
        path = newest_snapshot(params["folder"], zone["name"] if zone else ref)
    else:
        path = given_path(params)
    snapshot = read_snapshot(path)
    zone = zone or client.zone(ref)
    if snapshot["zone"]["name"] != zone["name"]:
        raise SnapshotError("%s is a snapshot of %s, not of %s: nothing was changed" % (path, snapshot["zone"]["name"], zone["name"]))
    wants_records, wants_settings, phases = sections_to_read(snapshot, params["include"])
    listed_records = client.dns_records(zone["id"]) if wants_records else None
    listed_settings = client.zone_settings(zone["id"]) if wants_settings else None
    rulesets = read_rulesets(client, zone["id"], phases)
    plan = plan_restore(snapshot, params["include"], params["prune_ignore"], listed_records, listed_settings, rulesets)
    for warning in plan.warnings():
        module.warn(warning)
    batch_size = batch_limit(zone["plan"])
    planned = plan.result(batch_size)  # before writing: check mode and a real run report the same plan
    if not module.check_mode:
        Writer(client, zone["id"], plan, batch_size).write()
    result = dict(changed=plan.changed, zone=zone, snapshot=dict(summary(snapshot), path=os.path.abspath(path)), api_calls=client.api_calls, **planned)
    if module._diff:
        result["diff"] = plan.diffs()
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    problem = option_problems(params)
    if problem:
        module.fail_json(msg=problem, api_calls=0, changed=False)

    client = CloudflareClient.from_module(module)
    try:
        with client:
            result = export(module, client) if params["state"] == "exported" else restore(module, client)
    except SnapshotError as exc:
        module.fail_json(msg=client.scrub(str(exc)), api_calls=client.api_calls, changed=False)
    except RestoreFailed as exc:
        module.fail_json(msg=client.scrub(str(exc)), api_calls=client.api_calls, changed=exc.changed, **exc.error.as_result())
    except CloudflareError as exc:
        module.fail_json(msg=client.scrub(str(exc)), api_calls=client.api_calls, changed=False, **exc.as_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
