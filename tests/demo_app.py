# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo client's app repository, with launch problems planted in it, generated at run time.

Nothing here is committed as a secret: every key is a fake made now (secret_corpus.Fakes, random
seed), with the real prefix and length of its provider so that the scanner recognises it. The
repository is a git work tree with two commits, the second removing a live key from frontend code,
which then survives only in history.

    .venv/bin/python -m tests.demo_app inventories/demo/state/demo-app --accept

``--accept`` (``create(..., accept=True)``) writes ``.launchready-baseline.json``, accepting every
planted problem the way a user accepts reviewed findings, so that the demo's launch passes and
shows them as accepted. Without it the planted must-do-now findings fail the launch (the e2e tests
show that). Used by ``make demo`` (tests/demo.py) and the e2e tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.unit.plugins.fixtures.secret_corpus import Fakes  # noqa: E402  pylint: disable=wrong-import-position

STAGING_HOSTS = ["staging.launch-demo.test"]
BASELINE = ".launchready-baseline.json"
# The source audit's checks, as the secrets_env role runs them.
CHECKS = ("secret", "dev_url", "test_credential")


@dataclass(frozen=True)
class Planted:
    """A problem the scan must find: the rule, the file, and whether only the git history still holds it."""

    rule: str
    file: str
    severity: str
    history_only: bool = False


@dataclass
class DemoApp:
    root: Path
    planted: list[Planted] = field(default_factory=list)
    baseline: Path | None = None


def _git(root: Path, *args: str) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="Demo Founder", GIT_AUTHOR_EMAIL="founder@launch-demo.test", GIT_COMMITTER_NAME="Demo Founder",
               GIT_COMMITTER_EMAIL="founder@launch-demo.test", GIT_AUTHOR_DATE="2025-05-01T10:00:00Z", GIT_COMMITTER_DATE="2025-05-01T10:00:00Z")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(key, None)
    subprocess.run(["git", "-C", str(root), "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args], env=env, check=True,
                   capture_output=True)


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def create(root: str | Path, accept: bool = False, seed: int | None = None) -> DemoApp:
    """(Re)create the demo app repository at ``root``; with ``accept``, a baseline accepting the planted problems."""
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    fakes = Fakes(random.SystemRandom().getrandbits(64) if seed is None else seed)
    live_key = fakes.stripe_live()
    app = DemoApp(root)

    first = {
        "README.md": "# Members admin\n\nCopy `.env.example` to `.env` and fill in YOUR_API_KEY values.\n",
        ".gitignore": ".env\nnode_modules/\nlog/\n",
        ".env.example": "DATABASE_URL=postgres://user:password@localhost:5432/members\nSTRIPE_SECRET_KEY=sk_live_YOUR_KEY_HERE\n"
                        "SESSION_SECRET=change-me\n",
        "package.json": json.dumps({"name": "members-admin", "version": "1.0.0", "private": True}, indent=2) + "\n",
        "src/server.py": "import os\n\nDATABASE_URL = os.environ['DATABASE_URL']\nSESSION_SECRET = os.environ['SESSION_SECRET']\n",
        # Planted: a live secret key in frontend code (removed in the next commit, so only history keeps it).
        "src/billing/checkout.js": "// TODO move to the server before launch\nconst stripe = Stripe('%s');\nexport default stripe;\n" % live_key,
        # Planted: the preview deployment's API, left in the client.
        "src/api/client.js": "export const API_BASE = 'https://%s/api';\n" % STAGING_HOSTS[0],
        # Planted: production configuration on test credentials, a preview URL and localhost.
        ".env.production": "NODE_ENV=production\nSTRIPE_SECRET_KEY=%s\nPOSTMARK_SERVER_TOKEN=POSTMARK_API_TEST\n"
                           "APP_URL=https://members-admin-git-main-founder.vercel.app\nWEBHOOK_URL=http://localhost:8000/webhooks/stripe\n"
                           % fakes.stripe_test(),
        # Planted: a cloud key pasted into the deployment notes.
        "docs/deploy.md": "# Deploying\n\nThe backup bucket is reached with key id %s.\n" % fakes.aws_access_key_id(),
    }
    _write(root, first)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Members admin: first version")
    _write(root, {"src/billing/checkout.js": "const stripe = Stripe(window.STRIPE_PUBLISHABLE_KEY);\nexport default stripe;\n"})
    _git(root, "commit", "-q", "-am", "Checkout: publishable key from the page")
    app.planted = [
        Planted("stripe-live-secret-key", "src/billing/checkout.js", "must_do_now", history_only=True),
        Planted("staging-host", "src/api/client.js", "must_do_now"),
        Planted("stripe-test-key-in-production", ".env.production", "must_do_now"),
        Planted("postmark-test-token-in-production", ".env.production", "must_do_now"),
        Planted("preview-url", ".env.production", "must_do_now"),
        Planted("dev-url-localhost", ".env.production", "must_do_now"),
        Planted("aws-access-key-id", "docs/deploy.md", "must_do_now"),
    ]
    if accept:
        app.baseline = accept_all(root)
    return app


def _engine():
    """The collection's scan engine, importable from this checkout whether or not it is installed."""
    try:
        from ansible_collections.launchready.core.plugins.module_utils import _scan, _secret_rules  # pylint: disable=import-outside-toplevel
    except ImportError:
        link_root = Path(tempfile.mkdtemp(prefix="launchready-import-"))
        link = link_root / "ansible_collections" / "launchready" / "core"
        link.parent.mkdir(parents=True)
        link.symlink_to(ROOT, target_is_directory=True)
        sys.path.insert(0, str(link_root))
        from ansible_collections.launchready.core.plugins.module_utils import _scan, _secret_rules  # pylint: disable=import-outside-toplevel
    return _scan, _secret_rules


def accept_all(root: str | Path, staging_hosts: list[str] | None = None) -> Path:
    """Write the baseline accepting every current match, with the checks the secrets_env role runs (history included)."""
    _scan, rules = _engine()
    root_text = str(root)
    options = rules.ScanOptions(rules=rules.select_rules(list(CHECKS), (), rules.DEFAULT_PREVIEW_DOMAINS, staging_hosts or STAGING_HOSTS))
    paths, _walk = _scan.list_files(root_text, _scan.DEFAULT_EXCLUDE_DIRS, rules.PathMatcher([]))
    matches, _stats = _scan.scan_files(root_text, paths, options, 1048576, 1)
    history, _history_stats = _scan.scan_history(root_text, options, 1048576, 1, _scan.DEFAULT_EXCLUDE_DIRS, rules.PathMatcher([]))
    seen = {(m.rule, m.fingerprint, m.file) for m in matches}
    matches.extend(m for m in history if (m.rule, m.fingerprint, m.file) not in seen)
    baseline = Path(root) / BASELINE
    document = json.loads(_scan.updated_baseline(matches, _scan.load_baseline(None)))
    for entry in document["accepted"]:
        entry["note"] = "planted by tests/demo_app.py for the demo (a fake made at run time)"
    baseline.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("path", help="where to (re)create the repository")
    parser.add_argument("--accept", action="store_true", help="accept the planted problems in .launchready-baseline.json")
    args = parser.parse_args()
    app = create(args.path, accept=args.accept)
    print("demo app repository: %s (%d planted problems%s)" % (app.root, len(app.planted), ", accepted in the baseline" if app.baseline else ""))


if __name__ == "__main__":
    main()
