# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of launchready.core.deploy_release: with artifact_on_controller, copy the archive to the host first."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    # Only the tasks that copy an artifact need a temporary folder on the host; it is made below.
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        module_args = dict(self._task.args)
        on_controller = boolean(module_args.get("artifact_on_controller", False), strict=False)
        if not on_controller or module_args.get("state", "present") != "present" or not module_args.get("artifact"):
            result.update(self._execute_module(module_args=module_args, task_vars=task_vars))
            return result

        try:
            local = self._find_needle("files", to_text(module_args["artifact"]))
        except AnsibleFileNotFound as exc:
            raise AnsibleActionFail("artifact %s not found on the control node: %s" % (module_args["artifact"], to_text(exc))) from None
        if os.path.isdir(local):
            raise AnsibleActionFail("artifact %s is a folder: with artifact_on_controller, pack it into an archive first (tar.gz)" % local)
        # Copied in check mode too (into the temporary folder only): the module checks its checksum and contents as in a real run.
        try:
            remote = self._connection._shell.join_path(self._make_tmp_path(), os.path.basename(local))
            self._transfer_file(local, remote)
            self._fixup_perms2((self._connection._shell.tmpdir, remote))
            module_args["artifact"] = remote
            result.update(self._execute_module(module_args=module_args, task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
