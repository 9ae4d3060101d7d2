# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A temporary copy of the demo inventory that points at a given lab, with a vault made at test time.

    inventory = DemoInventory.create(tmp_path / "inventory", lab, app_env={"SESSION_SECRET": canary})
    result = inventory.run("launch.yml", workdir, verbosity=3, diff=True)

The copy keeps the demo's structure (hosts.yml, group_vars/all/main.yml and vault.yml): main.yml is
the demo's own text with ``launchready_lab`` set to the given lab's endpoints instead of the lab that
`make demo` starts, and every fixed ``*_port`` moved to a free one, so every stage the demo
configures runs, against that lab, beside a demo or another test. vault.yml is written
and encrypted here (its own random password) with a fresh lab token holding the demo token's
permissions and zones, and the app's environment secrets given. The demo app repository is generated into
its state/ (tests/demo_app.py).

``run`` runs a playbook of playbooks/ with ansible-playbook, the way `make demo` does (the
collection is this checkout), in a work directory that is kept: its ansible.cfg, the Ansible log
(``ansible.log``), Ansible's temporary files and the per-task results stay there for inspection.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import demo_app
from tests.e2e import playbook
from tests.lab.client import Lab
from tests.lab.config import DEFAULT_CONFIG

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "inventories" / "demo"
VAULT_ID = "e2e"
DEMO_ZONE = "launch-demo.test"

_ANSIBLE_CFG = """[defaults]
stdout_callback = ansible.builtin.default
callback_result_format = yaml
callbacks_enabled = launchready_results
retry_files_enabled = false
host_key_checking = false
nocows = true
log_path = {log}
inventory_ignore_extensions = ~, .orig, .bak, .cfg, .retry, .pyc, .pyo, .md, .txt, .json
inventory_ignore_patterns = ^state$

[diff]
context = 3
"""


def _demo_token() -> dict[str, Any]:
    return json.loads(Path(DEFAULT_CONFIG).read_text(encoding="utf-8"))["tokens"][0]


def demo_token_permissions() -> list[str]:
    """The permissions of the demo's lab token (tests/lab/config.json)."""
    return list(_demo_token()["permissions"])


def demo_token_zones() -> list[str]:
    """The zones the demo's lab token reaches."""
    return list(_demo_token()["zones"])


@dataclass
class DemoInventory:
    root: Path
    lab: Lab
    token: str
    app_env: dict[str, str]

    @property
    def password_file(self) -> Path:
        return self.root / "vault-password.txt"

    @property
    def vault_file(self) -> Path:
        return self.root / "group_vars" / "all" / "vault.yml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "srv" / "launch-demo" / "shared" / ".env"

    @classmethod
    def create(cls, root: Path, lab: Lab, app_env: dict[str, str], token: str | None = None, accept_planted: bool = True) -> DemoInventory:
        (root / "group_vars" / "all").mkdir(parents=True)
        (root / "hosts.yml").write_text((DEMO / "hosts.yml").read_text(encoding="utf-8"), encoding="utf-8")
        main = (DEMO / "group_vars" / "all" / "main.yml").read_text(encoding="utf-8")
        main, count = re.subn(r"(?m)^launchready_lab:.*$", lambda _m: "launchready_lab: " + json.dumps(lab.endpoints), main)
        if count != 1:
            raise RuntimeError("the demo's main.yml no longer sets launchready_lab on one line")
        # Fixed ports of the demo (an app server's, for instance) would collide with a demo or another test running at the same time.
        main = re.sub(r"(?m)^(\w+_port):[ \t]*\d+[ \t]*$", lambda m: "%s: %d" % (m.group(1), free_port()), main)
        (root / "group_vars" / "all" / "main.yml").write_text(main, encoding="utf-8")
        inventory = cls(root, lab, token or lab.add_token(demo_token_permissions(), zones=demo_token_zones()), dict(app_env))
        inventory.password_file.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
        inventory.password_file.chmod(0o600)
        inventory.write_vault()
        demo_app.create(inventory.state_dir / "demo-app", accept=accept_planted)
        return inventory

    def write_vault(self, **app_env: str) -> None:
        """(Re)write the encrypted vault: the token and the app's environment secrets (updated with ``app_env``)."""
        self.app_env.update(app_env)
        plain = self.vault_file.with_name(".vault-plain.yml")
        plain.write_text(json.dumps({"vault_cloudflare_api_token": self.token, "vault_app_env_production": self.app_env}), encoding="utf-8")
        try:
            subprocess.run([_beside("ansible-vault"), "encrypt", "--vault-id", "%s@%s" % (VAULT_ID, self.password_file), "--encrypt-vault-id", VAULT_ID,
                            "--output", str(self.vault_file), str(plain)], check=True, capture_output=True)
        finally:
            plain.unlink()
        self.vault_file.chmod(0o600)

    def run(self, playbook_name: str, workdir: Path, verbosity: int = 0, diff: bool = False, check: bool = False,
            extra_args: tuple[str, ...] = (), timeout: float = 900) -> playbook.Result:
        """Run playbooks/<playbook_name> on this inventory; the work directory is kept."""
        workdir.mkdir(parents=True, exist_ok=True)
        collection = workdir / "collections" / "ansible_collections" / "launchready" / "core"
        if not collection.exists():
            collection.parent.mkdir(parents=True)
            collection.symlink_to(REPO_ROOT, target_is_directory=True)
            (workdir / "callbacks").mkdir()
            (workdir / "callbacks" / "launchready_results.py").write_text(playbook._CALLBACK, encoding="utf-8")
            (workdir / "ansible.cfg").write_text(_ANSIBLE_CFG.format(log=workdir / "ansible.log"), encoding="utf-8")
        results = workdir / ("results-%s.json" % secrets.token_hex(4))
        command = [playbook._ansible_playbook(), str(REPO_ROOT / "playbooks" / playbook_name), "-i", str(self.root),
                   "--vault-id", "%s@%s" % (VAULT_ID, self.password_file), *extra_args]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if verbosity:
            command.append("-" + "v" * verbosity)
        environment = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_") and key != "CLOUDFLARE_API_TOKEN"}
        environment.update(
            ANSIBLE_CONFIG=str(workdir / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(workdir / "collections"),
            ANSIBLE_CALLBACK_PLUGINS=str(workdir / "callbacks"),
            ANSIBLE_HOME=str(workdir / "ansible-home"),
            ANSIBLE_LOCAL_TEMP=str(workdir / "tmp"),
            ANSIBLE_REMOTE_TMP=str(workdir / "tmp"),
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_NOCOLOR="1",
            **{playbook.RESULTS_ENV: str(results)},
        )
        done = subprocess.run(command, cwd=workdir, env=environment, capture_output=True, text=True, timeout=timeout, check=False)
        result = playbook.Result(done.returncode, done.stdout, done.stderr)
        if results.is_file():
            collected: dict[str, Any] = json.loads(results.read_text(encoding="utf-8"))
            result.results = collected["results"]
            totals: dict[str, int] = {}
            for summary in collected["hosts"].values():
                for key, count in summary.items():
                    totals[key] = totals.get(key, 0) + count
            totals["failed"] = totals.pop("failures", 0)
            result.recap = totals
        return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _beside(tool: str) -> str:
    path = Path(sys.executable).parent / tool
    return str(path) if path.is_file() else tool
