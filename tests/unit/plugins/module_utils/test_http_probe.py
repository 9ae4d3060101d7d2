# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_http_probe against in-process HTTP and HTTPS servers on 127.0.0.1 (tests/unit/plugins/http_responder.py)."""

from __future__ import annotations

import asyncio
import datetime
import socket
import sys

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _http_probe
from ansible_collections.launchready.core.plugins.module_utils._http_probe import (
    ACCEPTED,
    REFUSED,
    UNTESTED,
    Certificate,
    HttpProbe,
    ProbeConfigError,
    Resolve,
)
from ansible_collections.launchready.core.tests.unit.plugins.http_responder import Pki, Site

WWW = "www.example.test"


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


@pytest.fixture
def sites():
    started: list[Site] = []

    def start(**kwargs) -> Site:
        site = Site.start(**kwargs)
        started.append(site)
        return site

    yield start
    for site in started:
        site.stop()


def probe(url, method="GET", tls_versions=(), **options):
    async def run():
        async with HttpProbe(**options) as prober:
            return await prober.probe(url, method, tls_versions)

    return asyncio.run(run())


def probe_all(urls, **options):
    async def run():
        async with HttpProbe(**options) as prober:
            return await asyncio.gather(*(prober.probe(url) for url in urls))

    return asyncio.run(run())


def on(site: Site, *hosts: str) -> Resolve:
    """``hosts`` on the default port of the site's scheme connect to the site."""
    return Resolve({(host, 443 if site.scheme == "https" else 80): ("127.0.0.1", site.port) for host in hosts})


# --- resolve ---------------------------------------------------------------------------------------


def test_resolve_entries_in_every_form():
    resolve = Resolve.parse(
        [
            "www.example.test:443:127.0.0.1:8443",
            "Example.Test.:80:192.0.2.1",
            "v6.example.test:443:[2001:db8::1]:8443",
            {"host": "api.example.test", "port": 443, "address": "127.0.0.2"},
            {"host": "app.example.test", "port": "443", "address": "127.0.0.3", "address_port": 9443},
            "*:8080:127.0.0.9:18080",
            "bücher.example.test:443:127.0.0.4",
        ]
    )
    assert resolve.target("xn--bcher-kva.example.test", 443) == ("127.0.0.4", 443), "names compare in their IDNA form, as they go on the wire"
    assert resolve.target("WWW.example.test", 443) == ("127.0.0.1", 8443)
    assert resolve.target("example.test", 80) == ("192.0.2.1", 80), "without a target port, the port stays"
    assert resolve.target("v6.example.test", 443) == ("2001:db8::1", 8443)
    assert resolve.target("api.example.test", 443) == ("127.0.0.2", 443)
    assert resolve.target("app.example.test", 443) == ("127.0.0.3", 9443)
    assert resolve.target("anything.example.net", 8080) == ("127.0.0.9", 18080), "* maps every name on its port"
    assert resolve.target("www.example.test", 80) == ("www.example.test", 80), "another port is not mapped"
    assert resolve.target("other.example.test", 443) == ("other.example.test", 443)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("www.example.test:443", "is not host:port:address"),
        ("www.example.test:https:127.0.0.1", "'https' is not a port number"),
        ("www.example.test:443:127.0.0.1:70000", "port 70000 is out of range"),
        ("www.example.test:443:[2001:db8::1", "unclosed ["),
        ({"host": "www.example.test", "port": 443}, "missing: address"),
        ({"host": "www.example.test", "port": 443, "address": "127.0.0.1", "ip": "x"}, "unknown: ip"),
        (443, "expected a string or a dict, got int"),
    ],
)
def test_resolve_refuses_malformed_entries(entry, message):
    with pytest.raises(ProbeConfigError, match="resolve\\[0\\]") as raised:
        Resolve.parse([entry])
    assert message in str(raised.value)


def test_resolve_sends_the_connection_elsewhere_and_keeps_host_and_sni(pki, sites):
    site = sites(tls=pki.leaf([WWW, "api.example.test"]))
    site.route("/", 200, body="www", host=WWW)
    site.route("/", 200, body="api", host="api.example.test")
    resolve = Resolve.parse(["*:443:127.0.0.1:%d" % site.port])
    www, api = probe_all(["https://%s/" % WWW, "https://api.example.test/"], resolve=resolve, ca_path=str(pki.ca_file))
    assert (www.answer.body, api.answer.body) == (b"www", b"api")
    assert www.hops[0].address == "127.0.0.1:%d" % site.port
    seen = {(request["host"], request["sni"]) for request in site.requests()}
    assert seen == {(WWW, WWW), ("api.example.test", "api.example.test")}, "names on one address keep their own Host, SNI and connection"
    assert www.tls.certificate.dns_names == [WWW, "api.example.test"] and www.tls.chain_verified is True


