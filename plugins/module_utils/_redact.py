# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Show that a secret exists, or which one it is, without ever showing it."""

from __future__ import annotations

import hashlib

MASK = "********"


def fingerprint(secret: str) -> str:
    """A short, stable identifier of a secret: enough to tell two apart, useless to an attacker."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


def redact(secret: str, keep: int = 4) -> str:
    """Keep a recognisable prefix (``sk_l********``) only when the secret is long enough to spare it."""
    if len(secret) < keep * 4:
        return MASK
    return secret[:keep] + MASK


def scrub(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of each secret in ``text`` (error messages, API answers) with the mask."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
