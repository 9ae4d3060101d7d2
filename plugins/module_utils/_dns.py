# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one DNS client: ask nameservers directly, asynchronously, and say what they said.

``AsyncResolver`` either asks the given nameservers directly (authoritative checks: recursion not
desired, UDP first and TCP when the answer is truncated) or, without nameservers, the system's
recursive resolvers. ``query`` never raises for what a nameserver can answer or fail to answer
(NXDOMAIN, no data, SERVFAIL, REFUSED, timeouts): the ``rcode`` of the returned ``Answer`` says it,
and ``error`` explains anything that is not a plain DNS answer (timeouts, refused connections,
CNAME loops, referrals). CNAME chains are followed within one response and, when a server stops
at a name it did not answer, with further queries to the same servers.

Values are in a normalised presentation form so that they compare as strings: the strings of one
TXT record joined into one string, names lowercase without the trailing dot, ``MX`` as
``"10 mx.example.com"``, IPv6 addresses compressed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import traceback
from dataclasses import dataclass
from typing import Any

try:
    import dns.asyncquery
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.resolver
except ImportError:
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None

NOERROR = "NOERROR"
NXDOMAIN = "NXDOMAIN"
SERVFAIL = "SERVFAIL"
REFUSED = "REFUSED"
TIMEOUT = "TIMEOUT"

# Resolvers give up on longer chains too (dnspython and BIND use the same bound).
MAX_CNAME_CHAIN = 16
# EDNS buffer size recommended by DNS Flag Day 2020: large answers come back truncated and go over TCP.
EDNS_PAYLOAD = 1232

_NAME_TYPES = ("CNAME", "DNAME", "NS", "PTR")
_TXT_TYPES = ("TXT", "SPF")


class DnsConfigError(ValueError):
    """A nameserver specification, name or record type that cannot be used."""


@dataclass
class Answer:
    name: str
    rdtype: str
    rcode: str
    values: list[str]
    ttl: int | None
    cname_chain: list[str]
    # Why there is no plain answer (timeout, connection refused, CNAME loop, referral); empty otherwise.
    error: str = ""


@dataclass(frozen=True)
class _Server:
    label: str
    host: str
    port: int
    is_address: bool


def parse_nameserver(spec: str) -> _Server:
    """``"host"``, ``"host:port"``, ``"[v6]"``, ``"[v6]:port"`` or a bare IPv6 address; port 53 by default."""
    text = spec.strip()
    port = "53"
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise DnsConfigError("nameserver %r: write an IPv6 address with a port as [address]:port" % spec)
        if rest:
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text
    if not host:
        raise DnsConfigError("nameserver %r has no host" % spec)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise DnsConfigError("nameserver %r: port must be a number from 1 to 65535" % spec)
    try:
        ipaddress.ip_address(host)
        is_address = True
    except ValueError:
        is_address = False
    return _Server(label=text, host=host.lower().rstrip(".") if not is_address else host, port=int(port), is_address=is_address)


def name_text(name: dns.name.Name) -> str:
    """A name as this module presents it: lowercase, no trailing dot."""
    return name.to_text(omit_final_dot=True).lower()


def rdata_text(rdata: Any) -> str:
    """One record's value (a dnspython rdata of any type) in the normalised presentation form."""
    rdtype = dns.rdatatype.to_text(rdata.rdtype)
    if rdtype in _TXT_TYPES:
        return b"".join(rdata.strings).decode("utf-8", "backslashreplace")
    if rdtype in _NAME_TYPES:
        return name_text(rdata.target)
    if rdtype == "MX":
        return "%d %s" % (rdata.preference, name_text(rdata.exchange))
    if rdtype == "SRV":
        return "%d %d %d %s" % (rdata.priority, rdata.weight, rdata.port, name_text(rdata.target))
    if rdtype in ("A", "AAAA"):
        return str(ipaddress.ip_address(rdata.address))
    return rdata.to_text(origin=dns.name.root, relativize=True)