def test_resolve_for_plain_http_keeps_the_host_header(sites):
    site = sites()
    site.route("/health", 200, body="up")
    result = probe("http://app.example.test/health", resolve=Resolve.parse(["app.example.test:80:127.0.0.1:%d" % site.port]))
    assert result.answer.status == 200 and result.answer.body == b"up"
    assert [(r["method"], r["path"], r["host"], r["sni"]) for r in site.requests()] == [("GET", "/health", "app.example.test", None)]
    assert result.tls is None


# --- the redirect chain ----------------------------------------------------------------------------


def test_every_hop_of_a_chain_is_recorded_and_only_the_first_answer_is_kept(pki, sites):
    secure = sites(tls=pki.leaf([WWW]))
    plain = sites()
    plain.route("/", 301, [("Location", "https://%s/start" % WWW)], body="moved")
    secure.route("/start", 302, [("Location", "/end?x=1")])
    secure.route("/end?x=1", 200, [("Content-Type", "text/plain")], body="the end")
    resolve = Resolve.parse(["%s:80:127.0.0.1:%d" % (WWW, plain.port), "%s:443:127.0.0.1:%d" % (WWW, secure.port)])
    result = probe("http://%s/" % WWW, resolve=resolve, ca_path=str(pki.ca_file))
    assert [(hop.url, hop.status, hop.location) for hop in result.hops] == [
        ("http://%s/" % WWW, 301, "https://%s/start" % WWW),
        ("https://%s/start" % WWW, 302, "/end?x=1"),
        ("https://%s/end?x=1" % WWW, 200, None),
    ]
    assert result.redirects == 2 and result.chain_stop == ""
    assert result.answer.status == 301 and result.answer.body == b"moved" and result.answer.header("Location") == "https://%s/start" % WWW
    assert result.tls is None, "TLS facts belong to the URL asked, which is http"
    assert all(hop.address for hop in result.hops) and result.elapsed_ms >= 0


def test_a_redirect_loop_stops_at_the_first_repeat(sites):
    site = sites()
    site.route("/a", 301, [("Location", "/b")])
    site.route("/b", 302, [("Location", "/a")])
    result = probe(site.url("/a"))
    assert [hop.status for hop in result.hops] == [301, 302]
    assert result.chain_stop == "loop"
    assert [request["path"] for request in site.requests()] == ["/a", "/b"]


def test_a_chain_longer_than_the_limit_stops(sites):
    site = sites()
    for step in range(5):
        site.route("/%d" % step, 307, [("Location", "/%d" % (step + 1))])
    result = probe(site.url("/0"), max_redirects=2)
    assert result.chain_stop == "limit" and result.redirects == 3
    assert [request["path"] for request in site.requests()] == ["/0", "/1", "/2"]
    assert probe(site.url("/0"), max_redirects=5).chain_stop == ""


def test_a_redirect_to_a_dead_url_is_an_error_of_the_chain(sites):
    site = sites()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    site.route("/", 301, [("Location", "http://127.0.0.1:%d/" % dead_port)])
    result = probe(site.url("/"))
    assert result.chain_stop == "error" and result.answer.status == 301 and result.error == ""
    assert result.hops[-1].status is None and result.hops[-1].error.startswith("All connection attempts failed ([Errno 111]")


def test_methods_change_as_browsers_change_them(sites):
    site = sites()
    site.route("/form", 303, [("Location", "/done")])
    site.route("/old-form", 301, [("Location", "/done")])
    site.route("/keep", 307, [("Location", "/done")])
    site.route("/done", 200, body="ok")
    for path, method in (("/form", "POST"), ("/old-form", "POST"), ("/keep", "PUT"), ("/form", "HEAD")):
        probe(site.url(path), method)
    assert [(request["method"], request["path"]) for request in site.requests()] == [
        ("POST", "/form"), ("GET", "/done"),
        ("POST", "/old-form"), ("GET", "/done"),
        ("PUT", "/keep"), ("PUT", "/done"),
        ("HEAD", "/form"), ("HEAD", "/done"),
    ]  # fmt: skip


def test_a_url_that_does_not_answer(sites):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = probe("http://127.0.0.1:%d/" % port)
    assert result.answer is None and result.hops[0].status is None
    assert result.error.startswith("All connection attempts failed ([Errno 111]") and result.chain_stop == ""


