# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No secret leaks: canaries in the vault never show up anywhere but in the environment file.

A temporary copy of the demo inventory (tests/e2e/demo_inventory.py) on a lab of its own gets a
vault made now: the Cloudflare API token and the app's environment secrets are canaries, random
values with nothing else like them. Then, as a user would:

1. ``launch.yml -vvv --diff`` (every stage the demo configures);
2. ``verify.yml -vvv --diff``;
3. a failing ``launch.yml -vvv --diff``: a Stripe test key in production, which env_file refuses.

Every canary is then looked for in the three runs' stdout and stderr, in every file under the
inventory (its state/: findings.json, the scan's JSON and SARIF reports, the demo app, the deploy
root) except the environment file itself, in the runs' work directory (the Ansible log, Ansible's
temporary files, the per-task results), and in the lab's logs. The count must be zero. The
environment file must hold every canary, or the test proves nothing.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.e2e.demo_inventory import DemoInventory
from tests.lab.client import Lab

dotenv = pytest.importorskip("dotenv")


@pytest.fixture(scope="module")
def own_lab(tmp_path_factory):
    """A lab of its own: the full launch changes the demo zone, which other tests' lab must not see."""
    running = Lab.start(tmp_path_factory.mktemp("no-leak-lab"))
    yield running
    violations = running.violations()
    running.stop()
    assert not violations, json.dumps(violations, indent=2)


def canary(label: str) -> str:
    return "cnry%s%s" % (label, secrets.token_hex(12))


def occurrences(data: bytes, needles: list[str]) -> dict[str, int]:
    return {needle: data.count(needle.encode("utf-8")) for needle in needles if needle.encode("utf-8") in data}


def failures(result) -> str:
    """The tasks that failed, and why: what an assertion on a whole launch should say."""
    return "\n".join("%s: %s" % (r["task"], str(r["result"].get("msg", ""))[:1500]) for r in result.results if r["status"] == "failed")


@pytest.fixture
def short_tmp():
    """A short temporary folder: the deploy stage puts a supervisord socket under the deploy root, and a socket path has at most 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="lr-noleak-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_no_canary_leaks_from_launch_verify_or_a_failing_run(short_tmp, own_lab):
    tmp_path = short_tmp
    pem = [canary("pemline"), canary("pemline")]
    app_env = {
        "DATABASE_URL": "postgres://members:%s@127.0.0.1:5432/members" % canary("dbpassword"),
        "SESSION_SECRET": canary("session"),
        "STRIPE_SECRET_KEY": canary("stripe"),
        "POSTMARK_SERVER_TOKEN": canary("postmark"),
        "JWT_PRIVATE_KEY": "-----BEGIN TEST KEY-----\n%s\n%s\n-----END TEST KEY-----\n" % tuple(pem),
    }
    inventory = DemoInventory.create(tmp_path / "inventory", own_lab, app_env)
    singles = [value.split("@")[0].rsplit(":", 1)[-1] if key == "DATABASE_URL" else value for key, value in app_env.items() if key != "JWT_PRIVATE_KEY"]
    needles = [inventory.token, *pem, *singles]
    assert all(needle.startswith("cnry") for needle in needles[1:]) and len(needles) == 7
    workdir = tmp_path / "run"

    launch = inventory.run("launch.yml", workdir, verbosity=3, diff=True)
    assert launch.rc == 0, failures(launch) or launch.output[-5000:]
    assert "ESTABLISH LOCAL CONNECTION" in launch.stdout  # -vvv was in effect
    written = inventory.env_file.read_bytes()
    expected = dict(app_env, NODE_ENV="production", APP_URL="https://app.launch-demo.test", PORT="8000")
    assert dotenv.dotenv_values(inventory.env_file, interpolate=False) == expected
    assert len(occurrences(written, needles[1:])) == len(needles) - 1, "the canaries must be in the environment file, or this test proves nothing"

    # The launch's own rate-limit probe leaves the sign-in page refused for a while; a user's verify would come later.
    own_lab.reset_rate_limits()
    # Stage 3's verification fails its own sign-in check right after its rate-limit probe (429): it only reports here, so
    # that every stage's verification runs and prints.
    verify = inventory.run("verify.yml", workdir, verbosity=3, diff=True, extra_args=("-e", "edge_security_fail_on=never"))
    assert verify.rc == 0, failures(verify) or verify.output[-5000:]

    bad_key = "sk_test_" + canary("testkey")
    needles.append(bad_key)
    inventory.write_vault(STRIPE_SECRET_KEY=bad_key)
    own_lab.reset_rate_limits()
    failing = inventory.run("launch.yml", workdir, verbosity=3, diff=True)
    assert failing.rc != 0
    assert "STRIPE_SECRET_KEY" in failing.stdout and "(sk|pk|rk)_test_" in failing.stdout, failing.stdout[-3000:]
    assert inventory.env_file.read_bytes() == written, "a refused value must not be written"

    leaks: list[str] = []
    for name, run in (("launch", launch), ("verify", verify), ("failing launch", failing)):
        for stream in ("stdout", "stderr"):
            for needle, count in occurrences(getattr(run, stream).encode("utf-8"), needles).items():
                leaks.append("%s %s: %d x %s..." % (name, stream, count, needle[:10]))
    looked_at: list[Path] = []
    lab_dir = Path(own_lab.state_dir)
    for top in (inventory.root, workdir, lab_dir):
        for path in sorted(top.rglob("*")):
            if not path.is_file() or path.is_symlink() or path == inventory.env_file:
                continue
            # The lab's state is Cloudflare's side of the line: it holds the token it issued.
            if path == own_lab.state_file:
                continue
            looked_at.append(path)
            for needle, count in occurrences(path.read_bytes(), needles).items():
                leaks.append("%s: %d x %s..." % (path, count, needle[:10]))

    names = {path.name for path in looked_at}
    assert {"findings.json", "secret-scan.json", "secret-scan.sarif", "ansible.log", "vault.yml"} <= names, sorted(names)
    assert len(looked_at) > 20, looked_at
    assert leaks == [], "canaries leaked %d time(s):\n%s" % (len(leaks), "\n".join(leaks))
