# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DMARC policy records: parse and judge them (RFC 7489 and RFC 9989), build them, discover them.

RFC 9989 (DMARCbis) obsoletes RFC 7489: it adds ``np``, ``psd`` and ``t``, removes ``pct``,
``rf`` and ``ri``, and finds the Organizational Domain by walking the DNS tree instead of a
public suffix list. Receivers still implementing RFC 7489 exist, so records built here stay
readable by both (``p`` right after ``v``; no ``!size`` suffixes).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW, OK, Finding

STAGE = "secrets_env"
POLICIES = ("none", "quarantine", "reject")
ALIGNMENT = {"relaxed": "r", "strict": "s"}
KNOWN_TAGS = ("v", "p", "sp", "np", "adkim", "aspf", "fo", "rua", "ruf", "t", "psd")
REMOVED_TAGS = ("pct", "rf", "ri")
TAG_ORDER = ("v", "p", "sp", "np", "adkim", "aspf", "pct", "t", "fo", "rua", "ruf")
TREE_WALK_MAX_LABELS = 8
TEMP_RCODES = ("SERVFAIL", "TIMEOUT", "REFUSED")

_VERSION = re.compile(r"v\s*=\s*DMARC1\s*(?:;|$)", re.IGNORECASE)
_STRICT_VERSION = re.compile(r"v\s*=\s*DMARC1\s*(?:;|$)")
_TAG = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*", re.DOTALL)
_SIZE = re.compile(r"!([0-9]+)([kmgtKMGT]?)$")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?")
_FO = re.compile(r"[01ds](?::[01ds])*")


def rfc_finding(severity: str, title: str, evidence: str, fix: str, section: str) -> Finding:
    return Finding(stage=STAGE, severity=severity, title=title, evidence="%s (%s)" % (evidence, section), fix=fix)


def is_dmarc(text: str) -> bool:
    """True when a TXT string starts with the ``v=DMARC1`` tag (RFC 9989 section 4.10.1 discards others)."""
    return bool(_VERSION.match(text))


def select_records(txt_values: list[str]) -> list[str]:
    return [value for value in txt_values if is_dmarc(value)]


def is_hostname(name: str) -> bool:
    name = name.rstrip(".")
    labels = name.split(".")
    return len(labels) > 1 and len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


@dataclass
class ReportUri:
    uri: str
    scheme: str = ""
    address: str = ""
    domain: str = ""  # domain part of a mailto: address, lower case
    size: str = ""  # obsolete !size suffix
    error: str = ""


def parse_uri(text: str) -> ReportUri:
    """One entry of ``rua``/``ruf``: a URI, optionally with the obsolete ``!size`` suffix (RFC 7489 section 6.2)."""
    uri = ReportUri(uri=text.strip())
    body = uri.uri
    size = _SIZE.search(body)
    if size:
        uri.size, body = size.group(0), body[: size.start()]
    scheme, sep, rest = body.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        uri.error = "%r is not a URI; a report address is written mailto:%s" % (uri.uri, body)
        return uri
    uri.scheme = scheme.lower()
    if uri.scheme != "mailto":
        return uri
    address = rest.split("?", 1)[0]
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local) or not is_hostname(domain):
        uri.error = "%r is not a valid mailto: address" % uri.uri
        return uri
    uri.address, uri.domain = address, domain.rstrip(".").lower()
    return uri


@dataclass
class DmarcRecord:
    text: str
    tags: dict[str, str] = field(default_factory=dict)  # tag names lower case, in record order
    errors: list[str] = field(default_factory=list)  # the record is not a valid tag-list at all

    @property
    def policy(self) -> str | None:
        value = self.tags.get("p")
        return value.lower() if value is not None else None

    def uris(self, tag: str) -> list[ReportUri]:
        value = self.tags.get(tag, "")
        return [parse_uri(part) for part in value.split(",") if part.strip()]