def test_a_big_body_is_cut(sites, monkeypatch):
    monkeypatch.setattr(_http_probe, "MAX_BODY_BYTES", 1000)
    site = sites()
    site.route("/big", 200, body=b"x" * 5000)
    site.route("/small", 200, body=b"y" * 1000)
    big, small = probe_all([site.url("/big"), site.url("/small")])
    assert (len(big.answer.body), big.answer.truncated) == (1000, True)
    assert (len(small.answer.body), small.answer.truncated) == (1000, False)


def test_the_body_is_decoded_with_its_charset(sites):
    site = sites()
    site.route("/latin", 200, [("Content-Type", "text/html; charset=ISO-8859-1")], body="café".encode("latin-1"))
    site.route("/bogus", 200, [("Content-Type", "text/html; charset=no-such-charset")], body="café".encode())
    latin, bogus = probe_all([site.url("/latin"), site.url("/bogus")])
    assert latin.answer.text == "café" and bogus.answer.text == "café"


def test_concurrency_bounds_the_requests_in_flight(sites):
    site = sites()
    site.route("/", 200, body="ok")

    async def run():
        async with HttpProbe(concurrency=3) as prober:
            in_flight, peak = 0, 0
            original = prober._follow

            async def counting(result):
                nonlocal in_flight, peak
                in_flight += 1
                peak = max(peak, in_flight)
                await asyncio.sleep(0.02)
                await original(result)
                in_flight -= 1

            prober._follow = counting
            await asyncio.gather(*(prober.probe(site.url("/")) for _copy in range(12)))
            return peak

    assert asyncio.run(run()) == 3
    assert len(site.requests()) == 12


# --- TLS -------------------------------------------------------------------------------------------


def test_tls_facts_of_a_trusted_certificate(pki, sites):
    leaf = pki.leaf([WWW, "*.example.test"], days=30)
    site = sites(tls=leaf)
    site.route("/", 200)
    result = probe("https://%s/" % WWW, resolve=on(site, WWW), ca_path=str(pki.ca_file))
    tls = result.tls
    assert tls.host == WWW and tls.version in ("TLSv1.2", "TLSv1.3") and tls.cipher
    assert tls.chain_verified is True and tls.chain_error == ""
    cert = tls.certificate
    assert cert.subject == "CN=%s" % WWW and cert.issuer == "CN=Test Root CA"
    assert cert.dns_names == [WWW, "*.example.test"] and cert.ip_addresses == []
    assert abs((cert.not_after - leaf.not_after).total_seconds()) < 1
    assert 29.9 < cert.days_left() <= 30
    assert tls.as_dict()["certificate"]["days_left"] == 30.0


def test_a_certificate_from_another_ca_is_reported_not_refused(pki, sites, tmp_path):
    stranger = Pki(tmp_path, name="Stranger CA")
    site = sites(tls=stranger.leaf([WWW]))
    site.route("/", 200, body="served anyway")
    result = probe("https://%s/" % WWW, resolve=on(site, WWW), ca_path=str(pki.ca_file))
    assert result.answer.body == b"served anyway"
    assert result.tls.chain_verified is False and result.tls.chain_error == "unable to get local issuer certificate"
    assert result.tls.certificate.issuer == "CN=Stranger CA"


def test_an_expired_certificate_fails_the_chain(pki, sites):
    site = sites(tls=pki.leaf([WWW], expired=True))
    site.route("/", 200)
    result = probe("https://%s/" % WWW, resolve=on(site, WWW), ca_path=str(pki.ca_file))
    assert result.tls.chain_verified is False and result.tls.chain_error == "certificate has expired"
    assert result.tls.certificate.days_left() < 0


def test_the_chain_is_verified_without_the_host_name(pki, sites):
    site = sites(tls=pki.leaf(["other.example.test"]))
    site.route("/", 200)
    result = probe("https://%s/" % WWW, resolve=on(site, WWW), ca_path=str(pki.ca_file))
    assert result.tls.chain_verified is True, "a name mismatch is a separate problem"
    assert not result.tls.certificate.matches(WWW) and result.tls.certificate.matches("other.example.test")


def test_the_chain_is_verified_once_per_host(pki, sites):
    site = sites(tls=pki.leaf([WWW]))
    site.route("/", 200)
    results = probe_all(["https://%s/" % WWW] * 6, resolve=on(site, WWW), ca_path=str(pki.ca_file), concurrency=6)
    assert all(result.tls.chain_verified for result in results)
    assert len(site.requests()) == 6
    assert site.handshakes == 6 + 1, "one connection per concurrent request, plus one verifying handshake"


