# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mail authentication of whole domains: build the records to publish, check what is published.

``build_records`` turns a domain, its providers and a DMARC policy into records for
``launchready.core.cloudflare_dns_records``; it refuses (``BuildError``) before any DNS work when
the input is wrong, and after counting SPF lookups when the record would not work.
``check_domains`` checks SPF, DMARC, DKIM and MX of many domains at once and returns findings.

Both take a resolver: any object with ``async query(name, rdtype)`` answering like
``_dns.AsyncResolver``; :class:`CachingResolver` and :class:`AuthoritativeRouter` wrap one.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.launchready.core.plugins.module_utils import _dkim, _dmarc, _email_providers, _spf
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK, Finding

STAGE = "secrets_env"
TEMP_RCODES = ("SERVFAIL", "TIMEOUT", "REFUSED")
COMMENT_MAX = 100
SPF_ALL = {"softfail": "~", "fail": "-"}
# Resolvers give up on longer CNAME chains (the same bound as _dns.MAX_CNAME_CHAIN).
MAX_CNAME_CHAIN = 16


@dataclass
class _Answer:
    """Stands in for a DNS answer when the resolver itself raised."""

    name: str
    rdtype: str
    rcode: str
    values: list[str] = field(default_factory=list)
    ttl: int | None = None
    cname_chain: list[str] = field(default_factory=list)
    error: str = ""


def normalize_domain(name: str) -> str:
    return name.strip().rstrip(".").lower()


_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")


def is_dns_name(name: str) -> bool:
    """A name DNS can hold as a CNAME target: labels of letters, digits, hyphens and underscores."""
    labels = normalize_domain(name).split(".")
    return len(labels) > 1 and len(".".join(labels)) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)


class CachingResolver:
    """Asks each (name, type) once per run, however many checks need it, at most ``concurrency`` at a time; never raises."""

    def __init__(self, inner, concurrency: int = 64) -> None:
        self.inner = inner
        self.concurrency = concurrency
        self._answers: dict[tuple[str, str], asyncio.Future] = {}
        self._slots: asyncio.Semaphore | None = None

    async def _ask(self, name: str, rdtype: str):
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        try:
            async with self._slots:
                return await self.inner.query(name, rdtype)
        except Exception as exc:  # a resolver bug or a bad name must not sink every other check
            return _Answer(name, rdtype, "SERVFAIL", error=str(exc) or type(exc).__name__)

    async def query(self, name: str, rdtype: str):
        key = (normalize_domain(name), rdtype.upper())
        future = self._answers.get(key)
        if future is None:
            future = asyncio.ensure_future(self._ask(*key))
            self._answers[key] = future
        return await future

    @property
    def questions(self) -> int:
        return len(self._answers)


class OverlayResolver:
    """Answers TXT questions for records not published yet, and passes the rest on."""

    def __init__(self, inner, txt: dict[str, list[str]]) -> None:
        self.inner = inner
        self.txt = {normalize_domain(k): v for k, v in txt.items()}

    async def query(self, name: str, rdtype: str):
        name = normalize_domain(name)
        if rdtype.upper() == "TXT" and name in self.txt:
            return _Answer(name, "TXT", "NOERROR", list(self.txt[name]))
        return await self.inner.query(name, rdtype)


