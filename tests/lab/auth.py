# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API token authentication and permissions, answering the way Cloudflare does (codes: see errors.py).

Permissions are written ``<resource>:read`` / ``<resource>:edit`` (``zone:read``,
``dns_records:edit``, ...); ``edit`` includes ``read``. A token reaches the zones listed in its
``zones`` (``*`` for all). Only API tokens (``Authorization: Bearer``) are supported; the
legacy X-Auth-Email/X-Auth-Key pair is answered as a malformed key. A token value is 16 to 128
letters, digits, ``-`` or ``_`` (config.TOKEN_PATTERN); anything else is a malformed header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.lab import errors
from tests.lab.config import TOKEN_PATTERN
from tests.lab.errors import ApiError
from tests.lab.state import LabState


def authenticate(headers: Mapping[str, str], state: LabState) -> dict[str, Any]:
    """The active token a request carries, or the ApiError Cloudflare would answer with."""
    authorization = headers.get("Authorization")
    if authorization is None:
        if headers.get("X-Auth-Key") or headers.get("X-Auth-Email"):
            raise ApiError(400, errors.INVALID_HEADERS, "Invalid request headers",
                           chain=[{"code": 6103, "message": "Invalid format for X-Auth-Key header"}])
        raise ApiError(400, errors.MISSING_AUTH, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
    scheme, _space, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not TOKEN_PATTERN.match(value):  # auth schemes are case-insensitive (RFC 9110)
        raise ApiError(400, errors.INVALID_HEADERS, "Invalid request headers",
                       chain=[{"code": errors.INVALID_AUTHORIZATION_FORMAT, "message": "Invalid format for Authorization header"}])
    token = state.find_token(value)
    if token is None or token["status"] != "active":
        raise ApiError(401, errors.INVALID_TOKEN, "Invalid access token")
    return token


def has_permission(token: dict[str, Any], permission: str) -> bool:
    resource, _colon, level = permission.partition(":")
    granted = set(token["permissions"])
    return permission in granted or (level == "read" and resource + ":edit" in granted)


def reaches_zone(token: dict[str, Any], zone_name: str) -> bool:
    return "*" in token["zones"] or zone_name in token["zones"]


def require(token: dict[str, Any], permission: str, zone: dict[str, Any] | None = None) -> None:
    """An empty ``permission`` lets any active token through (``GET /user/tokens/verify``)."""
    if zone is not None and not reaches_zone(token, zone["name"]):
        raise ApiError(403, errors.UNAUTHORIZED_RESOURCE, "Unauthorized to access requested resource")
    if permission and not has_permission(token, permission):
        raise ApiError(403, errors.AUTHENTICATION_ERROR, "Authentication error")


def zone_permissions(token: dict[str, Any]) -> list[str]:
    """The ``permissions`` list Cloudflare shows on a zone object (``#dns_records:edit`` style)."""
    return sorted("#" + permission for permission in token["permissions"])
