# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health check a release passes before deploy_release switches to it: its health URL, asked until it answers healthy."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

INTERVAL = 0.2
REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class Health:
    healthy: bool
    text: str  # one line for the audit log and the task's message


def _ask(url: str) -> tuple[int | None, bytes, str]:
    """(status, body, error): status None when nothing answered."""
    # A health URL is the operator's own (a side port on the host); no proxy stands in between.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=REQUEST_TIMEOUT) as answer:
            return answer.status, answer.read(65536), ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65536), ""
    except (urllib.error.URLError, OSError) as exc:
        return None, b"", str(getattr(exc, "reason", exc))


def _mismatch(body: bytes, expected: dict) -> str:
    """Why the JSON answer does not hold ``expected`` (top-level keys and values); empty when it does."""
    if not expected:
        return ""
    try:
        document = json.loads(body)
    except ValueError:
        return "answered %r, not JSON" % body[:200].decode("utf-8", "replace")
    held = {key: document.get(key) for key in expected} if isinstance(document, dict) else None
    if held == expected:
        return ""
    return "answered %s, expected %s" % (json.dumps(held if held is not None else document)[:200], json.dumps(expected))


def wait_healthy(url: str, statuses: list[int], expected_json: dict, timeout: float) -> Health:
    """Ask ``url`` every INTERVAL seconds until it answers a status in ``statuses`` with ``expected_json``, for up to ``timeout`` seconds."""
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        status, body, error = _ask(url)
        if status is None:
            why = "got no answer (%s)" % error
        elif status not in statuses:
            why = "answered %d" % status
        else:
            why = _mismatch(body, expected_json)
            if not why:
                held = " with %s" % json.dumps(expected_json, sort_keys=True) if expected_json else ""
                return Health(True, "GET %s %d%s after %d attempt(s)" % (url, status, held, attempts))
        if time.monotonic() - started + INTERVAL > timeout:
            return Health(False, "GET %s %s for %g s" % (url, why, timeout))
        time.sleep(INTERVAL)