class AuthoritativeRouter:
    """Sends questions about the given domains (and names below them) to their authoritative nameservers.

    The nameservers are the NS records of the closest enclosing zone, found through ``system``;
    other names are asked through ``system``. ``make_resolver(nameservers)`` builds a resolver
    asking those servers directly. A CNAME those servers cannot follow (its target is outside
    their zone, or they refuse it) is followed by asking the target's own route.
    """

    def __init__(self, system, make_resolver: Callable[[list[str]], object], domains: list[str]) -> None:
        self.system = system
        self.make_resolver = make_resolver
        self.domains = sorted({normalize_domain(d) for d in domains}, key=len, reverse=True)
        self._resolvers: dict[str, asyncio.Future] = {}
        self.nameservers: dict[str, list[str]] = {}

    async def _find(self, domain: str) -> tuple[str | None, Any]:
        labels = domain.split(".")
        for index in range(len(labels) - 1):
            zone = ".".join(labels[index:])
            answer = await self.system.query(zone, "NS")
            if answer.rcode == "NOERROR" and answer.values:
                servers = sorted(set(answer.values))
                self.nameservers[domain] = servers
                return zone, self.make_resolver(servers)
            if answer.rcode in TEMP_RCODES:
                break
        self.nameservers[domain] = []
        return None, self.system

    async def _route(self, name: str) -> tuple[str | None, Any]:
        """The zone whose servers answer for ``name`` (None for the system resolver) and the resolver asking them."""
        owner = next((d for d in self.domains if name == d or name.endswith("." + d)), None)
        if owner is None:
            return None, self.system
        future = self._resolvers.get(owner)
        if future is None:
            future = asyncio.ensure_future(self._find(owner))
            self._resolvers[owner] = future
        return await future

    async def query(self, name: str, rdtype: str):
        name = normalize_domain(name)
        return await self._ask(name, rdtype, [name])

    async def _ask(self, name: str, rdtype: str, seen: list[str]):
        zone, resolver = await self._route(name)
        answer = await resolver.query(name, rdtype)
        target = answer.cname_chain[-1] if answer.cname_chain else None
        if zone is None or target is None or answer.values:
            return answer
        if answer.rcode != "REFUSED" and (target == zone or target.endswith("." + zone)):
            return answer
        seen = [*seen, *answer.cname_chain]
        if target in seen[:-1] or len(seen) > MAX_CNAME_CHAIN:
            return _Answer(name, rdtype, "SERVFAIL", [], None, list(answer.cname_chain), "CNAME loop or chain too long: %s" % " -> ".join(seen))
        target_zone, _resolver = await self._route(target)
        # A target in the same zone that these servers refused can only be asked of the system resolver.
        followed = await (self.system.query(target, rdtype) if target_zone == zone else self._ask(target, rdtype, seen))
        return _Answer(name, rdtype, followed.rcode, list(followed.values), followed.ttl,
                       [*answer.cname_chain, *followed.cname_chain], followed.error)


def make_resolver(domains: list[str], nameservers: list[str] | None, factory: Callable[[list[str] | None], object]) -> CachingResolver:
    """One cached resolver for a run: ``nameservers`` for everything, or each domain's authoritative servers and the system resolver."""
    if nameservers:
        return CachingResolver(factory(nameservers))
    return CachingResolver(AuthoritativeRouter(factory(None), factory, domains))


def finding(severity: str, title: str, evidence: str, fix: str, section: str) -> Finding:
    return Finding(stage=STAGE, severity=severity, title=title, evidence="%s (%s)" % (evidence, section), fix=fix)


# --- building ---------------------------------------------------------------------------------


