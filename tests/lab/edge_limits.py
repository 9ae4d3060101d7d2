# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rate limiting rules (the ``http_ratelimit`` phase) at the edge.

Each rule counts the requests its expression matches, separately for each combination of its
``characteristics`` (``ip.src`` is the client address, ``cf.colo.id`` the lab's one data centre).
Once more than ``requests_per_period`` fall within the last ``period`` seconds, the rule's action
applies for ``mitigation_timeout`` seconds whatever the rate (Cloudflare's default behaviour;
with a timeout of 0, only while the rate stays above the limit). Requests answered by the
mitigation are not counted. The counting is exact (a sliding log), where Cloudflare approximates.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

COLO = "LAB"


def counter_key(zone_id: str, rule: dict[str, Any], fields: dict[str, Any]) -> tuple[str, ...]:
    values = []
    for characteristic in rule["ratelimit"].get("characteristics", []):
        values.append(COLO if characteristic == "cf.colo.id" else str(fields.get(characteristic, "")))
    return (zone_id, rule["id"], *values)


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, ...], deque[float]] = {}
        self._until: dict[tuple[str, ...], float] = {}

    def hit(self, key: tuple[str, ...], ratelimit: dict[str, Any]) -> float | None:
        """Count one request; None if it may pass, else the seconds the mitigation still lasts."""
        now = time.monotonic()
        period = float(ratelimit.get("period", 10))
        limit = int(ratelimit.get("requests_per_period", 1))
        timeout = float(ratelimit.get("mitigation_timeout", 10))
        with self._lock:
            until = self._until.get(key, 0.0)
            if now < until:
                return until - now
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - period:
                seen.popleft()
            seen.append(now)
            if len(seen) <= limit:
                return None
            if timeout > 0:
                self._until[key] = now + timeout
                seen.clear()
                return timeout
            return max(0.0, seen[0] + period - now)

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
            self._until.clear()