def parse(text: str) -> DmarcRecord:
    """Split a DMARC record into its tags; tag-list syntax errors go to ``errors`` (RFC 6376 section 3.2)."""
    record = DmarcRecord(text=text)
    if not _STRICT_VERSION.match(text):
        record.errors.append("the record must start with v=DMARC1 (exactly, upper case)")
    for part in text.split(";"):
        if not part.strip():
            continue
        match = _TAG.fullmatch(part)
        if not match:
            record.errors.append("%r is not tag=value" % part.strip())
            continue
        name, value = match.group(1).lower(), match.group(2)
        if name in record.tags:
            record.errors.append("the tag %r appears more than once" % name)
            continue
        record.tags[name] = value
    if list(record.tags)[:1] != ["v"]:
        record.errors.append("v=DMARC1 must be the first tag")
    return record


def record_findings(record: DmarcRecord, domain: str) -> list[Finding]:
    """Everything that should change in one DMARC record, judged by RFC 9989 with RFC 7489 receivers in mind."""
    findings: list[Finding] = []
    where = "_dmarc.%s" % domain

    def must(title, evidence, fix, section):
        findings.append(rfc_finding(MUST_DO_NOW, "DMARC record of %s: %s" % (domain, title), evidence, fix, section))

    def later(title, evidence, fix, section):
        findings.append(rfc_finding(CAN_WAIT, "DMARC record of %s: %s" % (domain, title), evidence, fix, section))

    if record.errors:
        must("syntax error", "%s: %s" % (record.text, "; ".join(record.errors)),
             "Rewrite the record as 'v=DMARC1; p=none; rua=mailto:<address>' (tags separated by ';', each once).",
             "RFC 9989 section 4.7, RFC 6376 section 3.2")
    tags = record.tags
    policy = record.policy
    # Without a valid p, a valid rua makes receivers act as if the record said p=none; without one they ignore it.
    reports = any(not uri.error for uri in record.uris("rua"))
    if policy is None and reports:
        later("no p= tag", "%s has no policy tag but a valid rua, so receivers act as if it said p=none" % where,
              "Add p=none (to collect reports first), then p=quarantine, then p=reject.", "RFC 9989 section 4.7, RFC 7489 section 6.6.3")
    elif policy is None:
        must("no p= tag", "%s has no policy tag and no valid rua; RFC 7489 receivers ignore such a record" % where,
             "Add p=none (to collect reports first), then p=quarantine, then p=reject.", "RFC 9989 section 4.7, RFC 7489 section 6.6.3")
    elif policy not in POLICIES and reports:
        later("p=%s is not a policy, so receivers read it as p=none" % tags["p"],
              "p must be none, quarantine or reject; with an invalid p and a valid rua receivers act as if it said p=none "
              "(monitoring only) and keep sending reports",
              "Write p=none, p=quarantine or p=reject: the policy you meant, or p=none until the aggregate reports show every "
              "legitimate sender passing.", "RFC 7489 section 6.6.3, RFC 9989 section 4.10.1")
    elif policy not in POLICIES:
        must("p=%s is not a policy" % tags["p"],
             "p must be none, quarantine or reject; with an invalid p and no valid rua receivers ignore the record: no DMARC at all",
             "Write p=none, p=quarantine or p=reject (p=none with a rua mailbox to collect reports first).",
             "RFC 7489 section 6.6.3, RFC 9989 section 4.10.1")
    for tag in ("sp", "np"):
        if tag in tags and tags[tag].lower() not in POLICIES:
            must("%s=%s is not a policy" % (tag, tags[tag]), "%s must be none, quarantine or reject" % tag,
                 "Write %s=none, %s=quarantine or %s=reject, or remove it to inherit p." % (tag, tag, tag), "RFC 9989 section 4.7")
    for tag in ("adkim", "aspf"):
        if tag in tags and tags[tag].lower() not in ("r", "s"):
            must("%s=%s is not an alignment mode" % (tag, tags[tag]), "%s must be r (relaxed) or s (strict)" % tag,
                 "Write %s=r or %s=s, or remove it (relaxed is the default)." % (tag, tag), "RFC 9989 section 4.7")
    if "pct" in tags:
        pct = tags["pct"]
        if not pct.isdigit() or not 0 <= int(pct) <= 100:
            must("pct=%s is out of range" % pct, "pct must be an integer from 0 to 100; RFC 7489 receivers discard the tag or the record",
                 "Remove pct (RFC 9989 dropped it; use t=y to test a policy).", "RFC 7489 section 6.3")
        else:
            later("pct is no longer part of DMARC", "pct=%s was removed by RFC 9989; newer receivers ignore it" % pct,
                  "Remove pct; to try a stricter policy without full effect, set t=y for a while.", "RFC 9989 section 4.7")
    for tag in ("rf", "ri"):
        if tag in tags:
            later("%s is no longer part of DMARC" % tag, "%s=%s was removed by RFC 9989 and is ignored" % (tag, tags[tag]),
                  "Remove %s=%s." % (tag, tags[tag]), "RFC 9989 section 4.7")
    if "t" in tags:
        if tags["t"].lower() not in ("y", "n"):
            later("t=%s is not y or n" % tags["t"], "the test flag t must be y or n", "Write t=y while testing, or remove it.",
                  "RFC 9989 section 4.7")
        elif tags["t"].lower() == "y":
            later("test mode is on (t=y)", "receivers apply the policy one step weaker than p=%s" % (policy or "none"),
                  "Remove t=y once the aggregate reports show every legitimate sender passing.", "RFC 9989 section 4.7")
    if "psd" in tags:
        if tags["psd"].lower() not in ("y", "n", "u"):
            later("psd=%s is not y, n or u" % tags["psd"], "psd must be y, n or u", "Remove psd.", "RFC 9989 section 4.7")
        elif tags["psd"].lower() == "y":
            must("psd=y declares a public suffix", "psd=y is only for public suffix operators (like a TLD); it changes how "
                 "receivers find the Organizational Domain of every name below %s" % domain, "Remove psd=y.", "RFC 9989 section 4.7")
    if "fo" in tags:
        if not _FO.fullmatch(tags["fo"].replace(" ", "")):
            later("fo=%s is not valid" % tags["fo"], "fo is 0, 1, d, s or several of them separated by ':'",
                  "Write fo=1 (report any failure) or remove fo.", "RFC 9989 section 4.7")
        elif "ruf" not in tags:
            later("fo without ruf", "fo=%s only matters with ruf and is ignored" % tags["fo"], "Remove fo, or add ruf.",
                  "RFC 9989 section 4.7")
    for tag in ("rua", "ruf"):
        for uri in record.uris(tag):
            if uri.error:
                (must if tag == "rua" else later)(
                    "%s entry %s is not a report address" % (tag, uri.uri), uri.error,
                    "Write %s=mailto:%s." % (tag, uri.uri.split(":")[-1] if ":" in uri.uri else uri.uri), "RFC 7489 section 6.2, RFC 9989 section 4.7")
            elif uri.scheme != "mailto":
                later("%s entry %s is not mailto:" % (tag, uri.uri), "receivers only have to support mailto: URIs",
                      "Use a mailto: address.", "RFC 9989 section 4.7")
            if uri.size:
                later("%s entry %s has a size limit" % (tag, uri.uri), "the !size suffix is obsolete and ignored by RFC 9989 receivers",
                      "Remove %s from the address." % uri.size, "RFC 9989 section 4.7")
    if "rua" not in tags:
        if policy in (None, "none") or policy not in POLICIES:
            must("no rua", "with p=none and no rua nobody learns anything: no policy and no aggregate reports",
                 "Add rua=mailto:<a mailbox that receives the daily aggregate reports>.", "RFC 9989 section 4.7")
        else:
            later("no rua", "without rua you do not see which mail fails DMARC under p=%s" % policy,
                  "Add rua=mailto:<a mailbox or a DMARC report service>.", "RFC 9989 section 4.7")
    unknown = [name for name in tags if name not in KNOWN_TAGS + REMOVED_TAGS]
    if unknown:
        later("unknown tags %s" % ", ".join(unknown), "unknown tags are ignored by receivers", "Remove %s." % ", ".join(unknown),
              "RFC 9989 section 4.7")
    if policy == "none":
        later("policy is p=none (monitoring only)", "p=none asks receivers to deliver mail that fails DMARC as usual",
              "Read the aggregate reports; when every legitimate sender passes, move to p=quarantine, later p=reject.",
              "RFC 9989 section 7.4")
    if policy in ("quarantine", "reject") and tags.get("sp", "").lower() == "none":
        later("subdomains are not protected (sp=none)", "p=%s covers %s but sp=none lets anyone use its subdomains" % (policy, domain),
              "Remove sp=none (subdomains then inherit p) unless a subdomain still sends unauthenticated mail.", "RFC 9989 section 4.7")
    return findings


