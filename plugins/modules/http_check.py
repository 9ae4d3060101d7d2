# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: http_check
short_description: Check URLs from the outside - status, redirects, headers, HSTS, cache status, body, JSON, TLS, mixed content
version_added: 0.1.0
description:
  - Asks every URL of O(expectations) concurrently, follows each redirect chain by hand, and checks the answer against what is expected.
    Reports one finding per expectation in the collection's findings shape, listing every failed assertion in its evidence, with a fix.
  - Every assertion but O(expectations[].hops) concerns the answer to O(expectations[].url) itself (the first answer, before any redirect
    is followed). The chain is followed to count its redirects and record every hop; a chain that loops, runs past O(max_redirects)
    or leads to a URL that does not answer always fails the expectation.
  - For an C(https) URL the certificate is always checked (chain and host name) unless O(expectations[].tls) says otherwise.
    Requests are sent even when it is not trusted, so that the other assertions can still be checked.
  - Read-only; it asks its questions in check mode too.
author:
  - launchready.core maintainers (@launchready)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  action:
    support: full
    description: Indicates this has a corresponding action plugin, so some parts of the task run on the controller.
    details:
      - With a local connection (delegated to C(localhost), where the task usually runs), the action plugin checks inside ansible-playbook's
        own Python rather than starting the module, which saves about a third of a second per task. That Python then needs the
        requirements; when it lacks one, the module runs as usual.
  check_mode:
    support: full
    details: Only sends requests, so it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  expectations:
    description:
      - What each URL must answer.
    type: list
    elements: dict
    required: true
    suboptions:
      url:
        description:
          - The C(http://) or C(https://) URL to ask.
        type: str
        required: true
      method:
        description:
          - The HTTP method. Redirects are followed the way browsers do (a 303, and a 301 or 302 to a V(POST), continue with V(GET)).
        type: str
        choices: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS]
        default: GET
      title:
        description:
          - What the expectation checks, in words, for the finding's title. Defaults to the method and URL.
        type: str
      severity:
        description:
          - How much a failure of this expectation matters for the launch.
        type: str
        choices: [must_do_now, can_wait]
        default: must_do_now
      status:
        description:
          - The status (or any of the statuses) the URL must answer.
          - Without it, any 2xx or 3xx answer passes.
        type: list
        elements: int
      location:
        description:
          - The C(Location) the answer must carry, absolute or relative to O(expectations[].url).
          - URLs compare as browsers compare them (scheme and host without case, default port dropped, an empty path is V(/)).
        type: str
      hops:
        description:
          - How many redirects the chain must take before a final (non-redirect) answer. V(1) checks a one-hop redirect,
            V(0) a URL that answers without redirecting.
        type: int
      headers:
        description:
          - Headers of the answer.
        type: dict
        suboptions:
          present:
            description:
              - Names of headers that must be present.
            type: list
            elements: str
          absent:
            description:
              - Names of headers that must not be present, for example V(x-powered-by).
            type: list
            elements: str
          match:
            description:
              - Header name to a regular expression (Python syntax, searched anywhere in the value) that one of its values must match.
            type: dict
      hsts:
        description:
          - The C(Strict-Transport-Security) header the answer must carry (only its first occurrence counts, as in browsers).
            Only for C(https) URLs; browsers ignore the header over http.
          - A header that browsers would ignore (no valid C(max-age), a directive given twice) fails.
        type: dict
        suboptions:
          min_max_age:
            description:
              - The least C(max-age), in seconds. Six months is V(15552000), a year V(31536000).
            type: int
          include_subdomains:
            description:
              - V(true) requires the C(includeSubDomains) directive, V(false) forbids it; unset, it is not checked.
            type: bool
          preload:
            description:
              - V(true) requires the C(preload) directive, with a C(max-age) of at least one year and C(includeSubDomains)
                (the requirements of the browsers' preload list); V(false) forbids it; unset, it is not checked.
            type: bool
      cache_status:
        description:
          - The values of Cloudflare's C(cf-cache-status) header of which the answer must carry one, for example V([HIT]) for a static asset.
          - A missing header fails (the name is probably not proxied).
        type: list
        elements: str
      cache_status_not:
        description:
          - Values of C(cf-cache-status) the answer must not carry, for example V([HIT, STALE, UPDATING, REVALIDATED]) for admin,
            auth and API pages that must never come from the cache. A missing header passes.
        type: list
        elements: str
      body_contains:
        description:
          - A string, or a list of strings, the body must contain (as written, case-sensitive; a string is not split at commas).
        type: raw
      body_not_contains:
        description:
          - A string, or a list of strings, the body must not contain.
        type: raw
      json:
        description:
          - Assertions on a JSON body, for API and health endpoints. Each key is a JMESPath expression (U(https://jmespath.org)), each value
            what it must give, compared as JSON (V(true) is not V(1)).
          - For example, the key V(status) with the value V(ok), or the key V(length(checks[?state != 'up']\)) with the value V(0).
        type: dict
      tls:
        description:
          - What the TLS connection of an C(https) URL must offer. Without it, an C(https) URL is still checked for a trusted chain and a
            certificate that covers its host name.
          - Concerns the host of O(expectations[].url), not the hosts the chain redirects to.
        type: dict
        suboptions:
          min_days_left:
            description:
              - The least number of days the certificate must remain valid.
            type: int
          verify_chain:
            description:
              - Whether the certificate chain must verify against O(ca_path) (or the system's trusted CAs).
            type: bool
            default: true
          verify_hostname:
            description:
              - Whether the certificate's subjectAltName must cover the URL's host name (the common name is ignored, as in browsers).
            type: bool
            default: true
          min_version:
            description:
              - The oldest TLS version the server may accept. Every older version is tried with a handshake offering only that version,
                and must be refused. V(1.2) is what the edge_security role sets.
              - A version this machine's OpenSSL cannot offer is reported in the evidence as untested, not as a failure.
            type: str
            choices: ['1.0', '1.1', '1.2', '1.3']
      mixed_content:
        description:
          - Look for C(http://) subresources on the page (images, scripts, stylesheets and other fetched C(<link>) targets, frames,
            media, objects, form actions), which browsers block or flag on an C(https) page. Only for C(https) URLs and HTML answers.
            A C(<base href>) is honoured.
        type: bool
        default: false
      stale_links:
        description:
          - Look for links to preview, tunnel and local hosts in the body (in HTML attributes and anywhere in the text, such as inline scripts), namely
            C(*.vercel.app), C(*.netlify.app), C(*.herokuapp.com), C(*.pages.dev), ngrok's domains, C(localhost), C(127.0.0.1), and the
            hosts of O(stale_hosts). Links to the page's own host do not count.
        type: bool
        default: false
  stale_hosts:
    description:
      - More host names that O(expectations[].stale_links) must not find, such as the old staging site (V(staging.example.com)).
        V(*.example.net) stands for every name below C(example.net).
    type: list
    elements: str
    default: []
  resolve:
    description:
      - Connect elsewhere than DNS says, like curl's C(--resolve) and C(--connect-to); each entry maps a host and port to an address and port.
        The URL, the C(Host) header and the TLS server name (SNI) stay the real ones; only the TCP connection goes to the address.
      - An entry is a string V(host:port:address) or V(host:port:address:port) (IPv6 addresses in brackets), or a dict with keys
        C(host), C(port), C(address) and optionally C(address_port). A host of V(*) maps every name on that port.
      - For checking a server before DNS points at it, and for the collection's lab.
    type: list
    elements: raw
    default: []
  ca_path:
    description:
      - A PEM bundle of the CAs to trust for O(expectations[].tls.verify_chain), instead of the system's trusted CAs.
    type: path
  timeout:
    description:
      - Seconds to wait for each connection, TLS handshake and answer.
    type: float
    default: 10
  retry_for:
    description:
      - Seconds to keep asking again, every O(retry_interval) seconds, the expectations that do not hold yet, for a server that is
        starting or reloading (a deploy's health check). Each keeps the verdict of its last answer. V(0) asks once.
      - Cheaper than the task keyword C(until), which runs the whole module again for every attempt.
    type: float
    default: 0
  retry_interval:
    description:
      - Seconds between two rounds of O(retry_for).
    type: float
    default: 0.25
  concurrency:
    description:
      - How many expectations are checked at the same time (and the most connections open at once).
    type: int
    default: 20
  max_redirects:
    description:
      - How many redirects of a chain are followed before the chain counts as too long.
    type: int
    default: 10
  stage:
    description:
      - The stage the findings belong to, as the launch report groups them (for example V(domain_routing) or V(edge_security)).
    type: str
    default: http_check
  fail_on:
    description:
      - When the task fails. V(never) only reports findings; V(must_do_now) fails when any finding is C(must_do_now);
        V(can_wait) fails when any finding is C(must_do_now) or C(can_wait).
    type: str
    choices: [never, must_do_now, can_wait]
    default: never
requirements:
  - httpx >= 0.27 (on the controller)
  - cryptography >= 41 (on the controller)
  - jmespath (on the controller)
notes:
  - "Runs where the task runs; use C(delegate_to: localhost) or a C(localhost) play."
  - Only the first 5 MiB of a body are read.
  - Proxy environment variables are not used; the checks go straight to the servers.
seealso:
  - module: launchready.core.dns_check
  - name: RFC 6797 (HTTP Strict Transport Security)
    description: The rules for the Strict-Transport-Security header.
    link: https://www.rfc-editor.org/rfc/rfc6797
"""

EXAMPLES = r"""
- name: Check the redirect map, the login page and the health endpoint
  launchready.core.http_check:
    expectations:
      - url: http://example.com/
        status: 301
        location: https://www.example.com/
        hops: 1
      - url: https://example.com/pricing
        status: 301
        location: https://www.example.com/pricing
        hops: 1
      - url: https://www.example.com/login
        status: 200
        hsts:
          min_max_age: 15552000
          include_subdomains: true
        headers:
          present: [content-security-policy, x-content-type-options]
          absent: [x-powered-by]
        cache_status_not: [HIT, STALE, UPDATING, REVALIDATED]
        tls:
          min_days_left: 14
          min_version: "1.2"
        mixed_content: true
        stale_links: true
      - url: https://app.example.com/healthz
        title: The app's health endpoint says it is up
        json:
          status: ok
          "database.connected": true
    stale_hosts: [staging.example.com]
    fail_on: must_do_now
  delegate_to: localhost
  register: http

- name: Check a new server before DNS points at it
  launchready.core.http_check:
    resolve:
      - www.example.com:443:203.0.113.10
    expectations:
      - url: https://www.example.com/
        status: 200
        body_contains: Welcome
  delegate_to: localhost

- name: Check the collection's lab edge (every name on ports 80 and 443 goes to the lab)
  launchready.core.http_check:
    resolve:
      - "*:80:127.0.0.1:{{ lab_http_port }}"
      - "*:443:127.0.0.1:{{ lab_https_port }}"
    ca_path: "{{ lab_edge_ca_file }}"
    expectations:
      - url: https://admin.launch-demo.test/admin
        cache_status_not: [HIT]
"""

RETURN = r"""
findings:
  description:
    - One finding per expectation, launch blockers first, then what can wait, then what is fine.
  returned: always
  type: list
  elements: dict
  contains:
    stage:
      description: The O(stage) option.
      type: str
      sample: domain_routing
    severity:
      description: C(must_do_now), C(can_wait) or C(ok).
      type: str
      sample: must_do_now
    title:
      description: What was checked and how it went.
      type: str
      sample: "GET http://example.com/: 2 of 3 checks failed (status, location)"
    evidence:
      description: The redirect chain as answered, then every failed assertion (or what was checked), and notes.
      type: str
      sample: >-
        http://example.com/ 302 -> https://example.com/ 200 (41 ms); failed: status: expected 301, got 302;
        location: expected https://www.example.com/, got https://example.com/
    fix:
      description: What to do about it; empty when the expectation is met.
      type: str
      sample: "Make the redirect of http://example.com/ permanent (301, or 308 to keep the method): a 302 tells browsers and search engines it is temporary."
summary:
  description: How many findings of each severity.
  returned: always
  type: dict
  sample: {"must_do_now": 1, "can_wait": 0, "ok": 4}
checked:
  description: How many expectations were checked.
  returned: always
  type: int
  sample: 5
rounds:
  description: How many times the expectations were asked (1 without O(retry_for); more when some did not hold at first).
  returned: always
  type: int
  sample: 2
results:
  description: What each URL answered, in the order of O(expectations).
  returned: always
  type: list
  elements: dict
  contains:
    title:
      description: The expectation's title, or its method and URL.
      type: str
      sample: GET https://www.example.com/login
    url:
      description: The URL asked.
      type: str
      sample: https://www.example.com/login
    method:
      description: The method used.
      type: str
      sample: GET
    status:
      description: The status of the answer to the URL; null when it did not answer.
      type: int
      sample: 200
    redirects:
      description: How many redirects the chain took.
      type: int
      sample: 0
    hops:
      description: Every answer of the redirect chain in order, the first being the answer to the URL.
      type: list
      elements: dict
      contains:
        url:
          description: The URL of this hop.
          type: str
        status:
          description: Its status; null when it did not answer.
          type: int
        location:
          description: Its C(Location) header, as sent.
          type: str
        elapsed_ms:
          description: Milliseconds from the request to the end of the answer.
          type: int
        address:
          description: The address and port the answer came from (shows the effect of O(resolve)).
          type: str
        error:
          description: Why there was no answer; empty when there was one.
          type: str
    headers:
      description:
        - Headers of the answer to the URL (repeated ones joined with a comma) - C(content-type), C(location), C(strict-transport-security),
          C(cf-cache-status), C(cache-control) and the ones the expectation asserts, when present.
      type: dict
      sample: {"content-type": "text/html; charset=utf-8", "cf-cache-status": "DYNAMIC"}
    tls:
      description: TLS facts of the URL's host; null for an http URL or one that did not answer.
      type: dict
      contains:
        host:
          description: The host name the certificate was checked for.
          type: str
        version:
          description: The TLS version the request's connection settled on.
          type: str
          sample: TLSv1.3
        cipher:
          description: The cipher suite of that connection.
          type: str
        certificate:
          description: The certificate presented - subject, issuer, dns_names, ip_addresses, not_before, not_after (ISO 8601) and days_left.
          type: dict
        chain_verified:
          description: Whether the chain verified against the trusted CAs; null when the verifying handshake itself failed.
          type: bool
        chain_error:
          description: Why the chain did not verify.
          type: str
          sample: "unable to get local issuer certificate"
        versions:
          description: For each TLS version tried (those below O(expectations[].tls.min_version)) - C(accepted), C(refused) or why it is untested.
          type: dict
          sample: {"1.0": "refused", "1.1": "refused"}
    elapsed_ms:
      description: Milliseconds the whole expectation took (chain and TLS checks).
      type: int
      sample: 42
    error:
      description: Why the URL did not answer; empty when it did.
      type: str
    passed:
      description: Whether every assertion passed.
      type: bool
    failed:
      description: Every failed assertion, as in the finding's evidence.
      type: list
      elements: str
"""

# Ansible modules import after their documentation (validate-modules checks it).
from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.launchready.core.plugins.module_utils._http_check import ARGUMENT_SPEC, HttpCheckError, missing_libraries, run


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    for library, error in missing_libraries(module.params):
        module.fail_json(msg=missing_required_lib(library), exception=error)
    try:
        result, blocked = run(module.params)
    except HttpCheckError as exc:
        module.fail_json(msg=str(exc))
    if blocked:
        module.fail_json(msg=blocked, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
