# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SPF records (RFC 7208): parse, count DNS lookups, flatten.

The parser follows the grammar of RFC 7208 section 12 (names case-insensitive). The lookup
counter walks a record the way a receiver checking the worst case would: every mechanism and
modifier that costs a DNS query (section 4.6.4: ``include``, ``a``, ``mx``, ``ptr``, ``exists``,
``redirect``), recursively through ``include`` and ``redirect``, with loop detection, void
lookup counting and the ten-names limit on ``mx``. It works over any resolver object with an
``async query(name, rdtype)`` coroutine answering like ``_dns.AsyncResolver``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass, field

from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, Finding

STAGE = "secrets_env"
LOOKUP_LIMIT = 10
VOID_LIMIT = 2
MX_NAMES_LIMIT = 10
RECORD_SIZE_LIMIT = 450
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
TEMP_RCODES = ("SERVFAIL", "TIMEOUT", "REFUSED")
MAX_DEPTH = 12

_VERSION = re.compile(r"v=spf1(?: |$)", re.IGNORECASE)
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(.*)", re.DOTALL)
_MECH_NAME = re.compile(r"[^:/]*")
_TOPLABEL = re.compile(r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9])")
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IP4 = re.compile(r"%s\.%s\.%s\.%s" % (_QNUM, _QNUM, _QNUM, _QNUM))
_CIDR4 = re.compile(r"0|[1-9][0-9]?")
_CIDR6 = re.compile(r"0|[1-9][0-9]{0,2}")
_DUAL_CIDR = re.compile(r"(?::(?P<domain>.*?))?(?:/(?P<c4>[0-9]+))?(?://(?P<c6>[0-9]+))?", re.DOTALL)
_MACRO = re.compile(r"\{([A-Za-z])([0-9]*)(r?)([.\-+,/_=]*)\}", re.IGNORECASE)
_DOMAIN_MACRO_LETTERS = "slodiphv"
_EXP_MACRO_LETTERS = _DOMAIN_MACRO_LETTERS + "crt"


def rfc_finding(severity: str, title: str, evidence: str, fix: str, section: str) -> Finding:
    """A finding whose evidence names the section of RFC 7208 it rests on."""
    return Finding(stage=STAGE, severity=severity, title=title, evidence="%s (RFC 7208 section %s)" % (evidence, section), fix=fix)


def is_spf(text: str) -> bool:
    """True when a TXT string is an SPF record: it starts with ``v=spf1`` then a space or its end (section 4.5)."""
    return bool(_VERSION.match(text))


def select_records(txt_values: list[str]) -> list[str]:
    """The SPF records among the TXT records of a name (section 4.5)."""
    return [value for value in txt_values if is_spf(value)]


@dataclass
class Term:
    text: str
    name: str  # lower case mechanism or modifier name
    modifier: bool
    qualifier: str = "+"
    target: str | None = None  # domain-spec (include, a, mx, ptr, exists, redirect, exp) or network (ip4, ip6)
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def costs_lookup(self) -> bool:
        return self.name in LOOKUP_TERMS and (self.name == "redirect" or not self.modifier)

    @property
    def has_macro(self) -> bool:
        return self.target is not None and "%" in self.target


@dataclass
class SpfRecord:
    text: str
    terms: list[Term] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # syntax errors: any one makes the record a permerror (section 4.6)

    @property
    def mechanisms(self) -> list[Term]:
        return [t for t in self.terms if not t.modifier]

    def modifier(self, name: str) -> Term | None:
        return next((t for t in self.terms if t.modifier and t.name == name), None)

    @property
    def all_term(self) -> Term | None:
        return next((t for t in self.mechanisms if t.name == "all"), None)

    @property
    def evaluated_mechanisms(self) -> list[Term]:
        """Mechanisms a receiver can reach: none after ``all`` (section 5.1)."""
        reached = []
        for term in self.mechanisms:
            reached.append(term)
            if term.name == "all":
                break
        return reached

    @property
    def effective_redirect(self) -> Term | None:
        """``redirect`` is ignored when the record has an ``all`` mechanism (section 6.1)."""
        return None if self.all_term else self.modifier("redirect")