def external_destinations(record: DmarcRecord) -> list[ReportUri]:
    return [u for tag in ("rua", "ruf") for u in record.uris(tag) if u.domain and not u.error]


def authorization_name(policy_domain: str, destination_domain: str) -> str:
    """Where the destination publishes its consent to receive reports (RFC 7489 section 7.1, RFC 9990 section 4)."""
    return "%s._report._dmarc.%s" % (policy_domain.rstrip(".").lower(), destination_domain.rstrip(".").lower())


def same_or_below(name: str, parent: str) -> bool:
    return name == parent or name.endswith("." + parent)


# --- building --------------------------------------------------------------------------------


def build(policy: str, rua: list[str] | None = None, ruf: list[str] | None = None, subdomain_policy: str | None = None,
          nonexistent_subdomain_policy: str | None = None, dkim_alignment: str | None = None, spf_alignment: str | None = None,
          failure_options: str | None = None, testing: bool = False, percent: int | None = None) -> tuple[str, list[str]]:
    """A DMARC record from options. Returns (record, warnings); raises ValueError listing every bad input."""
    errors: list[str] = []
    warnings: list[str] = []
    for name, value in (("policy", policy), ("subdomain_policy", subdomain_policy),
                        ("nonexistent_subdomain_policy", nonexistent_subdomain_policy)):
        if value is not None and value not in POLICIES:
            errors.append("dmarc.%s=%r is not a policy: use none, quarantine or reject (RFC 9989 section 4.7)" % (name, value))
    for name, value in (("dkim_alignment", dkim_alignment), ("spf_alignment", spf_alignment)):
        if value is not None and value not in ALIGNMENT:
            errors.append("dmarc.%s=%r must be relaxed or strict" % (name, value))
    if percent is not None and not (isinstance(percent, int) and 0 <= percent <= 100):
        errors.append("dmarc.percent=%r is out of range: pct is an integer from 0 to 100 (RFC 7489 section 6.3)" % (percent,))
    elif percent is not None:
        warnings.append("dmarc.percent (pct) was removed by RFC 9989 and newer receivers ignore it; prefer dmarc.testing (t=y)")
    if failure_options is not None and not _FO.fullmatch(failure_options):
        errors.append("dmarc.failure_options=%r must be 0, 1, d, s or several joined by ':' (RFC 9989 section 4.7)" % failure_options)
    if failure_options is not None and not ruf:
        warnings.append("dmarc.failure_options only matters with dmarc.ruf; receivers ignore it")
    for tag, addresses in (("rua", rua or []), ("ruf", ruf or [])):
        for address in addresses:
            uri = parse_uri(address)
            if uri.error or uri.scheme != "mailto":
                errors.append("dmarc.%s entry %r must be a mailto: URI such as mailto:%s (RFC 9989 section 4.7)"
                              % (tag, address, address.split(":")[-1]))
            elif uri.size:
                errors.append("dmarc.%s entry %r: the !size suffix is obsolete (RFC 9989); remove %s" % (tag, address, uri.size))
            elif "," in address or ";" in address:
                errors.append("dmarc.%s entry %r must be one address per list item" % (tag, address))
    if policy == "none" and not rua:
        errors.append("dmarc.policy=none without dmarc.rua collects nothing: give a rua mailbox for the aggregate reports")
    if errors:
        raise ValueError("; ".join(errors))
    tags = [("v", "DMARC1"), ("p", policy)]
    if subdomain_policy:
        tags.append(("sp", subdomain_policy))
    if nonexistent_subdomain_policy:
        tags.append(("np", nonexistent_subdomain_policy))
    if dkim_alignment:
        tags.append(("adkim", ALIGNMENT[dkim_alignment]))
    if spf_alignment:
        tags.append(("aspf", ALIGNMENT[spf_alignment]))
    if percent is not None:
        tags.append(("pct", str(percent)))
    if testing:
        tags.append(("t", "y"))
    if failure_options:
        tags.append(("fo", failure_options))
    if rua:
        tags.append(("rua", ",".join(rua)))
    if ruf:
        tags.append(("ruf", ",".join(ruf)))
    return "; ".join("%s=%s" % tag for tag in tags), warnings


