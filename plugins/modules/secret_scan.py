#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: secret_scan
short_description: Find committed secrets, hard-coded dev and preview URLs and test credentials in an application's source
version_added: 0.1.0
description:
  - Scans a source tree for committed credentials. Rules cover AWS, Stripe, GitHub, GitLab, npm, Slack tokens and webhooks, Cloudflare,
    SendGrid, Postmark, Mailgun, Twilio, OpenAI, Anthropic and other LLM providers, Google API keys, PEM private keys, database URLs with
    passwords, JWTs, and session or JWT signing secrets. High-entropy values assigned to secret-like names are caught too.
  - In a git work tree it scans the tracked files plus the untracked files git does not ignore; elsewhere every file under O(path).
    Vendored and generated folders, symbolic links, binary files and files over O(max_file_size) are skipped.
  - With O(history=true) it also scans every version of every file in the history of all refs, read once per distinct content.
  - The same walk runs the source audit when O(checks) asks for it, reading each file once for every check.
    V(dev_urls) finds hard-coded localhost, preview (C(*.vercel.app), C(*.netlify.app), C(*.herokuapp.com), ngrok...) and staging URLs.
    V(test_credentials) finds test keys and sandbox endpoints in production configuration.
  - A match shows the file, line, rule and a redacted form (a short prefix at most), never the secret.
    Matches accepted in a baseline file (by rule and fingerprint) are reported as accepted and do not count.
  - Returns findings (stage, severity, title, evidence, fix) for the launch report. It does not fail on findings;
    the calling role decides (see C(launchready.core.secrets_env)).
author:
  - launchready.core maintainers (@launchready)
attributes:
  check_mode:
    support: full
    description: Scans, but writes no report or baseline file.
  diff_mode:
    support: none
    description: Nothing to show a diff of.
