# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog of sending providers: what each one needs in DNS to send as a domain.

Each provider turns its ``settings`` (values copied from the provider's dashboard, such as a
DKIM key or a SendGrid host) into a :class:`ProviderPlan`: SPF terms per name (the apex or the
provider's MAIL FROM subdomain), DKIM entries (a TXT key or a CNAME delegation) and other
records (MAIL FROM MX, return-path CNAME). The sources are listed in ``docs/email.md`` and in
``SOURCES`` below. SPF lookup costs are never stored here: they are counted from DNS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Setting:
    description: str
    kind: type = str  # str, list or bool
    default: object = None
    required: bool = False


@dataclass
class ProviderPlan:
    spf: dict[str, list[str]] = field(default_factory=dict)  # fqdn -> SPF terms to publish there
    dkim: list[dict] = field(default_factory=list)  # {"selector", "domain", "value" or "target"}
    records: list[dict] = field(default_factory=list)  # {"type", "name", "content", "priority"?}
    notes: list[str] = field(default_factory=list)  # what was not built, and why
    dkim_domain: str | None = None  # where settings.dkim entries go when not the domain itself (Mailgun)


@dataclass
class Provider:
    key: str
    label: str
    sources: tuple[str, ...]
    settings: dict[str, Setting]
    plan: Callable[[str, dict], ProviderPlan]


DKIM_SETTING = Setting(
    "Extra DKIM entries exactly as the provider's dashboard shows them: a list of {selector, value} (TXT key) "
    "or {selector, target} (CNAME delegation).", kind=list, default=[])


def fqdn(label: str | None, domain: str) -> str:
    """``label`` under ``domain``; ``@`` or an empty label is the domain itself."""
    if not label or label == "@":
        return domain
    return "%s.%s" % (label.rstrip("."), domain)


def _google_workspace(domain: str, s: dict) -> ProviderPlan:
    plan = ProviderPlan(spf={domain: ["include:_spf.google.com"]})
    if s["dkim_value"]:
        plan.dkim.append({"selector": s["dkim_selector"], "domain": domain, "value": s["dkim_value"]})
    else:
        plan.notes.append("google_workspace: DKIM not built; generate the key in the Admin console (Apps > Google Workspace > "
                          "Gmail > Authenticate email) and pass it as settings.dkim_value")
    return plan


def _microsoft_365(domain: str, s: dict) -> ProviderPlan:
    plan = ProviderPlan(spf={domain: ["include:spf.protection.outlook.com"]})
    targets = s["dkim_targets"]
    if targets:
        if len(targets) != 2:
            raise ValueError("microsoft_365: settings.dkim_targets needs the two CNAME targets (Selector1CNAME, Selector2CNAME), got %d"
                             % len(targets))
        for index, target in enumerate(targets, start=1):
            plan.dkim.append({"selector": "selector%d" % index, "domain": domain, "target": target})
    else:
        plan.notes.append("microsoft_365: DKIM not built; read the targets with Get-DkimSigningConfig (Selector1CNAME, "
                          "Selector2CNAME) or the Defender portal and pass them as settings.dkim_targets")
    return plan


def _amazon_ses(domain: str, s: dict) -> ProviderPlan:
    plan = ProviderPlan()
    if s["mail_from"]:
        if not s["region"]:
            raise ValueError("amazon_ses: settings.region (for example eu-west-1) is needed for the MAIL FROM MX record")
        name = fqdn(s["mail_from"], domain)
        plan.spf[name] = ["include:amazonses.com"]
        plan.records.append({"type": "MX", "name": name, "content": "feedback-smtp.%s.amazonses.com" % s["region"], "priority": 10})
    else:
        plan.notes.append("amazon_ses: no custom MAIL FROM domain, so SPF passes for amazonses.com but does not align; DMARC relies on DKIM")
    for token in s["dkim_tokens"]:
        plan.dkim.append({"selector": token, "domain": domain, "target": "%s.dkim.amazonses.com" % token})
    if not s["dkim_tokens"]:
        plan.notes.append("amazon_ses: DKIM not built; pass the three Easy DKIM tokens of the identity as settings.dkim_tokens")
    return plan


def _sendgrid(domain: str, s: dict) -> ProviderPlan:
    host = s["host"].rstrip(".").lower()
    plan = ProviderPlan()
    plan.records.append({"type": "CNAME", "name": fqdn(s["return_path"], domain), "content": host})
    for selector in s["dkim_selectors"]:
        plan.dkim.append({"selector": selector, "domain": domain, "target": "%s.domainkey.%s" % (selector, host)})
    return plan


def _mailgun(domain: str, s: dict) -> ProviderPlan:
    sending = fqdn(s["sending_domain"], domain)
    plan = ProviderPlan(spf={sending: ["include:%s" % s["spf_include"]]}, dkim_domain=sending)
    if s["dkim_value"]:
        if not s["dkim_selector"]:
            raise ValueError("mailgun: settings.dkim_selector is needed with settings.dkim_value (the host name Mailgun shows, "
                             "such as pic or krs, before ._domainkey)")
        plan.dkim.append({"selector": s["dkim_selector"], "domain": sending, "value": s["dkim_value"]})
    elif not s["dkim"]:
        plan.notes.append("mailgun: DKIM not built; pass settings.dkim_selector and settings.dkim_value from the Mailgun "
                          "control panel (or settings.dkim with CNAME targets)")
    if s["receiving_mx"]:
        if sending == domain:
            raise ValueError("mailgun: settings.receiving_mx would replace the MX records of %s itself; use a sending subdomain" % domain)
        region = "eu." if s["region"] == "eu" else ""
        plan.records.append({"type": "MX", "name": sending, "content": "mxa.%smailgun.org" % region, "priority": 10})
        plan.records.append({"type": "MX", "name": sending, "content": "mxb.%smailgun.org" % region, "priority": 10})
    return plan


def _postmark(domain: str, s: dict) -> ProviderPlan:
    plan = ProviderPlan()
    if s["return_path"]:
        plan.records.append({"type": "CNAME", "name": fqdn(s["return_path"], domain), "content": "pm.mtasv.net"})
    if s["dkim_selector"] and s["dkim_value"]:
        plan.dkim.append({"selector": s["dkim_selector"], "domain": domain, "value": s["dkim_value"]})
    elif s["dkim_selector"] or s["dkim_value"]:
        raise ValueError("postmark: settings.dkim_selector and settings.dkim_value go together (both from the DNS settings of the domain)")
    elif not s["dkim"]:
        plan.notes.append("postmark: DKIM not built; pass settings.dkim_selector and settings.dkim_value from Sender Signatures > DNS settings")
    return plan


def _resend(domain: str, s: dict) -> ProviderPlan:
    name = fqdn(s["return_path"], domain)
    plan = ProviderPlan(spf={name: ["include:amazonses.com"]})
    plan.records.append({"type": "MX", "name": name, "content": "feedback-smtp.%s.amazonses.com" % s["region"], "priority": 10})
    if s["dkim_value"]:
        plan.dkim.append({"selector": "resend", "domain": domain, "value": s["dkim_value"]})
    elif not s["dkim"]:
        plan.notes.append("resend: DKIM not built; pass the value of the resend._domainkey record as settings.dkim_value")
    return plan


def _mailchimp_transactional(domain: str, s: dict) -> ProviderPlan:
    plan = ProviderPlan()
    if s["spf_include"]:
        plan.spf[domain] = ["include:spf.mandrillapp.com"]
    plan.dkim.append({"selector": "mte1", "domain": domain, "target": "dkim1.mandrillapp.com"})
    plan.dkim.append({"selector": "mte2", "domain": domain, "target": "dkim2.mandrillapp.com"})
    return plan


PROVIDERS: dict[str, Provider] = {
    p.key: p for p in (
        Provider("google_workspace", "Google Workspace", (
            "https://support.google.com/a/answer/10684623",
            "https://support.google.com/a/answer/174124",
        ), {
            "dkim_selector": Setting("DKIM selector chosen in the Admin console.", default="google"),
            "dkim_value": Setting("The TXT value the Admin console generates (v=DKIM1; k=rsa; p=...)."),
        }, _google_workspace),
        Provider("microsoft_365", "Microsoft 365 (Exchange Online)", (
            "https://learn.microsoft.com/en-us/defender-office-365/email-authentication-spf-configure",
            "https://learn.microsoft.com/en-us/defender-office-365/email-authentication-dkim-configure",
        ), {
            "dkim_targets": Setting("The two CNAME targets for selector1 and selector2 (Selector1CNAME and Selector2CNAME of "
                                    "Get-DkimSigningConfig).", kind=list, default=[]),
        }, _microsoft_365),
        Provider("amazon_ses", "Amazon SES", (
            "https://docs.aws.amazon.com/ses/latest/dg/mail-from.html",
            "https://docs.aws.amazon.com/ses/latest/dg/send-email-authentication-dkim-easy.html",
        ), {
            "region": Setting("AWS region of the SES identity, for the MAIL FROM MX record (for example eu-west-1)."),
            "mail_from": Setting("Label of the custom MAIL FROM subdomain; empty to keep the SES default (no SPF alignment).",
                                 default="mail"),
            "dkim_tokens": Setting("The three Easy DKIM tokens of the identity.", kind=list, default=[]),
        }, _amazon_ses),
        Provider("sendgrid", "Twilio SendGrid", (
            "https://www.twilio.com/docs/sendgrid/ui/account-and-settings/how-to-set-up-domain-authentication",
        ), {
            "host": Setting("The account host the CNAMEs point to, such as u1234567.wl123.sendgrid.net.", required=True),
            "return_path": Setting("Label of the return-path subdomain SendGrid assigned, such as em1234.", required=True),
            "dkim_selectors": Setting("DKIM selectors (automated security).", kind=list, default=["s1", "s2"]),
        }, _sendgrid),
        Provider("mailgun", "Mailgun", (
            "https://documentation.mailgun.com/en/latest/user_manual.html",
        ), {
            "sending_domain": Setting("Label of the Mailgun sending domain under the domain; @ for the domain itself.", default="mg"),
            "region": Setting("us or eu (the EU region has its own MX hosts).", default="us"),
            "spf_include": Setting("The include Mailgun shows for SPF.", default="mailgun.org"),
            "dkim_selector": Setting("DKIM selector Mailgun shows (the label before ._domainkey)."),
            "dkim_value": Setting("DKIM TXT value Mailgun shows (k=rsa; p=...)."),
            "receiving_mx": Setting("Also publish Mailgun's MX records on the sending subdomain (for inbound routes).", kind=bool,
                                    default=False),
        }, _mailgun),
        Provider("postmark", "Postmark", (
            "https://postmarkapp.com/blog/introducing-full-dmarc-support-with-custom",
            "https://postmarkapp.com/developer/api/domains-api",
        ), {
            "dkim_selector": Setting("DKIM selector Postmark shows, such as 20240101123456pm."),
            "dkim_value": Setting("DKIM TXT value Postmark shows (k=rsa; p=...)."),
            "return_path": Setting("Label of the custom Return-Path subdomain (CNAME to pm.mtasv.net); empty for none.",
                                   default="pm-bounces"),
        }, _postmark),
        Provider("resend", "Resend", (
            "https://resend.com/docs/dashboard/domains/introduction",
            "https://resend.com/docs/knowledge-base/how-do-i-avoid-conflicting-with-my-mx-records",
        ), {
            "return_path": Setting("Label of the return-path subdomain.", default="send"),
            "region": Setting("Sending region, for the MX record (us-east-1, eu-west-1, sa-east-1, ap-northeast-1).",
                              default="us-east-1"),
            "dkim_value": Setting("The value of the resend._domainkey TXT record (p=...)."),
        }, _resend),
        Provider("mailchimp_transactional", "Mailchimp Transactional (Mandrill)", (
            "https://mailchimp.com/developer/transactional/docs/authentication-delivery/",
            "https://mailchimp.com/developer/release-notes/new-sending-domain-authentication-requirements",
        ), {
            "spf_include": Setting("Also add include:spf.mandrillapp.com at the apex (only SPF pass, never aligned: the "
                                   "envelope sender is Mandrill's own domain).", kind=bool, default=False),
        }, _mailchimp_transactional),
    )
}


def known() -> str:
    return ", ".join(sorted(PROVIDERS))


def resolve_settings(provider: Provider, settings: dict | None) -> dict:
    """Settings with defaults filled in; ValueError naming unknown, missing or mistyped ones."""
    settings = dict(settings or {})
    schema = dict(provider.settings, dkim=DKIM_SETTING)
    unknown = sorted(set(settings) - set(schema))
    if unknown:
        raise ValueError("%s: unknown settings %s (known: %s)" % (provider.key, ", ".join(unknown), ", ".join(sorted(schema))))
    resolved = {}
    for name, setting in schema.items():
        value = settings.get(name, setting.default)
        if value is None and setting.required:
            raise ValueError("%s: settings.%s is required: %s" % (provider.key, name, setting.description))
        if value is not None and setting.kind is list and not isinstance(value, list):
            raise ValueError("%s: settings.%s must be a list" % (provider.key, name))
        if value is not None and setting.kind is bool and not isinstance(value, bool):
            raise ValueError("%s: settings.%s must be true or false" % (provider.key, name))
        if value is not None and setting.kind is str and not isinstance(value, str):
            raise ValueError("%s: settings.%s must be a string" % (provider.key, name))
        resolved[name] = list(value) if isinstance(value, list) else value
    return resolved


def plan(name: str, domain: str, settings: dict | None) -> ProviderPlan:
    """The plan of one provider for ``domain``; ValueError for an unknown provider or bad settings."""
    provider = PROVIDERS.get(name)
    if provider is None:
        raise ValueError("unknown provider %r (known: %s; for anything else use spf.include/ip4/ip6 and dkim)" % (name, known()))
    resolved = resolve_settings(provider, settings)
    result = provider.plan(domain, resolved)
    for entry in resolved["dkim"]:
        if not isinstance(entry, dict) or not entry.get("selector") or bool(entry.get("value")) == bool(entry.get("target")):
            raise ValueError("%s: each settings.dkim entry needs a selector and either value (TXT) or target (CNAME)" % name)
        unknown = sorted(set(entry) - {"selector", "value", "target"})
        if unknown:
            raise ValueError("%s: settings.dkim entries take selector, value or target, not %s" % (name, ", ".join(unknown)))
        result.dkim.append({"selector": entry["selector"], "domain": result.dkim_domain or domain,
                            "value": entry.get("value"), "target": entry.get("target")})
    for entry in result.dkim:
        entry["provider"] = name
    for record in result.records:
        record["provider"] = name
    return result
