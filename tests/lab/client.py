# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drive the lab from Python (tests, the demo): start and stop it, arrange state, read what happened.

    lab = Lab.start(tmp_path)
    token = lab.add_token(["zone:read", "dns_records:edit"], zones=["launch-demo.test"])
    ... call lab.api_base_url with the token, query lab.dns_host:lab.dns_port ...
    assert lab.calls()["by_route"]["POST /zones/{zone_id}/dns_records/batch"] == 1
    lab.stop()
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.lab import process
from tests.lab.config import DEFAULT_CONFIG


class LabError(RuntimeError):
    pass


class Lab:
    def __init__(self, state_dir: Path, endpoints: dict[str, Any], child: subprocess.Popen | None = None, config: Path | None = None):
        self.state_dir = Path(state_dir)
        self.config = config
        self._child = child
        self._load(endpoints)

    def _load(self, endpoints: dict[str, Any]) -> None:
        self.endpoints = endpoints
        self.pid: int = endpoints["pid"]
        self.api_base_url: str = endpoints["api_base_url"]
        self.control_url: str = endpoints["control_url"]
        self.dns_host: str = endpoints["dns"]["host"]
        self.dns_port: int = int(endpoints["dns"]["port"])
        self.edge: dict[str, Any] = dict(endpoints["edge"])
        self.edge_http_port: int = int(self.edge["http_port"])
        self.edge_https_port: int = int(self.edge["https_port"])
        self.edge_ca_file = Path(self.edge["ca_file"])
        self.origin: dict[str, Any] = dict(endpoints["origin"])
        self.origin_http_port: int = int(self.origin["http_port"])
        self.origin_https_port: int = int(self.origin["https_port"])
        self.origin_ca_file = Path(self.origin["ca_file"])
        self.state_file = Path(endpoints["state_file"])

    @classmethod
    def start(cls, state_dir: str | Path, config: str | Path | dict[str, Any] | None = None) -> Lab:
        """Start a lab on ``state_dir`` (or attach to the one already running there).

        ``config`` is a config file, a config as a dict (written to ``state_dir/config.json``),
        or None for tests/lab/config.json. A lab started here stops by itself when this process
        ends (``python -m tests.lab up`` starts one that stays).
        """
        state_dir = Path(state_dir).resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(config, dict):
            path = state_dir / "config.json"
            path.write_text(json.dumps(config, indent=2), encoding="utf-8")
            config = path
        config_path = Path(config).resolve() if config else DEFAULT_CONFIG
        endpoints, child = process.start(state_dir, config_path, owner_pid=os.getpid())
        return cls(state_dir, endpoints, child, config_path)

    @classmethod
    def attach(cls, state_dir: str | Path) -> Lab:
        """The lab already running on ``state_dir`` (started with ``python -m tests.lab up``)."""
        endpoints = process.running(Path(state_dir).resolve())
        if endpoints is None:
            raise LabError("no lab is running on %s" % state_dir)
        return cls(Path(state_dir), endpoints)

    def stop(self) -> None:
        process.stop(self.state_dir, self._child)
        self._child = None

    def restart(self) -> None:
        """Stop and start again on the same state directory: zones, records and tokens survive; ports change."""
        self.stop()
        endpoints, self._child = process.start(self.state_dir, self.config, owner_pid=os.getpid())
        self._load(endpoints)

    # Control API

    def _control(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(self.control_url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise LabError("%s /__lab%s answered %s: %s" % (method, path, exc.code, exc.read().decode("utf-8", "replace"))) from None

    def zone_id(self, name: str) -> str:
        zones = self._control("GET", "/zones")
        if name not in zones:
            raise LabError("the lab has no zone %s (it has %s)" % (name, ", ".join(sorted(zones)) or "none"))
        return zones[name]

    def calls(self) -> dict[str, Any]:
        return self._control("GET", "/calls")

    def reset_calls(self) -> None:
        self._control("DELETE", "/calls")

    def requests(self) -> list[dict[str, Any]]:
        return self._control("GET", "/requests")

    def violations(self) -> list[dict[str, Any]]:
        return self._control("GET", "/violations")

    def clear_violations(self) -> None:
        self._control("DELETE", "/violations")

    def inject_fault(self, **fault: Any) -> None:
        """See tests/lab/faults.py: route, status, retry_after, count or ratio, delay, seed."""
        self._control("POST", "/faults", fault)

    def clear_faults(self) -> None:
        self._control("DELETE", "/faults")

    def add_zone(self, name: str, plan: str = "free") -> str:
        """Create a zone; returns its id."""
        return self._control("POST", "/zones", {"name": name, "plan": plan})["id"]

    def delete_zone(self, name: str) -> None:
        self._control("DELETE", "/zones/%s" % name)

    def seed_records(self, zone: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace every record of ``zone`` (no API call counted); returns the stored records."""
        return self._control("PUT", "/zones/%s/records" % zone, records)

    def records(self, zone: str) -> list[dict[str, Any]]:
        return self._control("GET", "/zones/%s/records" % zone)

    def add_token(self, permissions: list[str], zones: list[str] | None = None, status: str = "active") -> str:
        """A new API token with a random value (returned), for ``zones`` (default: all)."""
        value = secrets.token_urlsafe(30)
        self._control("POST", "/tokens", {"value": value, "status": status, "permissions": list(permissions), "zones": list(zones or ["*"])})
        return value

    def set_dns_delay(self, ms: int) -> None:
        self._control("PUT", "/dns_delay", {"ms": ms})

    def reset(self) -> None:
        self._control("POST", "/reset")

    # The edge and the origin

    def edge_resolve(self, hosts: list[str]) -> dict[str, str]:
        """``{"host:80": "127.0.0.1:<edge http port>", "host:443": "127.0.0.1:<edge https port>"}``: curl's --resolve for the edge."""
        mapping = {}
        for host in hosts:
            mapping["%s:80" % host] = "%s:%d" % (self.edge["ipv4"], self.edge_http_port)
            mapping["%s:443" % host] = "%s:%d" % (self.edge["ipv4"], self.edge_https_port)
        return mapping

    def edge_client(self, **options: Any) -> Any:
        """An ``httpx.Client`` whose requests to any host on ports 80 and 443 reach the edge (Host and SNI kept),
        trusting the lab's edge CA. ``options`` go to ``httpx.Client`` (e.g. ``follow_redirects=True``)."""
        import ssl  # pylint: disable=import-outside-toplevel

        import httpx  # pylint: disable=import-outside-toplevel

        from tests.lab.resolve import ResolveTransport  # pylint: disable=import-outside-toplevel

        context = ssl.create_default_context(cafile=str(self.edge_ca_file))
        fallback = {80: "%s:%d" % (self.edge["ipv4"], self.edge_http_port), 443: "%s:%d" % (self.edge["ipv4"], self.edge_https_port)}
        options.setdefault("timeout", 30)
        return httpx.Client(transport=ResolveTransport({}, fallback, verify=context), **options)

    def edge_log(self) -> list[dict[str, Any]]:
        """The edge's answers, oldest first: scheme, method, host, target, status, cache, origin_status, client_ip, ray."""
        return self._control("GET", "/edge/log")

    def clear_edge_log(self) -> None:
        self._control("DELETE", "/edge/log")

    def purge_edge_cache(self, zone: str | None = None) -> int:
        return self._control("DELETE", "/edge/cache", {"zone": zone} if zone else None)["purged"]

    def reset_rate_limits(self) -> None:
        self._control("DELETE", "/edge/ratelimits")

    def set_edge_certificate_days(self, days: int) -> None:
        """Validity of the edge certificates made from now on (to see an expiring certificate)."""
        self._control("PUT", "/edge/certificate_days", {"days": days})

    def origin_state(self) -> dict[str, Any]:
        return self._control("GET", "/origin")

    def set_origin_flags(self, **flags: Any) -> dict[str, Any]:
        """``stale_preview_links``, ``mixed_content`` (booleans), ``slow_ms``: what the origin app shows."""
        return self._control("PUT", "/origin/flags", flags)

    def install_origin_certificate(self, cert_pem: str | None = None, key_pem: str | None = None,
                                   cert_file: str | Path | None = None, key_file: str | Path | None = None) -> None:
        """The certificate (PEM text or file) the origin's HTTPS port serves for every name, until ``default_origin_certificate()``."""
        if cert_pem is not None and key_pem is not None:
            self._control("PUT", "/origin/certificate", {"cert_pem": cert_pem, "key_pem": key_pem})
        else:
            self._control("PUT", "/origin/certificate", {"cert_file": str(cert_file), "key_file": str(key_file)})

    def default_origin_certificate(self) -> None:
        self._control("DELETE", "/origin/certificate")

    def issue_origin_certificate(self, hostnames: list[str], days: int = 365) -> tuple[str, str]:
        """(certificate PEM, key PEM) from the lab Origin CA, without an API call."""
        pair = self._control("POST", "/origin_ca/certificates", {"hostnames": hostnames, "days": days})
        return pair["cert_pem"], pair["key_pem"]

    def set_origin_upstream(self, port: int | None) -> None:
        """Send the edge (and the origin's HTTPS port) to another HTTP server on 127.0.0.1:port; None: back to the lab's."""
        if port is None:
            self._control("DELETE", "/origin/upstream")
        else:
            self._control("PUT", "/origin/upstream", {"port": port})
