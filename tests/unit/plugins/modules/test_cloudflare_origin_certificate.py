# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import json
import os
import stat

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.launchready.core.plugins.modules import cloudflare_origin_certificate
from ansible_collections.launchready.core.tests.unit.plugins.fake_cloudflare import ANY, FakeCloudflare, envelope, fake_token, run_module

HOSTNAMES = ("example.com", "*.example.com")
NOW = datetime.datetime.now(datetime.timezone.utc)


class OriginCA:
    """A throwaway CA that signs like Cloudflare's Origin CA: the SAN is the hostnames asked for, not the CSR's."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Origin CA")])
        self.name = name
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(days=1))
                     .not_valid_after(NOW + datetime.timedelta(days=9000))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(self.key, hashes.SHA256()))

    def issue(self, public_key, hostnames, days, serial=None) -> x509.Certificate:
        return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CloudFlare Origin Certificate")]))
                .issuer_name(self.name).public_key(public_key).serial_number(serial or x509.random_serial_number())
                .not_valid_before(NOW - datetime.timedelta(hours=1)).not_valid_after(NOW + datetime.timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False).sign(self.key, hashes.SHA256()))


class SigningFake(FakeCloudflare):
    """The scripted fake, answering POST /certificates with a certificate signed for the CSR it was sent."""

    def __init__(self, token, ca: OriginCA):
        super().__init__(token)
        self.ca = ca
        self.issued: list[x509.Certificate] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = super().handle(request)
        if request.method != "POST" or response.status_code != 200:
            return response
        body = json.loads(request.content)
        csr = x509.load_pem_x509_csr(body["csr"].encode())
        assert csr.is_signature_valid
        cert = self.ca.issue(csr.public_key(), body["hostnames"], body["requested_validity"])
        self.issued.append(cert)
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        result = {"id": str(cert.serial_number), "certificate": pem, "hostnames": body["hostnames"], "request_type": body["request_type"],
                  "requested_validity": body["requested_validity"], "csr": body["csr"],
                  "expires_on": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return httpx.Response(200, json=envelope(result))


@pytest.fixture
def token():
    return fake_token()


@pytest.fixture(scope="module")
def ca():
    return OriginCA()


@pytest.fixture
def fake(token, ca):
    return SigningFake(token, ca)


@pytest.fixture
def paths(tmp_path):
    return {"private_key_path": str(tmp_path / "origin.key"), "certificate_path": str(tmp_path / "origin.pem")}


@pytest.fixture
def run(monkeypatch, capsys, fake, token, paths):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)

    def run(check_mode=False, diff=False, **options):
        args = dict(api_token=token, hostnames=list(options.pop("hostnames", HOSTNAMES)), **paths)
        args.update(options)
        result = run_module(monkeypatch, capsys, cloudflare_origin_certificate, args, fake, check_mode=check_mode, diff=diff)
        text = json.dumps(result)
        assert token not in text, "the API token leaked into the result"
        assert "PRIVATE KEY" not in text, "the private key leaked into the result"
        return result

    return run


def expect_request(fake):
    fake.expect("POST", "/certificates", json=ANY, result={})


def sent(fake) -> dict:
    return fake.calls[-1].json


def key_on_disk(paths):
    with open(paths["private_key_path"], "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), password=None)


def cert_on_disk(paths) -> x509.Certificate:
    with open(paths["certificate_path"], "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def content(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def public_der(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def install(paths, ca, key, hostnames=HOSTNAMES, days=5475, key_mode=0o600, cert_mode=0o644):
    with open(paths["private_key_path"], "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    os.chmod(paths["private_key_path"], key_mode)
    cert = ca.issue(key.public_key(), hostnames, days)
    with open(paths["certificate_path"], "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(paths["certificate_path"], cert_mode)
    return cert


def test_a_first_run_generates_the_key_requests_and_installs(run, fake, paths):
    expect_request(fake)
    result = run(diff=True)
    fake.assert_done()
    assert result["changed"] is True and "failed" not in result and result["api_calls"] == 1
    assert result["renewed_because"] == ["no_private_key", "no_certificate"] and result["key_replaced"] is True
    body = sent(fake)
    assert body["hostnames"] == list(HOSTNAMES) and body["requested_validity"] == 5475 and body["request_type"] == "origin-ecc"
    csr = x509.load_pem_x509_csr(body["csr"].encode())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.com"
    assert csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == list(HOSTNAMES)
    key = key_on_disk(paths)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert public_der(key) == public_der(csr) and mode(paths["private_key_path"]) == 0o600
    cert = cert_on_disk(paths)
    assert cert.serial_number == fake.issued[0].serial_number and mode(paths["certificate_path"]) == 0o644
    assert result["certificate_id"] == str(cert.serial_number) and result["hostnames"] == sorted(HOSTNAMES)
    assert result["expires_on"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ") and result["key_type"] == "ecdsa"
    assert result["diff"]["before"] == {} and result["diff"]["after"]["certificate_id"] == result["certificate_id"]
    assert result["diff"]["after"]["key"] == "ecdsa " + result["key_fingerprint"]
    assert not [name for name in os.listdir(os.path.dirname(paths["certificate_path"])) if name.endswith(".tmp")]


def test_a_second_run_makes_no_call_and_changes_nothing(run, fake, paths):
    expect_request(fake)
    first = run()
    key_bytes = content(paths["private_key_path"])
    second = run(diff=True)
    fake.assert_done()
    assert second["changed"] is False and second["api_calls"] == 0 and len(fake.calls) == 1
    assert second["renewed_because"] == [] and second["certificate_id"] == first["certificate_id"]
    assert second["key_fingerprint"] == first["key_fingerprint"] and content(paths["private_key_path"]) == key_bytes
    assert second["diff"]["before"] == second["diff"]["after"]


def test_check_mode_makes_no_call_and_writes_nothing(run, fake, paths):
    result = run(check_mode=True, diff=True)
    assert result["changed"] is True and fake.calls == [] and result["api_calls"] == 0
    assert result["renewed_because"] == ["no_private_key", "no_certificate"] and result["certificate_id"] is None
    assert not os.path.exists(paths["private_key_path"]) and not os.path.exists(paths["certificate_path"])
    assert result["diff"]["after"]["key"] == "ecdsa (new key)"


def test_changed_hostnames_renew_with_the_same_key(run, fake, paths, ca):
    key = ec.generate_private_key(ec.SECP256R1())
    install(paths, ca, key, hostnames=["example.com"])
    key_bytes = content(paths["private_key_path"])
    expect_request(fake)
    result = run(validity_days=365)
    fake.assert_done()
    assert result["changed"] is True and result["renewed_because"] == ["hostnames_changed"] and result["key_replaced"] is False
    assert content(paths["private_key_path"]) == key_bytes
    assert sent(fake)["requested_validity"] == 365
    assert public_der(x509.load_pem_x509_csr(sent(fake)["csr"].encode())) == public_der(key)
    assert result["hostnames"] == sorted(HOSTNAMES)


def test_hostnames_are_compared_as_a_set_without_case(run, fake, paths, ca):
    install(paths, ca, ec.generate_private_key(ec.SECP256R1()))
    result = run(hostnames=["*.EXAMPLE.com", "example.com.", "example.com"])
    assert result["changed"] is False and fake.calls == []


def test_a_certificate_close_to_expiry_is_renewed_with_the_same_key(run, fake, paths, ca):
    key = ec.generate_private_key(ec.SECP256R1())
    install(paths, ca, key, days=10)
    assert run(renew_before_days=7)["changed"] is False and fake.calls == []
    expect_request(fake)
    result = run(renew_before_days=30)
    fake.assert_done()
    assert result["renewed_because"] == ["expiring"] and result["key_replaced"] is False
    assert public_der(key_on_disk(paths)) == public_der(key)
    assert cert_on_disk(paths).not_valid_after_utc > NOW + datetime.timedelta(days=5000)


def test_a_new_key_type_replaces_key_and_certificate(run, fake, paths, ca):
    install(paths, ca, ec.generate_private_key(ec.SECP256R1()))
    expect_request(fake)
    result = run(key_type="rsa")
    fake.assert_done()
    assert result["renewed_because"] == ["key_type_changed"] and result["key_replaced"] is True and result["key_type"] == "rsa"
    assert sent(fake)["request_type"] == "origin-rsa"
    key = key_on_disk(paths)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048 and mode(paths["private_key_path"]) == 0o600


def test_rotate_key_replaces_the_key(run, fake, paths, ca):
    old = ec.generate_private_key(ec.SECP256R1())
    install(paths, ca, old)
    expect_request(fake)
    result = run(rotate_key=True)
    fake.assert_done()
    assert result["renewed_because"] == ["rotate_key"] and public_der(key_on_disk(paths)) != public_der(old)


def test_a_certificate_for_another_key_is_replaced_and_the_key_kept(run, fake, paths, ca):
    key = ec.generate_private_key(ec.SECP256R1())
    install(paths, ca, ec.generate_private_key(ec.SECP256R1()))
    with open(paths["private_key_path"], "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    expect_request(fake)
    result = run()
    fake.assert_done()
    assert result["renewed_because"] == ["key_mismatch"] and public_der(key_on_disk(paths)) == public_der(key)
    assert cert_on_disk(paths).public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == public_der(key)


def test_an_unreadable_certificate_is_replaced(run, fake, paths, ca):
    install(paths, ca, ec.generate_private_key(ec.SECP256R1()))
    with open(paths["certificate_path"], "w") as handle:
        handle.write("not a certificate\n")
    expect_request(fake)
    assert run()["renewed_because"] == ["unreadable_certificate"]
    fake.assert_done()


def test_loose_modes_are_fixed_without_a_call(run, fake, paths, ca):
    install(paths, ca, ec.generate_private_key(ec.SECP256R1()), key_mode=0o644, cert_mode=0o600)
    checked = run(check_mode=True, diff=True)
    assert checked["changed"] is True and mode(paths["private_key_path"]) == 0o644
    assert checked["diff"]["after"]["key_file"] == "mode 0600"
    result = run()
    assert result["changed"] is True and fake.calls == [] and result["renewed_because"] == []
    assert result["attributes_fixed"] == [{"path": paths["private_key_path"], "fixed": ["mode"]}, {"path": paths["certificate_path"], "fixed": ["mode"]}]
    assert mode(paths["private_key_path"]) == 0o600 and mode(paths["certificate_path"]) == 0o644
    assert run()["changed"] is False


def test_a_refused_request_writes_nothing(run, fake, paths):
    fake.expect("POST", "/certificates", json=ANY, status=403, errors=[{"code": 1010, "message": "User is not authorized"}])
    result = run()
    fake.assert_done()
    assert result["failed"] is True and result["changed"] is False and result["api_calls"] == 1
    assert "requesting the certificate failed: POST /certificates failed with HTTP 403: 1010 User is not authorized" in result["msg"]
    assert not os.path.exists(paths["private_key_path"]) and not os.path.exists(paths["certificate_path"])


def test_an_encrypted_key_is_not_replaced(run, fake, paths):
    key = ec.generate_private_key(ec.SECP256R1())
    with open(paths["private_key_path"], "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    before = content(paths["private_key_path"])
    result = run()
    assert result["failed"] is True and "protected by a passphrase" in result["msg"] and fake.calls == []
    assert content(paths["private_key_path"]) == before


@pytest.mark.parametrize("options, message", [
    ({"hostnames": ["exa mple.com"]}, "hostnames: 'exa mple.com' is not a host name"),
    ({"hostnames": []}, "hostnames: give at least one host name"),
    ({"renew_before_days": 30, "validity_days": 30}, "renew_before_days (30) must be from 0 to less than validity_days (30)"),
    ({"renew_before_days": -1}, "renew_before_days (-1) must be from 0"),
    ({"certificate_path": "/nonexistent-dir/origin.pem"}, "certificate_path: the directory /nonexistent-dir does not exist"),
    ({"validity_days": 100}, "value of validity_days must be one of"),
    ({"owner": "no-such-user-launchready"}, "owner 'no-such-user-launchready' does not exist on this host"),
])
def test_bad_input_fails_before_any_call_or_write(run, fake, paths, options, message):
    result = run(**options)
    assert result["failed"] is True and message in result["msg"] and fake.calls == []
    assert not os.path.exists(paths["private_key_path"])


def test_the_same_path_twice_is_refused(run, fake, paths):
    result = run(certificate_path=paths["private_key_path"])
    assert result["failed"] is True and "two different files" in result["msg"] and fake.calls == []