def normalize_value(rdtype: str, text: str) -> str:
    """A value as a user writes it, in the form ``Answer.values`` uses, so both compare as strings.

    A TXT value is taken literally unless it is written in quoted presentation form
    (``"v=spf1 " "-all"``), whose strings are then joined. Names are read as absolute.
    Raises DnsConfigError when the value cannot be a record of that type.
    """
    rdtype = rdtype.upper()
    if rdtype in _TXT_TYPES and not text.lstrip().startswith('"'):
        return text
    try:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=dns.name.root)
    except (dns.exception.DNSException, ValueError) as exc:
        raise DnsConfigError("%r is not a valid %s value: %s" % (text, rdtype, exc)) from exc
    return rdata_text(rdata)


def _rdtype(rdtype: str) -> dns.rdatatype.RdataType:
    try:
        return dns.rdatatype.from_text(rdtype.strip().upper())
    except dns.rdatatype.UnknownRdatatype as exc:
        raise DnsConfigError("unknown record type %r" % rdtype) from exc


def _name(name: str) -> dns.name.Name:
    try:
        return dns.name.from_text(name.strip() or ".")
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise DnsConfigError("%r is not a valid domain name: %s" % (name, exc)) from exc


def normalize_rdtype(rdtype: str) -> str:
    """A record type in its canonical spelling (``"aaaa"`` -> ``"AAAA"``); DnsConfigError when there is no such type."""
    return dns.rdatatype.to_text(_rdtype(rdtype))


def normalize_name(name: str) -> str:
    """A name as ``Answer.name`` gives it (lowercase, no trailing dot, IDNA-encoded); DnsConfigError when it is not a name."""
    return name_text(_name(name))