def check_macro_string(text: str, letters: str = _DOMAIN_MACRO_LETTERS) -> tuple[str | None, bool]:
    """Validate a macro-string (section 7.1). Returns (error or None, whether it ends with a macro-expand)."""
    index = 0
    ends_with_macro = False
    while index < len(text):
        char = text[index]
        if char == "%":
            rest = text[index + 1:]
            if rest[:1] in ("%", "_", "-"):
                index += 2
                ends_with_macro = True
                continue
            match = _MACRO.match(rest)
            if not match:
                return "%r is not a valid macro (write %%{letter}, %%%%, %%_ or %%-)" % text[index:index + 6], False
            letter = match.group(1).lower()
            if letter not in letters:
                if letter in "crt":
                    return "the %%{%s} macro is only allowed in explanation text" % letter, False
                return "%%{%s} is not a macro letter" % match.group(1), False
            index += 1 + match.end()
            ends_with_macro = True
            continue
        if not 0x21 <= ord(char) <= 0x7E:
            return "%r is not allowed in a macro-string" % char, False
        index += 1
        ends_with_macro = False
    return None, ends_with_macro


def check_domain_spec(spec: str) -> str | None:
    """Validate a domain-spec (sections 4.8 and 7.1); return an error message or None."""
    if not spec:
        return "the domain is empty"
    error, ends_with_macro = check_macro_string(spec)
    if error:
        return error
    if ends_with_macro:
        return None
    literal_tail = re.split(r"%\{[^}]*\}|%[%_\-]", spec)[-1]
    tail = literal_tail[:-1] if literal_tail.endswith(".") else literal_tail
    if "." not in tail:
        return "%r does not end with a dot and a top-level label" % spec
    if not _TOPLABEL.fullmatch(tail.rsplit(".", 1)[1]):
        return "%r ends with %r, which is not a valid top-level label" % (spec, tail.rsplit(".", 1)[1])
    if "%" not in spec:
        name = spec[:-1] if spec.endswith(".") else spec
        labels = name.split(".")
        if any(label == "" for label in labels):
            return "%r has an empty label" % spec
        if any(len(label) > 63 for label in labels):
            return "%r has a label longer than 63 characters" % spec
        if len(name) > 253:
            return "%r is longer than 253 characters" % spec
    return None


def normalize_domain(spec: str) -> str:
    return spec.rstrip(".").lower()


def _parse_cidr(value: str | None, pattern: re.Pattern, limit: int, family: str) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    if not pattern.fullmatch(value) or int(value) > limit:
        return None, "/%s is not a valid %s prefix length (0-%d, no leading zeros)" % (value, family, limit)
    return int(value), None


def _parse_mechanism(token: str) -> tuple[Term, str | None]:
    qualifier = "+"
    body = token
    if token[0] in QUALIFIERS:
        qualifier, body = token[0], token[1:]
    raw_name = _MECH_NAME.match(body).group(0)  # type: ignore[union-attr]
    name = raw_name.lower()
    rest = body[len(raw_name):]
    term = Term(text=token, name=name, modifier=False, qualifier=qualifier)
    if name not in MECHANISMS:
        return term, "%r is not a mechanism (known: %s)" % (token, ", ".join(MECHANISMS))
    if name == "all":
        return term, ("%r: 'all' takes no argument" % token) if rest else None
    if name in ("include", "exists"):
        if not rest.startswith(":"):
            return term, "%r needs a domain: %s:<domain>" % (token, name)
        term.target = rest[1:]
        error = check_domain_spec(term.target)
        return term, ("%r: %s" % (token, error)) if error else None
    if name == "ptr":
        if rest and not rest.startswith(":"):
            return term, "%r: 'ptr' takes only :<domain>" % token
        term.target = rest[1:] if rest else None
        error = check_domain_spec(term.target) if term.target is not None else None
        return term, ("%r: %s" % (token, error)) if error else None
    if name in ("a", "mx"):
        match = _DUAL_CIDR.fullmatch(rest)
        if not match:
            return term, "%r is not %s[:<domain>][/<ipv4 prefix>][//<ipv6 prefix>]" % (token, name)
        if match.group("domain") is not None:
            term.target = match.group("domain")
            error = check_domain_spec(term.target)
            if error:
                return term, "%r: %s" % (token, error)
        term.cidr4, error = _parse_cidr(match.group("c4"), _CIDR4, 32, "IPv4")
        if error:
            return term, "%r: %s" % (token, error)
        term.cidr6, error = _parse_cidr(match.group("c6"), _CIDR6, 128, "IPv6")
        return term, ("%r: %s" % (token, error)) if error else None
    # ip4 / ip6
    if not rest.startswith(":"):
        return term, "%r needs an address: %s:<address>[/<prefix>]" % (token, name)
    address, _sep, prefix = rest[1:].partition("/")
    if name == "ip4":
        if not _IP4.fullmatch(address):
            return term, "%r: %r is not an IPv4 address in dotted-quad form" % (token, address)
        term.cidr4, error = _parse_cidr(prefix if _sep else None, _CIDR4, 32, "IPv4")
    else:
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            return term, "%r: %r is not an IPv6 address" % (token, address)
        term.cidr6, error = _parse_cidr(prefix if _sep else None, _CIDR6, 128, "IPv6")
    term.target = address
    return term, ("%r: %s" % (token, error)) if error else None


