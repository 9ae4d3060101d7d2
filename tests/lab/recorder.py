# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the API saw: call counters by route, the request log, and schema violations (kept in memory only)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

UNROUTED = "(no route)"


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_route: Counter[str] = Counter()
        self._total = 0
        self._writes = 0
        self._requests: list[dict[str, Any]] = []
        self._violations: list[dict[str, Any]] = []

    def record_call(self, method: str, path: str, query: dict[str, Any], body: Any, status: int, template: str | None) -> None:
        """Count one API call under ``METHOD /openapi/template`` and log it (never its headers: they hold the token)."""
        route = "%s %s" % (method, template or UNROUTED)
        with self._lock:
            self._total += 1
            if method != "GET":
                self._writes += 1
            self._by_route[route] += 1
            self._requests.append({"method": method, "path": path, "query": query, "body": body, "status": status, "route": route})

    def calls(self) -> dict[str, Any]:
        with self._lock:
            return {"total": self._total, "writes": self._writes, "by_route": dict(self._by_route)}

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def reset_calls(self) -> None:
        with self._lock:
            self._by_route.clear()
            self._total = self._writes = 0
            self._requests.clear()

    def add_violation(self, kind: str, method: str, path: str, route: str | None, problems: list[str], status: int | None = None) -> None:
        """``kind`` is ``request``, ``response`` or ``emulator-error`` (an exception inside the emulator)."""
        with self._lock:
            self._violations.append({"kind": kind, "method": method, "path": path, "route": route, "status": status, "problems": problems})

    def violations(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._violations)

    def clear_violations(self) -> None:
        with self._lock:
            self._violations.clear()