# --- discovery (RFC 9989 section 4.10) -------------------------------------------------------


def tree_walk_names(domain: str) -> list[str]:
    """The names whose ``_dmarc`` records a DNS Tree Walk queries, longest first (RFC 9989 section 4.10.1)."""
    labels = domain.rstrip(".").lower().split(".")
    names = [".".join(labels)]
    while len(labels) > 1:
        labels = labels[-(TREE_WALK_MAX_LABELS - 1):] if len(labels) >= TREE_WALK_MAX_LABELS else labels[1:]
        names.append(".".join(labels))
    return names


@dataclass
class WalkStep:
    name: str
    rcode: str
    records: list[str]

    @property
    def record(self) -> DmarcRecord | None:
        return parse(self.records[0]) if len(self.records) == 1 else None


async def tree_walk(domain: str, resolver) -> list[WalkStep]:
    """Query every ``_dmarc`` name of the walk at once; keep the steps up to where the walk stops (a psd tag)."""
    names = tree_walk_names(domain)
    answers = await asyncio.gather(*(resolver.query("_dmarc." + name, "TXT") for name in names))
    steps = []
    for name, answer in zip(names, answers, strict=True):
        step = WalkStep(name=name, rcode=answer.rcode, records=select_records(answer.values) if answer.rcode == "NOERROR" else [])
        steps.append(step)
        record = step.record
        if record is not None and record.tags.get("psd", "").lower() in ("y", "n"):
            break
    return steps


def organizational_domain(domain: str, steps: list[WalkStep]) -> str:
    """Pick the Organizational Domain from a tree walk (RFC 9989 section 4.10.2)."""
    start = domain.rstrip(".").lower()
    valid = [s for s in steps if s.record is not None and not s.record.errors]
    for step in valid:
        psd = step.record.tags.get("psd", "").lower()  # type: ignore[union-attr]
        if psd == "n":
            return step.name
        if psd == "y" and step.name != start:
            below = start[: -len(step.name)].rstrip(".").split(".")[-1]
            return "%s.%s" % (below, step.name)
    if valid:
        return min(valid, key=lambda s: s.name.count(".")).name
    return start


def ok_finding(domain: str, record: DmarcRecord) -> Finding:
    rua = ", ".join(u.uri for u in record.uris("rua")) or "nobody"
    return rfc_finding(OK, "DMARC record of %s is valid" % domain,
                       "p=%s, reports to %s" % (record.policy or "none", rua), "", "RFC 9989 section 4.7")