def parse(text: str) -> SpfRecord:
    """Parse one SPF record (already selected with :func:`is_spf`)."""
    record = SpfRecord(text=text)
    if not is_spf(text):
        record.errors.append("the record does not start with 'v=spf1' followed by a space")
        return record
    seen_modifiers: set[str] = set()
    for token in text[6:].split(" "):
        if not token:
            continue
        modifier = _MODIFIER.fullmatch(token)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            term = Term(text=token, name=name, modifier=True, target=value)
            if name in ("redirect", "exp"):
                if name in seen_modifiers:
                    record.errors.append("%r appears more than once" % name)
                seen_modifiers.add(name)
                error = check_domain_spec(value)
            else:
                error, _ends = check_macro_string(value)
            if error:
                record.errors.append("%r: %s" % (token, error))
            record.terms.append(term)
            continue
        term, error = _parse_mechanism(token)
        if error:
            record.errors.append(error)
        record.terms.append(term)
    return record


def record_findings(record: SpfRecord, where: str) -> list[Finding]:
    """What a domain owner should change in one record, apart from lookups (those need DNS)."""
    findings = []
    if record.errors:
        findings.append(rfc_finding(
            MUST_DO_NOW, "SPF record of %s has a syntax error" % where,
            "%s: %s; receivers stop at the first syntax error and return permerror" % (record.text, "; ".join(record.errors)),
            "Correct the record: every term must be a mechanism (all, include, a, mx, ip4, ip6, exists) or name=value.", "4.6"))
    all_term = record.all_term
    if all_term is not None and all_term.qualifier == "+":
        findings.append(rfc_finding(
            MUST_DO_NOW, "SPF record of %s ends with +all" % where,
            "%s lets every server on the internet send as %s" % (record.text, where),
            "End the record with ~all (or -all) so only the listed senders pass.", "5.1"))
    elif all_term is not None and all_term.qualifier == "?":
        findings.append(rfc_finding(
            CAN_WAIT, "SPF record of %s ends with ?all" % where,
            "%s: ?all gives unlisted servers a neutral result, so SPF protects nothing" % record.text,
            "End the record with ~all (or -all) once every sender is listed.", "8.2"))
    elif all_term is None and record.modifier("redirect") is None:
        findings.append(rfc_finding(
            CAN_WAIT, "SPF record of %s has no all mechanism" % where,
            "%s: mail from servers not listed gets the default neutral result" % record.text,
            "Add ~all (or -all) at the end of the record.", "4.7"))
    if all_term is not None and record.modifier("redirect") is not None:
        findings.append(rfc_finding(
            CAN_WAIT, "SPF record of %s has both all and redirect" % where,
            "%s: redirect is ignored when the record has an all mechanism" % record.text,
            "Remove either the all mechanism or the redirect modifier.", "6.1"))
    unreachable = record.mechanisms[len(record.evaluated_mechanisms):]
    if unreachable:
        findings.append(rfc_finding(
            CAN_WAIT, "SPF record of %s has mechanisms after all" % where,
            "%s: %s are never evaluated" % (record.text, ", ".join(t.text for t in unreachable)),
            "Move these mechanisms before 'all' or remove them.", "5.1"))
    ptrs = [t.text for t in record.mechanisms if t.name == "ptr"]
    if ptrs:
        findings.append(rfc_finding(
            CAN_WAIT, "SPF record of %s uses ptr" % where,
            "%s uses %s, which SHOULD NOT be published: slow, unreliable, and some receivers skip it" % (record.text, ", ".join(ptrs)),
            "Replace ptr with the ip4/ip6 ranges or a/mx of the sending hosts.", "5.5"))
    unknown = [t.text for t in record.terms if t.modifier and t.name not in ("redirect", "exp")]
    if unknown:
        findings.append(rfc_finding(
            CAN_WAIT, "SPF record of %s has modifiers receivers ignore" % where,
            "%s: %s are unknown modifiers and are ignored" % (record.text, ", ".join(unknown)),
            "Remove them (for example 'default=deny' does nothing; use -all).", "6"))
    size = len(record.text.encode("utf-8"))
    if size > RECORD_SIZE_LIMIT:
        findings.append(rfc_finding(
            CAN_WAIT, "SPF record of %s is %d bytes long" % (where, size),
            "records over %d bytes risk DNS answers that do not fit in one UDP packet" % RECORD_SIZE_LIMIT,
            "Shorten the record: move senders to a subdomain, or merge ip4 ranges.", "3.4"))
    return findings


