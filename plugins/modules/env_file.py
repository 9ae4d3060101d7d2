#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: env_file
short_description: Write an application's environment file from secrets, never showing a value
version_added: 0.1.0
description:
  - Renders an environment file (dotenv or systemd C(EnvironmentFile=)) from a mapping whose values usually come from Ansible Vault.
  - Checks every input before anything is written. A required key that is missing or empty, a value that matches a forbidden
    pattern, a bad key name or a value the format cannot hold fails the task with the key name, never the value.
  - Writes atomically. The content goes to a temporary file in the same directory that already has its final mode, owner and group.
    The temporary file is flushed to disk, then renamed over the old one, so readers see the old file or the new one, never a partial one.
  - Values never appear in the result, the diff or error messages. The diff lists key names with masked values and marks the changed ones.
    The result returns key names and short fingerprints (a prefix of the SHA-256 of each value) to tell values apart.
author:
  - launchready.core maintainers (@launchready)
attributes:
  check_mode:
    support: full
    description: Computes the change and the diff without writing.
  diff_mode:
    support: full
    description: Key names with masked values; changed keys are marked.
options:
  path:
    description:
      - The environment file to write, for example the C(.env) in a deploy root's shared folder.
      - If it is a symbolic link, the file it points to is written and the link is kept.
      - Its directory must exist (in check mode, a missing directory counts as a file to create).
    type: path
    required: true
  format:
    description:
      - V(dotenv) writes a file that python-dotenv, Node's dotenv (and Node's C(util.parseEnv)) and docker compose read back alike.
        Values are single-quoted. A value that holds a single quote is double-quoted, with newlines written as C(\\n).
        A value that none of these quotings carries to all three readers unchanged is refused with its key name.
        This covers a single quote together with a double quote, backslash or C($); a double or trailing backslash; a carriage return;
        C(${), which python-dotenv expands in every value.
      - V(systemd) writes a systemd C(EnvironmentFile=). Every value is double-quoted with C(\\), C("), C($) and backquote escaped and newlines kept.
        It can hold any value and can also be sourced by C(sh).
    type: str
    choices: [dotenv, systemd]
    default: dotenv
  values:
    description:
      - The secret settings, as a mapping of variable name to value. Keep the values in Ansible Vault.
      - Numbers are written as they are, booleans as V(true) or V(false), null as an empty value.
      - Ansible hides every occurrence of every value of this option in all task output.
        Short non-secret values such as V(1) or V(production) would garble the output, so put those in O(plain_values).
    type: dict
    default: {}
  plain_values:
    description:
      - Non-secret settings (C(NODE_ENV), C(PORT), public URLs), written like O(values) and masked in the diff the same way.
      - Kept apart from O(values) only because Ansible hides every occurrence of a secret value in the output.
      - A key cannot be in both O(values) and O(plain_values).
    type: dict
    default: {}
  required_keys:
    description:
      - Keys that must be present with a non-blank value. A missing or empty one fails the task before anything is written.
    type: list
    elements: str
    default: []
  forbidden:
    description:
      - Patterns no value may match, for example test keys or preview hostnames in a production file.
        A match fails the task before anything is written, naming the key and the pattern.
    type: list
    elements: dict
    default: []
    suboptions:
      pattern:
        description:
          - A Python regular expression searched for in each value. Use C((?i\)) for a case-insensitive match.
        type: str
        required: true
      keys:
        description:
          - Shell-style patterns of the key names the rule applies to.
        type: list
        elements: str
        default: ['*']
      ignore_keys:
        description:
          - Shell-style patterns of key names the rule skips, for example V(REDIS_URL) when Redis runs on the same host.
        type: list
        elements: str
        default: []
  mode:
    description:
      - Permissions of the file, as an octal string.
    type: str
    default: '0600'
  owner:
    description:
      - Name or numeric id of the user that owns the file. Unchanged when not set (a new file belongs to the user Ansible runs as).
    type: str
  group:
    description:
      - Name or numeric id of the group of the file. Unchanged when not set.
    type: str
  backup:
    description:
      - Before replacing an existing file, keep a copy beside it with a timestamp in its name and the same permissions.
    type: bool
    default: false
seealso:
  - module: launchready.core.secret_scan
notes:
  - Fingerprints identify a value without showing it. A short or guessable value can still be found by guessing and comparing
    its fingerprint, which is one more reason to keep real secrets long and random.
"""

EXAMPLES = r"""
- name: Render the production environment file from the vault
  launchready.core.env_file:
    path: /srv/members/shared/.env
    values: "{{ vault_app_env.production }}"
    plain_values:
      NODE_ENV: production
      PORT: 3000
      APP_URL: https://app.example.com
    required_keys: [DATABASE_URL, SESSION_SECRET, STRIPE_SECRET_KEY]
    forbidden:
      - pattern: '(sk|pk|rk)_test_'
      - pattern: '(?i)localhost|127\.0\.0\.1|\.vercel\.app|\.netlify\.app|\.herokuapp\.com|ngrok'
        ignore_keys: [REDIS_URL]
    owner: members
    group: members
    backup: true

- name: The same settings for a systemd unit (EnvironmentFile=/etc/members/env)
  launchready.core.env_file:
    path: /etc/members/env
    format: systemd
    values: "{{ vault_app_env.production }}"
    owner: root
    group: members
    mode: '0640'
"""

RETURN = r"""
path:
  description: The file written (symbolic links resolved).
  returned: always
  type: str
  sample: /srv/members/shared/.env
format:
  description: The format written.
  returned: always
  type: str
  sample: dotenv
keys:
  description: The variable names in the file, sorted.
  returned: always
  type: list
  elements: str
  sample: [DATABASE_URL, NODE_ENV, SESSION_SECRET]
fingerprints:
  description: For each key, a short SHA-256 fingerprint of its value, to compare values across hosts and runs without showing them.
  returned: always
  type: dict
  sample: {DATABASE_URL: "sha256:3f1c2a9b0d4e", NODE_ENV: "sha256:8a5edab28263"}
added:
  description: Keys the file did not have before.
  returned: always
  type: list
  elements: str
  sample: [SESSION_SECRET]
removed:
  description: Keys the file had before and no longer has.
  returned: always
  type: list
  elements: str
  sample: []
changed_keys:
  description: Keys whose value changed.
  returned: always
  type: list
  elements: str
  sample: [DATABASE_URL]
backup_file:
  description: The copy of the previous file, when O(backup=true) and the file was replaced.
  returned: changed and backup was made
  type: str
  sample: /srv/members/shared/.env.12345.2025-05-01@10:00:00~
"""

import grp
import os
import pwd
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.launchready.core.plugins.module_utils._envfile import (
    FORMATS,
    EnvFileError,
    ForbiddenRule,
    fingerprints,
    masked_listing,
    normalize_values,
    parse_mode,
    plan,
    validate,
)
from ansible_collections.launchready.core.plugins.module_utils._files import write_atomic
from ansible_collections.launchready.core.plugins.module_utils._redact import scrub


def _resolve_id(name, lookup, kind):
    if name is None:
        return -1
    if name.isdigit():
        return int(name)
    try:
        return lookup(name)
    except KeyError:
        raise EnvFileError("%s %r does not exist on this host" % (kind, name)) from None


def _describe(mode, uid, gid):
    return "# mode %04o, owner %s, group %s\n" % (mode, uid, gid)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            format=dict(type="str", choices=list(FORMATS), default="dotenv"),
            values=dict(type="dict", default={}, no_log=True),
            plain_values=dict(type="dict", default={}),
            required_keys=dict(type="list", elements="str", default=[], no_log=False),
            forbidden=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    pattern=dict(type="str", required=True),
                    keys=dict(type="list", elements="str", default=["*"], no_log=False),
                    ignore_keys=dict(type="list", elements="str", default=[], no_log=False),
                ),
            ),
            mode=dict(type="str", default="0600"),
            owner=dict(type="str"),
            group=dict(type="str"),
            backup=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    secrets = []
    try:
        values = normalize_values(params["values"])
        secrets = [value for value in values.values() if value]
        plain = normalize_values(params["plain_values"])
        both = sorted(set(values) & set(plain))
        if both:
            raise EnvFileError("keys in both values and plain_values: %s" % ", ".join(both))
        merged = {**values, **plain}
        rules = [ForbiddenRule(rule["pattern"], tuple(rule["keys"]), tuple(rule["ignore_keys"])) for rule in params["forbidden"]]
        validate(merged, params["required_keys"], rules)
        mode = parse_mode(params["mode"])
        uid = _resolve_id(params["owner"], lambda name: pwd.getpwnam(name).pw_uid, "user")
        gid = _resolve_id(params["group"], lambda name: grp.getgrnam(name).gr_gid, "group")

        path = os.path.realpath(params["path"])
        # In check mode the directory may be one an earlier task would have created.
        if not os.path.isdir(os.path.dirname(path)) and not module.check_mode:
            raise EnvFileError("directory %s does not exist" % os.path.dirname(path))
        if os.path.isdir(path):
            raise EnvFileError("%s is a directory" % path)

        current_text = None
        current_stat = None
        if os.path.exists(path):
            current_stat = os.stat(path)
            with open(path, "rb") as handle:
                current_text = handle.read().decode("utf-8", errors="surrogateescape")
        file_plan = plan(merged, params["format"], current_text)
    except (EnvFileError, OSError) as exc:
        module.fail_json(msg=scrub(str(exc), secrets))

    # Without owner/group, a replaced file keeps the ones it had.
    want_uid = current_stat.st_uid if uid == -1 and current_stat else uid
    want_gid = current_stat.st_gid if gid == -1 and current_stat else gid
    perms_changed = current_stat is not None and ((current_stat.st_mode & 0o7777) != mode or current_stat.st_uid != want_uid or current_stat.st_gid != want_gid)
    changed = file_plan.file_changed or perms_changed

    result = dict(
        changed=changed,
        path=path,
        format=params["format"],
        keys=sorted(merged),
        fingerprints=fingerprints(merged),
        added=file_plan.added,
        removed=file_plan.removed,
        changed_keys=file_plan.changed,
    )
    if file_plan.before_unreadable:
        module.warn("%s could not be read as a %s file; the diff shows every key as added" % (path, params["format"]))
    if module._diff:
        before = ""
        if current_stat is not None:
            before = _describe(current_stat.st_mode & 0o7777, current_stat.st_uid, current_stat.st_gid) + masked_listing(file_plan.before_keys)
        after_uid = os.geteuid() if want_uid == -1 else want_uid
        after_gid = os.getegid() if want_gid == -1 else want_gid
        result["diff"] = dict(
            before_header=path,
            after_header=path,
            before=before,
            after=_describe(mode, after_uid, after_gid) + masked_listing(list(merged), file_plan.changed),
        )

    if changed and not module.check_mode:
        try:
            if params["backup"] and current_stat is not None:
                result["backup_file"] = module.backup_local(path)
            if file_plan.file_changed:
                write_atomic(path, file_plan.content.encode("utf-8"), mode, want_uid, want_gid)
            else:
                os.chmod(path, mode)
                os.chown(path, want_uid, want_gid)
        except Exception as exc:
            module.fail_json(msg=scrub("could not write %s: %s" % (path, exc), secrets), exception=scrub(traceback.format_exc(), secrets))

    module.exit_json(**result)


if __name__ == "__main__":
    main()
