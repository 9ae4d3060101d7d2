# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloudflare Origin CA certificates on the origin host: keys, CSRs, reading what is installed, and
deciding whether (and why) to request a new certificate.

The decision (``plan_certificate``) is pure: it takes what was read from disk and the desired
hostnames, key type and renewal window. Reading and writing files is at the end of this file.

A key is only replaced for a reason: there is none yet, its type is not the one asked for, or the
user asks for a rotation. Renewals otherwise reuse the installed key.
"""

from __future__ import annotations

import hashlib
import os
import re
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

try:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

# key type: the request_type Cloudflare's Origin CA takes for it
REQUEST_TYPES = {"ecdsa": "origin-ecc", "rsa": "origin-rsa"}
RSA_BITS = 2048
VALIDITY_DAYS = (7, 30, 90, 365, 730, 1095, 5475)  # what POST /certificates accepts as requested_validity
KEY_MODE = 0o600
CERTIFICATE_MODE = 0o644
_HOSTNAME_RE = re.compile(r"^(\*\.)?(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


class OriginCertError(ValueError):
    """Input or files the module refuses, before any API call or write."""


def normalise_hostnames(hostnames: list[str]) -> list[str]:
    """Lowercase, without trailing dots or duplicates, in the order given; OriginCertError for anything that is not a host name."""
    names: list[str] = []
    for raw in hostnames:
        name = str(raw or "").strip().lower().rstrip(".")
        if not _HOSTNAME_RE.match(name) or len(name) > 253:
            raise OriginCertError("hostnames: %r is not a host name (such as example.com or *.example.com)" % raw)
        if name not in names:
            names.append(name)
    if not names:
        raise OriginCertError("hostnames: give at least one host name")
    return names


# -- keys and CSRs ------------------------------------------------------------------------------


def generate_key(key_type: str):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ec.generate_private_key(ec.SECP256R1())


def key_type_of(key) -> str:
    """``ecdsa`` (P-256), ``rsa``, or a description of a key the Origin CA does not take."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ecdsa" if isinstance(key.curve, ec.SECP256R1) else "ecdsa-" + key.curve.name
    return type(key).__name__


def load_private_key(data: bytes, path: str):
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise OriginCertError("%s is protected by a passphrase; the module cannot reuse it. Remove it, or set rotate_key=true to replace it" % path) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise OriginCertError("%s is not a PEM private key (%s); fix or remove it, or set rotate_key=true to replace it" % (path, exc)) from None


def private_key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def key_fingerprint(key) -> str:
    """``sha256:`` and 16 hex digits of the public key: tells keys apart without showing them."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def make_csr(key, hostnames: list[str]) -> str:
    """A CSR for ``hostnames`` (the first as common name, all in the SAN), signed with ``key``; PEM text."""
    common_name = hostnames[0] if len(hostnames[0]) <= 64 else hostnames[0][-64:].lstrip(".")
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in hostnames]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode("ascii")


# -- installed certificates ---------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """What the certificate file holds."""

    hostnames: tuple[str, ...]
    not_after: datetime
    serial: int
    public_key_der: bytes

    @property
    def certificate_id(self) -> str:
        """Cloudflare numbers Origin CA certificates by their serial number, in decimal."""
        return str(self.serial)

    @property
    def expires_on(self) -> str:
        return self.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def matches(self, key) -> bool:
        return self.public_key_der == key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def read_certificate(data: bytes) -> Installed | None:
    """The first certificate of a PEM file, or None when the file holds none."""
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(sorted(name.lower() for name in san.get_values_for_type(x509.DNSName)))
    except x509.ExtensionNotFound:
        names = ()
    not_after = cert.not_valid_after_utc if hasattr(cert, "not_valid_after_utc") else cert.not_valid_after.replace(tzinfo=timezone.utc)
    public_key = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Installed(names, not_after, cert.serial_number, public_key)


# -- the decision -------------------------------------------------------------------------------


@dataclass
class CertificatePlan:
    reasons: list[str] = field(default_factory=list)  # why a new certificate is needed; empty: none is
    new_key: bool = False
    key_reason: str | None = None

    @property
    def renew(self) -> bool:
        return bool(self.reasons)


def plan_certificate(key, key_present: bool, installed: Installed | None, certificate_present: bool, hostnames: list[str], key_type: str,
                     renew_before_days: int, rotate_key: bool, now: datetime) -> CertificatePlan:
    """Whether to request a certificate, and whether with a new key.

    ``key`` is the installed key (None when there is none); ``installed`` the installed certificate
    (None when the file is missing or holds no certificate). Reasons, in the order they are checked:
    ``no_private_key``, ``rotate_key``, ``key_type_changed``, ``no_certificate``, ``unreadable_certificate``,
    ``hostnames_changed``, ``key_mismatch``, ``expiring``.
    """
    plan = CertificatePlan()
    if not key_present:
        plan.key_reason = "no_private_key"
    elif rotate_key:
        plan.key_reason = "rotate_key"
    elif key_type_of(key) != key_type:
        plan.key_reason = "key_type_changed"
    if plan.key_reason:
        plan.new_key = True
        plan.reasons.append(plan.key_reason)
    if installed is None:
        plan.reasons.append("unreadable_certificate" if certificate_present else "no_certificate")
        return plan
    if set(installed.hostnames) != set(hostnames):
        plan.reasons.append("hostnames_changed")
    if key is not None and not plan.new_key and not installed.matches(key):
        plan.reasons.append("key_mismatch")
    if installed.days_left(now) < renew_before_days:
        plan.reasons.append("expiring")
    return plan


def expected_expiry(now: datetime, validity_days: int) -> str:
    return (now + timedelta(days=validity_days)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- files (I/O) --------------------------------------------------------------------------------


def read_file(path: str) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OriginCertError("cannot read %s: %s" % (path, exc.strerror or exc)) from None


def attributes_to_fix(path: str, mode: int, uid: int, gid: int) -> list[str]:
    """What differs on an existing file: ``mode``, ``owner``, ``group``."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return []
    wrong = []
    if info.st_mode & 0o7777 != mode:
        wrong.append("mode")
    if uid != -1 and info.st_uid != uid:
        wrong.append("owner")
    if gid != -1 and info.st_gid != gid:
        wrong.append("group")
    return wrong


def fix_attributes(path: str, mode: int, uid: int, gid: int) -> None:
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)
    os.chmod(path, mode)
