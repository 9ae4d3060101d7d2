# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a route handler gets and gives back, and the helpers every list route shares.

To add an API route: write a handler ``def handler(ctx: Context) -> Reply`` in the module of its
concern (api_zones.py, api_dns.py, ...), list it in that module's ``ROUTES`` with the OpenAPI path
template and the token permission it needs, and add the module to ``api.ROUTE_MODULES``. The
pipeline in api.py has already authenticated the token, found the zone of a ``{zone_id}``
route, checked the permission and validated the request against the OpenAPI document.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.lab.errors import ApiError
from tests.lab.state import LabState


@dataclass
class Context:
    state: LabState
    token: dict[str, Any]
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    zone: dict[str, Any] = field(default_factory=dict)  # the zone of a {zone_id} route
    # True when the request broke the schema: the handler runs only to find Cloudflare's own error
    # for it, and must not keep any change (pass ``commit=not ctx.dry_run`` to ``state.edit_records``).
    dry_run: bool = False

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter."""
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Reply:
    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """``permission`` is the one a token needs, or a function of the path parameters giving it
    (the rulesets routes: each phase has its own permission)."""

    method: str
    template: str
    handler: Callable[[Context], Reply]
    permission: str | Callable[[dict[str, str]], str]

    def permission_for(self, params: dict[str, str]) -> str:
        return self.permission(params) if callable(self.permission) else self.permission


def paginate(ctx: Context, items: list[Any], default_per_page: int) -> tuple[list[Any], dict[str, Any]]:
    """One page of ``items`` and Cloudflare's ``result_info`` for it (page and per_page already schema-checked)."""
    page = _int_arg(ctx, "page", 1)
    per_page = _int_arg(ctx, "per_page", default_per_page)
    total = len(items)
    chunk = items[(page - 1) * per_page:page * per_page]
    # Cloudflare answers total_pages 1, not 0, for an empty list.
    info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": total, "total_pages": max(1, math.ceil(total / per_page))}
    return chunk, info


def _int_arg(ctx: Context, name: str, default: int) -> int:
    raw = ctx.arg(name)
    if raw is None:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise ApiError(400, 9207, "Request body is invalid.") from None
    return max(1, value)
