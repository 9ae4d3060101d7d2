# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The redirect model's expectations (module_utils/_redirects.expectations()) as a filter, for roles that verify a map."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.launchready.core.plugins.module_utils._redirects import RedirectError, expectations, parse_redirect_map

DOCUMENTATION = r"""
name: redirect_expectations
short_description: What every source URL of a redirect map answers at the edge
version_added: 0.1.0
author:
  - launchready.core maintainers (@launchready)
description:
  - Takes a redirect map in the form of the O(launchready.core.cloudflare_rules#module:redirect_map) option,
    and returns one expectation per source URL of the map.
  - The sources are every URL a path entry matches, the root and a sample path of every alias host,
    and, with C(trailing_slash) V(add), a sample path of the canonical host.
  - Each expectation is the answer of the first rule that matches the URL, as the edge evaluates the rules the map becomes.
    This is the status and the exact C(Location) of that first answer, not of the final URL.
    RV(_value[].hops) counts the redirects up to the final URL.
    An alias URL whose path an entry of the canonical host redirects again answers the alias rule and takes two hops.
  - The map is checked as M(launchready.core.cloudflare_rules) checks it (no zone, so hosts of other zones may be aliases).
    Bad input or a loop fails the task with the reason.
options:
  _input:
    description:
      - The redirect map.
      - C(canonical) is the host (or C(https://host) origin) every redirect ends on.
      - C(aliases) lists hosts that redirect to it with their path and query.
      - C(paths) lists entries of C(from), C(to), and optionally C(status) and C(preserve_query_string).
      - C(trailing_slash) is V(ignore) or V(add), and C(status) is the status of the alias and trailing-slash redirects.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: What the map must answer from the outside
  ansible.builtin.set_fact:
    redirect_checks: "{{ redirect_map | launchready.core.redirect_expectations }}"
  vars:
    redirect_map:
      canonical: example.com
      aliases: [www.example.com]
      paths:
        - {from: "https://example.com/", to: /welcome/}
# redirect_checks:
#   - {url: https://example.com/, status: 301, location: https://example.com/welcome/, preserve_query_string: true, hops: 1}
#   - {url: https://www.example.com/, status: 301, location: https://example.com/, preserve_query_string: true, hops: 2}
#   - {url: https://www.example.com/launchready-redirect-check, status: 301,
#      location: https://example.com/launchready-redirect-check, preserve_query_string: true, hops: 1}
"""

RETURN = r"""
_value:
  description: One expectation per source URL, those of the path entries first.
  type: list
  elements: dict
  contains:
    url:
      description: The source URL, without a query string.
      type: str
      sample: https://www.example.com/
    status:
      description: The status of the first answer.
      type: int
      sample: 301
    location:
      description: The exact C(Location) of the first answer, for a request without a query string.
      type: str
      sample: https://example.com/
    preserve_query_string:
      description: Whether the answering rule keeps the request's query string.
      type: bool
      sample: true
    hops:
      description: The redirects up to the final URL.
      type: int
      sample: 2
"""


def redirect_expectations(redirect_map):
    if not isinstance(redirect_map, dict):
        raise AnsibleFilterError("redirect_expectations: the redirect map must be a dictionary, not %s" % type(redirect_map).__name__)
    try:
        return expectations(parse_redirect_map(redirect_map))
    except RedirectError as exc:
        raise AnsibleFilterError("redirect_expectations: %s" % to_native(exc)) from None


class FilterModule:
    def filters(self):
        return {"redirect_expectations": redirect_expectations}
