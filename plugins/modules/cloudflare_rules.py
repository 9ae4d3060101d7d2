#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudflare_rules
short_description: Manage the collection's rules in a Cloudflare zone's redirect, cache, rate limiting or custom firewall rules
version_added: 0.1.0
description:
  - Makes the rules this collection owns in one phase entry point ruleset of a Cloudflare zone exactly the rules given, for
    single redirects (V(http_request_dynamic_redirect)), cache rules (V(http_request_cache_settings)),
    rate limiting rules (V(http_ratelimit)) or custom firewall rules (V(http_request_firewall_custom)).
  - A rule is owned when its C(ref) starts with O(ref_prefix). Rules the collection does not own are never changed, and keep their order.
  - Reads the entry point once (C(GET /zones/{zone_id}/rulesets/phases/{phase}/entrypoint); a phase without one counts as empty),
    and writes the whole ruleset back with one C(PUT) only when an owned rule is added, changed, removed or moved.
    The C(PUT) creates the entry point when the phase has none. Cloudflare applies it whole or not at all.
  - Every rule is checked before the first API call. Expressions must use the part of the Rules language this collection writes;
    a malformed one fails the task with the rule's ref and a pointer to the mistake.
  - O(redirect_map) builds single redirect rules from a redirect map (a canonical host, alias hosts, old paths), checks it for loops first,
    and writes every target as its final destination, so that each source answers in one hop.
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
    details: Reads the entry point and returns the rules a real run would add, change and remove; makes no write call.
  diff_mode:
    support: full
    details: Returns every rule of the phase, in order, before and after.
