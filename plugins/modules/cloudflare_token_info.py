#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudflare_token_info
short_description: Verify a Cloudflare API token and check that it holds no more than the launch needs
version_added: 0.1.0
description:
  - Verifies the API token (C(GET /user/tokens/verify)). A token Cloudflare rejects, or one that is disabled, expired or not valid yet,
    is a V(must_do_now) finding; one that expires within O(expiry_warning_days) is V(can_wait).
  - Then checks least privilege, the permissions the stages in O(needs) require on O(zones) against what the token holds.
  - When the token may read itself (it holds C(API Tokens Read)), its policies are read (C(GET /user/tokens/{token_id})).
    Every permission group and the resources it applies to are then known exactly.
  - Otherwise the token is probed with read-only calls. These list the zones it reaches, and read the DNS records, zone settings,
    the redirect, cache and custom-rule entry points, and Origin CA certificates of each zone in O(zones).
    Edit rights cannot be seen without writing, which this module never does; the stages' own writes prove them.
  - Too broad is a finding. V(must_do_now) covers edit rights beyond O(zones) (All zones, every zone of an account, other zones),
    every account, token administration (C(API Tokens Write)), and account or user edit permissions.
    V(can_wait) covers read-only reach beyond O(zones), and zone permissions no stage in O(needs) asks for.
    A permission the stages need and the token lacks is V(must_do_now).
  - Returns findings (stage, severity, title, evidence, fix) for the launch report; it never fails on findings.
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
    details: The module only reads; check mode changes nothing.
  diff_mode:
    support: none
    details: Nothing to show a diff of.
options:
  needs:
    description:
      - What the token is for, as stage names, permissions, or both.
      - Stages are V(domain_routing) (records and the redirect map), which needs C(zone:read), C(dns_records:edit) and C(dynamic_url_redirects:edit).
        V(edge_security) needs C(zone:read), C(zone_settings:edit), C(cache_settings:edit), C(zone_waf:edit) and C(ssl_and_certificates:edit).
        V(secrets_env) (mail DNS records) needs C(zone:read) and C(dns_records:edit).
        V(handover) reads C(zone), C(dns_records), C(zone_settings) and C(ssl_and_certificates).
        V(rollback) needs what V(domain_routing) and V(edge_security) need, without certificates.
        V(audit), V(deploy), V(backend_performance) and V(monitoring) need nothing from Cloudflare.
      - A permission is C(<resource>:read) or C(<resource>:edit) (V(dns_records:edit)), or the name of a Cloudflare permission group
        (V(DNS Write), V(DNS Edit), V(Zone Read)). C(edit) includes C(read).
    type: list
    elements: str
    required: true
  zones:
    description:
      - The zones of the launch, by name or by 32-character id. The needed permissions are checked on each; reach beyond them is a finding.
      - Required when O(needs) names any permission.
    type: list
    elements: str
    default: []
  account_id:
    description:
      - For an account-owned token, the id of the account that owns it.
        Cloudflare verifies such tokens only at C(/accounts/{account_id}/tokens/verify); C(/user/tokens/verify) rejects them.
    type: str
  expiry_warning_days:
    description:
      - A token that expires within this many days is a V(can_wait) finding.
    type: int
    default: 30
  stage:
    description:
      - The stage recorded in each finding.
    type: str
    default: secrets_env
notes:
  - The API token needs C(Zone:Read) to find the zones. Adding C(User > API Tokens > Read) lets it read its own policies for an exact check;
    that permission shows the user's token list (names and policies, never token values) and changes nothing.
  - Every call is a GET. The probes answer 403 for a missing permission. A 404 from an entry point that does not exist yet still proves the permission.
seealso:
  - module: launchready.core.cloudflare_dns_records
  - name: Cloudflare API token permissions
    description: Every permission group and the scope it applies to.
    link: https://developers.cloudflare.com/fundamentals/api/reference/permissions/
  - name: Verify Token
    description: The verify call and its answer.
    link: https://developers.cloudflare.com/api/resources/user/subresources/tokens/methods/verify/
"""

EXAMPLES = r"""
- name: Check the launch's Cloudflare token
  launchready.core.cloudflare_token_info:
    api_token: "{{ vault_cloudflare_api_token }}"
    zones: [example.com]
    needs: [domain_routing, edge_security, secrets_env]
  delegate_to: localhost
  register: token_check

- name: Stop on a token that is expired or can change other zones
  ansible.builtin.assert:
    that: token_check.findings | selectattr('severity', 'equalto', 'must_do_now') | list | length == 0
    fail_msg: "{{ token_check.findings | selectattr('severity', 'equalto', 'must_do_now') | map(attribute='title') | join('; ') }}"

