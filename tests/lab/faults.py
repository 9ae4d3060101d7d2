# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Injected faults: rate limiting (429 + Retry-After), server errors and slow answers.

A fault rule (``POST /__lab/faults``)::

    {"route": "POST /zones/{zone_id}/dns_records/batch" or "*",
     "status": 429 | 500 | 502 | 503,   # optional when "delay" is given: then only slow
     "retry_after": 2,                  # seconds, sent as Retry-After with a 429
     "count": 3 | "ratio": 0.5,         # the next 3 matching calls, or that share of them (default: all)
     "delay": 1.5,                      # seconds to wait before answering
     "seed": 7}                         # makes a ratio repeatable

Rules are tried in the order they were added; the first that fires decides the answer.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

FAULT_STATUSES = (429, 500, 502, 503)


@dataclass
class Fault:
    route: str
    status: int | None = None
    retry_after: int = 1
    count: int | None = None
    ratio: float | None = None
    delay: float = 0.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"route": self.route, "status": self.status, "retry_after": self.retry_after, "count": self.count,
                "ratio": self.ratio, "delay": self.delay, "seed": self.seed}


def parse(spec: dict[str, Any]) -> Fault:
    """A Fault from its JSON description; ValueError says what is wrong with it."""
    if not isinstance(spec, dict):
        raise ValueError("a fault is a JSON object")
    unknown = set(spec) - {"route", "status", "retry_after", "count", "ratio", "delay", "seed"}
    if unknown:
        raise ValueError("unknown fault keys: %s" % ", ".join(sorted(unknown)))
    route = spec.get("route", "*")
    status = spec.get("status")
    delay = float(spec.get("delay") or 0)
    if status is None and delay <= 0:
        raise ValueError("a fault needs a status, a delay or both")
    if status is not None and status not in FAULT_STATUSES:
        raise ValueError("status must be one of %s" % ", ".join(map(str, FAULT_STATUSES)))
    if "count" in spec and "ratio" in spec:
        raise ValueError("give count or ratio, not both")
    count = spec.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer")
    ratio = spec.get("ratio")
    if ratio is not None and not 0.0 <= float(ratio) <= 1.0:
        raise ValueError("ratio must be between 0.0 and 1.0")
    seed = spec.get("seed")
    return Fault(route=route, status=status, retry_after=int(spec.get("retry_after", 1)), count=count,
                 ratio=None if ratio is None else float(ratio), delay=delay, seed=seed, rng=random.Random(seed))


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.as_dict() for fault in self._faults]

    def fire(self, route: str) -> Fault | None:
        """The fault that applies to this call of ``route`` (``METHOD /template``), if any; uses up one of its count."""
        with self._lock:
            for fault in self._faults:
                if fault.route not in ("*", route):
                    continue
                if fault.ratio is not None and fault.rng.random() >= fault.ratio:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                return fault
        return None