options:
  zone:
    description:
      - The zone, by name (V(example.com)) or by its 32-character id. With an id, the module skips the zone lookup
        (unless O(redirect_map) needs the zone's name to check its hosts).
    type: str
    required: true
  phase:
    description:
      - The phase whose entry point ruleset holds the rules.
    type: str
    required: true
    choices: [http_request_dynamic_redirect, http_request_cache_settings, http_ratelimit, http_request_firewall_custom]
  rules:
    description:
      - The owned rules, in the order they run.
      - With O(state=present) the owned rules of the phase become exactly these (plus those of O(redirect_map)); owned rules not listed are removed.
      - With O(state=absent) only the C(ref) of each item matters.
      - Each item needs O(rules[].ref), and O(rules[].expression) with O(state=present).
    type: list
    elements: dict
    default: []
    suboptions:
      ref:
        description:
          - The rule's short name (letters, digits, C(_), C(.), C(-)), unique in the phase. The module adds O(ref_prefix) in front of it
            (a ref that already starts with the prefix is kept as it is).
        type: str
        required: true
      description:
        description:
          - What the rule is for, shown in the Cloudflare dashboard.
        type: str
        default: ""
      expression:
        description:
          - When the rule applies, in Cloudflare's Rules language, for example V(starts_with(http.request.uri.path, "/admin")).
            Required with O(state=present).
          - Accepted fields are C(http.host), C(http.request.uri), C(http.request.uri.path), C(http.request.uri.query), C(http.request.full_uri),
            C(http.request.method), C(http.cookie), C(http.user_agent), C(http.referer) (text), C(ip.src) (an IP address, compared with unquoted
            addresses or networks such as V(ip.src in {192.0.2.0/24})) and C(ssl).
          - Accepted operators are C(eq), C(ne), C(contains), C(matches), C(in {...}), C(lt), C(le), C(gt), C(ge) (on C(len())), their symbol forms,
            C(and), C(or), C(xor), C(not) and parentheses; functions C(starts_with()), C(ends_with()), C(lower()), C(upper()), C(len()).
        type: str
      action:
        description:
          - What the rule does. Defaults to V(redirect), V(set_cache_settings), V(block) and V(block) in the four phases.
          - V(http_ratelimit) takes V(block), V(challenge), V(js_challenge), V(managed_challenge) or V(log);
            V(http_request_firewall_custom) takes those and V(skip).
        type: str
      action_parameters:
        description:
          - The action's parameters, as the Cloudflare API takes them.
          - For a redirect, C(from_value) with C(target_url) (either C(value), an absolute URL, or C(expression), such as
            V(concat("https://example.com", http.request.uri.path))), C(status_code) (301, 302, 303, 307 or 308) and C(preserve_query_string).
          - "For a cache rule, for example C({cache: false}) to bypass the cache, or C({cache: true, edge_ttl: {mode: override_origin, default: 3600}})."
        type: dict
      enabled:
        description:
          - Whether the rule runs.
        type: bool
        default: true
      ratelimit:
        description:
          - For V(http_ratelimit) only, and required there. C(period) (seconds) and C(requests_per_period) are required;
            C(mitigation_timeout) (seconds), C(characteristics) (default V(["cf.colo.id", "ip.src"])) and C(counting_expression) are optional.
          - The Free plan allows one rule, counting by IP, with a period and mitigation timeout of 10 seconds.
        type: dict
  redirect_map:
    description:
      - A redirect map turned into single redirect rules (refs starting with C(redirect_)), added after O(rules). Only with
        O(phase=http_request_dynamic_redirect).
      - The map is refused before any write when it has a loop (the loop is named), when two entries redirect the same URL,
        or when a source host is outside the zone (when O(zone) is a name).
      - Path entries come first, then the alias hosts; every target that another entry, an alias or the trailing-slash policy would
        redirect again is written as its final destination (one hop).
    type: dict
    suboptions:
      canonical:
        description:
          - The canonical host (V(example.com)), or origin (V(https://example.com)); V(https) when no scheme is given.
        type: str
        required: true
      aliases:
        description:
          - Hosts redirected to the canonical host with their path and query string, for example the C(www) counterpart of the canonical host
            and old domains in the zone.
        type: list
        elements: str
        default: []
      status:
        description:
          - The status of the alias and trailing-slash redirects.
        type: int
        choices: [301, 302, 303, 307, 308]
        default: 301
      trailing_slash:
        description:
          - V(ignore) matches a source path with or without its trailing slash and adds nothing else.
          - V(add) also redirects every path without a trailing slash and without a dot on the canonical and alias hosts to the same path
            with one (V(/about) to V(/about/)); keep APIs on their own host with this policy.
        type: str
        choices: [ignore, add]
        default: ignore
      paths:
        description:
          - Old URLs and where they go now.
        type: list
        elements: dict
        default: []
        suboptions:
          from:
            description:
              - A path on the canonical and alias hosts (V(/pricing-old)), a host and path (V(old.example.com/team)), or a URL.
                The query string of a request does not matter.
            type: str
            required: true
          to:
            description:
              - A path on the canonical host (V(/pricing)) or an absolute URL.
            type: str
            required: true
          status:
            description:
              - The redirect's status code.
            type: int
            choices: [301, 302, 303, 307, 308]
            default: 301
          preserve_query_string:
            description:
              - Keep the query string of the request on the target.
            type: bool
            default: true
  state:
    description:
      - V(present) makes the owned rules of the phase exactly O(rules) and O(redirect_map).
      - V(absent) removes the owned rules named in O(rules) and O(redirect_map), or every owned rule of the phase when neither is given.
    type: str
    choices: [present, absent]
    default: present
  position:
    description:
      - Where the owned rules go among the rules the collection does not own.
      - V(last) (the default) lets the zone's own terminating rules (redirects, blocks) run first, and gives the collection's cache rules
        the last word, since later cache rules override earlier ones.
      - V(first) puts them before every other rule.
    type: str
    choices: [first, last]
    default: last
  ref_prefix:
    description:
      - The prefix that marks the rules this module owns. Rules whose ref does not start with it are never touched.
    type: str
    default: launchready_
notes:
  - The API token needs, on the zone, the edit permission of the phase (C(Dynamic URL Redirects), C(Cache Settings), or C(Zone WAF) for
    rate limiting and custom rules), and C(Zone:Read) when O(zone) is a name.
  - Rule expressions and redirect targets are compared and written as given; Cloudflare rejects a ruleset whose rules exceed the zone
    plan's limits (for example 10 single redirects, 10 cache rules and 1 rate limiting rule on Free), and nothing changes then.
seealso:
  - module: launchready.core.cloudflare_zone_settings
  - name: Cloudflare Rules language
    description: Fields, operators and functions of rule expressions.
    link: https://developers.cloudflare.com/ruleset-engine/rules-language/
  - name: Cloudflare Single Redirects
    description: Static and dynamic redirect rules.
    link: https://developers.cloudflare.com/rules/url-forwarding/single-redirects/
  - name: Cloudflare cache rules order
    description: Why later cache rules override earlier ones.
    link: https://developers.cloudflare.com/cache/how-to/cache-rules/order/
"""

EXAMPLES = r"""
- name: Never cache the admin, auth and API paths, nor anything with a session cookie
  launchready.core.cloudflare_rules:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    phase: http_request_cache_settings
    rules:
      - ref: bypass_private
        description: Admin, auth, API and signed-in pages are never cached
        expression: >-
          starts_with(http.request.uri.path, "/admin") or starts_with(http.request.uri.path, "/auth")
          or starts_with(http.request.uri.path, "/api/") or http.cookie contains "session="
        action_parameters:
          cache: false
  delegate_to: localhost

- name: Rate limit the login endpoint
  launchready.core.cloudflare_rules:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    phase: http_ratelimit
    rules:
      - ref: login
        expression: http.request.uri.path eq "/login" and http.request.method eq "POST"
        action: block
        ratelimit:
          period: 10
          requests_per_period: 5
          mitigation_timeout: 10
  delegate_to: localhost

- name: One canonical host, and old URLs sent to the new ones in one hop
  launchready.core.cloudflare_rules:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    phase: http_request_dynamic_redirect
    redirect_map:
      canonical: example.com
      aliases: [www.example.com, old-brand.example.com]
      paths:
        - from: /pricing-old
          to: /pricing
        - from: old-brand.example.com/team
          to: /about
  delegate_to: localhost
  register: redirects

- name: Remove every rule the collection owns in the custom firewall rules
  launchready.core.cloudflare_rules:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    phase: http_request_firewall_custom
    state: absent
  delegate_to: localhost
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
ruleset_id:
  description: The id of the phase's entry point ruleset; V(null) when it does not exist yet (in check mode, or with nothing to write).
  returned: success
  type: str
  sample: 2f2feab2026849078ba485f918791bdc
added:
  description:
    - The owned rules added, each with C(ref), C(description), C(expression), C(action), C(enabled)
      and, when set, C(action_parameters) and C(ratelimit).
  returned: success
  type: list
  elements: dict
  sample: [{ref: launchready_login, description: "", expression: http.request.uri.path eq "/login", action: block, enabled: true}]
changed_rules:
  description: The owned rules changed in place, each with C(ref), C(id), the C(fields) that change, C(before) and C(after).
  returned: success
  type: list
  elements: dict
removed:
  description: The owned rules removed, shown as C(added) is, with their C(id).
  returned: success
  type: list
  elements: dict
moved:
  description: Whether the owned rules only change place among the others (O(position)).
  returned: success
  type: bool
  sample: false
rules:
  description: The owned rules of the phase after the run (as they would be, in check mode), in order.
  returned: success
  type: list
  elements: dict
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
from ansible_collections.launchready.core.plugins.module_utils._redirects import RedirectError, parse_redirect_map, redirect_rules
from ansible_collections.launchready.core.plugins.module_utils._rulesets import (
    PHASES,
    RulesError,
    describe_pointer,
    owned_rules,
    parse_refs,
    parse_rules,
    plan_removal,
    plan_ruleset,
)

REDIRECT_PHASE = "http_request_dynamic_redirect"
STATUSES = [301, 302, 303, 307, 308]


def argument_spec() -> dict:
    spec = cloudflare_argument_spec()
    spec.update(
        zone=dict(type="str", required=True),
        phase=dict(type="str", required=True, choices=list(PHASES)),
        rules=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                ref=dict(type="str", required=True),
                description=dict(type="str", default=""),
                expression=dict(type="str"),
                action=dict(type="str"),
                action_parameters=dict(type="dict"),
                enabled=dict(type="bool", default=True),
                ratelimit=dict(type="dict"),
            ),
        ),
        redirect_map=dict(
            type="dict",
            options=dict(
                canonical=dict(type="str", required=True),
                aliases=dict(type="list", elements="str", default=[]),
                status=dict(type="int", choices=STATUSES, default=301),
                trailing_slash=dict(type="str", choices=["ignore", "add"], default="ignore"),
                paths=dict(
                    type="list",
                    elements="dict",
                    default=[],
                    options={
                        "from": dict(type="str", required=True),
                        "to": dict(type="str", required=True),
                        "status": dict(type="int", choices=STATUSES, default=301),
                        "preserve_query_string": dict(type="bool", default=True),
                    },
                ),
            ),
        ),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        position=dict(type="str", choices=["first", "last"], default="last"),
        ref_prefix=dict(type="str", default="launchready_"),
    )
    return spec


def desired_rules(params: dict, zone_name: str | None) -> list | set:
    """The owned rules to have (state=present), or the refs of those to remove (state=absent)."""
    items = list(params["rules"])
    if params["redirect_map"] is not None:
        if params["phase"] != REDIRECT_PHASE:
            raise RulesError("redirect_map only goes with phase %s, not %s" % (REDIRECT_PHASE, params["phase"]))
        items.extend(redirect_rules(parse_redirect_map(params["redirect_map"], zone_name)))
    if params["state"] == "absent":
        return parse_refs(items, params["ref_prefix"])
    return parse_rules(items, params["phase"], params["ref_prefix"])


def put_failure(exc: CloudflareError, sent: list[dict]) -> str:
    culprits = [describe_pointer(error.get("pointer", ""), sent) for error in exc.errors]
    message = "Cloudflare refused the ruleset: %s" % exc
    if any(culprits):
        message += ". Caused by: %s" % "; ".join(c for c in culprits if c)
    return message + ". Cloudflare applies a ruleset whole or not at all: nothing changed."


def run(module: AnsibleModule, client: CloudflareClient, desired: list | set | None) -> dict:
    params = module.params
    ref = params["zone"].strip().lower().rstrip(".")
    zone = client.zone(ref) if not is_zone_id(ref) or desired is None else {"id": ref}
    if desired is None:  # the redirect map waited for the zone's name
        desired = desired_rules(params, zone["name"])
    phase = params["phase"]
    ruleset = client.entrypoint_ruleset(zone["id"], phase)
    if isinstance(desired, set):
        plan = plan_removal(ruleset, desired, params["ref_prefix"])
    else:
        plan = plan_ruleset(ruleset, desired, params["position"], params["ref_prefix"])

    after = plan.after
    ruleset_id = plan.ruleset_id
    if plan.changed and not module.check_mode:
        try:
            answer = client.put_entrypoint_ruleset(zone["id"], phase, plan.body())
        except CloudflareError as exc:
            module.fail_json(msg=client.scrub(put_failure(exc, plan.after)), changed=False, api_calls=client.api_calls,
                             added=plan.added, changed_rules=plan.changed_rules, removed=plan.removed, **exc.as_result())
        after = answer.get("rules") or []
        ruleset_id = answer.get("id") or ruleset_id

    result = dict(
        changed=plan.changed,
        zone=zone,
        ruleset_id=ruleset_id,
        added=plan.added,
        changed_rules=plan.changed_rules,
        removed=plan.removed,
        moved=plan.moved,
        rules=owned_rules(after, params["ref_prefix"]),
        api_calls=client.api_calls,
    )
    if module._diff:
        result["diff"] = plan.diff()
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    ref = params["zone"].strip().lower().rstrip(".")
    desired = None
    try:
        # A redirect map is checked against the zone's name; with a zone id that waits for the lookup (before any write).
        if params["redirect_map"] is None or not is_zone_id(ref):
            desired = desired_rules(params, None if is_zone_id(ref) else ref)
        else:
            parse_redirect_map(params["redirect_map"])  # loops and bad input fail before any call
    except (RulesError, RedirectError) as exc:
        module.fail_json(msg=str(exc), api_calls=0, changed=False)

    client = CloudflareClient.from_module(module)
    try:
        with client:
            result = run(module, client, desired)
    except (RulesError, RedirectError) as exc:
        module.fail_json(msg=str(exc), api_calls=client.api_calls, changed=False)
    except CloudflareError as exc:
        module.fail_json(msg=client.scrub(str(exc)), api_calls=client.api_calls, changed=False, **exc.as_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
