# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tiny authoritative DNS responder running in the test process (UDP and TCP on 127.0.0.1).

Used by the tests of _dns, _dns_expectations and dns_check:

    @pytest.fixture
    def responder():
        yield from responders()

    def test_something(responder):
        server = responder(chase=False)      # RECORDS of ZONE unless records= is given
        AsyncResolver([server.address])...
        assert server.questions() == [("udp", "example.test", "A", False)]
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

ZONE = "example.test"

RECORDS = [
    ("example.test", "NS", ["ns1.example.test.", "NS2.Example.Test."]),
    ("example.test", "SOA", ["ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300"]),
    ("example.test", "A", ["192.0.2.10"]),
    ("example.test", "MX", ["20 Mx2.Example.Test.", "10 mx1.example.test."]),
    ("example.test", "TXT", ['"v=spf1 include:_spf.mail.test " "-all"', '"google-site-verification=abc"']),
    ("www.example.test", "CNAME", ["example.test."]),
    ("app.example.test", "CNAME", ["www.example.test."]),
    ("v6.example.test", "AAAA", ["2001:DB8:0:0::1"]),
    ("txt-only.example.test", "TXT", ['"hello"']),
    ("outside.example.test", "CNAME", ["edge.other.test."]),
    ("dangling.example.test", "CNAME", ["gone.example.test."]),
    ("loop-a.example.test", "CNAME", ["loop-b.example.test."]),
    ("loop-b.example.test", "CNAME", ["loop-a.example.test."]),
    ("self.example.test", "CNAME", ["self.example.test."]),
    ("big.example.test", "TXT", ['"%s"' % ("x%02d" % i * 60)[:250] for i in range(12)]),
]
OTHER_ZONE = [("edge.other.test", "A", ["198.51.100.7"])]


@dataclass
class Responder:
    """An authoritative server for ``records``: UDP and TCP on one port, every question logged."""

    records: list[tuple[str, str, list[str]]]
    # Follow in-zone CNAMEs inside one response, as most authoritative servers do.
    chase: bool = True
    # UDP answers for these names come back truncated (TC, empty), so the client must use TCP.
    truncate: set[str] = field(default_factory=set)
    # Questions about these names are never answered.
    silent: set[str] = field(default_factory=set)
    # Questions about these names get this rcode.
    rcodes: dict[str, int] = field(default_factory=dict)
    zones: tuple[str, ...] = (ZONE,)
    log: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        for name, rdtype, values in self.records:
            rrset = dns.rrset.from_text_list(name + ".", 300, "IN", rdtype, values)
            self.data[(rrset.name, rrset.rdtype)] = rrset
        self.names = {key[0] for key in self.data}
        self.udp, self.tcp = _bind_udp_and_tcp()
        self.port = self.udp.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True), threading.Thread(target=self._serve_tcp, daemon=True)]
        for thread in self._threads:
            thread.start()

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.port

    def close(self) -> None:
        self._stop.set()
        self.udp.close()
        self.tcp.close()

    def questions(self) -> list[tuple[str, str, str, bool]]:
        """(transport, name, type, recursion desired) of every question so far."""
        return list(self.log)

    def publish(self, name: str, rdtype: str, values: list[str]) -> None:
        """Add or replace the ``rdtype`` records at ``name`` (TTL 300) while the server runs."""
        rrset = dns.rrset.from_text_list(name + ".", 300, "IN", rdtype, values)
        self.data[(rrset.name, rrset.rdtype)] = rrset
        self.names.add(rrset.name)

    def _answer(self, wire: bytes, transport: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        qname = question.name.to_text(omit_final_dot=True).lower()
        self.log.append((transport, qname, dns.rdatatype.to_text(question.rdtype), bool(query.flags & dns.flags.RD)))
        if qname in self.silent:
            return None
        response = dns.message.make_response(query)
        if qname in self.rcodes:
            response.set_rcode(self.rcodes[qname])
            return response.to_wire()
        if not any(question.name.is_subdomain(dns.name.from_text(zone)) for zone in self.zones):
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        response.flags |= dns.flags.AA
        if transport == "udp" and qname in self.truncate:
            response.flags |= dns.flags.TC
            return response.to_wire()
        max_size = 65535 if transport == "tcp" else query.payload
        name = question.name
        while True:
            rrset = self.data.get((name, question.rdtype))
            if rrset is not None:
                response.answer.append(rrset)
                break
            cname = self.data.get((name, dns.rdatatype.CNAME))
            if cname is None:
                if name not in self.names:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                break
            response.answer.append(cname)
            name = cname[0].target
            in_zone = any(name.is_subdomain(dns.name.from_text(zone)) for zone in self.zones)
            if not self.chase or not in_zone:
                break
            if any(rr.name == name for rr in response.answer):
                # A loop: like BIND (and the lab), answer SERVFAIL with the chain so far.
                response.set_rcode(dns.rcode.SERVFAIL)
                break
        if not response.answer:
            soa = self.data[(dns.name.from_text(self.zones[0]), dns.rdatatype.SOA)]
            response.authority.append(soa)
        return response.to_wire(max_size=max_size)

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            reply = self._answer(wire, "udp")
            if reply is not None:
                try:
                    self.udp.sendto(reply, peer)
                except OSError:
                    return

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _peer = self.tcp.accept()
            except OSError:
                return
            with conn:
                length = struct.unpack("!H", _recv_exactly(conn, 2))[0]
                reply = self._answer(_recv_exactly(conn, length), "tcp")
                if reply is not None:
                    conn.sendall(struct.pack("!H", len(reply)) + reply)


def _bind_udp_and_tcp(tries: int = 50) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on one free port of 127.0.0.1.

    The port the system gives the UDP socket may be in use for TCP (by another test's connection,
    when tests run in parallel): then try another port.
    """
    for _try in range(tries):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        return udp, tcp
    raise OSError("no port of 127.0.0.1 was free for both UDP and TCP in %d tries" % tries)


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def responders() -> Iterator[Callable[..., Responder]]:
    """The body of a pytest fixture: a function that starts a Responder (RECORDS unless ``records=``), all closed after the test."""
    servers: list[Responder] = []

    def start(**kwargs) -> Responder:
        server = Responder(kwargs.pop("records", RECORDS), **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
