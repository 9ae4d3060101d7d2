# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's configuration file: which zones and tokens exist when the lab starts or is reset.

Shape (JSON)::

    {"zones": [{"name": "launch-demo.test", "plan": "free",
                "name_servers": ["ada.ns.lab.test", "bob.ns.lab.test"],
                "records": [<Cloudflare-shaped records, optional>]}],
     "tokens": [{"value": "...", "status": "active",
                 "permissions": ["zone:read", "dns_records:edit"], "zones": ["*"]}],
     "edge": {"ipv4": "127.0.0.1", "ipv6": "::1"},
     "dns_delay_ms": 0}
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

LAB_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAB_DIR.parents[1]
DEFAULT_CONFIG = LAB_DIR / "config.json"
DEFAULT_STATE_DIR = LAB_DIR / "state"
OPENAPI_FILE = LAB_DIR / "openapi" / "openapi-subset.json"
# Files in a state directory.
ENDPOINTS_FILE = "endpoints.json"
STATE_FILE = "state.json"
LOG_FILE = "lab.log"

PLANS = ("free", "pro", "business", "enterprise")
DEFAULT_NAME_SERVERS = ["ada.ns.lab.test", "bob.ns.lab.test"]
DEFAULT_EDGE = {"ipv4": "127.0.0.1", "ipv6": "::1"}
# zones_zone.name in the OpenAPI document.
ZONE_NAME_PATTERN = re.compile(r"^([a-z0-9][-a-z0-9]*\.)+[-a-z0-9]{2,20}$")
# What the lab accepts as an API token (Cloudflare's own are 40 such characters); anything else is a malformed header.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


class ConfigError(ValueError):
    pass


def load(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check a lab configuration, filling in the defaults."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError("cannot read lab config %s: %s" % (path, exc)) from exc
    return normalise(raw)


def normalise(raw: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError("lab config must be a JSON object")
    zones = []
    for zone in raw.get("zones", []):
        if not isinstance(zone, dict) or not zone.get("name"):
            raise ConfigError("every zone needs a name: %r" % (zone,))
        if not ZONE_NAME_PATTERN.match(str(zone["name"]).lower().rstrip(".")):
            raise ConfigError("not a zone name: %r" % zone["name"])
        plan = zone.get("plan", "free")
        if plan not in PLANS:
            raise ConfigError("zone %s: plan must be one of %s" % (zone["name"], ", ".join(PLANS)))
        zones.append({
            "name": str(zone["name"]).lower().rstrip("."),
            "plan": plan,
            "name_servers": list(zone.get("name_servers") or DEFAULT_NAME_SERVERS),
            "records": list(zone.get("records", [])),
        })
    tokens = []
    for token in raw.get("tokens", []):
        if not isinstance(token, dict) or not TOKEN_PATTERN.match(str(token.get("value", ""))):
            raise ConfigError("every token needs a value of 16 to 128 letters, digits, '-' or '_'")
        tokens.append({
            "value": str(token["value"]),
            "status": token.get("status", "active"),
            "permissions": list(token.get("permissions", [])),
            "zones": list(token.get("zones", ["*"])),
        })
    edge = dict(DEFAULT_EDGE)
    edge.update(raw.get("edge") or {})
    return {"zones": zones, "tokens": tokens, "edge": edge, "dns_delay_ms": int(raw.get("dns_delay_ms", 0))}
