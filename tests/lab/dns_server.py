# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authoritative DNS over UDP and TCP for the emulator's zones, answering from the live state.

What a client sees, as from Cloudflare's name servers:
- AA on every answer inside a zone; REFUSED (without AA) for a name outside every zone;
- SOA and NS at the apex (NS = the zone's ``name_servers``), the records of the zone elsewhere;
- NXDOMAIN for a name that does not exist; NOERROR with no answer and the SOA in the authority
  section (NODATA) for a name that exists without that type, including a name that exists only
  because deeper names do (an empty non-terminal); wildcard records (``*.example``) per RFC 4592;
- a CNAME is answered with the chain followed as long as it stays inside the zone (RFC 6604 rcode);
- a proxied A/AAAA/CNAME name answers A and AAAA with the lab edge's addresses, never its content;
- TXT content longer than 255 bytes is split into 255-byte strings, and Cloudflare-style quoted
  content (``"a" "b"``) is served as those strings;
- a UDP answer larger than 512 bytes, or than the EDNS size the client offered, is truncated with TC;
- every answer can be delayed (``dns_delay_ms``). TTL 1 (automatic) is served as 300 seconds.
Delegations (NS records below the apex) are served as plain records, not as referrals.
"""

from __future__ import annotations

import contextlib
import socketserver
import struct
import threading
import time
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CAA
import dns.rdtypes.ANY.TXT
import dns.rrset

from tests.lab.state import LabState, ZoneView

AUTO_TTL_SECONDS = 300
EDGE_TTL = 300
NS_TTL = 86400
SOA_TTL = 1800
SOA_TIMERS = (10000, 2400, 604800, 1800)  # refresh, retry, expire, minimum: Cloudflare's values
MAX_CNAME_CHAIN = 8
EDNS_PAYLOAD = 1232
CLASSIC_UDP_LIMIT = 512
TCP_IDLE_SECONDS = 10

IN = dns.rdataclass.IN


def txt_strings(content: str) -> list[bytes]:
    """The character-strings of a TXT record: quoted pieces as written, each cut to 255 bytes."""
    pieces = _quoted_pieces(content.strip()) if content.strip().startswith('"') else None
    strings: list[bytes] = []
    for piece in pieces if pieces is not None else [content]:
        raw = piece.encode("utf-8")
        strings += [raw[start:start + 255] for start in range(0, len(raw), 255)] or [b""]
    return strings


def _quoted_pieces(text: str) -> list[str] | None:
    """``"a" "b c"`` -> ["a", "b c"] (with \\" and \\\\ escapes); None when the text is not only quoted strings."""
    pieces: list[str] = []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        if text[index] != '"':
            return None
        index += 1
        piece = []
        while index < len(text) and text[index] != '"':
            if text[index] == "\\" and index + 1 < len(text):
                index += 1
            piece.append(text[index])
            index += 1
        if index >= len(text):
            return None
        pieces.append("".join(piece))
        index += 1
    return pieces


def _dotted(host: str) -> str:
    return host if host.endswith(".") else host + "."


def record_rdata(record: dict[str, Any]) -> dns.rdata.Rdata | None:
    """The wire form of one stored record (None for a type the lab does not serve)."""
    kind = record["type"]
    content = record.get("content") or ""
    rdtype = dns.rdatatype.from_text(kind)
    try:
        if kind == "TXT":
            return dns.rdtypes.ANY.TXT.TXT(IN, rdtype, txt_strings(content))
        if kind in ("CNAME", "NS", "PTR"):
            return dns.rdata.from_text(IN, rdtype, _dotted(content))
        if kind == "MX":
            return dns.rdata.from_text(IN, rdtype, "%d %s" % (record["priority"], _dotted(content)))
        if kind == "SRV":
            data = record["data"]
            return dns.rdata.from_text(IN, rdtype, "%d %d %d %s" % (data["priority"], data["weight"], data["port"], _dotted(data["target"])))
        if kind == "CAA":
            data = record["data"]
            return dns.rdtypes.ANY.CAA.CAA(IN, rdtype, data["flags"], data["tag"].encode(), data["value"].encode())
        return dns.rdata.from_text(IN, rdtype, content)
    except (dns.exception.DNSException, KeyError, TypeError, ValueError):
        return None


class Resolver:
    """Answers one question from one zone view."""

    def __init__(self, view: ZoneView, edge: dict[str, str]):
        self.view = view
        self.edge = edge
        self.origin = view.name
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        for record in view.records:
            self.by_name.setdefault(record["name"], []).append(record)
        self.existing = {self.origin}
        for name in self.by_name:
            labels = name.split(".")
            for start in range(len(labels)):
                ancestor = ".".join(labels[start:])
                if ancestor == self.origin:
                    break
                self.existing.add(ancestor)

    def in_zone(self, name: str) -> bool:
        return name == self.origin or name.endswith("." + self.origin)

    def soa(self) -> dns.rrset.RRset:
        mname = _dotted(self.view.name_servers[0]) if self.view.name_servers else "ns." + self.origin + "."
        text = "%s hostmaster.%s. %d %d %d %d %d" % ((mname, self.origin, self.view.serial % 2 ** 32, *SOA_TIMERS))
        return dns.rrset.from_text(self.origin + ".", SOA_TTL, IN, "SOA", text)

    def lookup(self, name: str) -> list[dict[str, Any]] | None:
        """Records owned by ``name`` (or synthesised from a wildcard); None when the name does not exist."""
        if name in self.existing:
            return self.by_name.get(name, [])
        labels = name.split(".")
        for start in range(1, len(labels)):
            encloser = ".".join(labels[start:])
            if encloser in self.existing:
                return self.by_name.get("*." + encloser)
        return None

    def answer(self, qname: dns.name.Name, qtype: int) -> tuple[int, list[dns.rrset.RRset], list[dns.rrset.RRset]]:
        """(rcode, answer section, authority section)."""
        answers: list[dns.rrset.RRset] = []
        owner = qname
        for _hop in range(MAX_CNAME_CHAIN):
            name = owner.to_text(omit_final_dot=True).lower()
            if not self.in_zone(name):
                return dns.rcode.NOERROR, answers, []
            found = self.lookup(name)
            if found is None:
                return dns.rcode.NXDOMAIN, answers, [self.soa()]
            proxied = any(record["proxied"] for record in found if record["type"] in ("A", "AAAA", "CNAME"))
            if proxied and qtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                edge = self.edge.get("ipv4" if qtype == dns.rdatatype.A else "ipv6")
                if not edge:
                    return dns.rcode.NOERROR, answers, [self.soa()]
                answers.append(dns.rrset.from_text(owner, EDGE_TTL, IN, dns.rdatatype.to_text(qtype), edge))
                return dns.rcode.NOERROR, answers, []
            cnames = [record for record in found if record["type"] == "CNAME"]
            if cnames and qtype != dns.rdatatype.CNAME:
                if proxied:
                    return dns.rcode.NOERROR, answers, [self.soa()]
                answers.append(self._rrset(owner, cnames[:1]))
                owner = dns.name.from_text(_dotted(cnames[0]["content"]))
                continue
            if qtype == dns.rdatatype.ANY:
                # RFC 8482, as Cloudflare answers ANY.
                answers.append(dns.rrset.from_text(owner, 3789, IN, "HINFO", '"RFC8482" ""'))
                return dns.rcode.NOERROR, answers, []
            rrset = self._apex_rrset(name, owner, qtype)
            if rrset is None:
                matching = [record for record in found if dns.rdatatype.from_text(record["type"]) == qtype and not (proxied and record["type"] == "CNAME")]
                rrset = self._rrset(owner, matching) if matching else None
            if rrset is None:
                return dns.rcode.NOERROR, answers, [self.soa()]
            answers.append(rrset)
            return dns.rcode.NOERROR, answers, []
        return dns.rcode.SERVFAIL, answers, []

    def _apex_rrset(self, name: str, owner: dns.name.Name, qtype: int) -> dns.rrset.RRset | None:
        if name != self.origin:
            return None
        if qtype == dns.rdatatype.SOA:
            soa = self.soa()
            return dns.rrset.from_rdata_list(owner, soa.ttl, list(soa))
        if qtype == dns.rdatatype.NS and self.view.name_servers:
            return dns.rrset.from_text_list(owner, NS_TTL, IN, "NS", [_dotted(ns) for ns in self.view.name_servers])
        return None

    @staticmethod
    def _rrset(owner: dns.name.Name, records: list[dict[str, Any]]) -> dns.rrset.RRset | None:
        rdatas = [rdata for rdata in (record_rdata(record) for record in records) if rdata is not None]
        if not rdatas:
            return None
        ttl = min(AUTO_TTL_SECONDS if record["ttl"] == 1 else record["ttl"] for record in records)
        return dns.rrset.from_rdata_list(owner, ttl, rdatas)


def respond(wire: bytes, state: LabState, edge: dict[str, str], udp: bool) -> bytes | None:
    """The wire answer to one query (None: drop it, it is not a DNS message)."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None
    if query.flags & dns.flags.QR:
        return None
    response = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    response.flags &= ~dns.flags.RA
    if query.opcode() != dns.opcode.QUERY:
        response.set_rcode(dns.rcode.NOTIMP)
    elif len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
    else:
        question = query.question[0]
        view = state.dns_view(question.name.to_text(omit_final_dot=True)) if question.rdclass == IN else None
        if view is None:
            response.set_rcode(dns.rcode.REFUSED)
        else:
            rcode, answers, authority = Resolver(view, edge).answer(question.name, question.rdtype)
            response.flags |= dns.flags.AA
            response.set_rcode(rcode)
            response.answer = answers
            response.authority = authority
    delay = state.dns_delay_ms
    if delay:
        time.sleep(delay / 1000.0)
    limit = 65535
    if udp:
        limit = max(CLASSIC_UDP_LIMIT, query.payload) if query.edns >= 0 else CLASSIC_UDP_LIMIT
    return response.to_wire(max_size=limit, prefer_truncation=True)


class _UDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], lab: DnsServer):
        super().__init__(address, _UDPHandler)
        self.lab = lab


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], lab: DnsServer):
        super().__init__(address, _TCPHandler)
        self.lab = lab


class _UDPHandler(socketserver.BaseRequestHandler):
    server: _UDPServer

    def handle(self) -> None:
        data, sock = self.request
        lab = self.server.lab
        reply = respond(data, lab.state, lab.edge, udp=True)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TCPHandler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        lab = self.server.lab
        self.request.settimeout(TCP_IDLE_SECONDS)
        with contextlib.suppress(OSError):
            while True:
                header = self._read(2)
                if header is None:
                    return
                query = self._read(struct.unpack("!H", header)[0])
                if query is None:
                    return
                reply = respond(query, lab.state, lab.edge, udp=False)
                if reply is None:
                    return
                self.request.sendall(struct.pack("!H", len(reply)) + reply)

    def _read(self, size: int) -> bytes | None:
        chunks = b""
        while len(chunks) < size:
            chunk = self.request.recv(size - len(chunks))
            if not chunk:
                return None
            chunks += chunk
        return chunks


class DnsServer:
    """UDP and TCP listeners on the same free port of ``host``."""

    def __init__(self, state: LabState, edge: dict[str, str], host: str = "127.0.0.1"):
        self.state = state
        self.edge = edge
        self.host = host
        self.port = 0
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> int:
        for _attempt in range(20):
            udp = _UDPServer((self.host, 0), self)
            port = udp.server_address[1]
            try:
                tcp = _TCPServer((self.host, port), self)
            except OSError:
                udp.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            break
        else:
            raise OSError("no port free for both UDP and TCP on %s" % self.host)
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, name="lab-dns-%s" % type(server).__name__, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.port

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