class AsyncResolver:
    """Ask the given nameservers directly, or the system's recursive resolvers when none are given.

    Nameservers are ``"host"``, ``"host:port"`` or ``"[v6]:port"``; a host that is not an address is
    looked up (A and AAAA) through the system resolver once. With several nameservers they are
    tried in order until one gives an answer that is NOERROR or NXDOMAIN; to check each server on
    its own, make one resolver per server.
    """

    def __init__(self, nameservers: list[str] | None = None, timeout: float = 3.0, attempts: int = 2):
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.recursive = nameservers is None
        if nameservers is None:
            self._servers = self._system_servers()
        else:
            self._servers = [parse_nameserver(spec) for spec in nameservers]
            if not self._servers:
                raise DnsConfigError("no nameservers given")
        self._addresses: dict[str, list[str]] = {}

    @property
    def nameservers(self) -> list[str]:
        return [server.label for server in self._servers]

    @staticmethod
    def _system_servers() -> list[_Server]:
        try:
            system = dns.resolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration as exc:
            raise DnsConfigError("no system resolver is configured (%s); give the nameservers to ask" % exc) from exc
        servers = []
        for address in system.nameservers:
            if isinstance(address, str):
                port = system.nameserver_ports.get(address, system.port)
                servers.append(_Server(label=address, host=address, port=port, is_address=True))
        if not servers:
            raise DnsConfigError("the system resolver configuration lists no nameserver addresses; give the nameservers to ask")
        return servers

    async def query(self, name: str, rdtype: str) -> Answer:
        """Ask for ``rdtype`` records at ``name``, following CNAMEs; see the module docstring."""
        qname = _name(name)
        qtype = _rdtype(rdtype)
        answer_name = name_text(qname)
        rdtype = dns.rdatatype.to_text(qtype)
        chain: list[str] = []
        seen = {qname}
        current = qname
        while True:
            response, error = await self._exchange(current, qtype)
            if response is None:
                return Answer(answer_name, rdtype, TIMEOUT, [], None, chain, error)
            rcode = dns.rcode.to_text(response.rcode())
            # Walk the chain even in a SERVFAIL answer: servers that detect a CNAME loop answer SERVFAIL with the chain.
            walked = current
            while True:
                rrset = response.get_rrset(response.answer, walked, dns.rdataclass.IN, qtype)
                if rrset is not None:
                    if rcode != NOERROR:
                        break
                    values = sorted({rdata_text(rdata) for rdata in rrset})
                    return Answer(answer_name, rdtype, NOERROR, values, rrset.ttl, chain)
                cname = None
                if qtype != dns.rdatatype.CNAME:
                    cname = response.get_rrset(response.answer, walked, dns.rdataclass.IN, dns.rdatatype.CNAME)
                if cname is None:
                    break
                target = cname[0].target
                chain.append(name_text(target))
                if target in seen:
                    loop = " -> ".join([answer_name, *chain])
                    return Answer(answer_name, rdtype, SERVFAIL, [], None, chain, "CNAME loop: %s" % loop)
                if len(chain) > MAX_CNAME_CHAIN:
                    return Answer(answer_name, rdtype, SERVFAIL, [], None, chain, "CNAME chain longer than %d names" % MAX_CNAME_CHAIN)
                seen.add(target)
                walked = target
            if rcode not in (NOERROR, NXDOMAIN):
                return Answer(answer_name, rdtype, rcode, [], None, chain, error)
            if rcode == NXDOMAIN:
                return Answer(answer_name, rdtype, NXDOMAIN, [], None, chain)
            if walked == current:
                return Answer(answer_name, rdtype, NOERROR, [], None, chain, self._referral(response, current))
            # The server stopped at a name it did not answer (often one outside its zone): ask for it.
            current = walked

    def _referral(self, response: dns.message.Message, name: dns.name.Name) -> str:
        if self.recursive or response.flags & dns.flags.AA:
            return ""
        if any(rrset.rdtype == dns.rdatatype.NS for rrset in response.authority):
            return "the nameserver is not authoritative for %s (it answered with a referral)" % name_text(name)
        return "the nameserver is not authoritative for %s (no AA flag)" % name_text(name)

    async def _exchange(self, name: dns.name.Name, qtype: dns.rdatatype.RdataType) -> tuple[dns.message.Message | None, str]:
        """One question to the servers, retried; the first NOERROR/NXDOMAIN wins, else the last answer or the errors."""
        query = dns.message.make_query(name, qtype, use_edns=0, payload=EDNS_PAYLOAD)
        if not self.recursive:
            query.flags &= ~dns.flags.RD
        last: dns.message.Message | None = None
        errors: list[str] = []
        for _attempt in range(self.attempts):
            for server in self._servers:
                addresses = await self._server_addresses(server)
                if not addresses:
                    errors.append("%s: the nameserver's own name does not resolve" % server.label)
                for address in addresses:
                    try:
                        response, _used_tcp = await dns.asyncquery.udp_with_fallback(query, address, timeout=self.timeout, port=server.port)
                    except dns.exception.Timeout:
                        errors.append("%s: no answer within %gs" % (server.label, self.timeout))
                        continue
                    except (OSError, dns.exception.DNSException) as exc:
                        errors.append("%s: %s" % (server.label, exc or type(exc).__name__))
                        continue
                    if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                        return response, ""
                    last = response
        return last, "; ".join(dict.fromkeys(errors))

    async def _server_addresses(self, server: _Server) -> list[str]:
        if server.is_address:
            return [server.host]
        if server.host not in self._addresses:
            system = AsyncResolver(timeout=self.timeout, attempts=self.attempts)
            answers = await asyncio.gather(system.query(server.host, "A"), system.query(server.host, "AAAA"))
            self._addresses[server.host] = [value for answer in answers for value in answer.values]
        return self._addresses[server.host]


async def authoritative_nameservers(zone: str, resolver: AsyncResolver) -> list[str]:
    """The zone's NS names (lowercase, no trailing dot, sorted) as ``resolver`` sees them; empty when there are none.

    Each name can be given to ``AsyncResolver([name])`` to ask that server directly.
    """
    answer = await resolver.query(zone, "NS")
    return sorted(set(answer.values))