def test_tls_versions_below_the_minimum(pki, sites):
    strict = sites(tls=pki.leaf([WWW]), min_version="1.2")
    lax = sites(tls=pki.leaf([WWW]), min_version="1.0")
    for site in (strict, lax):
        site.route("/", 200)
    versions = ("1.0", "1.1")
    assert probe("https://%s/" % WWW, tls_versions=versions, resolve=on(strict, WWW), ca_path=str(pki.ca_file)).tls.versions == {
        "1.0": REFUSED, "1.1": REFUSED,
    }  # fmt: skip
    assert probe("https://%s/" % WWW, tls_versions=versions, resolve=on(lax, WWW), ca_path=str(pki.ca_file)).tls.versions == {
        "1.0": ACCEPTED, "1.1": ACCEPTED,
    }  # fmt: skip
    tls13 = sites(tls=pki.leaf([WWW]), min_version="1.3")
    tls13.route("/", 200)
    result = probe("https://%s/" % WWW, tls_versions=("1.0", "1.1", "1.2"), resolve=on(tls13, WWW), ca_path=str(pki.ca_file))
    assert result.tls.versions == {"1.0": REFUSED, "1.1": REFUSED, "1.2": REFUSED} and result.tls.version == "TLSv1.3"


def test_what_this_machine_cannot_try_is_untested_and_what_the_server_spoke_is_accepted(pki, sites, monkeypatch):
    site = sites(tls=pki.leaf([WWW]), min_version="1.0")
    site.route("/", 200)
    original = _http_probe._version_context

    def hardened(version):
        context = original(version)
        if version == "1.0":
            context.set_ciphers("ECDHE+AESGCM")  # ciphers of TLS 1.2 only: no ClientHello for TLS 1.0 can be made
        if version == "1.1":
            context.set_ciphers("DEFAULT:@SECLEVEL=2")  # the server answers in TLS 1.1, then this side refuses its SHA-1 signature
        return context

    monkeypatch.setattr(_http_probe, "_version_context", hardened)
    result = probe("https://%s/" % WWW, tls_versions=("1.0", "1.1"), resolve=on(site, WWW), ca_path=str(pki.ca_file))
    assert result.tls.versions == {"1.0": UNTESTED + ": this machine's OpenSSL cannot offer TLS 1.0 (NO_CIPHERS_AVAILABLE)", "1.1": ACCEPTED}
    assert site.handshakes == 2, "the request's and the verifying handshake; neither version attempt completed"


def test_an_unreadable_ca_bundle_is_a_config_error(tmp_path):
    bundle = tmp_path / "not-a-bundle.pem"
    bundle.write_text("not PEM")
    with pytest.raises(ProbeConfigError, match="cannot be read as a PEM CA bundle"):
        probe("https://%s/" % WWW, ca_path=str(bundle))
    with pytest.raises(ProbeConfigError, match="concurrency must be at least 1"):
        probe("https://%s/" % WWW, concurrency=0)


@pytest.mark.parametrize(
    ("names", "ips", "host", "matches"),
    [
        (["www.example.test"], [], "WWW.Example.Test.", True),
        (["*.example.test"], [], "app.example.test", True),
        (["*.example.test"], [], "example.test", False),
        (["*.example.test"], [], "a.b.example.test", False),
        (["*.example.test"], [], ".example.test", False),
        (["example.test"], [], "www.example.test", False),
        ([], ["127.0.0.1"], "127.0.0.1", True),
        ([], ["2001:db8::1"], "[2001:DB8:0::1]", True),
        (["127.0.0.1"], [], "127.0.0.1", False),
        (["xn--bcher-kva.example.test"], [], "Bücher.example.test", True),
    ],
)
def test_host_name_matching(names, ips, host, matches):
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = Certificate("CN=x", "CN=ca", names, ips, now, now)
    assert cert.matches(host) is matches


def test_a_missing_sniffio_is_looked_up_once(monkeypatch):
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.setattr(_http_probe.importlib.util, "find_spec", lambda name: None)
    _http_probe._skip_sniffio_lookups()
    assert sys.modules["sniffio"] is None
    with pytest.raises(ImportError):
        import sniffio  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel


def test_validity_of_certificates_from_older_cryptography():
    class Old:
        not_valid_before = datetime.datetime(2026, 1, 1)
        not_valid_after = datetime.datetime(2026, 4, 1)

    assert _http_probe._utc(Old(), "not_valid_after") == datetime.datetime(2026, 4, 1, tzinfo=datetime.timezone.utc)
