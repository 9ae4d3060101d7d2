# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The community's members: a fixed, made-up list (the same in every process, so every worker agrees)."""

from __future__ import annotations

import datetime
import random
from dataclasses import asdict, dataclass
from typing import Any

FIRST = ("Ada", "Bruno", "Chloe", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ines", "Jonas", "Kofi", "Lena",
         "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tomoko", "Uma", "Victor", "Wen", "Yusuf")
LAST = ("Almeida", "Berger", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jensen",
        "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov")
PLANS = ("community", "supporter", "patron")
STATUSES = ("active", "active", "active", "active", "past_due", "cancelled")
COUNT = 240


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    email: str
    plan: str
    status: str
    joined: str
    last_payment: str | None
    support_tickets: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _generate() -> tuple[Member, ...]:
    rng = random.Random(20240611)
    start = datetime.date(2023, 1, 1)
    result = []
    for number in range(1, COUNT + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        joined = start + datetime.timedelta(days=rng.randrange(0, 540))
        status = rng.choice(STATUSES)
        paid = None if status == "cancelled" else (joined + datetime.timedelta(days=rng.randrange(0, 60))).isoformat()
        result.append(Member(number, "%s %s" % (first, last), "%s.%s%d@members.launch-demo.test" % (first.lower(), last.lower(), number),
                             rng.choice(PLANS), status, joined.isoformat(), paid, rng.randrange(0, 5)))
    return tuple(result)


MEMBERS = _generate()
BY_ID = {member.id: member for member in MEMBERS}


def search(query: str, limit: int = 50) -> list[Member]:
    """Members whose name or e-mail contains ``query`` (case-insensitive), at most ``limit``."""
    needle = query.strip().lower()
    found = [member for member in MEMBERS if not needle or needle in member.name.lower() or needle in member.email]
    return found[:limit]