# --- lookup counting ---------------------------------------------------------------------


@dataclass
class SpfNode:
    """One record reached while counting: the domain, the term that led to it, and its costs."""

    domain: str
    via: str = ""  # the term that led here, empty for the record checked
    record: str | None = None
    parsed: SpfRecord | None = None
    lookups: int = 0  # lookups this record and everything below it costs (not the term that reached it)
    void_lookups: int = 0
    costs: list[tuple[str, int]] = field(default_factory=list)  # per term of this record: (term, lookups)
    children: list[SpfNode] = field(default_factory=list)
    addresses: dict[str, list[str]] = field(default_factory=dict)  # term text -> resolved names/addresses (a, mx)

    def as_dict(self) -> dict:
        return {
            "domain": self.domain,
            "via": self.via,
            "record": self.record,
            "lookups": self.lookups,
            "void_lookups": self.void_lookups,
            "costs": [{"term": term, "lookups": cost} for term, cost in self.costs],
            "children": [child.as_dict() for child in self.children],
        }


@dataclass
class SpfEvaluation:
    """The result of counting the lookups of the SPF record of a domain."""

    domain: str
    status: str = "none"  # none | valid | permerror | temperror
    record: str | None = None
    records_found: int = 0
    tree: SpfNode | None = None
    lookups: int = 0
    void_lookups: int = 0
    problems: list[Finding] = field(default_factory=list)

    @property
    def costs(self) -> list[tuple[str, int]]:
        return self.tree.costs if self.tree else []

    def costs_text(self) -> str:
        return ", ".join("%s costs %d" % (term, cost) for term, cost in self.costs if cost)

    def as_dict(self) -> dict:
        return {
            "domain": self.domain,
            "status": self.status,
            "record": self.record,
            "records_found": self.records_found,
            "lookups": self.lookups,
            "lookup_limit": LOOKUP_LIMIT,
            "void_lookups": self.void_lookups,
            "void_lookup_limit": VOID_LIMIT,
            "tree": self.tree.as_dict() if self.tree else None,
        }


class _Walk:
    """State shared by one evaluation: the resolver, the problems found, whether DNS failed."""

    def __init__(self, resolver, root: str) -> None:
        self.resolver = resolver
        self.root = root
        self.problems: list[Finding] = []
        self.permerror = False
        self.temperror = False

    def error(self, title: str, evidence: str, fix: str, section: str) -> None:
        self.permerror = True
        self.problems.append(rfc_finding(MUST_DO_NOW, title, evidence, fix, section))

    def dns_failure(self, name: str, rdtype: str, rcode: str, path: str) -> None:
        self.temperror = True
        self.problems.append(rfc_finding(
            MUST_DO_NOW, "SPF of %s could not be checked: DNS %s" % (self.root, rcode),
            "%s: the %s query for %s answered %s; receivers return temperror and may defer mail" % (path, rdtype, name, rcode),
            "Check that the nameservers of %s answer, then run the check again." % name, "4.4"))

    async def query(self, name: str, rdtype: str):
        return await self.resolver.query(name, rdtype)


def _is_void(answer) -> bool:
    return answer.rcode == "NXDOMAIN" or (answer.rcode == "NOERROR" and not answer.values)


