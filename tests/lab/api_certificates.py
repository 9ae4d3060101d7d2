# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Origin CA certificates: ``POST|GET /certificates`` and ``GET|DELETE /certificates/{certificate_id}``.

``POST`` signs the CSR with the lab's Origin CA (pki.py) for ``hostnames`` (each in a zone the
token reaches), ``requested_validity`` days (default 5475, as Cloudflare) and ``request_type``
``origin-ecc`` or ``origin-rsa`` (the CSR's key must be of that kind). A certificate's id is its
serial number in decimal, as Cloudflare's. ``GET /certificates`` needs ``zone_id`` (1012 without)
and lists that zone's certificates that are not revoked; ``DELETE`` revokes, and the edge then
refuses the certificate in SSL mode strict (526), as Cloudflare does.

Permissions: ``ssl_and_certificates:read`` / ``ssl_and_certificates:edit`` ("SSL and Certificates").
"""

from __future__ import annotations

from typing import Any

from tests.lab import auth, errors, records
from tests.lab.errors import ApiError, envelope
from tests.lab.pki import CsrError
from tests.lab.routing import Context, Reply, Route

DEFAULT_VALIDITY = 5475
FIELDS = ("id", "certificate", "hostnames", "expires_on", "request_type", "requested_validity", "csr")


def _answer(cert: dict[str, Any]) -> dict[str, Any]:
    result = {key: cert[key] for key in FIELDS}
    if cert.get("revoked_at"):
        result["revoked_at"] = cert["revoked_at"]
    return result


def _zone_for(ctx: Context, hostname: Any, pointer: str) -> dict[str, Any]:
    name = str(hostname).lower().rstrip(".")
    bare = name[2:] if name.startswith("*.") else name
    with ctx.state.lock:
        candidates = [zone for zone in ctx.state.zones.values() if bare == zone["name"] or bare.endswith("." + zone["name"])]
    zone = max(candidates, key=lambda zone: len(zone["name"]), default=None)
    if zone is None or not auth.reaches_zone(ctx.token, zone["name"]) or not records.valid_hostname(bare):
        raise ApiError(403, errors.CERTIFICATE_NOT_AUTHORIZED, "User is not authorized to perform this action", pointer=pointer)
    return zone


def create_certificate(ctx: Context) -> Reply:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    hostnames = body.get("hostnames")
    if not isinstance(hostnames, list) or not hostnames or not all(isinstance(name, str) for name in hostnames):
        raise ApiError(400, errors.CERTIFICATE_BAD_CSR, "hostnames must be a non-empty list of host names", pointer="/hostnames")
    zones = {_zone_for(ctx, name, "/hostnames/%d" % index)["id"] for index, name in enumerate(hostnames)}
    csr = body.get("csr")
    if not isinstance(csr, str):
        raise ApiError(400, errors.CERTIFICATE_BAD_CSR, "csr is required", pointer="/csr")
    validity = body.get("requested_validity", DEFAULT_VALIDITY)
    request_type = body.get("request_type", "origin-rsa")
    try:
        issued = ctx.state.pki.sign_csr(csr, [name.lower() for name in hostnames], int(validity), str(request_type))
    except CsrError as exc:
        raise ApiError(400, errors.CERTIFICATE_BAD_CSR, str(exc), pointer="/csr") from None
    cert = {"id": str(issued.serial), "certificate": issued.pem, "hostnames": [name.lower() for name in hostnames],
            "expires_on": issued.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"), "request_type": request_type,
            "requested_validity": validity, "csr": csr, "zone_ids": sorted(zones)}
    if not ctx.dry_run:
        ctx.state.add_certificate(cert)
    return Reply(envelope(_answer(cert)))


def list_certificates(ctx: Context) -> Reply:
    zone_id = ctx.arg("zone_id")
    if not zone_id:
        raise ApiError(400, errors.CERTIFICATE_ZONE_REQUIRED, "Please provide a zone id when requesting a stored certificate, or fetch by serial number")
    zone = ctx.state.zone_by_id(zone_id)
    if zone is None:
        raise errors.no_route("/client/v4/certificates")
    auth.require(ctx.token, "ssl_and_certificates:read", zone)
    found = [cert for cert in ctx.state.find_certificates() if zone_id in cert["zone_ids"] and not cert.get("revoked_at")]
    return Reply(envelope([_answer(cert) for cert in found],
                          result_info={"page": 1, "per_page": max(1, len(found)), "count": len(found), "total_count": len(found), "total_pages": 1}))


def _owned(ctx: Context) -> dict[str, Any]:
    found = ctx.state.find_certificates(id=ctx.params["certificate_id"])
    if not found:
        raise ApiError(404, errors.CERTIFICATE_NOT_FOUND, "Certificate not found")
    cert = found[0]
    with ctx.state.lock:
        names = [zone["name"] for zone in ctx.state.zones.values() if zone["id"] in cert["zone_ids"]]
    if not names or not all(auth.reaches_zone(ctx.token, name) for name in names):
        raise ApiError(403, errors.CERTIFICATE_NOT_AUTHORIZED, "User is not authorized to perform this action")
    return cert


def get_certificate(ctx: Context) -> Reply:
    return Reply(envelope(_answer(_owned(ctx))))


def revoke_certificate(ctx: Context) -> Reply:
    cert = _owned(ctx)
    if not ctx.dry_run:
        ctx.state.revoke_certificate(cert["id"], records.now())
    return Reply(envelope({"id": cert["id"]}))


ROUTES = [
    Route("POST", "/certificates", create_certificate, "ssl_and_certificates:edit"),
    Route("GET", "/certificates", list_certificates, "ssl_and_certificates:read"),
    Route("GET", "/certificates/{certificate_id}", get_certificate, "ssl_and_certificates:read"),
    Route("DELETE", "/certificates/{certificate_id}", revoke_certificate, "ssl_and_certificates:edit"),
]
