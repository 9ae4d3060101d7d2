#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudflare_zone_settings
short_description: Set the settings of a Cloudflare zone (SSL mode, HTTPS, HSTS, TLS, security level, ...)
version_added: 0.1.0
description:
  - Makes the settings of a Cloudflare zone match a mapping of setting ids to values, in two API calls at most.
  - Reads every setting of the zone once (C(GET /zones/{zone_id}/settings)), then writes only the settings that differ,
    all in one C(PATCH /zones/{zone_id}/settings). A run that changes nothing makes no write.
  - Every setting id and value is checked before the first API call. An unknown id or a value of the wrong type fails the task
    with the list of what is accepted.
  - A setting the zone's plan does not allow changing (Cloudflare answers it with C(editable=false)), or that the zone does not have,
    is reported as a finding (stage C(edge_security), severity C(can_wait)) and a warning, and the other settings are still written,
    unless O(fail_on_uneditable=true).
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
    details: Reads the zone's settings and returns the changes a real run would make; makes no write call.
  diff_mode:
    support: full
    details: Returns the settings that change, before and after.
options:
  zone:
    description:
      - The zone, by name (V(example.com)) or by its 32-character id. With an id, the module skips the zone lookup.
    type: str
    required: true
  settings:
    description:
      - The settings the zone must have, as setting id and value. Settings left out keep whatever the zone has.
      - V(on)/V(off) settings also take V(true)/V(false), which is what YAML makes of an unquoted C(on) or C(off); these are
        C(0rtt), C(advanced_ddos), C(always_online), C(always_use_https), C(automatic_https_rewrites), C(brotli), C(browser_check),
        C(development_mode), C(early_hints), C(email_obfuscation), C(hotlink_protection), C(http2), C(http3), C(ip_geolocation), C(ipv6),
        C(mirage), C(opportunistic_encryption), C(opportunistic_onion), C(orange_to_orange), C(origin_error_page_pass_thru),
        C(prefetch_preload), C(response_buffering), C(rocket_loader), C(server_side_exclude), C(sort_query_string_for_cache),
        C(tls_client_auth), C(true_client_ip_header), C(webp), C(websockets).
      - C(ssl) is V(off), V(flexible), V(full) or V(strict) (V(strict) checks the origin's certificate, for example a Cloudflare Origin CA one).
      - C(min_tls_version) is V(1.0), V(1.1), V(1.2) or V(1.3) (a number or text). C(tls_1_3) is V(on), V(off) or V(zrt).
      - C(security_level) is V(off), V(essentially_off), V(low), V(medium), V(high) or V(under_attack).
      - C(cache_level) (V(aggressive), V(basic), V(simplified)), C(cname_flattening) (V(flatten_at_root), V(flatten_all)),
        C(h2_prioritization) (V(on), V(off), V(custom)), C(image_resizing) (V(on), V(off), V(open)), C(polish) (V(off), V(lossless), V(lossy)),
        C(pseudo_ipv4) (V(off), V(add_header), V(overwrite_header)).
      - Whole numbers of seconds or megabytes from Cloudflare's lists of allowed values for C(browser_cache_ttl), C(challenge_ttl) and C(max_upload);
        from 1 to 6000 for C(proxy_read_timeout).
      - "C(security_header) is C({strict_transport_security: {enabled, max_age, include_subdomains, preload, nosniff}}), the HSTS header
        Cloudflare adds (C(max_age) in seconds, up to 31536000). Only the keys given are compared and changed; the others keep their value."
    type: dict
    required: true
  fail_on_uneditable:
    description:
      - Fail, before any write, when a setting that differs cannot be changed on the zone's plan (or the zone does not have it),
        instead of reporting it as a finding.
    type: bool
    default: false
notes:
  - The API token needs C(Zone Settings:Edit) on the zone (C(Zone Settings:Read) is enough in check mode), and C(Zone:Read) when O(zone) is a name.
  - Some settings are only editable on paid plans, for example C(polish) and C(webp) (Pro) or C(prefetch_preload) (Enterprise);
    C(advanced_ddos) is never editable.
seealso:
  - module: launchready.core.cloudflare_rules
  - module: launchready.core.cloudflare_origin_certificate
  - name: Cloudflare zone settings API
    description: Every setting and the values it takes.
    link: https://developers.cloudflare.com/api/resources/zones/subresources/settings/
  - name: Cloudflare HSTS
    description: What each field of the HSTS header does, and the risks of preload.
    link: https://developers.cloudflare.com/ssl/edge-certificates/additional-options/http-strict-transport-security/
"""

EXAMPLES = r"""
- name: Edge security settings of the launch
  launchready.core.cloudflare_zone_settings:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    settings:
      ssl: strict
      always_use_https: true
      automatic_https_rewrites: true
      min_tls_version: "1.2"
      tls_1_3: "on"
      security_level: medium
      browser_check: true
      brotli: true
      early_hints: true
      opportunistic_encryption: true
      security_header:
        strict_transport_security:
          enabled: true
          max_age: 15552000
          include_subdomains: true
          preload: false
          nosniff: true
  delegate_to: localhost
  register: zone_settings

- name: Show what was changed, and what the plan did not allow
  ansible.builtin.debug:
    msg: "{{ zone_settings.changes | map(attribute='id') | list }} changed; {{ zone_settings.findings | length }} findings"
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
      description: The zone's plan.
      type: str
      sample: free
changes:
  description: The settings written (or that would be, in check mode), each with C(id), C(before) and C(after).
  returned: success
  type: list
  elements: dict
  sample: [{id: ssl, before: flexible, after: strict}]
findings:
  description:
    - One finding per desired setting that differs but cannot be changed on the zone's plan, or that the zone does not have.
    - Each has C(stage) (V(edge_security)), C(severity) (V(can_wait)), C(title), C(evidence) and C(fix).
  returned: success
  type: list
  elements: dict
  sample:
    - stage: edge_security
      severity: can_wait
      title: Zone setting polish cannot be changed on this zone's plan
      evidence: "polish is 'off', wanted 'lossless'; Cloudflare marks it editable: false"
      fix: Upgrade the zone to a plan that includes polish, or remove it from the desired settings.
settings:
  description: Every setting of the zone after the run (as it would be, in check mode), by id.
  returned: success
  type: dict
  sample: {always_use_https: "on", min_tls_version: "1.2", ssl: strict}
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
from ansible_collections.launchready.core.plugins.module_utils._zone_settings import SettingsError, normalise_settings, plan_settings


def argument_spec() -> dict:
    spec = cloudflare_argument_spec()
    spec.update(
        zone=dict(type="str", required=True),
        settings=dict(type="dict", required=True),
        fail_on_uneditable=dict(type="bool", default=False),
    )
    return spec


def run(module: AnsibleModule, client: CloudflareClient, desired: dict) -> dict:
    ref = module.params["zone"].strip().lower().rstrip(".")
    zone = {"id": ref} if is_zone_id(ref) else client.zone(ref)
    listed = client.zone_settings(zone["id"])
    try:
        plan = plan_settings(desired, listed, module.params["fail_on_uneditable"])
    except SettingsError as exc:
        module.fail_json(msg=str(exc), api_calls=client.api_calls, changed=False)
    for warning in plan.warnings:
        module.warn(warning)

    edited = None
    if plan.changed and not module.check_mode:
        try:
            edited = client.edit_zone_settings(zone["id"], plan.items)
        except CloudflareError as exc:
            module.fail_json(msg="writing %s failed: %s" % (", ".join(item["id"] for item in plan.items), exc), changed=False,
                             api_calls=client.api_calls, changes=plan.changes, **exc.as_result())

    result = dict(
        changed=plan.changed,
        zone=zone,
        changes=plan.changes,
        findings=[finding.as_dict() for finding in plan.findings],
        settings=plan.resulting(edited),
        api_calls=client.api_calls,
    )
    if module._diff:
        result["diff"] = plan.diff()
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        desired, warnings = normalise_settings(module.params["settings"])
    except SettingsError as exc:
        module.fail_json(msg=str(exc), api_calls=0, changed=False)
    for warning in warnings:
        module.warn(warning)

    client = CloudflareClient.from_module(module)
    try:
        with client:
            result = run(module, client, desired)
    except CloudflareError as exc:
        module.fail_json(msg=client.scrub(str(exc)), api_calls=client.api_calls, changed=False, **exc.as_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