class BuildError(ValueError):
    """The records cannot be built; ``errors`` says every reason, nothing is to be published."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class BuildResult:
    records: list[dict] = field(default_factory=list)
    authorization_records: list[dict] = field(default_factory=list)
    spf: list[dict] = field(default_factory=list)
    dkim: list[dict] = field(default_factory=list)
    dmarc: dict | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _SpfPlan:
    name: str
    terms: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # term -> who asked for it
    extra: dict[str, list[str]] = field(default_factory=dict)  # flattened parts: name -> [record]

    def add(self, term: str, source: str) -> None:
        if term.lower() not in (t.lower() for t in self.terms):
            self.terms.append(term)
            self.sources[term] = source
        elif source not in self.sources.get(term, "").split(", "):
            self.sources[term] = ", ".join(filter(None, [self.sources.get(term, ""), source]))


def _custom_spf_terms(spf: dict) -> list[str]:
    terms = []
    for value in spf.get("ip4") or []:
        terms.append("ip4:%s" % value)
    for value in spf.get("ip6") or []:
        terms.append("ip6:%s" % value)
    if spf.get("a"):
        terms.append("a")
    if spf.get("mx"):
        terms.append("mx")
    for value in spf.get("include") or []:
        terms.append("include:%s" % value)
    return terms


def _check_dkim_entry(entry: dict, errors: list[str], warnings: list[str]) -> dict:
    selector = entry["selector"]
    name = _dkim.record_name(selector, entry["domain"])
    source = entry.get("provider") or "dkim"
    info = {"selector": selector, "name": name, "source": source}
    if not _dkim.is_selector(selector):
        errors.append("%s: DKIM selector %r is not a valid DNS label sequence (RFC 6376 section 3.1)" % (source, selector))
        return info
    if entry.get("target"):
        target = normalize_domain(entry["target"])
        if not is_dns_name(target):
            errors.append("%s: DKIM CNAME target %r for %s is not a host name" % (source, entry["target"], name))
        info.update(type="CNAME", target=target)
        return info
    value = " ".join(entry["value"].split()) if entry.get("value") else ""
    record = _dkim.parse_key_record(value)
    info.update(type="TXT", value=value, key_type=record.key_type, bits=record.bits)
    if record.errors or record.revoked:
        errors.append("%s: the DKIM key for %s is not usable: %s (RFC 6376 section 3.6.1)"
                      % (source, name, "; ".join(record.errors) or "p= is empty (revoked)"))
    elif record.key_type == "rsa" and record.bits is not None and record.bits < _dkim.MIN_RSA_BITS:
        errors.append("%s: the DKIM key for %s is RSA %d bits; verifiers reject keys under %d bits (RFC 8301 section 3.2)"
                      % (source, name, record.bits, _dkim.MIN_RSA_BITS))
    elif record.key_type == "rsa" and record.bits is not None and record.bits < _dkim.RECOMMENDED_RSA_BITS:
        warnings.append("%s: the DKIM key for %s is RSA %d bits; use 2048 bits when it is next rotated (RFC 8301 section 3.2)"
                        % (source, name, record.bits))
    return info


def _comment(text: str) -> str:
    return text if len(text) <= COMMENT_MAX else text[: COMMENT_MAX - 3] + "..."


def plan_records(domain: str, providers: list[dict], spf: dict, dkim: list[dict], dmarc: dict | None):
    """Everything that can be decided without DNS; raises BuildError listing every bad input."""
    errors: list[str] = []
    result = BuildResult()
    spf_plans: dict[str, _SpfPlan] = {domain: _SpfPlan(domain)}
    custom = _custom_spf_terms(spf)
    for term in custom:
        spf_plans[domain].add(term, "spf")
    other: list[dict] = []
    entries: list[dict] = []
    for item in providers:
        try:
            plan = _email_providers.plan(item["name"], domain, item.get("settings"))
        except ValueError as exc:
            errors.append(str(exc))
            continue
        for name, terms in plan.spf.items():
            spf_plans.setdefault(name, _SpfPlan(name))
            for term in terms:
                spf_plans[name].add(term, item["name"])
        entries += plan.dkim
        other += plan.records
        result.notes += plan.notes
    for entry in dkim:
        if bool(entry.get("value")) == bool(entry.get("target")):
            errors.append("dkim entry %r needs either value (TXT key) or target (CNAME)" % entry.get("selector"))
            continue
        entries.append({"selector": entry["selector"], "domain": domain, "value": entry.get("value"), "target": entry.get("target")})
    seen: dict[str, str] = {}
    for entry in entries:
        info = _check_dkim_entry(entry, errors, result.warnings)
        if info["name"] in seen:
            errors.append("%s and %s both publish a DKIM key at %s; give one of them another selector" % (seen[info["name"]], info["source"], info["name"]))
        seen[info["name"]] = info["source"]
        result.dkim.append(info)
    all_qualifier = SPF_ALL[spf.get("all") or "softfail"]
    for spf_plan in spf_plans.values():
        for error in _spf.parse(_spf.build(spf_plan.terms, all_qualifier)).errors:
            errors.append("SPF at %s: %s (RFC 7208 section 4.6)" % (spf_plan.name, error))
    if dmarc is not None:
        try:
            text, warnings = _dmarc.build(
                dmarc["policy"], rua=dmarc.get("rua"), ruf=dmarc.get("ruf"), subdomain_policy=dmarc.get("subdomain_policy"),
                nonexistent_subdomain_policy=dmarc.get("nonexistent_subdomain_policy"), dkim_alignment=dmarc.get("dkim_alignment"),
                spf_alignment=dmarc.get("spf_alignment"), failure_options=dmarc.get("failure_options"),
                testing=bool(dmarc.get("testing")), percent=dmarc.get("percent"))
        except ValueError as exc:
            errors.append(str(exc))
        else:
            result.warnings += warnings
            result.dmarc = {"name": "_dmarc.%s" % domain, "record": text}
            destinations = _dmarc.external_destinations(_dmarc.parse(text))
            for dest in sorted({u.domain for u in destinations}):
                if not (_dmarc.same_or_below(dest, domain) or _dmarc.same_or_below(domain, dest)):
                    result.authorization_records.append({
                        "zone": dest, "type": "TXT", "name": _dmarc.authorization_name(domain, dest), "content": "v=DMARC1",
                        "comment": _comment("launchready email_auth_records: lets %s receive DMARC reports of %s" % (dest, domain)),
                    })
    else:
        result.notes.append("no DMARC record built (dmarc not given)")
    if errors:
        raise BuildError(errors)
    return result, list(spf_plans.values()), all_qualifier, other


async def _flatten(plan: _SpfPlan, evaluation: _spf.SpfEvaluation, resolver, all_qualifier: str) -> list[str]:
    """Replace the includes of a record by the addresses they allow; returns what was flattened."""
    flattened: list[str] = []
    networks: list[str] = []
    kept: list[str] = []
    children = {child.via: child for child in evaluation.tree.children} if evaluation.tree else {}
    for term in plan.terms:
        if term.startswith("ip4:") or term.startswith("ip6:"):
            networks.append(term.split(":", 1)[1])
            continue
        child = children.get(term)
        if term.startswith("include:") and child is not None:
            try:
                networks += await _spf.pass_networks(resolver, child)
            except _spf.NotFlattenable:
                kept.append(term)
            else:
                flattened.append(term)
                continue
        else:
            kept.append(term)
    addresses = _spf.collapse(networks)
    plan.sources.update({term: "flattened" for term in addresses if term not in plan.sources})
    main_size = len(_spf.build(addresses + kept, all_qualifier))
    if main_size <= _spf.RECORD_SIZE_LIMIT:
        plan.terms = addresses + kept
        return flattened
    parts = _spf.chunk_terms(addresses)
    names = ["_spf%d.%s" % (index, plan.name) for index in range(1, len(parts) + 1)]
    plan.extra = {name: [" ".join(["v=spf1", *part])] for name, part in zip(names, parts, strict=True)}
    plan.terms = ["include:%s" % name for name in names] + kept
    plan.sources.update({"include:%s" % name: "flattened" for name in names})
    return flattened


async def _spf_records(plans: list[_SpfPlan], all_qualifier: str, flatten: bool, resolver, result: BuildResult) -> list[str]:
    errors: list[str] = []

    async def one(plan: _SpfPlan) -> None:
        text = _spf.build(plan.terms, all_qualifier)
        evaluation = await _spf.evaluate(plan.name, resolver, [text])
        flattened: list[str] = []
        if flatten and evaluation.lookups > _spf.LOOKUP_LIMIT:
            before = evaluation.lookups
            flattened = await _flatten(plan, evaluation, resolver, all_qualifier)
            text = _spf.build(plan.terms, all_qualifier)
            overlay = OverlayResolver(resolver, plan.extra)
            evaluation = await _spf.evaluate(plan.name, overlay, [text])
            if flattened:
                result.warnings.append(
                    "SPF at %s was flattened from %d to %d lookups: the addresses of %s were copied on %s. Providers change their "
                    "addresses without notice; run this task again regularly (daily) so the copy stays right."
                    % (plan.name, before, evaluation.lookups, ", ".join(flattened), datetime.date.today().isoformat()))
        blockers = [p for p in evaluation.problems if p.severity == MUST_DO_NOW]
        if evaluation.lookups > _spf.LOOKUP_LIMIT:
            costs = ", ".join("%s (%s) costs %d" % (term, plan.sources.get(term, "all"), cost)
                              for term, cost in evaluation.costs if cost)
            errors.append(
                "SPF at %s would need %d DNS lookups, over the limit of %d (RFC 7208 section 4.6.4): %s. Drop a provider you no longer "
                "use, send through a provider's own MAIL FROM subdomain, or set spf.flatten: true"
                % (plan.name, evaluation.lookups, _spf.LOOKUP_LIMIT, costs))
            blockers = [p for p in blockers if "DNS lookups" not in p.title]
        for problem in blockers:
            errors.append("SPF at %s: %s: %s. %s" % (plan.name, problem.title, problem.evidence, problem.fix))
        result.warnings += ["SPF at %s: %s: %s" % (plan.name, p.title, p.evidence) for p in evaluation.problems if p.severity == CAN_WAIT]
        result.spf.append({
            "name": plan.name, "record": text, "lookups": evaluation.lookups, "void_lookups": evaluation.void_lookups,
            "costs": [{"term": term, "lookups": cost, "source": plan.sources.get(term, "")} for term, cost in evaluation.costs],
            "flattened": flattened, "parts": [{"name": name, "record": records[0]} for name, records in plan.extra.items()],
        })

    await asyncio.gather(*(one(plan) for plan in plans))
    result.spf.sort(key=lambda item: (item["name"].count("."), item["name"]))
    return errors


async def _other_txt(resolver, name: str, ours: Callable[[str], bool]) -> list[str]:
    answer = await resolver.query(name, "TXT")
    if answer.rcode in TEMP_RCODES:
        raise BuildError(["could not read the TXT records already at %s (%s %s), so they cannot be kept; try again, or set "
                          "keep_other_txt: false" % (name, answer.rcode, getattr(answer, "error", ""))])
    if answer.cname_chain:
        return []
    return [value for value in answer.values if not ours(value)]


def _is_dkim_key(value: str) -> bool:
    return "p=" in value.replace(" ", "")


async def build_records(domain: str, providers: list[dict], spf: dict, dkim: list[dict], dmarc: dict | None, resolver,
                        ttl: int = 3600, keep_other_txt: bool = True) -> BuildResult:
    """The records that make ``domain`` send authenticated mail through ``providers``; BuildError when they cannot work."""
    domain = normalize_domain(domain)
    result, spf_plans, all_qualifier, other = plan_records(domain, providers, spf or {}, dkim or [], dmarc)
    errors = await _spf_records(spf_plans, all_qualifier, bool((spf or {}).get("flatten")), resolver, result)
    if errors:
        raise BuildError(errors)
    txt: dict[str, tuple[list[str], str, Callable[[str], bool]]] = {}
    for item in result.spf:
        sources = sorted({c["source"] for c in item["costs"] if c["source"] not in ("spf", "flattened", "")})
        txt[item["name"]] = ([item["record"]], "SPF" + (" (%s)" % ", ".join(sources) if sources else ""), _spf.is_spf)
        for part in item["parts"]:
            txt[part["name"]] = ([part["record"]], "SPF part of %s (flattened, refresh regularly)" % item["name"], _spf.is_spf)
    if result.dmarc:
        txt[result.dmarc["name"]] = ([result.dmarc["record"]], "DMARC", _dmarc.is_dmarc)
    records: list[dict] = []
    for info in result.dkim:
        if info["type"] == "TXT":
            txt[info["name"]] = ([info["value"]], "DKIM %s" % info["source"], _is_dkim_key)
        else:
            records.append({"type": "CNAME", "name": info["name"], "content": info["target"], "ttl": ttl,
                            "comment": _comment("launchready email_auth_records: DKIM %s" % info["source"])})
    if keep_other_txt:
        names = list(txt)
        kept = await asyncio.gather(*(_other_txt(resolver, name, txt[name][2]) for name in names))
        for name, values in zip(names, kept, strict=True):
            if values:
                txt[name] = (txt[name][0] + sorted(values), txt[name][1], txt[name][2])
    for name, (values, what, _ours) in txt.items():
        record = {"type": "TXT", "name": name, "ttl": ttl, "comment": _comment("launchready email_auth_records: %s" % what)}
        if len(values) == 1:
            record["content"] = values[0]
        else:
            record["values"] = values
        records.append(record)
    grouped: dict[tuple[str, str], list[dict]] = {}
    for item in other:
        grouped.setdefault((item["name"], item["type"]), []).append(item)
    for (name, rdtype), items in grouped.items():
        contents = ["%d %s" % (i["priority"], i["content"]) if rdtype == "MX" else i["content"] for i in items]
        what = {"MX": "MAIL FROM MX", "CNAME": "return path"}.get(rdtype, rdtype)
        record = {"type": rdtype, "name": name, "ttl": ttl,
                  "comment": _comment("launchready email_auth_records: %s %s" % (what, ", ".join(sorted({i["provider"] for i in items}))))}
        if len(contents) == 1:
            record["content"] = contents[0]
        else:
            record["values"] = contents
        records.append(record)
    for record in result.authorization_records:
        record["ttl"] = ttl
    result.records = sorted(records, key=lambda r: (r["name"].count("."), r["name"], r["type"]))
    return result


# --- checking ---------------------------------------------------------------------------------


@dataclass
class DomainCheck:
    domain: str
    findings: list[Finding] = field(default_factory=list)
    spf: dict | None = None
    dmarc: dict | None = None
    dkim: list[dict] = field(default_factory=list)
    mx: dict | None = None

    def as_dict(self) -> dict:
        return {"spf": self.spf, "dmarc": self.dmarc, "dkim": self.dkim, "mx": self.mx,
                "findings": [f.as_dict() for f in self.findings]}


def _dns_problem(title: str, name: str, rdtype: str, answer) -> Finding:
    return finding(MUST_DO_NOW, title, "the %s query for %s answered %s %s" % (rdtype, name, answer.rcode, getattr(answer, "error", "")),
                   "Check that the nameservers of %s answer, then run the check again." % name, "RFC 1035 section 4.1.1")


async def _check_spf(domain: str, resolver, apex_txt, out: DomainCheck) -> None:
    evaluation = await _spf.evaluate(domain, resolver, apex_txt.values, apex_txt.rcode)
    out.spf = evaluation.as_dict()
    out.findings += evaluation.problems
    if evaluation.status == "valid" and not any(p.severity == MUST_DO_NOW for p in evaluation.problems):
        out.findings.append(finding(OK, "SPF of %s is valid" % domain, "%s: %d of %d DNS lookups, %d void"
                                    % (evaluation.record, evaluation.lookups, _spf.LOOKUP_LIMIT, evaluation.void_lookups), "",
                                    "RFC 7208 section 4.6.4"))
    dmarc_at_apex = [value for value in apex_txt.values if _dmarc.is_dmarc(value)]
    if dmarc_at_apex:
        out.findings.append(finding(MUST_DO_NOW, "DMARC record of %s is at the wrong name" % domain,
                                    "%s is published at %s itself, where receivers never look" % (dmarc_at_apex[0], domain),
                                    "Move it to _dmarc.%s." % domain, "RFC 9989 section 4.10"))


async def _authorized(resolver, policy_domain: str, policy_org: str, uri: _dmarc.ReportUri, tag: str) -> Finding | None:
    steps = await _dmarc.tree_walk(uri.domain, resolver)
    if _dmarc.organizational_domain(uri.domain, steps) == policy_org:
        return None
    name = _dmarc.authorization_name(policy_domain, uri.domain)
    answer = await resolver.query(name, "TXT")
    if answer.rcode in TEMP_RCODES:
        return _dns_problem("DMARC report address %s of %s could not be verified" % (uri.address, policy_domain), name, "TXT", answer)
    if any(_dmarc.is_dmarc(value) for value in answer.values):
        return None
    return finding(MUST_DO_NOW if tag == "rua" else CAN_WAIT,
                   "DMARC reports of %s to %s are not authorized" % (policy_domain, uri.domain),
                   "%s=%s is outside %s and %s publishes no 'v=DMARC1' TXT record at %s, so receivers drop these reports"
                   % (tag, uri.uri, policy_org, uri.domain, name),
                   "Publish TXT 'v=DMARC1' at %s (or ask the report service to), or send reports to an address in %s."
                   % (name, policy_org), "RFC 9990 section 4, RFC 7489 section 7.1")


async def _check_dmarc(domain: str, resolver, out: DomainCheck) -> None:
    steps = await _dmarc.tree_walk(domain, resolver)
    own = steps[0]
    out.dmarc = {"name": "_dmarc.%s" % domain, "records": own.records, "rcode": own.rcode}
    if own.rcode in TEMP_RCODES:
        out.findings.append(_dns_problem("DMARC of %s could not be checked" % domain, "_dmarc." + domain, "TXT", own))
        return
    if len(own.records) > 1:
        out.findings.append(finding(MUST_DO_NOW, "%s has %d DMARC records" % (domain, len(own.records)),
                                    "%s: receivers discard every record when there is more than one" % " | ".join(own.records),
                                    "Keep one record at _dmarc.%s." % domain, "RFC 9989 section 4.10.1, RFC 7489 section 6.6.3"))
        return
    if not own.records:
        inherited = next((s for s in steps[1:] if s.record is not None and not s.record.errors), None)
        if inherited is None:
            out.findings.append(finding(MUST_DO_NOW, "%s has no DMARC record" % domain,
                                        "no TXT record starting with v=DMARC1 at _dmarc.%s or above it" % domain,
                                        "Publish 'v=DMARC1; p=none; rua=mailto:<mailbox>' at _dmarc.%s, then tighten p." % domain,
                                        "RFC 9989 section 4.10"))
            return
        record = inherited.record
        if record is None:
            return
        policy = record.tags.get("sp") or record.tags.get("p") or "none"
        out.dmarc.update(inherited_from=inherited.name, record=inherited.records[0], policy=policy)
        out.findings.append(finding(CAN_WAIT if policy.lower() == "none" else OK,
                                    "%s has no DMARC record of its own" % domain,
                                    "the policy of %s applies: %s" % (inherited.name, inherited.records[0]),
                                    "Publish a record at _dmarc.%s if this domain needs a different policy." % domain,
                                    "RFC 9989 section 4.10"))
        return
    record = own.record
    if record is None:
        return
    out.dmarc.update(record=own.records[0], policy=record.policy, tags=record.tags)
    problems = _dmarc.record_findings(record, domain)
    if not record.errors:
        org = _dmarc.organizational_domain(domain, steps)
        out.dmarc["organizational_domain"] = org
        checks = [_authorized(resolver, domain, org, uri, tag) for tag in ("rua", "ruf")
                  for uri in record.uris(tag) if uri.domain and not uri.error]
        problems += [f for f in await asyncio.gather(*checks) if f is not None]
    out.findings += problems
    # A p that is not a policy is read as p=none at best: the record is not valid, whatever else ranks it.
    if not any(p.severity == MUST_DO_NOW for p in problems) and record.policy in (None, *_dmarc.POLICIES):
        out.findings.append(_dmarc.ok_finding(domain, record))


async def _check_selector(domain: str, spec: dict, resolver, out: DomainCheck) -> None:
    selector = spec["selector"]
    name = _dkim.record_name(selector, domain)
    answer = await resolver.query(name, "TXT")
    via = answer.cname_chain[-1] if answer.cname_chain else ""
    info = {"selector": selector, "name": name, "cname": via or None, "records": answer.values}
    out.dkim.append(info)
    if answer.rcode in TEMP_RCODES:
        out.findings.append(_dns_problem("DKIM selector %s of %s could not be checked" % (selector, domain), via or name, "TXT", answer))
        return
    keys = [value for value in answer.values if _is_dkim_key(value) or value.startswith("v=DKIM1")]
    if not keys:
        out.findings.append(finding(MUST_DO_NOW, "DKIM key %s is not published" % name,
                                    "%s%s answers %s with no key record; mail signed with selector %s fails DKIM"
                                    % (name, " (CNAME to %s)" % via if via else "", answer.rcode, selector),
                                    "Publish the key record of selector %s (or the provider's CNAME) at %s." % (selector, name),
                                    "RFC 6376 section 6.1.2"))
        return
    if len(keys) > 1:
        out.findings.append(finding(MUST_DO_NOW, "DKIM selector %s of %s has %d key records" % (selector, domain, len(keys)),
                                    "verifiers may pick any of them, so signatures fail at random", "Keep one key record at %s." % name,
                                    "RFC 6376 section 3.6.2.2"))
        return
    record = _dkim.parse_key_record(keys[0])
    info.update(key_type=record.key_type, bits=record.bits, revoked=record.revoked)
    findings = _dkim.record_findings(record, name, via)
    private = spec.get("private_key")
    if private is None and spec.get("private_key_path"):
        try:
            with open(spec["private_key_path"], "rb") as handle:
                private = handle.read()
        except OSError as exc:
            findings.append(finding(MUST_DO_NOW, "local DKIM key for %s cannot be read" % name, "%s: %s" % (spec["private_key_path"], exc.strerror),
                                    "Give the path of the private key that signs with selector %s." % selector, "RFC 6376 section 3.6.1"))
    if private is not None and not record.errors and not record.revoked:
        try:
            key = _dkim.load_private_pem(private.encode("ascii") if isinstance(private, str) else private)
        except (ValueError, TypeError):
            findings.append(finding(MUST_DO_NOW, "local DKIM key for %s is not a private key" % name,
                                    "the local key given for selector %s is not an unencrypted RSA or Ed25519 PEM key" % selector,
                                    "Give the PEM private key that signs with this selector.", "RFC 6376 section 3.6.1"))
        else:
            info["matches_local_key"] = _dkim.matches(record, key)
            if not info["matches_local_key"]:
                findings = [f for f in findings if f.severity != OK]
                findings.append(finding(MUST_DO_NOW, "DKIM key %s does not match the local private key" % name,
                                        "the public key published for selector %s is not the public half of the local key, so every "
                                        "signature made with the local key fails" % selector,
                                        "Publish the TXT value of the local key (launchready.core.dkim_key returns it) at %s." % name,
                                        "RFC 6376 section 3.6.1"))
    out.findings += findings


async def _check_mx(domain: str, resolver, out: DomainCheck) -> None:
    answer = await resolver.query(domain, "MX")
    out.mx = {"records": answer.values, "rcode": answer.rcode}
    if answer.rcode in TEMP_RCODES:
        out.findings.append(_dns_problem("MX of %s could not be checked" % domain, domain, "MX", answer))
        return
    hosts = [value.split(None, 1) for value in answer.values]
    null = [h for h in hosts if len(h) == 1 or h[1].strip(".") == ""]
    if null:
        out.mx["null_mx"] = True
        if len(hosts) > 1:
            out.findings.append(finding(MUST_DO_NOW, "%s mixes a null MX with other MX records" % domain,
                                        "%s: a domain with a null MX must publish no other MX" % ", ".join(answer.values),
                                        "Remove either the null MX (0 .) or the other MX records.", "RFC 7505 section 3"))
        else:
            out.findings.append(finding(OK, "%s accepts no mail (null MX)" % domain, "MX 0 . tells senders not to try",
                                        "", "RFC 7505 section 3"))
        return
    if not hosts:
        out.findings.append(finding(CAN_WAIT, "%s has no MX record" % domain,
                                    "MX query answered %s: replies and bounces to %s fall back to its A record, and some receivers "
                                    "distrust senders whose domain cannot receive mail" % (answer.rcode, domain),
                                    "Publish the MX records of your mailbox provider, or a null MX (0 .) if %s receives no mail." % domain,
                                    "RFC 5321 section 5.1, RFC 7505 section 3"))
        return
    out.findings.append(finding(OK, "%s has MX records" % domain, ", ".join(answer.values), "", "RFC 5321 section 5.1"))


async def check_domain(spec: dict, resolver) -> DomainCheck:
    domain = normalize_domain(spec["name"])
    out = DomainCheck(domain=domain)
    apex_txt = await resolver.query(domain, "TXT")
    jobs = [_check_spf(domain, resolver, apex_txt, out), _check_dmarc(domain, resolver, out)]
    jobs += [_check_selector(domain, selector, resolver, out) for selector in spec.get("dkim") or []]
    if spec.get("check_mx", True):
        jobs.append(_check_mx(domain, resolver, out))
    await asyncio.gather(*jobs)
    out.dkim.sort(key=lambda item: item["selector"])
    return out


async def check_domains(specs: list[dict], resolver) -> list[DomainCheck]:
    return list(await asyncio.gather(*(check_domain(spec, resolver) for spec in specs)))
