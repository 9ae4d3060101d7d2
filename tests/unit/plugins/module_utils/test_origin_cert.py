# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from ansible_collections.launchready.core.plugins.module_utils._origin_cert import (
    OriginCertError,
    generate_key,
    key_type_of,
    load_private_key,
    make_csr,
    normalise_hostnames,
    plan_certificate,
    read_certificate,
)

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


def certificate(key, hostnames, days_left):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(12345)
            .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=days_left))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
            .sign(key, hashes.SHA256()))
    return read_certificate(cert.public_bytes(serialization.Encoding.PEM))


def test_hostnames_are_normalised_and_checked():
    assert normalise_hostnames(["Example.com.", "*.example.com", "example.com"]) == ["example.com", "*.example.com"]
    for bad in (["a..b"], ["*.*.example.com"], ["-a.example.com"], ["localhost"], [""]):
        with pytest.raises(OriginCertError):
            normalise_hostnames(bad)


def test_key_types():
    assert key_type_of(generate_key("ecdsa")) == "ecdsa"
    assert key_type_of(generate_key("rsa")) == "rsa"
    assert key_type_of(ec.generate_private_key(ec.SECP384R1())) == "ecdsa-secp384r1"
    assert key_type_of(ed25519.Ed25519PrivateKey.generate()) != "ecdsa"


def test_a_garbage_key_file_is_refused_with_its_path():
    with pytest.raises(OriginCertError) as caught:
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", "/etc/ssl/private/origin.key")
    assert str(caught.value).startswith("/etc/ssl/private/origin.key is not a PEM private key")


def test_a_long_first_hostname_still_makes_a_csr():
    name = ("a" * 60) + ".example.com"
    csr = x509.load_pem_x509_csr(make_csr(generate_key("ecdsa"), [name]).encode())
    assert len(csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) <= 64
    assert csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [name]


def test_the_installed_certificate_is_read():
    key = generate_key("ecdsa")
    installed = certificate(key, ["b.example.com", "A.example.com"], 90)
    assert installed.hostnames == ("a.example.com", "b.example.com") and installed.certificate_id == "12345"
    assert installed.expires_on == "2030-04-01T00:00:00Z" and installed.days_left(NOW) == 90 and installed.matches(key)
    assert read_certificate(b"garbage") is None


@pytest.mark.parametrize("case, reasons, new_key", [
    ({}, [], False),
    ({"key": None, "key_present": False}, ["no_private_key"], True),
    ({"rotate_key": True}, ["rotate_key"], True),
    ({"key_type": "rsa"}, ["key_type_changed"], True),
    ({"installed": None, "certificate_present": False}, ["no_certificate"], False),
    ({"installed": None}, ["unreadable_certificate"], False),
    ({"hostnames": ["example.com"]}, ["hostnames_changed"], False),
    ({"renew_before_days": 31}, ["expiring"], False),
    ({"other_key": True}, ["key_mismatch"], False),
    ({"other_key": True, "rotate_key": True}, ["rotate_key"], True),  # the new key gets a new certificate anyway
    ({"hostnames": ["example.com"], "renew_before_days": 31}, ["hostnames_changed", "expiring"], False),
])
def test_renewal_reasons(case, reasons, new_key):
    key = generate_key("ecdsa")
    cert_key = generate_key("ecdsa") if case.pop("other_key", False) else key
    arguments = dict(key=key, key_present=True, installed=certificate(cert_key, ["example.com", "*.example.com"], 30), certificate_present=True,
                     hostnames=["*.example.com", "example.com"], key_type="ecdsa", renew_before_days=14, rotate_key=False, now=NOW)
    arguments.update(case)
    plan = plan_certificate(**arguments)
    assert plan.reasons == reasons and plan.new_key is new_key and plan.renew is bool(reasons)
