#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: config_files
short_description: Write a few configuration files in one task, each atomically and only when it differs
version_added: 0.1.0
description:
  - Writes each file of O(files) whose content, mode, owner or group differs from what is on the host, and creates missing parent folders.
    One task for several files, where M(ansible.builtin.template) or M(ansible.builtin.copy) would make one round trip (or two) per file.
    The C(launchready.core.deploy) role writes the app server's configuration with it on every deploy.
  - The content is given, typically rendered on the control node with C(lookup('ansible.builtin.template', ...)).
  - Writes atomically. The content goes to a temporary file in the same folder that already has its final mode, owner and group, is flushed
    to disk and renamed over the old file, so readers (a process manager reading its configuration) never see a partial file.
  - Not for secrets. The diff shows the content; write secrets with M(launchready.core.env_file).
author:
  - launchready.core maintainers (@launchready)
attributes:
  check_mode:
    support: full
    description: Compares each file and returns what would change, with the diff, without writing.
  diff_mode:
    support: full
    description: One diff per changed file, its content before and after.
  platform:
    support: full
    platforms: posix
    description: Needs atomic C(rename), as on Linux, BSD and macOS.
options:
  files:
    description:
      - The files to write.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description:
          - Where the file goes. Missing parent folders are created with mode C(0755), owned by O(files[].owner) and O(files[].group).
        type: path
        required: true
      content:
        description:
          - The whole content of the file, as text (written in UTF-8).
        type: str
        required: true
      mode:
        description:
          - The file's permissions, in octal, such as V(0644) or V(0600).
        type: str
        default: "0644"
      owner:
        description:
          - The user that owns the file (and the folders created for it), by name. Unchanged when not set.
        type: str
      group:
        description:
          - The group that owns the file (and the folders created for it), by name. Unchanged when not set.
        type: str
seealso:
  - module: ansible.builtin.template
  - module: launchready.core.env_file
"""

EXAMPLES = r"""
- name: Write gunicorn's and supervisord's configuration in one task
  launchready.core.config_files:
    files:
      - path: /srv/members/server/gunicorn.conf.py
        content: "{{ lookup('ansible.builtin.template', 'gunicorn.conf.py.j2') }}"
        owner: members
      - path: /srv/members/server/supervisord.conf
        content: "{{ lookup('ansible.builtin.template', 'supervisord.conf.j2') }}"
        mode: "0600"
  register: server_config

- name: Load supervisord's new configuration when it changed
  ansible.builtin.command: supervisorctl -c /srv/members/server/supervisord.conf update
  when: "'/srv/members/server/supervisord.conf' in server_config.changed_files"
"""

RETURN = r"""
changed_files:
  description: The paths of the files written (or that would be written, in check mode), including those whose mode or owner only changed.
  returned: always
  type: list
  elements: str
  sample: [/srv/members/server/supervisord.conf]
"""

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.launchready.core.plugins.module_utils._files import write_atomic


def _uid(name: str | None) -> int:
    return -1 if name is None else pwd.getpwnam(name).pw_uid


def _gid(name: str | None) -> int:
    return -1 if name is None else grp.getgrnam(name).gr_gid


def _mode(text: str, path: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise ValueError("mode %r of %s is not an octal mode such as 0644" % (text, path))
    return mode


def _read(path: str) -> tuple[str | None, os.stat_result | None]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("%s exists and is not a regular file" % path)
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read(), info


def _missing_folders(path: str) -> list[str]:
    """The parent folders of ``path`` that do not exist, outermost first."""
    missing = []
    folder = os.path.dirname(path)
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing[::-1]


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    path=dict(type="path", required=True),
                    content=dict(type="str", required=True),
                    mode=dict(type="str", default="0644"),
                    owner=dict(type="str"),
                    group=dict(type="str"),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    plan = []
    try:
        paths = [os.path.abspath(item["path"]) for item in module.params["files"]]
        if len(set(paths)) != len(paths):
            raise ValueError("a path is given twice in files")
        for path, item in zip(paths, module.params["files"], strict=True):
            try:
                uid, gid = _uid(item["owner"]), _gid(item["group"])
            except KeyError as exc:
                raise ValueError("unknown owner or group of %s: %s" % (path, exc)) from None
            mode = _mode(item["mode"], path)
            before, info = _read(path)
            same = (
                info is not None and before == item["content"] and stat.S_IMODE(info.st_mode) == mode and uid in (-1, info.st_uid) and gid in (-1, info.st_gid)
            )
            if not same:
                plan.append((path, item["content"], mode, uid, gid, before))
    except (ValueError, OSError) as exc:
        module.fail_json(msg=str(exc))

    if not module.check_mode:
        for path, content, mode, uid, gid, _before in plan:
            try:
                for folder in _missing_folders(path):
                    os.mkdir(folder, 0o755)
                    if uid != -1 or gid != -1:
                        os.chown(folder, uid, gid)
                write_atomic(path, content.encode("utf-8", errors="surrogateescape"), mode, uid, gid)
            except OSError as exc:
                module.fail_json(msg="could not write %s: %s" % (path, exc), changed_files=[entry[0] for entry in plan])

    result = dict(changed=bool(plan), changed_files=[entry[0] for entry in plan])
    if module._diff:
        result["diff"] = [
            dict(before_header=path, after_header=path, before=before if before is not None else "", after=content)
            for path, content, _mode, _uid, _gid, before in plan
        ]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
