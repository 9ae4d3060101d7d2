# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DKIM: key records (RFC 6376, RFC 8463, RFC 8301), key generation, TXT splitting, selector rotation."""

from __future__ import annotations

import base64
from functools import cache

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ansible_collections.launchready.core.plugins.module_utils import _dkim
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK


@cache
def rsa_key(bits: int = 2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def titles(findings):
    return [(f.severity, f.title) for f in findings]


def test_rsa_txt_value_is_spki_base64():
    key = rsa_key()
    value = _dkim.txt_value(key)
    assert value.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # DER SubjectPublicKeyInfo of a 2048-bit key
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert value.endswith(base64.b64encode(spki).decode())
    record = _dkim.parse_key_record(value)
    assert (record.errors, record.key_type, record.bits) == ([], "rsa", 2048)
    assert _dkim.matches(record, key)


def test_ed25519_txt_value_is_the_raw_key():
    key = _dkim.generate("ed25519")
    value = _dkim.txt_value(key)
    raw = base64.b64decode(value.split("p=")[1])
    assert len(raw) == 32
    assert value.startswith("v=DKIM1; k=ed25519; p=")
    record = _dkim.parse_key_record(value)
    assert (record.errors, record.key_type, record.bits) == ([], "ed25519", 256)
    assert _dkim.matches(record, key)
    assert not _dkim.matches(record, _dkim.generate("ed25519"))


def test_pkcs1_rsa_public_key_is_accepted():
    key = rsa_key()
    pkcs1 = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    record = _dkim.parse_key_record("k=rsa; p=%s" % base64.b64encode(pkcs1).decode())
    assert record.errors == [] and record.bits == 2048
    assert _dkim.matches(record, key)


def test_whitespace_inside_p_is_ignored():
    value = _dkim.txt_value(rsa_key())
    head, data = value.split("p=")
    spaced = head + "p=" + " ".join(data[i:i + 60] for i in range(0, len(data), 60))
    assert _dkim.parse_key_record(spaced).bits == 2048


def test_private_pem_round_trip():
    for key in (rsa_key(), _dkim.generate("ed25519")):
        loaded = _dkim.load_private_pem(_dkim.private_pem(key))
        assert _dkim.public_bytes(loaded) == _dkim.public_bytes(key)
        assert _dkim.key_type_of(loaded) == _dkim.key_type_of(key)


def test_load_private_pem_refuses_other_keys():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ValueError, match="RSA or Ed25519"):
        _dkim.load_private_pem(pem)
    with pytest.raises(ValueError):
        _dkim.load_private_pem(b"not a key")


def test_split_txt():
    value = _dkim.txt_value(rsa_key())
    strings = _dkim.split_txt(value)
    assert len(value) > 255
    assert all(len(s.encode()) <= 255 for s in strings)
    assert "".join(strings) == value
    assert [len(s) for s in strings[:-1]] == [255] * (len(strings) - 1)
    assert _dkim.split_txt("short") == ["short"]


@pytest.mark.parametrize(
    "value, error",
    [
        ("v=DKIM2; p=abc", "the version must be DKIM1"),
        ("k=rsa; v=DKIM1; p=abc", "v=DKIM1 must be the first tag"),
        ("v=DKIM1; k=dsa; p=abc", "k=dsa is not a key type"),
        ("v=DKIM1; k=rsa", "the p= tag (public key) is missing"),
        ("v=DKIM1; p=!!!", "p= is not valid base64"),
        ("v=DKIM1; p=" + base64.b64encode(b"garbage").decode(), "does not decode to an RSA public key"),
        ("v=DKIM1; k=ed25519; p=" + base64.b64encode(b"x" * 31).decode(), "raw 32-byte public key, this one has 31 bytes"),
        ("v=DKIM1; p=a; p=b", "appears more than once"),
        ("v=DKIM1; nonsense", "is not tag=value"),
    ],
)
def test_invalid_key_records(value, error):
    record = _dkim.parse_key_record(value)
    assert any(error in e for e in record.errors), record.errors
    findings = _dkim.record_findings(record, "s._domainkey.example.com")
    assert titles(findings) == [(MUST_DO_NOW, "DKIM key s._domainkey.example.com is invalid")]
    assert "RFC 6376 section 3.6.1" in findings[0].evidence


