# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DKIM keys (RFC 6376, RFC 8463, RFC 8301): generate them, publish them, judge published ones.

Key records live at ``<selector>._domainkey.<domain>`` as ``v=DKIM1; k=rsa; p=<base64>``. For RSA
``p=`` is the DER SubjectPublicKeyInfo (a bare RSAPublicKey is accepted when reading); for
Ed25519 it is the raw 32-byte public key (RFC 8463 section 4.2).

Selectors rotate by name: ``<prefix><year><letters>`` (``lr2026a``, then ``lr2026b``, ... and
``lr2027a`` in a new year). An Ed25519 key of the same generation is ``<base>-ed25519``.
"""

from __future__ import annotations

import base64
import binascii
import re
import traceback
from dataclasses import dataclass, field

from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK, Finding

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

STAGE = "secrets_env"
KEY_TYPES = ("rsa", "ed25519")
MIN_RSA_BITS = 1024
RECOMMENDED_RSA_BITS = 2048
TXT_STRING_MAX = 255
ED25519_SUFFIX = "-ed25519"
_TAG = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*=(.*)", re.DOTALL)
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*")


def rfc_finding(severity: str, title: str, evidence: str, fix: str, section: str) -> Finding:
    return Finding(stage=STAGE, severity=severity, title=title, evidence="%s (%s)" % (evidence, section), fix=fix)


def record_name(selector: str, domain: str) -> str:
    return "%s._domainkey.%s" % (selector, domain.rstrip(".").lower())


def is_selector(selector: str) -> bool:
    return bool(_SELECTOR.fullmatch(selector))


# --- key records -----------------------------------------------------------------------------


@dataclass
class KeyRecord:
    text: str
    tags: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    key_type: str = "rsa"
    bits: int | None = None  # RSA modulus size; 256 for Ed25519
    public_bytes: bytes | None = None  # comparable form: DER SPKI for RSA, raw 32 bytes for Ed25519
    revoked: bool = False


def parse_key_record(text: str) -> KeyRecord:
    """Parse a DKIM key record (RFC 6376 section 3.6.1) and decode its public key."""
    record = KeyRecord(text=text)
    for part in text.split(";"):
        if not part.strip():
            continue
        match = _TAG.fullmatch(part)
        if not match:
            record.errors.append("%r is not tag=value" % part.strip())
            continue
        name, value = match.group(1), match.group(2).strip()
        if name in record.tags:
            record.errors.append("the tag %r appears more than once" % name)
            continue
        record.tags[name] = value
    if "v" in record.tags:
        if record.tags["v"] != "DKIM1":
            record.errors.append("v=%s: the version must be DKIM1" % record.tags["v"])
        if next(iter(record.tags)) != "v":
            record.errors.append("v=DKIM1 must be the first tag")
    record.key_type = record.tags.get("k", "rsa").lower()
    if record.key_type not in KEY_TYPES:
        record.errors.append("k=%s is not a key type verifiers know (rsa, ed25519)" % record.tags.get("k"))
    if "p" not in record.tags:
        record.errors.append("the p= tag (public key) is missing")
        return record
    data = re.sub(r"\s+", "", record.tags["p"])
    if not data:
        record.revoked = True
        return record
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        record.errors.append("p= is not valid base64")
        return record
    if record.key_type == "ed25519":
        if len(raw) != 32:
            record.errors.append("an Ed25519 p= must be the raw 32-byte public key, this one has %d bytes" % len(raw))
        else:
            record.bits, record.public_bytes = 256, raw
    elif record.key_type == "rsa" and HAS_CRYPTOGRAPHY:
        try:
            key = serialization.load_der_public_key(raw)
        except ValueError:
            record.errors.append("p= does not decode to an RSA public key")
            return record
        if not isinstance(key, rsa.RSAPublicKey):
            record.errors.append("k=rsa but p= holds a %s key" % type(key).__name__)
            return record
        record.bits = key.key_size
        record.public_bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return record


def record_findings(record: KeyRecord, name: str, via: str = "") -> list[Finding]:
    """What should change in a published key record; an ``ok`` finding when nothing should."""
    where = name + (" (CNAME to %s)" % via if via else "")
    findings = []
    if record.errors:
        findings.append(rfc_finding(MUST_DO_NOW, "DKIM key %s is invalid" % name, "%s: %s" % (where, "; ".join(record.errors)),
                                    "Publish the key record exactly as generated: v=DKIM1; k=rsa; p=<base64 public key>.",
                                    "RFC 6376 section 3.6.1"))
        return findings
    if record.revoked:
        findings.append(rfc_finding(MUST_DO_NOW, "DKIM key %s is revoked" % name, "%s has an empty p=, so every signature with it fails" % where,
                                    "Publish the current key at this selector, or stop signing with it.", "RFC 6376 section 3.6.1"))
        return findings
    hashes = [h.strip().lower() for h in record.tags.get("h", "").split(":") if h.strip()]
    if hashes and "sha256" not in hashes:
        findings.append(rfc_finding(MUST_DO_NOW, "DKIM key %s only allows %s" % (name, ":".join(hashes)),
                                    "h=%s: sha1 signatures must not be used or trusted" % record.tags["h"],
                                    "Remove the h= tag (or set h=sha256) and sign with rsa-sha256.", "RFC 8301 section 3.1"))
    services = [s.strip().lower() for s in record.tags.get("s", "*").split(":")]
    if "*" not in services and "email" not in services:
        findings.append(rfc_finding(MUST_DO_NOW, "DKIM key %s is not for email" % name, "s=%s excludes email" % record.tags["s"],
                                    "Remove the s= tag.", "RFC 6376 section 3.6.1"))
    flags = [f.strip().lower() for f in record.tags.get("t", "").split(":")]
    if "y" in flags:
        findings.append(rfc_finding(CAN_WAIT, "DKIM key %s is in test mode" % name,
                                    "t=y: verifiers may treat mail signed with it as unsigned", "Remove t=y once signing works.",
                                    "RFC 6376 section 3.6.1"))
    if record.key_type == "rsa" and record.bits is not None:
        if record.bits < MIN_RSA_BITS:
            findings.append(rfc_finding(MUST_DO_NOW, "DKIM key %s is RSA %d bits" % (name, record.bits),
                                        "%s: verifiers must not accept RSA keys under %d bits" % (where, MIN_RSA_BITS),
                                        "Generate an RSA 2048 key under a new selector, publish it, switch signing to it.",
                                        "RFC 8301 section 3.2"))
        elif record.bits < RECOMMENDED_RSA_BITS:
            findings.append(rfc_finding(CAN_WAIT, "DKIM key %s is RSA %d bits" % (name, record.bits),
                                        "%s: signers should use at least %d bits" % (where, RECOMMENDED_RSA_BITS),
                                        "Rotate to an RSA 2048 key under a new selector.", "RFC 8301 section 3.2"))
    if not any(f.severity == MUST_DO_NOW for f in findings):
        findings.append(rfc_finding(OK, "DKIM key %s is published" % name,
                                    "%s: %s %s" % (where, record.key_type, "%s bits" % record.bits if record.key_type == "rsa" else "key"),
                                    "", "RFC 6376 section 3.6.1"))
    return findings


# --- generating keys -------------------------------------------------------------------------


def generate(key_type: str, rsa_bits: int = RECOMMENDED_RSA_BITS):
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)


def private_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def load_private_pem(data: bytes):
    """Load an unencrypted PEM private key; ValueError when it is not an RSA or Ed25519 key."""
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise ValueError("a DKIM key must be RSA or Ed25519, not %s" % type(key).__name__)
    return key


def key_type_of(key) -> str:
    return "ed25519" if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)) else "rsa"


def public_bytes(private_key) -> bytes:
    """The comparable public key: raw 32 bytes for Ed25519, DER SubjectPublicKeyInfo for RSA."""
    public = private_key.public_key()
    if key_type_of(private_key) == "ed25519":
        return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_bits(private_key) -> int:
    return 256 if key_type_of(private_key) == "ed25519" else private_key.key_size


def txt_value(private_key) -> str:
    """The DNS TXT value publishing the public half of ``private_key``."""
    return "v=DKIM1; k=%s; p=%s" % (key_type_of(private_key), base64.b64encode(public_bytes(private_key)).decode("ascii"))


def split_txt(value: str, size: int = TXT_STRING_MAX) -> list[str]:
    """Split a TXT value into character-strings of at most ``size`` bytes (RFC 1035 section 3.3)."""
    data = value.encode("ascii")
    return [data[i:i + size].decode("ascii") for i in range(0, len(data), size)] or [""]


def matches(record: KeyRecord, private_key) -> bool:
    return record.public_bytes is not None and record.public_bytes == public_bytes(private_key)


# --- selector names --------------------------------------------------------------------------


def _letters_value(letters: str) -> int:
    value = 0
    for char in letters:
        value = value * 26 + (ord(char) - ord("a") + 1)
    return value


def _letters(value: int) -> str:
    out = ""
    while value:
        value, rest = divmod(value - 1, 26)
        out = chr(ord("a") + rest) + out
    return out


def selector_for(base: str, key_type: str) -> str:
    return base + ED25519_SUFFIX if key_type == "ed25519" else base


def base_of(selector: str) -> str:
    return selector[: -len(ED25519_SUFFIX)] if selector.endswith(ED25519_SUFFIX) else selector


def generation(prefix: str, selector: str) -> tuple[int, int] | None:
    """(year, sequence) of a selector named by this scheme, or None."""
    match = re.fullmatch(r"%s([0-9]{4})([a-z]+)" % re.escape(prefix), base_of(selector))
    if not match:
        return None
    return int(match.group(1)), _letters_value(match.group(2))


def current_base(prefix: str, selectors: list[str]) -> str | None:
    """The newest selector base among existing selectors named ``<prefix><year><letters>``."""
    named = [(generation(prefix, s), base_of(s)) for s in selectors]
    named = [(g, b) for g, b in named if g is not None]
    return max(named)[1] if named else None


def next_base(prefix: str, current: str | None, year: int) -> str:
    """The selector base after ``current``: the next letters in the same year, or ``a`` in a newer one."""
    if current is not None:
        gen = generation(prefix, current)
        if gen is not None and gen[0] >= year:
            return "%s%04d%s" % (prefix, gen[0], _letters(gen[1] + 1))
    return "%s%04da" % (prefix, year)


def choose_base(existing: list[str], fixed: str | None, prefix: str, rotate: bool, year: int) -> str:
    """The selector base to use: ``fixed``, the newest existing generation, or a new one (first key, or ``rotate``)."""
    if fixed:
        if rotate:
            raise ValueError("rotate: true needs automatically named selectors; to replace the key of selector %r, give a new selector" % fixed)
        if not is_selector(fixed) or fixed.endswith(ED25519_SUFFIX):
            raise ValueError("selector %r is not a valid selector (letters, digits and inner hyphens, not ending in %s)" % (fixed, ED25519_SUFFIX))
        return fixed
    if not re.fullmatch(r"[a-z][a-z0-9]{0,20}", prefix):
        raise ValueError("selector_prefix %r must be lower-case letters and digits, starting with a letter" % prefix)
    current = current_base(prefix, existing)
    if current is None or rotate:
        return next_base(prefix, current, year)
    return current
