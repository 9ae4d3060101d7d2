# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_token:
    description:
      - Cloudflare API token, sent as a Bearer token. Keep it in Ansible Vault.
      - Give the token only the permissions the task needs (for DNS records, C(Zone:DNS:Edit) on the client's zone).
      - Defaults to the E(CLOUDFLARE_API_TOKEN) environment variable.
      - Set it for every Cloudflare module at once with C(module_defaults) and the C(group/launchready.core.cloudflare) action group.
    type: str
    required: true
  api_base_url:
    description:
      - Base URL of the Cloudflare API v4. Change it only to point at a stand-in such as the collection's lab.
    type: str
    default: https://api.cloudflare.com/client/v4
  timeout:
    description:
      - Seconds to wait for each API answer.
    type: float
    default: 30
  retries:
    description:
      - How many times a rate-limited (HTTP 429) or failed (HTTP 5xx, connection error) call is retried.
      - A 429 is retried after the C(Retry-After) the API asks for (capped at 60 seconds), other failures after an exponential backoff.
    type: int
    default: 5
requirements:
  - httpx >= 0.27 (on the controller)
notes:
  - Runs on the controller; use C(delegate_to=localhost) or a play on C(localhost).
"""

    # The attributes every Cloudflare module shares: posix, in the cloudflare action group, no action plugin,
    # no async, runs per host. Only support values; the descriptions come from ansible.builtin.action_common_attributes,
    # .flow and .actiongroups. List this fragment before those: for a key they both set (support, membership),
    # the fragment listed first wins.
    ATTRIBUTES = r"""
attributes:
  platform:
    platforms: posix
  action:
    support: none
  action_group:
    support: full
    membership:
      - launchready.core.cloudflare
  async:
    support: none
  bypass_host_loop:
    support: none
"""