def test_key_sizes():
    name = "s._domainkey.example.com"
    small = _dkim.parse_key_record(_dkim.txt_value(rsa_key(1024)))
    assert titles(_dkim.record_findings(small, name)) == [(CAN_WAIT, "DKIM key %s is RSA 1024 bits" % name), (OK, "DKIM key %s is published" % name)]
    assert "RFC 8301 section 3.2" in _dkim.record_findings(small, name)[0].evidence
    good = _dkim.parse_key_record(_dkim.txt_value(rsa_key()))
    assert titles(_dkim.record_findings(good, name, via="s.dkim.provider.example")) == [(OK, "DKIM key %s is published" % name)]
    assert "CNAME to s.dkim.provider.example" in _dkim.record_findings(good, name, via="s.dkim.provider.example")[0].evidence


def test_key_under_1024_bits_is_a_blocker():
    # cryptography refuses to generate keys under 1024 bits; build a 512-bit public key by hand
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

    modulus = (1 << 511) | 0x1F  # any odd 512-bit number will do for parsing
    public = RSAPublicNumbers(65537, modulus).public_key()
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = _dkim.parse_key_record("v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode())
    assert record.bits == 512
    findings = _dkim.record_findings(record, "s._domainkey.example.com")
    assert titles(findings) == [(MUST_DO_NOW, "DKIM key s._domainkey.example.com is RSA 512 bits")]


def test_revoked_testing_sha1_and_service():
    name = "s._domainkey.example.com"
    assert titles(_dkim.record_findings(_dkim.parse_key_record("v=DKIM1; p="), name)) == [(MUST_DO_NOW, "DKIM key %s is revoked" % name)]
    value = _dkim.txt_value(rsa_key())
    found = titles(_dkim.record_findings(_dkim.parse_key_record(value + "; h=sha1; s=other; t=y"), name))
    assert found == [(MUST_DO_NOW, "DKIM key %s only allows sha1" % name), (MUST_DO_NOW, "DKIM key %s is not for email" % name),
                     (CAN_WAIT, "DKIM key %s is in test mode" % name)]
    assert titles(_dkim.record_findings(_dkim.parse_key_record(value + "; h=sha1:sha256; s=email"), name)) == [
        (OK, "DKIM key %s is published" % name)]


@pytest.mark.parametrize("selector, ok", [("lr2026a", True), ("s1", True), ("a.b", True), ("-bad", False), ("bad_", False), ("", False)])
def test_is_selector(selector, ok):
    assert _dkim.is_selector(selector) is ok


def test_selector_rotation_names():
    assert _dkim.next_base("lr", None, 2026) == "lr2026a"
    assert _dkim.next_base("lr", "lr2026a", 2026) == "lr2026b"
    assert _dkim.next_base("lr", "lr2026z", 2026) == "lr2026aa"
    assert _dkim.next_base("lr", "lr2026az", 2026) == "lr2026ba"
    assert _dkim.next_base("lr", "lr2025c", 2026) == "lr2026a"
    assert _dkim.next_base("lr", "lr2027b", 2026) == "lr2027c"  # a clock behind the newest key never goes back
    assert _dkim.next_base("lr", "custom", 2026) == "lr2026a"
    assert _dkim.current_base("lr", ["lr2026a", "lr2026b-ed25519", "lr2025z", "lr2026aa", "other", "lr2026b"]) == "lr2026aa"
    assert _dkim.current_base("lr", ["other"]) is None
    assert _dkim.selector_for("lr2026a", "rsa") == "lr2026a"
    assert _dkim.selector_for("lr2026a", "ed25519") == "lr2026a-ed25519"
    assert _dkim.generation("lr", "lr2026b-ed25519") == (2026, 2)
    assert _dkim.generation("lr", "xx2026b") is None