async def _term_cost(walk: _Walk, node: SpfNode, term: Term, stack: tuple[str, ...], path: str, depth: int) -> int:
    """DNS lookups one term costs, including everything behind include/redirect; fills node.children."""
    if not term.costs_lookup:
        return 0
    target = term.target if term.target is not None else node.domain
    if term.name == "ptr":
        return 1
    if term.has_macro:
        if term.name in ("include", "redirect"):
            walk.problems.append(rfc_finding(
                CAN_WAIT, "SPF of %s: %s cannot be followed" % (walk.root, term.text),
                "%s: the target depends on the message (macros), so what lies behind it was not counted" % path,
                "Make sure the records this term expands to stay within the lookup limits.", "7"))
        return 1
    name = normalize_domain(target)
    if term.name in ("include", "redirect"):
        return 1 + await _follow(walk, node, term, name, stack, path, depth)
    if term.name == "a":
        answers = await asyncio.gather(walk.query(name, "A"), walk.query(name, "AAAA"))
        if any(a.rcode in TEMP_RCODES for a in answers):
            bad = next(a for a in answers if a.rcode in TEMP_RCODES)
            walk.dns_failure(name, bad.rdtype, bad.rcode, path)
        elif all(_is_void(a) for a in answers):
            node.void_lookups += 1
        node.addresses[term.text] = [v for a in answers for v in a.values]
        return 1
    if term.name == "exists":
        answer = await walk.query(name, "A")
        if answer.rcode in TEMP_RCODES:
            walk.dns_failure(name, "A", answer.rcode, path)
        elif _is_void(answer):
            node.void_lookups += 1
        return 1
    # mx
    answer = await walk.query(name, "MX")
    if answer.rcode in TEMP_RCODES:
        walk.dns_failure(name, "MX", answer.rcode, path)
        return 1
    if _is_void(answer):
        node.void_lookups += 1
    hosts = [value.split(None, 1)[1].rstrip(".") if " " in value.strip() else "" for value in answer.values]
    hosts = [h for h in hosts if h]
    if len(hosts) > MX_NAMES_LIMIT:
        walk.error(
            "SPF of %s: %s names %d mail servers" % (walk.root, term.text, len(hosts)),
            "%s: %s has %d MX records; an mx mechanism may look up at most %d, beyond that it is a permerror"
            % (path, name, len(hosts), MX_NAMES_LIMIT),
            "Replace %s with ip4/ip6 ranges of the servers that really send mail." % term.text, "4.6.4")
    node.addresses[term.text] = hosts
    return 1


async def _follow(walk: _Walk, parent: SpfNode, term: Term, name: str, stack: tuple[str, ...], path: str, depth: int) -> int:
    child = SpfNode(domain=name, via=term.text)
    parent.children.append(child)
    here = "%s -> %s" % (path, term.text)
    if name in stack:
        walk.error(
            "SPF of %s loops through %s" % (walk.root, name),
            "%s: %s leads back to a record already being evaluated" % (here, term.text),
            "Remove %s from the chain; a loop always exceeds the lookup limit." % term.text, "4.6.4")
        return 0
    if depth >= MAX_DEPTH:
        walk.error(
            "SPF of %s nests too deep" % walk.root, "%s: more than %d levels of include/redirect" % (here, MAX_DEPTH),
            "Flatten or remove nested includes.", "4.6.4")
        return 0
    answer = await walk.query(name, "TXT")
    if answer.rcode in TEMP_RCODES:
        walk.dns_failure(name, "TXT", answer.rcode, here)
        return 0
    if _is_void(answer):
        child.void_lookups += 1
    records = select_records(answer.values)
    if len(records) != 1:
        section = "5.2" if term.name == "include" else "6.1"
        if records:
            walk.error(
                "SPF of %s: %s has %d SPF records" % (walk.root, name, len(records)),
                "%s: %s publishes %d records starting with v=spf1; that is a permerror" % (here, name, len(records)),
                "The owner of %s must merge them into one record." % name, "4.5")
        else:
            walk.error(
                "SPF of %s: %s has no SPF record" % (walk.root, term.text),
                "%s: %s publishes no v=spf1 record (%s); %s of a domain without SPF is a permerror"
                % (here, name, answer.rcode if answer.rcode != "NOERROR" else "no TXT record starting with v=spf1", term.name),
                "Remove %s or correct the domain name (see the provider's documentation)." % term.text, section)
        return 0
    child.lookups = await _walk_record(walk, child, records[0], (*stack, name), here, depth + 1)
    return child.lookups


