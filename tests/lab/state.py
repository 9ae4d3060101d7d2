# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything the lab remembers: zones with their records, settings and rulesets, API tokens,
Origin CA certificates, the DNS delay.

One ``LabState`` is shared by the HTTP and DNS servers. Every read and write holds its lock, and
every change is written to the state file (atomically: a temporary file, fsync, rename) before
the change is answered, so a restarted lab comes back with the same zones and records.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab import records, zone_settings
from tests.lab.config import PLANS, TOKEN_PATTERN, ZONE_NAME_PATTERN

STATE_VERSION = 1


def zone_id_for(name: str) -> str:
    """Zone ids are derived from the name, so a reset or a re-created zone keeps the id tests already know."""
    return hashlib.sha256(("launchready-lab-zone:" + name).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class ZoneView:
    """A zone as the DNS server needs it, copied out under the lock."""

    name: str
    name_servers: tuple[str, ...]
    serial: int
    records: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class EdgeRoute:
    """What the edge needs to answer for one proxied host name, copied out under the lock."""

    host: str
    zone_id: str
    zone_name: str
    plan: str
    settings: dict[str, Any]
    rulesets: dict[str, dict[str, Any]]
    origin: str  # the address (or outside name) the proxied record leads to


class LabState:
    def __init__(self, config: dict[str, Any], state_file: Path | None = None):
        self.config = config
        self.state_file = state_file
        self.lock = threading.RLock()
        self.zones: dict[str, dict[str, Any]] = {}
        self.tokens: list[dict[str, Any]] = []
        self.dns_delay_ms = 0
        self.certificates: list[dict[str, Any]] = []
        self.listeners: list[Any] = []
        self.pki: Any = None  # the lab's certificate authorities (pki.LabPki), set by server.py

    def load_or_reset(self) -> None:
        with self.lock:
            if self.state_file and self.state_file.exists():
                saved = json.loads(self.state_file.read_text(encoding="utf-8"))
                self.zones = {zone["name"]: zone for zone in saved["zones"]}
                for zone in self.zones.values():
                    zone.setdefault("settings", {})
                    zone.setdefault("rulesets", {})
                self.tokens = saved["tokens"]
                self.certificates = saved.get("certificates", [])
                self.dns_delay_ms = int(saved.get("dns_delay_ms", 0))
                self._add_new_config_zones()
                self._changed(zones=True)
            else:
                self.reset()

    def _add_new_config_zones(self) -> None:
        """Zones of the configuration a saved state lacks (added to config.json since) join it with their records; the rest stays as saved."""
        for zone in self.config["zones"]:
            if zone["name"] not in self.zones:
                self._new_zone(zone["name"], zone["plan"], zone["name_servers"])
                self._replace_records(zone["name"], zone["records"])

    def reset(self) -> None:
        """Back to the configuration's zones (and their records), tokens and DNS delay."""
        with self.lock:
            self.zones = {}
            for zone in self.config["zones"]:
                self._new_zone(zone["name"], zone["plan"], zone["name_servers"])
                self._replace_records(zone["name"], zone["records"])
            self.tokens = [self._new_token(**token) for token in self.config["tokens"]]
            self.dns_delay_ms = self.config["dns_delay_ms"]
            self.certificates = []
            self._changed(zones=True)

    # Zones

    def zone_by_id(self, zone_id: str) -> dict[str, Any] | None:
        with self.lock:
            return next((zone for zone in self.zones.values() if zone["id"] == zone_id), None)

    def zone_ids(self) -> dict[str, str]:
        with self.lock:
            return {name: zone["id"] for name, zone in self.zones.items()}

    def add_zone(self, name: str, plan: str = "free", name_servers: list[str] | None = None) -> dict[str, Any]:
        name = name.lower().rstrip(".")
        if not ZONE_NAME_PATTERN.match(name):
            raise ValueError("not a zone name: %r" % name)
        if plan not in PLANS:
            raise ValueError("plan must be one of %s" % ", ".join(PLANS))
        with self.lock:
            if name in self.zones:
                raise ValueError("zone %s already exists" % name)
            zone = self._new_zone(name, plan, name_servers or ["ada.ns.lab.test", "bob.ns.lab.test"])
            self._changed(zones=True)
            return zone

    def delete_zone(self, name: str) -> None:
        with self.lock:
            if self.zones.pop(name.lower().rstrip("."), None) is None:
                raise KeyError(name)
            self._changed(zones=True)

    def _new_zone(self, name: str, plan: str, name_servers: list[str]) -> dict[str, Any]:
        stamp = records.now()
        zone = {
            "id": zone_id_for(name), "name": name, "plan": plan, "name_servers": list(name_servers),
            "created_on": stamp, "modified_on": stamp, "serial": int(time.time()), "records": {},
            "settings": {}, "rulesets": {},
        }
        self.zones[name] = zone
        return zone

    # Records

    @contextlib.contextmanager
    def edit_records(self, zone_id: str, commit: bool = True) -> Iterator[records.RecordSet]:
        """Work on a copy of a zone's records; it replaces the zone's records only if the block ends without an error."""
        with self.lock:
            zone = self.zone_by_id(zone_id)
            if zone is None:
                raise KeyError(zone_id)
            work = records.RecordSet(zone, copy.deepcopy(zone["records"]))
            yield work
            if commit:
                zone["records"] = work.records
                self._touch(zone)
                self._changed()

    def list_records(self, zone_id: str) -> list[dict[str, Any]]:
        with self.lock:
            zone = self.zone_by_id(zone_id)
            if zone is None:
                raise KeyError(zone_id)
            return copy.deepcopy(list(zone["records"].values()))

    def seed_records(self, zone_name: str, seeds: list[Any]) -> list[dict[str, Any]]:
        """Replace a zone's records with ``seeds`` (control API: no call counted, same validation as the API)."""
        with self.lock:
            result = self._replace_records(zone_name, seeds)
            self._changed()
            return result

    def _replace_records(self, zone_name: str, seeds: list[Any]) -> list[dict[str, Any]]:
        zone = self.zones[zone_name]
        work = records.RecordSet(zone, {})
        for seed in seeds:
            work.create(seed, seed=True)
        zone["records"] = work.records
        self._touch(zone)
        return copy.deepcopy(list(work.records.values()))

    def _touch(self, zone: dict[str, Any]) -> None:
        zone["serial"] += 1
        zone["modified_on"] = records.now()

    def dns_view(self, qname: str) -> ZoneView | None:
        """The zone a query name falls in (the longest matching zone name), or None."""
        qname = qname.lower().rstrip(".")
        with self.lock:
            best = None
            for name, zone in self.zones.items():
                if (qname == name or qname.endswith("." + name)) and (best is None or len(name) > len(best["name"])):
                    best = zone
            if best is None:
                return None
            return ZoneView(best["name"], tuple(best["name_servers"]), best["serial"], tuple(copy.deepcopy(list(best["records"].values()))))

    def proxied_route(self, host: str) -> EdgeRoute | None:
        """How the edge reaches ``host``: its zone, proxied record and origin (None: no proxied record of that name)."""
        host = host.lower().rstrip(".")
        with self.lock:
            found = self._proxied_record(host)
            if found is None:
                return None
            zone, record = found
            origin = self._origin_of(record)
            return EdgeRoute(host, zone["id"], zone["name"], zone["plan"], zone_settings.values(zone),
                             copy.deepcopy(zone["rulesets"]), origin)

    def _proxied_record(self, host: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        zone = self._zone_of(host)
        if zone is None:
            return None
        candidates = [host]
        if host != zone["name"]:
            candidates.append("*." + host.split(".", 1)[1])  # a wildcard record one label up (RFC 4592's common case)
        for name in candidates:
            matching = [record for record in zone["records"].values() if record["name"] == name and record["type"] in ("A", "AAAA", "CNAME")]
            if matching:
                proxied = [record for record in matching if record.get("proxied")]
                return (zone, proxied[0]) if proxied else None
        return None

    def _zone_of(self, host: str) -> dict[str, Any] | None:
        best = None
        for name, zone in self.zones.items():
            if (host == name or host.endswith("." + name)) and (best is None or len(name) > len(best["name"])):
                best = zone
        return best

    def _origin_of(self, record: dict[str, Any]) -> str:
        """The address a record leads to, following CNAMEs through the lab's zones (a name outside them stays a name)."""
        for _hop in range(8):
            if record["type"] != "CNAME":
                return record["content"]
            target = record["content"].lower().rstrip(".")
            zone = self._zone_of(target)
            following = [candidate for candidate in (zone["records"].values() if zone else [])
                         if candidate["name"] == target and candidate["type"] in ("A", "AAAA", "CNAME")]
            if not following:
                return target
            record = following[0]
        return record["content"]

    # Settings and rulesets

    def edit_settings(self, zone_id: str, changes: list[tuple[str, Any]], stamp: str) -> None:
        with self.lock:
            zone = self.zone_by_id(zone_id)
            if zone is None:
                raise KeyError(zone_id)
            stored = zone.setdefault("settings", {})
            current = zone_settings.values(zone)
            for setting_id, value in changes:
                if current[setting_id] != value:
                    stored[setting_id] = {"value": copy.deepcopy(value), "modified_on": stamp}
            self._changed()

    def entrypoint(self, zone_id: str, phase: str) -> dict[str, Any] | None:
        with self.lock:
            zone = self.zone_by_id(zone_id)
            if zone is None:
                raise KeyError(zone_id)
            return copy.deepcopy(zone.setdefault("rulesets", {}).get(phase))

    def store_entrypoint(self, zone_id: str, ruleset: dict[str, Any]) -> None:
        with self.lock:
            zone = self.zone_by_id(zone_id)
            if zone is None:
                raise KeyError(zone_id)
            zone.setdefault("rulesets", {})[ruleset["phase"]] = copy.deepcopy(ruleset)
            self._changed()

    # Origin CA certificates

    def add_certificate(self, certificate: dict[str, Any]) -> None:
        with self.lock:
            self.certificates.append(copy.deepcopy(certificate))
            self._changed()

    def find_certificates(self, **match: Any) -> list[dict[str, Any]]:
        """Certificates whose fields equal ``match`` (e.g. ``id=...`` or ``zone_id=...``)."""
        with self.lock:
            return [copy.deepcopy(cert) for cert in self.certificates if all(cert.get(key) == value for key, value in match.items())]

    def revoke_certificate(self, certificate_id: str, stamp: str) -> None:
        with self.lock:
            for cert in self.certificates:
                if cert["id"] == certificate_id:
                    cert["revoked_at"] = stamp
            self._changed()

    def revoked_serials(self) -> set[int]:
        with self.lock:
            return {int(cert["id"]) for cert in self.certificates if cert.get("revoked_at")}

    # Tokens

    def add_token(self, value: str, status: str = "active", permissions: list[str] | None = None, zones: list[str] | None = None) -> dict[str, Any]:
        if not TOKEN_PATTERN.match(value):
            raise ValueError("a token value is 16 to 128 letters, digits, '-' or '_'")
        with self.lock:
            if any(token["value"] == value for token in self.tokens):
                raise ValueError("a token with that value already exists")
            token = self._new_token(value, status, permissions or [], zones or ["*"])
            self.tokens.append(token)
            self._changed()
            return token

    def find_token(self, value: str) -> dict[str, Any] | None:
        with self.lock:
            return next((token for token in self.tokens if token["value"] == value), None)

    @staticmethod
    def _new_token(value: str, status: str, permissions: list[str], zones: list[str]) -> dict[str, Any]:
        return {"id": records.new_id(), "value": value, "status": status, "permissions": list(permissions), "zones": list(zones)}

    def set_dns_delay(self, milliseconds: int) -> None:
        with self.lock:
            self.dns_delay_ms = max(0, int(milliseconds))
            self._changed()

    # Persistence

    def _changed(self, zones: bool = False) -> None:
        self.save()
        if zones:
            for listener in self.listeners:
                listener(self)

    def save(self) -> None:
        if self.state_file is None:
            return
        with self.lock:
            data = {"version": STATE_VERSION, "zones": list(self.zones.values()), "tokens": self.tokens, "dns_delay_ms": self.dns_delay_ms,
                    "certificates": self.certificates}
            write_json_atomic(self.state_file, data)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader (or a crash) sees either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
