# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make demo`: the whole launch against the lab, twice, then a deploy and the rollback, then where to look.

Run from the repository root with the project's venv: `.venv/bin/python -m tests.demo`.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

from tests import demo_app
from tests.lab.client import Lab

ROOT = pathlib.Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "inventories" / "demo"
STATE_DIR = ROOT / "tests" / "lab" / "state"
DEPLOY_ROOT = INVENTORY / "state" / "srv" / "launch-demo"
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)", re.M)


def launch(playbook: str = "launch.yml", *extra: str) -> dict[str, int]:
    """Run playbooks/<playbook> on the demo inventory, echoing its output; return the recap totals."""
    command = [
        str(pathlib.Path(sys.executable).parent / "ansible-playbook"),
        "playbooks/" + playbook,
        "-i", str(INVENTORY),
        "--vault-id", "demo@%s" % (INVENTORY / "vault-password.txt"),
        *extra,
    ]
    print("\n$ " + " ".join(command[1:]), flush=True)
    env = dict(os.environ, ANSIBLE_FORCE_COLOR=os.environ.get("ANSIBLE_FORCE_COLOR", "0"))
    run = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    print(run.stdout, flush=True)
    if run.returncode != 0:
        raise SystemExit("%s failed (exit %d): see the output above" % (playbook, run.returncode))
    totals = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0}
    for match in RECAP.finditer(run.stdout):
        for key in totals:
            totals[key] += int(match.group(key))
    return totals


def main() -> None:
    app = demo_app.create(INVENTORY / "state" / "demo-app", accept=True)
    print("demo app repository: %s (%d planted problems, accepted in its baseline)" % (app.root, len(app.planted)))
    lab = Lab.start(STATE_DIR)
    try:
        # Every demo starts from the lab's configuration, not from what an earlier demo left.
        lab.reset()
        print("lab up: Cloudflare API %s, DNS %s:%d" % (lab.api_base_url, lab.dns_host, lab.dns_port))
        first = launch()
        lab.reset_calls()
        second = launch()
        calls = lab.calls()
        print("first run:  changed=%(changed)d" % first)
        print("second run: changed=%d, %d Cloudflare API calls, %d writes" % (second["changed"], calls["total"], calls["writes"]))
        if second["changed"]:
            raise SystemExit("the second run changed something: the launch is not idempotent")
        print("\nThe Friday-night rollback: a second release of the app, then back to the first one.")
        launch("deploy.yml", "-e", "deploy_redeploy=true")
        launch("rollback.yml")
        print("\nResults:")
        print("  findings (ranked):  %s" % (INVENTORY / "state" / "findings.json"))
        print("  the lab's zones:    %s" % lab.state_file)
        print("  ask the lab's DNS:  dig @%s -p %d app.launch-demo.test" % (lab.dns_host, lab.dns_port))
        print("  the releases:       %s (audit log: releases.log)" % DEPLOY_ROOT)
    finally:
        # The app the deploy stage started (supervisord and gunicorn) goes with the lab.
        subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(DEPLOY_ROOT / "server" / "supervisord.conf"), "shutdown"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        lab.stop()
        print("lab stopped")


if __name__ == "__main__":
    main()
