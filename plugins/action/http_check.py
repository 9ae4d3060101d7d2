# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""launchready.core.http_check: a task with a local connection (delegate_to: localhost, where it usually runs) is checked inside
ansible-playbook's worker process instead of a new Python process, which saves about a third of a second per task; any other
task runs the module on its host, as usual."""

from __future__ import annotations

import json

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.launchready.core.plugins.module_utils._http_check import ARGUMENT_SPEC, HttpCheckError, missing_libraries, run


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        # Plain values, as a module receives them: the expectations compare types strictly, and templated values carry Ansible's own types.
        validated = ArgumentSpecValidator(ARGUMENT_SPEC).validate(json.loads(json.dumps(self._task.args)))
        # The module reports a bad option or a missing library (of its own Python) as usual.
        if self._connection.transport != "local" or validated.error_messages or missing_libraries(validated.validated_parameters):
            result.update(self._execute_module(task_vars=task_vars))
            return result
        try:
            outcome, blocked = run(validated.validated_parameters)
        except HttpCheckError as exc:
            return dict(result, failed=True, msg=str(exc))
        result.update(outcome)
        if blocked:
            result.update(failed=True, msg=blocked)
        return result