- name: A token for DNS only, given as permissions
  launchready.core.cloudflare_token_info:
    api_token: "{{ vault_cloudflare_dns_token }}"
    zones: [example.com]
    needs: ["Zone Read", "DNS Write"]
  delegate_to: localhost
"""

RETURN = r"""
accepted:
  description: Whether Cloudflare accepted the token at the verify call. When false, nothing else was checked.
  returned: always
  type: bool
  sample: true
token:
  description: The token as the verify call (and, when readable, the token itself) describes it. Never its value.
  returned: when accepted
  type: dict
  contains:
    id:
      description: The token's id (not a secret).
      type: str
      sample: ed17574386854bf78a67040be0a770b0
    status:
      description: V(active), V(disabled) or V(expired).
      type: str
      sample: active
    expires_on:
      description: When it expires (RFC 3339), if it does.
      type: str
      sample: "2026-01-01T00:00:00Z"
    not_before:
      description: When it starts being valid, if set.
      type: str
    name:
      description: The token's name, when the token could read itself.
      type: str
      sample: launch example.com
needed:
  description: Each needed permission and what needs it (a stage name, or V(needs) for a permission given directly).
  returned: always
  type: dict
  sample: {"zone:read": [domain_routing], "dns_records:edit": [domain_routing, secrets_env]}
privileges:
  description: What the token was found to hold.
  returned: when accepted
  type: dict
  contains:
    source:
      description: V(policies) (read from the token) or V(probes) (read-only calls).
      type: str
      sample: policies
    held:
      description: Per zone of O(zones), the permissions held there. From probes, only reads are seen.
      type: dict
      sample: {"example.com": ["dns_records:edit", "zone:read"]}
    missing:
      description: Per zone, needed permissions the token lacks.
      type: dict
      sample: {}
    beyond_needs:
      description: Per zone, permissions held that nothing in O(needs) asks for.
      type: dict
      sample: {"example.com": ["zone_waf:edit"]}
    reach:
      description:
        - Where the token reaches beyond O(zones), each with C(scope), C(permissions) and C(edit).
        - C(edit) is true or false from policies, and null from probes.
      type: list
      elements: dict
      sample: [{scope: every zone (All zones), permissions: ["dns_records:edit", "zone:read"], edit: true}]
probes:
  description:
    - The read-only probes made when the token could not read itself.
    - Each has C(zone), C(resource), C(readable) (true, false, or null when unclear) and C(status).
  returned: when the token could not read its own policies
  type: list
  elements: dict
  sample: [{zone: example.com, resource: dns_records, readable: true, status: 200}]
findings:
  description: Findings for the launch report, launch blockers first, each with C(stage), C(severity), C(title), C(evidence) and C(fix).
  returned: always
  type: list
  elements: dict
  sample:
    - stage: secrets_env
      severity: must_do_now
      title: The Cloudflare API token reaches beyond the launch's zones with edit rights
      evidence: DNS Write, Zone Read on every zone (All zones)
      fix: "Edit the token: Zone Resources, Include, Specific zone, one line per zone of this launch (example.com)..."
api_calls:
  description: How many Cloudflare API calls the run made, retries included.
  returned: always
  type: int
  sample: 3
"""

from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.launchready.core.plugins.module_utils._cloudflare import (
    PER_PAGE_ZONES,
    CloudflareClient,
    CloudflareError,
    cloudflare_argument_spec,
    is_zone_id,
)
from ansible_collections.launchready.core.plugins.module_utils._findings import ranked
from ansible_collections.launchready.core.plugins.module_utils._token_scope import (
    PROBES,
    ScopeError,
    Zone,
    assess_policies,
    assess_probes,
    parse_policies,
    rejected_finding,
    resolve_needs,
    status_findings,
)

TOKEN_FIELDS = ("id", "status", "expires_on", "not_before", "name", "issued_on", "modified_on")


def argument_spec() -> dict:
    spec = cloudflare_argument_spec()
    spec.update(
        needs=dict(type="list", elements="str", required=True),
        zones=dict(type="list", elements="str", default=[]),
        account_id=dict(type="str"),
        expiry_warning_days=dict(type="int", default=30),
        stage=dict(type="str", default="secrets_env"),
    )
    return spec


def _token_path(account_id: str | None, tail: str) -> str:
    return ("/accounts/%s/tokens/%s" % (account_id, tail)) if account_id else "/user/tokens/%s" % tail


def _get_or_none(client: CloudflareClient, path: str, statuses: tuple[int, ...], params: dict | None = None):
    """The answer's result, or ``None`` when the API answers one of ``statuses`` (the token may not do this)."""
    try:
        return client.get(path, params=params)
    except CloudflareError as exc:
        if exc.status in statuses:
            return None
        raise