async def _walk_record(walk: _Walk, node: SpfNode, text: str, stack: tuple[str, ...], path: str, depth: int) -> int:
    node.record = text
    node.parsed = parse(text)
    if node.parsed.errors and depth > 0:  # the record checked itself is reported by record_findings
        walk.error(
            "SPF record of %s has a syntax error" % node.domain,
            "%s: %s: %s" % (path, text, "; ".join(node.parsed.errors)),
            "Correct the record of %s; one syntax error makes the whole SPF check a permerror." % node.domain, "4.6")
    terms = list(node.parsed.evaluated_mechanisms)
    redirect = node.parsed.effective_redirect
    if redirect is not None:
        terms.append(redirect)
    costs = await asyncio.gather(*(_term_cost(walk, node, t, stack, path, depth) for t in terms))
    node.costs = list(zip((t.text for t in terms), costs, strict=True))
    # children were appended in completion order; keep them in record order
    order = {t.text: i for i, t in enumerate(terms)}
    node.children.sort(key=lambda c: order.get(c.via, 0))
    node.void_lookups += sum(child.void_lookups for child in node.children)
    return sum(costs)


async def evaluate(domain: str, resolver, txt_values: list[str] | None = None, rcode: str = "NOERROR") -> SpfEvaluation:
    """Count the lookups of the SPF record of ``domain`` and collect everything wrong with it.

    ``txt_values``/``rcode`` may carry an answer already fetched for the TXT records of the domain.
    """
    domain = normalize_domain(domain)
    result = SpfEvaluation(domain=domain)
    walk = _Walk(resolver, domain)
    if txt_values is None:
        answer = await resolver.query(domain, "TXT")
        txt_values, rcode = answer.values, answer.rcode
    if rcode in TEMP_RCODES:
        walk.dns_failure(domain, "TXT", rcode, domain)
        result.status, result.problems = "temperror", walk.problems
        return result
    records = select_records(txt_values)
    result.records_found = len(records)
    if not records:
        result.problems.append(rfc_finding(
            MUST_DO_NOW, "%s has no SPF record" % domain,
            "no TXT record of %s starts with v=spf1 (DNS answer %s); receivers get SPF result none" % (domain, rcode),
            "Publish one TXT record 'v=spf1 <your senders> ~all' at %s." % domain, "4.5"))
        return result
    if len(records) > 1:
        walk.error(
            "%s has %d SPF records" % (domain, len(records)),
            "%s; two records starting with v=spf1 make every SPF check a permerror" % " | ".join(records),
            "Merge them into one record: one 'v=spf1', every mechanism once, one 'all' at the end.", "4.5")
        result.record = records[0]
        result.status, result.problems = "permerror", walk.problems
        return result
    result.record = records[0]
    tree = SpfNode(domain=domain)
    result.tree = tree
    tree.lookups = await _walk_record(walk, tree, records[0], (domain,), domain, 0)
    result.lookups = tree.lookups
    result.void_lookups = tree.void_lookups
    if result.lookups > LOOKUP_LIMIT:
        walk.error(
            "SPF of %s needs %d DNS lookups (limit %d)" % (domain, result.lookups, LOOKUP_LIMIT),
            "%s: %s; past %d lookups receivers return permerror and mail from later senders fails SPF"
            % (records[0], result.costs_text(), LOOKUP_LIMIT),
            "Drop an include you no longer use, move a provider to its own MAIL FROM subdomain, "
            "or flatten the costliest include (and refresh it regularly).", "4.6.4")
    if result.void_lookups > VOID_LIMIT:
        walk.error(
            "SPF of %s has %d void lookups (limit %d)" % (domain, result.void_lookups, VOID_LIMIT),
            "%d terms query names that do not exist or have no record of the type asked; past %d receivers return permerror"
            % (result.void_lookups, VOID_LIMIT),
            "Remove the a/mx/include/exists terms whose names have no records.", "4.6.4")
    result.problems = record_findings(tree.parsed, domain) + walk.problems if tree.parsed else walk.problems
    if walk.temperror:
        result.status = "temperror"
    elif walk.permerror or (tree.parsed and tree.parsed.errors):
        result.status = "permerror"
    else:
        result.status = "valid"
    return result


