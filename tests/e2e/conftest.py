# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end tests run against the lab (tests/lab): one lab per test session (per xdist worker)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.lab.client import Lab  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """The running lab, on a temporary state directory, with tests/lab/config.json's zones and tokens."""
    running = Lab.start(tmp_path_factory.mktemp("lab"))
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _lab_guard(lab: Lab):
    """After each test: fail it if the lab saw a request or answer that breaks Cloudflare's schema; clear faults."""
    yield
    lab.clear_faults()
    violations = lab.violations()
    if violations:
        lab.clear_violations()
        pytest.fail("the Cloudflare emulator recorded schema violations:\n" + json.dumps(violations, indent=2), pytrace=False)
