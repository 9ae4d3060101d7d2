#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: log_hygiene
short_description: Find tokens, passwords, session ids and emails next to tokens in log files
version_added: 0.1.0
description:
  - Scans log files for what logs must never hold.
  - It looks for credentials (every rule of M(launchready.core.secret_scan), such as provider keys, JWTs, private keys, Authorization headers),
    passwords, session ids and cookies, and tokens in logged URL query strings.
  - A member's email address on the same line as any of those is reported on its own. That line ties an account to a working credential.
  - Rotated logs compressed with gzip (C(.gz)) are read too. Only the end of a large log is read, see O(max_bytes).
  - A match shows the file, line, rule and a redacted form of the token, never the token and never the email address.
  - Returns findings (stage, severity, title, evidence, fix) for the launch report and does not fail on them.
author:
  - launchready.core maintainers (@launchready)
attributes:
  check_mode:
    support: full
    description: Read-only; the same in check mode.
  diff_mode:
    support: none
    description: Nothing to show a diff of.
options:
  paths:
    description:
      - Log files, directories (every file under them) and glob patterns (such as C(/var/log/members/*.log*)).
      - A pattern that matches nothing is not an error; RV(summary.files) tells how many files were read.
    type: list
    elements: path
    required: true
  max_bytes:
    description:
      - Read at most this many bytes from the end of each log (after decompression), starting at a line boundary.
    type: int
    default: 104857600
  allowlist:
    description:
      - Python regular expressions; a match on a log line that one of them matches is ignored.
    type: list
    elements: str
    default: []
  skip_rules:
    description:
      - Ids of rules not to run (see RV(matches[].rule)).
    type: list
    elements: str
    default: []
  jobs:
    description:
      - Worker processes scanning logs in parallel. V(0) uses one per CPU.
    type: int
    default: 0
  stage:
    description:
      - The stage recorded in each finding.
    type: str
    default: secrets_env
seealso:
  - module: launchready.core.secret_scan
notes:
  - The checks are the same rules as M(launchready.core.secret_scan) plus log rules (C(log-password), C(log-session-id), C(log-url-credential),
    C(log-email-with-token)); a token is recognised the same way in source and in logs.
"""

EXAMPLES = r"""
- name: Check the application's logs
  launchready.core.log_hygiene:
    paths:
      - /var/log/members/
      - /srv/members/shared/log/*.log*
  register: logs

- name: Fail when a log holds credentials
  ansible.builtin.assert:
    that: logs.summary.must_do_now == 0
    fail_msg: "{{ logs.findings | selectattr('severity', 'equalto', 'must_do_now') | map(attribute='title') | join('; ') }}"
"""

RETURN = r"""
matches:
  description: Every match, sorted by file and line. None holds the token or the email address.
  returned: always
  type: list
  elements: dict
  contains:
    rule:
      description: Rule id.
      type: str
      sample: log-email-with-token
    category:
      description: Always V(log).
      type: str
      sample: log
    title:
      description: What the rule finds.
      type: str
      sample: Member email logged on the same line as a token
    severity:
      description: V(must_do_now) or V(can_wait).
      type: str
      sample: must_do_now
    file:
      description: The log file.
      type: str
      sample: /var/log/members/app.log
    line:
      description: Line number in the file, from 1.
      type: int
      sample: 4521
    column:
      description: Column of the token, from 1.
      type: int
      sample: 88
    match:
      description: The token redacted to a short prefix, or only a mask when it is short.
      type: str
      sample: eyJh********
    fingerprint:
      description: Short SHA-256 fingerprint of the token.
      type: str
      sample: sha256:2c26b46b68ff
    accepted:
      description: Always V(false) (logs have no baseline).
      type: bool
      sample: false
findings:
  description: Findings for the launch report, grouped per rule and severity, launch blockers first; one V(ok) finding when the logs are clean.
  returned: always
  type: list
  elements: dict
  sample:
    - stage: secrets_env
      severity: must_do_now
      title: Member email logged on the same line as a token (3 places)
      evidence: /var/log/members/app.log:4521 eyJh********; ...
      fix: A log line that ties an email to a working token is an account takeover...
summary:
  description: Counts of matches per severity and what was read.
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
    must_do_now: 3
    can_wait: 0
    accepted: 0
    files: 4
    bytes: 1048576
    skipped_binary: 0
    skipped_large: 0
    skipped_unreadable: 0
    history_blobs: 0
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.launchready.core.plugins.module_utils._scan import expand_log_paths, scan_logs, summary, to_findings
from ansible_collections.launchready.core.plugins.module_utils._secret_rules import (
    LOG,
    SECRET,
    PathMatcher,
    ScanOptions,
    select_rules,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            max_bytes=dict(type="int", default=104857600),
            allowlist=dict(type="list", elements="str", default=[]),
            skip_rules=dict(type="list", elements="str", default=[]),
            jobs=dict(type="int", default=0),
            stage=dict(type="str", default="secrets_env"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        allowlist = tuple(re.compile(pattern) for pattern in params["allowlist"])
        rules = select_rules([SECRET, LOG], params["skip_rules"])
    except (re.error, ValueError) as exc:
        module.fail_json(msg=str(exc))
    # Logs are data, not code: no test or production paths, unquoted values count, every token is a problem.
    options = ScanOptions(
        rules=rules,
        production_paths=PathMatcher(()),
        dev_paths=PathMatcher(()),
        allowlist=allowlist,
        email_with_token="log-email-with-token" not in params["skip_rules"],
        all_config_like=True,
    )
    paths = expand_log_paths(params["paths"])
    matches, stats = scan_logs(paths, options, params["max_bytes"], params["jobs"] or os.cpu_count() or 1)
    for match in matches:
        match.category = LOG
    # Stable: an email-with-token match stays after the token match it points at.
    matches.sort(key=lambda match: (match.file, match.line, match.column))
    scanned = "%d log files read (%d bytes)" % (stats.files, stats.bytes)
    findings = to_findings(matches, options.rule_index, [LOG], params["stage"], scanned, in_logs=True)
    module.exit_json(changed=False, matches=[match.as_dict() for match in matches], findings=findings, summary=summary(matches, stats))


if __name__ == "__main__":
    main()