# --- building and flattening ---------------------------------------------------------------


def build(terms: list[str], all_qualifier: str = "~") -> str:
    """An SPF record from mechanisms, each listed once, in the order given, ending with ``all``."""
    seen: list[str] = []
    for term in terms:
        key = term.lower()
        if key not in (s.lower() for s in seen):
            seen.append(term)
    return " ".join(["v=spf1", *seen, "%sall" % all_qualifier])


class NotFlattenable(Exception):
    """An included record whose meaning cannot be kept by listing addresses (macros, ptr, exists, +all...)."""


async def _addresses(resolver, name: str, cidr4: int | None, cidr6: int | None) -> list[str]:
    answers = await asyncio.gather(resolver.query(name, "A"), resolver.query(name, "AAAA"))
    for answer in answers:
        if answer.rcode in TEMP_RCODES:
            raise NotFlattenable("%s %s answered %s" % (name, answer.rdtype, answer.rcode))
    networks = ["%s/%d" % (v, cidr4 if cidr4 is not None else 32) for v in answers[0].values]
    networks += ["%s/%d" % (v, cidr6 if cidr6 is not None else 128) for v in answers[1].values]
    return networks


async def pass_networks(resolver, node: SpfNode) -> list[str]:
    """Every network for which the record of ``node`` gives ``pass``, or NotFlattenable.

    Only records made of pass-qualified ip4/ip6/a/mx/include terms ending in a non-pass ``all``
    (or a redirect to such a record) can be replaced by their addresses without changing results.
    """
    record = node.parsed
    if record is None or record.errors:
        raise NotFlattenable("%s has no valid record" % node.domain)
    networks: list[str] = []
    children = {child.via: child for child in node.children}
    for term in record.evaluated_mechanisms:
        if term.name == "all":
            if term.qualifier == "+":
                raise NotFlattenable("%s ends with +all" % node.domain)
            break
        if term.qualifier != "+" or term.has_macro or term.name in ("ptr", "exists"):
            raise NotFlattenable("%s uses %s" % (node.domain, term.text))
        if term.name in ("ip4", "ip6"):
            prefix = term.cidr4 if term.name == "ip4" else term.cidr6
            networks.append(str(term.target) if prefix is None else "%s/%d" % (term.target, prefix))
        elif term.name == "include":
            networks += await pass_networks(resolver, children[term.text])
        elif term.name == "a":
            networks += await _addresses(resolver, normalize_domain(term.target or node.domain), term.cidr4, term.cidr6)
        elif term.name == "mx":
            for host in node.addresses.get(term.text, []):
                networks += await _addresses(resolver, host, term.cidr4, term.cidr6)
    redirect = record.effective_redirect
    if redirect is not None:
        if redirect.has_macro:
            raise NotFlattenable("%s redirects with macros" % node.domain)
        networks += await pass_networks(resolver, children[redirect.text])
    return networks


def collapse(networks: list[str]) -> list[str]:
    """ip4:/ip6: terms for networks, merged where they touch, IPv4 first."""
    v4 = [ipaddress.ip_network(n, strict=False) for n in networks if ":" not in n]
    v6 = [ipaddress.ip_network(n, strict=False) for n in networks if ":" in n]
    terms = []
    for network in ipaddress.collapse_addresses(v4):  # type: ignore[type-var]
        terms.append("ip4:%s" % (network.network_address if network.prefixlen == 32 else network))
    for network in ipaddress.collapse_addresses(v6):  # type: ignore[type-var]
        terms.append("ip6:%s" % (network.network_address if network.prefixlen == 128 else network))
    return terms


def chunk_terms(terms: list[str], prefix: str = "v=spf1", limit: int = RECORD_SIZE_LIMIT - 10) -> list[list[str]]:
    """Split terms into groups whose record (prefix + terms) stays under ``limit`` bytes."""
    chunks: list[list[str]] = [[]]
    size = len(prefix)
    for term in terms:
        if chunks[-1] and size + 1 + len(term) > limit:
            chunks.append([])
            size = len(prefix)
        chunks[-1].append(term)
        size += 1 + len(term)
    return [c for c in chunks if c]
