# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's two certificate authorities, made with ``cryptography`` and kept in ``<state dir>/pki/``.

- The **edge CA** ("Launch Lab Edge Root CA") stands for the public CAs behind Cloudflare's edge
  certificates: the edge gets a leaf for each proxied host name it is asked for (SNI), made on
  demand, its SAN being that name. Clients trust it with ``edge_ca_file`` (endpoints.json).
- The **Origin CA** ("Launch Lab Origin SSL Certificate Authority") stands for Cloudflare's Origin
  CA: ``POST /certificates`` signs CSRs with it, and the edge in SSL mode ``strict`` trusts it for
  origin certificates (as Cloudflare does). Its certificate is ``origin_ca_file``.

Both are ECDSA P-256 (quick to make: a fresh lab starts in well under a second) and are created
once per state directory, so a restarted lab keeps the trust clients already have. Cloudflare signs
``origin-rsa`` requests with an RSA CA and ``origin-ecc`` ones with an ECDSA CA; the lab signs both
with its one Origin CA (the leaf's key is still the one of the CSR).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EDGE_CA_NAME = "Launch Lab Edge Root CA"
ORIGIN_CA_NAME = "Launch Lab Origin SSL Certificate Authority"
CA_YEARS = 10
EDGE_LEAF_DAYS = 90  # what Cloudflare's Universal SSL certificates last
ORIGIN_REQUEST_TYPES = {"origin-ecc": ec.EllipticCurvePublicKey, "origin-rsa": rsa.RSAPublicKey}


class CsrError(ValueError):
    """A CSR the Origin CA refuses (unreadable, badly signed, or a key that does not match the request type)."""


@dataclass
class Authority:
    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path


@dataclass(frozen=True)
class Issued:
    serial: int
    pem: str
    not_after: datetime.datetime


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode("ascii")


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def serial_number() -> int:
    """A random serial of 100 bits: its decimal form (Cloudflare's certificate id) fits the API's 32 characters."""
    return secrets.randbits(100) | (1 << 99)


def _load_or_create(directory: Path, stem: str, name: str) -> Authority:
    cert_file, key_file = directory / (stem + ".pem"), directory / (stem + ".key")
    if cert_file.exists() and key_file.exists():
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return Authority(name, cert, key, cert_file)
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Launch Lab"), x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    write_private(key_file, key_pem(key))
    cert_file.write_text(pem(cert), encoding="ascii")
    return Authority(name, cert, key, cert_file)


def write_private(path: Path, text: str) -> None:
    """Write a private key readable by its owner only."""
    descriptor = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text)


def _leaf(authority: Authority, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, subject: x509.Name, hostnames: list[str],
          not_before: datetime.datetime, not_after: datetime.datetime) -> Issued:
    serial = serial_number()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(authority.cert.subject).public_key(public_key)
            .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in hostnames]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False)
            .sign(authority.key, hashes.SHA256()))
    return Issued(serial, pem(cert), not_after)


def server_context(cert_pem: str, key_text: str, workdir: Path) -> ssl.SSLContext:
    """A server SSLContext for one certificate and key (``ssl`` loads them from a file only, so through a temporary one)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    descriptor, path = tempfile.mkstemp(prefix=".leaf-", suffix=".pem", dir=str(workdir))
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(cert_pem + key_text)
        context.load_cert_chain(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return context


class LabPki:
    def __init__(self, state_dir: Path):
        self.directory = state_dir / "pki"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.edge_ca = _load_or_create(self.directory, "edge-ca", EDGE_CA_NAME)
        self.origin_ca = _load_or_create(self.directory, "origin-ca", ORIGIN_CA_NAME)
        self._lock = threading.Lock()
        self._edge_leaves: dict[str, tuple[str, str]] = {}
        self.edge_leaf_days = EDGE_LEAF_DAYS

    def edge_leaf(self, host: str) -> tuple[str, str]:
        """(certificate PEM with the CA after it, key PEM) of the edge's certificate for ``host``, made on first use."""
        with self._lock:
            found = self._edge_leaves.get(host)
            if found is None:
                key = new_key()
                now = _now()
                subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
                issued = _leaf(self.edge_ca, key.public_key(), subject, [host], now - datetime.timedelta(hours=1),
                               now + datetime.timedelta(days=self.edge_leaf_days))
                found = (issued.pem + pem(self.edge_ca.cert), key_pem(key))
                self._edge_leaves[host] = found
            return found

    def set_edge_leaf_days(self, days: int) -> None:
        """Validity of the edge certificates made from now on (the ones already made are forgotten)."""
        with self._lock:
            self.edge_leaf_days = days
            self._edge_leaves.clear()

    def origin_leaf(self, hostnames: list[str], days: int = 365) -> tuple[str, str]:
        """A key and an Origin CA certificate for ``hostnames`` (the origin's default certificate)."""
        key = new_key()
        now = _now()
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Launch Lab"), x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
        issued = _leaf(self.origin_ca, key.public_key(), subject, hostnames, now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days))
        return issued.pem, key_pem(key)

    def sign_csr(self, csr_pem: str, hostnames: list[str], days: int, request_type: str) -> Issued:
        """Sign a CSR as Cloudflare's Origin CA does: the SAN is ``hostnames`` (the CSR's own names do not count)."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode("utf-8"))
            signed = csr.is_signature_valid
        except (ValueError, InvalidSignature, TypeError) as exc:
            raise CsrError("Failed to parse the CSR: %s" % exc) from None
        if not signed:
            raise CsrError("The CSR's signature does not match its key")
        expected = ORIGIN_REQUEST_TYPES.get(request_type)
        if expected is None:
            raise CsrError("request_type %s is not supported by the lab (origin-ecc or origin-rsa)" % request_type)
        public_key = csr.public_key()
        if not isinstance(public_key, expected):
            raise CsrError("The CSR's key does not match request_type %s" % request_type)
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
            raise CsrError("RSA keys must be at least 2048 bits")
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Launch Lab"),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Lab Origin CA"),
                             x509.NameAttribute(NameOID.COMMON_NAME, "Lab Origin Certificate")])
        now = _now()
        return _leaf(self.origin_ca, public_key, subject, hostnames, now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days))