options:
  path:
    description:
      - Root of the tree to scan, usually the application's repository.
    type: path
    required: true
  checks:
    description:
      - What to look for. V(secrets) finds committed credentials.
      - V(dev_urls) finds localhost, preview and tunnel hostnames, and O(staging_hosts), in application code and production configuration.
        Tests, fixtures, examples and docs (O(dev_paths)) are not checked for them.
      - V(test_credentials) finds Stripe test keys, sandbox endpoints and sandbox modes in production configuration (O(production_paths)).
    type: list
    elements: str
    choices: [secrets, dev_urls, test_credentials]
    default: [secrets]
  history:
    description:
      - Also scan the whole git history (every ref). A match found only in history names the commit that introduced it.
      - Needs O(path) to be in a git work tree.
    type: bool
    default: false
  staging_hosts:
    description:
      - The client's staging hostnames. With O(checks=dev_urls), any of them (or a subdomain) in code or production configuration is a finding.
    type: list
    elements: str
    default: []
  preview_domains:
    description:
      - Domains of preview deployments and tunnels, for O(checks=dev_urls).
      - When not set, a built-in list. It holds vercel.app, netlify.app, herokuapp.com, the ngrok domains, pages.dev, onrender.com,
        fly.dev, railway.app, trycloudflare.com and loca.lt.
    type: list
    elements: str
  production_paths:
    description:
      - Shell-style patterns (relative to O(path); C(*) also matches C(/); a pattern without C(/) also matches the file name alone)
        of production configuration files.
      - In these files a dev URL is a launch blocker, and test credentials are looked for.
      - When not set, a built-in list such as C(.env.production), C(production.*), C(config/environments/production.rb); see the collection's docs/secrets.md.
    type: list
    elements: str
  dev_paths:
    description:
      - Patterns, as in O(production_paths), of tests, fixtures, examples, documentation and local development configuration.
      - There, dev URLs are expected and not reported. Generic secrets, JWTs, signing secrets and database URLs are reported as V(can_wait).
        Provider keys stay launch blockers.
      - When not set, a built-in list such as C(tests/*), C(*.test.*), C(*.md), C(.env.example), C(docker-compose*.yml); see docs/secrets.md.
    type: list
    elements: str
  exclude_dirs:
    description:
      - Directory names skipped wherever they appear.
      - When not set, vendored and generated folders. These are .git, node_modules, bower_components, jspm_packages, vendor, third_party,
        .venv, venv, site-packages, __pycache__, dist, build, .next, .nuxt, .svelte-kit, .turbo, .cache, coverage, .tox, .nox, .mypy_cache,
        .pytest_cache, .ruff_cache, target and .terraform.
    type: list
    elements: str
  exclude_paths:
    description:
      - Patterns, as in O(production_paths), of files not to scan at all.
    type: list
    elements: str
    default: []
  max_file_size:
    description:
      - Files (and history blobs) larger than this many bytes are skipped and counted in RV(summary.skipped_large).
    type: int
    default: 1048576
  allowlist:
    description:
      - Python regular expressions; a match on a line that one of them matches is ignored.
      - A line holding the marker C(launchready:allow), for example in a comment, is always ignored.
    type: list
    elements: str
    default: []
  skip_rules:
    description:
      - Ids of rules not to run (see RV(matches[].rule)).
    type: list
    elements: str
    default: []
  baseline:
    description:
      - A JSON baseline file of accepted matches, by rule and fingerprint. Such a match is reported with RV(matches[].accepted=true)
        and is not a finding. A missing file is an empty baseline.
    type: path
  update_baseline:
    description:
      - Add every current match to O(baseline), keeping its existing entries and their notes. Review the file before committing it.
    type: bool
    default: false
  json_report:
    description:
      - Write the matches, findings and summary to this JSON file.
    type: path
  sarif_report:
    description:
      - Write the matches to this SARIF 2.1.0 file, for code-scanning tools; baseline matches are marked as suppressed.
    type: path
  jobs:
    description:
      - Worker processes scanning files in parallel. V(0) uses one per CPU.
    type: int
    default: 0
  stage:
    description:
      - The stage recorded in each finding.
    type: str
    default: secrets_env
seealso:
  - module: launchready.core.log_hygiene
  - module: launchready.core.env_file
notes:
  - Severity. Live provider keys, private keys and signing secrets are V(must_do_now) wherever they are, docs and tests included.
    A Stripe test secret key is V(can_wait). It cannot move money, but should still be rolled.
    With O(checks=test_credentials), a test key in production configuration is V(must_do_now), because payments would silently run in test mode.
  - A Google API key in a file that also holds a Firebase web configuration is V(can_wait), since such keys ship to browsers by design.
"""

EXAMPLES = r"""
- name: Scan the application repository, history included, with the source audit
  launchready.core.secret_scan:
    path: /srv/src/members
    history: true
    checks: [secrets, dev_urls, test_credentials]
    staging_hosts: [staging.members.example.org]
    baseline: /srv/src/members/.launchready-baseline.json
    json_report: /srv/reports/secret-scan.json
    sarif_report: /srv/reports/secret-scan.sarif
  register: scan

- name: Fail the launch on blockers not accepted in the baseline
  ansible.builtin.assert:
    that: scan.summary.must_do_now == 0
    fail_msg: "{{ scan.findings | selectattr('severity', 'equalto', 'must_do_now') | map(attribute='title') | join('; ') }}"

- name: Accept the current matches (then review and commit the baseline)
  launchready.core.secret_scan:
    path: /srv/src/members
    baseline: /srv/src/members/.launchready-baseline.json
    update_baseline: true
"""

RETURN = r"""
matches:
  description: Every match, sorted by file and line. None holds the secret.
  returned: always
  type: list
  elements: dict
  contains:
    rule:
      description: Rule id.
      type: str
      sample: stripe-live-secret-key
    category:
      description: V(secret), V(dev_url) or V(test_credential).
      type: str
      sample: secret
    title:
      description: What the rule finds.
      type: str
      sample: Stripe live secret or restricted key
    severity:
      description: V(must_do_now) or V(can_wait).
      type: str
      sample: must_do_now
    file:
      description: Path relative to O(path).
      type: str
      sample: config/settings.py
    line:
      description: Line number, from 1.
      type: int
      sample: 12
    column:
      description: Column of the match, from 1.
      type: int
      sample: 20
    match:
      description: The secret redacted to a short prefix (or only a mask when it is short); dev URLs are shown as they are.
      type: str
      sample: sk_l********
    fingerprint:
      description: Short SHA-256 fingerprint of the secret, the key of baseline entries.
      type: str
      sample: sha256:9f86d081884c
    commit:
      description: The commit that introduced it, for a match found only in history.
      type: str
      returned: when found in history only
      sample: 4ab8e55c1e0d3f7a9b2c6d8e0f1a2b3c4d5e6f70
    accepted:
      description: Whether the baseline accepts it.
      type: bool
      sample: false
findings:
  description: Findings for the launch report, launch blockers first. They are grouped per rule and severity, with an V(ok) finding for each clean check.
  returned: always
  type: list
  elements: dict
  sample:
    - stage: secrets_env
      severity: must_do_now
      title: Stripe live secret or restricted key (1 place)
      evidence: config/settings.py:12 sk_l********
      fix: Roll the key in the Stripe dashboard (Developers > API keys). Revoke and rotate it at the provider now...
summary:
  description: Counts of matches not accepted, per severity, of accepted matches, and what was scanned.
  returned: always
  type: dict
  contains:
    must_do_now:
      description: Matches not accepted that block the launch.
      type: int
    can_wait:
      description: Matches not accepted that can wait.
      type: int
    accepted:
      description: Matches accepted in the baseline.
      type: int
    files:
      description: Files read.
      type: int
    bytes:
      description: Bytes read.
      type: int
    skipped_binary:
      description: Files (and history blobs) skipped as binary (a NUL byte in the first 8 KiB).
      type: int
    skipped_large:
      description: Files (and history blobs) skipped as larger than the size limit.
      type: int
    skipped_unreadable:
      description: Files that vanished or could not be read.
      type: int
    history_blobs:
      description: Blobs read from the git history.
      type: int
  sample:
    must_do_now: 1
    can_wait: 2
    accepted: 1
    files: 812
    bytes: 6284649
    skipped_binary: 31
    skipped_large: 0
    skipped_unreadable: 0
    history_blobs: 0
walk:
  description: How the files were listed, V(git) (tracked plus untracked not ignored) or V(filesystem).
  returned: always
  type: str
  sample: git
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.launchready.core.plugins.module_utils._scan import (
    DEFAULT_EXCLUDE_DIRS,
    ScanError,
    apply_baseline,
    file_differs,
    json_report,
    list_files,
    load_baseline,
    sarif_report,
    scan_files,
    scan_history,
    summary,
    to_findings,
    updated_baseline,
    write_text,
)
from ansible_collections.launchready.core.plugins.module_utils._secret_rules import (
    DEFAULT_DEV_PATHS,
    DEFAULT_PREVIEW_DOMAINS,
    DEFAULT_PRODUCTION_PATHS,
    DEV_URL,
    SECRET,
    TEST_CREDENTIAL,
    PathMatcher,
    ScanOptions,
    select_rules,
)

CHECKS = {"secrets": SECRET, "dev_urls": DEV_URL, "test_credentials": TEST_CREDENTIAL}


def _or_default(value, default):
    return tuple(default if value is None else value)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            checks=dict(type="list", elements="str", choices=list(CHECKS), default=["secrets"]),
            history=dict(type="bool", default=False),
            staging_hosts=dict(type="list", elements="str", default=[]),
            preview_domains=dict(type="list", elements="str"),
            production_paths=dict(type="list", elements="str"),
            dev_paths=dict(type="list", elements="str"),
            exclude_dirs=dict(type="list", elements="str"),
            exclude_paths=dict(type="list", elements="str", default=[]),
            max_file_size=dict(type="int", default=1048576),
            allowlist=dict(type="list", elements="str", default=[]),
            skip_rules=dict(type="list", elements="str", default=[]),
            baseline=dict(type="path"),
            update_baseline=dict(type="bool", default=False),
            json_report=dict(type="path"),
            sarif_report=dict(type="path"),
            jobs=dict(type="int", default=0),
            stage=dict(type="str", default="secrets_env"),
        ),
        required_if=[("update_baseline", True, ("baseline",))],
        supports_check_mode=True,
    )
    params = module.params
    root = params["path"]
    if not os.path.isdir(root):
        module.fail_json(msg="%s is not a directory" % root)
    categories = [CHECKS[check] for check in params["checks"]]
    exclude_dirs = _or_default(params["exclude_dirs"], DEFAULT_EXCLUDE_DIRS)
    exclude_paths = PathMatcher(params["exclude_paths"])
    jobs = params["jobs"] or os.cpu_count() or 1
    try:
        allowlist = tuple(re.compile(pattern) for pattern in params["allowlist"])
    except re.error as exc:
        module.fail_json(msg="allowlist has an invalid regular expression: %s" % exc)
    try:
        rules = select_rules(categories, params["skip_rules"], _or_default(params["preview_domains"], DEFAULT_PREVIEW_DOMAINS), params["staging_hosts"])
        options = ScanOptions(
            rules=rules,
            production_paths=PathMatcher(_or_default(params["production_paths"], DEFAULT_PRODUCTION_PATHS)),
            dev_paths=PathMatcher(_or_default(params["dev_paths"], DEFAULT_DEV_PATHS)),
            allowlist=allowlist,
        )
        baseline = load_baseline(params["baseline"])
        paths, walk = list_files(root, exclude_dirs, exclude_paths)
        matches, stats = scan_files(root, paths, options, params["max_file_size"], jobs)
        if params["history"]:
            if walk != "git":
                raise ScanError("history=true needs %s to be in a git work tree" % root)
            seen = {(match.rule, match.fingerprint, match.file) for match in matches}
            history_matches, history_stats = scan_history(root, options, params["max_file_size"], jobs, exclude_dirs, exclude_paths)
            matches.extend(match for match in history_matches if (match.rule, match.fingerprint, match.file) not in seen)
            stats.add(history_stats)
    except (ScanError, ValueError, OSError) as exc:
        module.fail_json(msg=str(exc))

    matches.sort(key=lambda match: (match.file, match.line, match.column, match.rule, match.commit or ""))
    apply_baseline(matches, baseline)
    scanned = "%d files scanned (%s walk)" % (stats.files, walk)
    if params["history"]:
        scanned += " and %d blobs from the git history" % stats.history_blobs
    findings = to_findings(matches, options.rule_index, categories, params["stage"], scanned)
    totals = summary(matches, stats)

    outputs = []
    if params["json_report"]:
        outputs.append((params["json_report"], json_report(root, matches, findings, totals)))
    if params["sarif_report"]:
        outputs.append((params["sarif_report"], sarif_report(root, matches, options.rule_index)))
    if params["update_baseline"]:
        outputs.append((params["baseline"], updated_baseline(matches, baseline)))
    changed = False
    for output_path, content in outputs:
        if not file_differs(output_path, content):
            continue
        changed = True
        if not module.check_mode:
            try:
                write_text(output_path, content)
            except OSError as exc:
                module.fail_json(msg="could not write %s: %s" % (output_path, exc))

    module.exit_json(changed=changed, matches=[match.as_dict() for match in matches], findings=findings, summary=totals, walk=walk)


if __name__ == "__main__":
    main()