def list_zones(client: CloudflareClient) -> list[Zone] | None:
    """Every zone the token can see, or ``None`` when it may not list zones."""
    try:
        listed = client.paginate("/zones", per_page=PER_PAGE_ZONES)
    except CloudflareError as exc:
        if exc.status in (401, 403):
            return None
        raise
    return [Zone(str(z["id"]).lower(), str(z.get("name", "")).lower(), str((z.get("account") or {}).get("id", "")).lower()) for z in listed]


def resolve_zones(refs: list[str], visible: list[Zone] | None) -> tuple[list[Zone], list[str]]:
    """The configured zones as seen by the token, and the names it cannot see. A zone given by id is kept even when unseen."""
    zones, unresolved = [], []
    for ref in refs:
        key = ref.strip().lower().rstrip(".")
        found = [z for z in visible or [] if (z.id if is_zone_id(key) else z.name) == key]
        if found:
            zones.append(found[0])
        elif is_zone_id(key):
            zones.append(Zone(key, ""))
        else:
            unresolved.append(key)
    return zones, unresolved


def probe(client: CloudflareClient, zone: Zone) -> tuple[set[str], list[dict]]:
    """Which zone-level resources the token can read on ``zone``, by read-only calls."""
    readable: set[str] = set()
    probes: list[dict] = []
    for resource, (method, template, params) in PROBES.items():
        path = template.format(zone_id=zone.id)
        query = {key: str(value).format(zone_id=zone.id) for key, value in params.items()} or None
        outcome: bool | None = True
        status: int | None = 200
        try:
            client.request(method, path, params=query)
        except CloudflareError as exc:
            status = exc.status
            if exc.status == 401:
                raise
            if exc.status == 403:
                outcome = False
            elif exc.status == 404 and template.endswith("/entrypoint"):
                outcome = True  # the phase has no entry point yet, and the token was allowed to ask
            else:
                outcome = None
        if outcome:
            readable.add(resource)
        probes.append({"zone": zone.shown, "resource": resource, "readable": outcome, "status": status})
    return readable, probes


def run(module: AnsibleModule, client: CloudflareClient, needed: dict) -> dict:
    params = module.params
    stage, account_id = params["stage"], params["account_id"]
    result: dict = {"changed": False, "needed": needed}

    verify_path = _token_path(account_id, "verify")
    try:
        verified = client.get(verify_path) or {}
    except CloudflareError as exc:
        if exc.status not in (400, 401, 403):
            raise
        result.update(accepted=False, findings=ranked([rejected_finding(str(exc), stage)]))
        return result

    token = {key: verified[key] for key in TOKEN_FIELDS if verified.get(key) is not None}
    findings = status_findings(token, datetime.now(timezone.utc), params["expiry_warning_days"], stage)
    result.update(accepted=True, token=token)

    details = _get_or_none(client, _token_path(account_id, token.get("id", "")), (401, 403, 404)) if token.get("id") else None
    visible = list_zones(client)
    zones, unresolved = resolve_zones(params["zones"], visible)
    if isinstance(details, dict) and isinstance(details.get("policies"), list):
        token.update({key: details[key] for key in ("name", "issued_on", "modified_on") if details.get(key) is not None})
        try:
            assessment = assess_policies(parse_policies(details["policies"]), needed, zones, unresolved, stage)
        except ScopeError as exc:
            module.fail_json(msg="the token's policies could not be read: %s" % exc, api_calls=client.api_calls)
    else:
        readable: dict[str, set[str]] = {}
        probes: list[dict] = []
        for zone in zones:
            readable[zone.shown], zone_probes = probe(client, zone)
            if visible is not None and zone.id in {z.id for z in visible}:
                readable[zone.shown].add("zone")
            probes.extend(zone_probes)
        assessment = assess_probes(visible, readable, needed, zones, unresolved, stage)
        result["probes"] = probes
    result.update(privileges=assessment.as_dict(), findings=ranked(findings + assessment.findings))
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        needed = resolve_needs(params["needs"])
    except ScopeError as exc:
        module.fail_json(msg=str(exc), api_calls=0)
    if needed and not params["zones"]:
        module.fail_json(msg="zones is required: the needed permissions (%s) are checked on the launch's zones" % ", ".join(sorted(needed)), api_calls=0)
    if params["expiry_warning_days"] < 0:
        module.fail_json(msg="expiry_warning_days must be 0 or more, not %d" % params["expiry_warning_days"], api_calls=0)

    client = CloudflareClient.from_module(module)
    try:
        with client:
            result = run(module, client, needed)
    except CloudflareError as exc:
        module.fail_json(msg=client.scrub(str(exc)), api_calls=client.api_calls, **exc.as_result())
    result["api_calls"] = client.api_calls
    module.exit_json(**result)


if __name__ == "__main__":
    main()
