# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Detection rules for committed secrets, dev and preview URLs, test credentials and leaky log lines.

One rule registry and one engine (:func:`scan_text`) serve ``secret_scan`` (source trees, with or
without the source-audit checks) and ``log_hygiene`` (log files): a token is recognised the same
way wherever it turns up.

How a text is scanned, cheapest step first:

1. *prefilter*: a rule runs only if one of its lower-case keywords (a prefix such as ``sk_live_``
   or a provider name) occurs in the lower-cased text, so most rules never touch most files;
2. *regex* (compiled once, at import);
3. *checks* on each candidate: Shannon entropy, placeholder and documentation examples
   (``YOUR_API_KEY``, ``AKIAIOSFODNN7EXAMPLE``, ``xxxx``), format checksums (GitHub and npm tokens
   carry a CRC32), and rule-specific checks (a JWT must decode, a Supabase ``anon`` key is public);
4. *allowlist*: a line holding ``launchready:allow`` or matching an allowlist pattern is skipped.

A match keeps only the rule, position, a redacted form (:func:`_redact.redact`) and a fingerprint
(:func:`_redact.fingerprint`); the secret itself never leaves :func:`scan_text`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import translate

from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW
from ansible_collections.launchready.core.plugins.module_utils._redact import fingerprint, redact

SECRET = "secret"
DEV_URL = "dev_url"
TEST_CREDENTIAL = "test_credential"
LOG = "log"
CATEGORIES = (SECRET, DEV_URL, TEST_CREDENTIAL, LOG)

ALLOW_MARKER = "launchready:allow"

DEFAULT_PREVIEW_DOMAINS = (
    "vercel.app",
    "netlify.app",
    "herokuapp.com",
    "ngrok.io",
    "ngrok.app",
    "ngrok-free.app",
    "ngrok.dev",
    "pages.dev",
    "onrender.com",
    "fly.dev",
    "railway.app",
    "trycloudflare.com",
    "loca.lt",
)

DEFAULT_PRODUCTION_PATHS = (
    ".env.production",
    ".env.production.*",
    ".env.prod",
    ".env.prod.*",
    "production.*",
    "prod.*",
    "*.production.*",
    "*.prod.*",
    "appsettings.Production.json",
    "*/settings/production.py",
    "*/settings/prod.py",
    "config/environments/production.rb",
)

DEFAULT_DEV_PATHS = (
    "test/*",
    "tests/*",
    "*/test/*",
    "*/tests/*",
    "*__tests__/*",
    "spec/*",
    "specs/*",
    "*/spec/*",
    "*/specs/*",
    "*fixtures/*",
    "*__mocks__/*",
    "mocks/*",
    "*/mocks/*",
    "e2e/*",
    "*/e2e/*",
    "cypress/*",
    "*/cypress/*",
    "playwright/*",
    "example/*",
    "examples/*",
    "*/examples/*",
    "docs/*",
    "*/docs/*",
    ".devcontainer/*",
    "*.test.*",
    "*.spec.*",
    "*.stories.*",
    "test_*.py",
    "*_test.py",
    "*_test.go",
    "conftest.py",
    "*.md",
    "*.mdx",
    "*.rst",
    ".env.example",
    ".env.sample",
    ".env.template",
    ".env.test",
    ".env.development",
    ".env.dev",
    ".env.local",
    ".env.*.local",
    "*.example",
    "*.sample",
    "docker-compose*.yml",
    "docker-compose*.yaml",
    "compose.yml",
    "compose.yaml",
    "compose.*.yml",
    "compose.*.yaml",
    "Procfile.dev",
    "vite.config.*",
    "vitest.config.*",
    "jest.config.*",
    "playwright.config.*",
    "cypress.config.*",
    "vercel.json",
    "netlify.toml",
    "_redirects",
)

_CONFIG_EXTENSIONS = frozenset(
    ("env", "ini", "cfg", "conf", "properties", "toml", "yml", "yaml", "sh", "bash", "zsh", "envrc", "npmrc", "pypirc", "tfvars", "hcl", "log")
)


class PathMatcher:
    """fnmatch patterns on relative POSIX paths (``*`` crosses ``/``); a pattern without ``/`` also matches the file name alone."""

    def __init__(self, patterns: tuple[str, ...] | list[str]) -> None:
        self.patterns = tuple(patterns)
        self._full = re.compile("|".join(translate(pattern) for pattern in self.patterns)) if self.patterns else None
        names = [pattern for pattern in self.patterns if "/" not in pattern]
        self._name = re.compile("|".join(translate(pattern) for pattern in names)) if names else None

    def __call__(self, path: str) -> bool:
        if self._full is not None and self._full.match(path):
            return True
        return self._name is not None and bool(self._name.match(path.rsplit("/", 1)[-1]))


def is_config_like(path: str) -> bool:
    """Files where ``NAME=value`` without quotes is an assignment (env, YAML, INI, shell...), not code."""
    base = path.rsplit("/", 1)[-1].lower()
    if base.startswith(".env") or base.endswith(".env") or base in ("dockerfile", ".npmrc", ".pypirc", "credentials"):
        return True
    return "." in base and base.rsplit(".", 1)[-1] in _CONFIG_EXTENSIONS


@dataclass(frozen=True)
class FileContext:
    """What the rules need to know about where a text comes from."""

    path: str
    production: bool = False
    dev: bool = False
    config_like: bool = False


@dataclass(frozen=True)
class Hit:
    """One match, safe to return: no secret in it."""

    rule: str
    line: int
    column: int
    severity: str
    match: str
    fingerprint: str


Check = Callable[[str, "re.Match[str]", FileContext, str], "str | None"]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    category: str
    severity: str
    fix: str
    pattern: re.Pattern[str]
    # Lower-case literals; the rule runs only on a text holding one. When ``anchored``, every match starts
    # with one of them, and the pattern is tried only where they occur instead of at every position.
    keywords: tuple[str, ...]
    anchored: bool = False
    min_entropy: float = 0.0
    check: Check | None = None
    placeholder_check: bool = True
    # Severity in test, fixture, example and documentation paths (None: unchanged, SKIP: not reported).
    dev_severity: str | None = None
    # Severity in production configuration files (None: unchanged).
    production_severity: str | None = None
    production_only: bool = False
    # Dev URLs are not secrets: shown in full instead of redacted.
    redacted: bool = True

    def evaluate(self, secret: str, match: re.Match[str], ctx: FileContext) -> str | None:
        """The severity of this candidate, or None when it is not a finding."""
        if self.min_entropy and shannon_entropy(secret) < self.min_entropy:
            return None
        if self.placeholder_check and looks_like_placeholder(secret):
            return None
        severity: str | None = self.severity
        if self.check is not None:
            severity = self.check(secret, match, ctx, self.severity)
            if severity is None:
                return None
        if ctx.production and self.production_severity:
            return self.production_severity
        if ctx.dev and self.dev_severity:
            return self.dev_severity
        return severity


SKIP = "skip"


def shannon_entropy(text: str) -> float:
    """Bits per character: about 4 for random hex, 5 to 6 for random base64, under 3 for words."""
    if not text:
        return 0.0
    length = len(text)
    return -sum(count / length * math.log2(count / length) for count in Counter(text).values())


_PLACEHOLDER_RE = re.compile(
    r"(?i)example|sample|placeholder|your[_-]|^your|changeme|change[_-]me|dummy|redacted|xxxx|\*\*\*|<[^>]*>|\$\{|\{\{|%\(|"
    r"replace[_-]?me|insert[_-]|fixme|todo|lorem|not[_-]?a[_-]?real|goes[_-]?here|secret[_-]?here|key[_-]?here|"
    r"passw(?:or|0r)d|0123456789|123456789|abcdefgh|qwerty|(.)\1{5,}"
)
_PLACEHOLDER_VALUES = frozenset(
    [
        "password",
        "passwd",
        "pass",
        "secret",
        "changeme",
        "admin",
        "root",
        "test",
        "testing",
        "guest",
        "user",
        "username",
        "postgres",
        "mysql",
        "redis",
        "none",
        "null",
        "nil",
        "undefined",
        "true",
        "false",
        "token",
        "apikey",
        "api_key",
        "secret_key",
    ]
)


def looks_like_placeholder(secret: str) -> bool:
    """Documentation examples, template variables, masks and obviously fake values."""
    return secret.lower() in _PLACEHOLDER_VALUES or len(set(secret)) <= 3 or bool(_PLACEHOLDER_RE.search(secret))


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62_crc32(payload: str) -> str:
    """CRC32 of ``payload`` in base62, left-padded to 6 characters (the GitHub and npm token checksum)."""
    value = zlib.crc32(payload.encode("ascii"))
    digits = []
    while value:
        value, rest = divmod(value, 62)
        digits.append(_BASE62[rest])
    return "".join(reversed(digits)).rjust(6, "0")


def _check_crc32_token(secret: str, match: re.Match[str], ctx: FileContext, severity: str) -> str | None:
    body = secret.split("_", 1)[1]
    return severity if base62_crc32(body[:-6]) == body[-6:] else None


def _b64url_json(segment: str) -> object:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


_JWT_EXAMPLE_RE = re.compile(r"(?i)^1234567890$|john doe|example")


def _check_jwt(secret: str, match: re.Match[str], ctx: FileContext, severity: str) -> str | None:
    header_part, payload_part = secret.split(".")[:2]
    try:
        header = _b64url_json(header_part)
        payload = _b64url_json(payload_part)
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or "alg" not in header or not isinstance(payload, dict):
        return None
    if payload.get("role") == "anon":
        return None  # a Supabase anon key: public by design, shipped to browsers
    if any(isinstance(value, str) and _JWT_EXAMPLE_RE.search(value) for value in payload.values()):
        return None  # the jwt.io sample and other documentation tokens
    expires = payload.get("exp")
    if isinstance(expires, (int, float)) and expires < time.time():
        return CAN_WAIT
    return severity


def _check_google_key(secret: str, match: re.Match[str], ctx: FileContext, severity: str) -> str | None:
    # A Firebase web config key ships to every browser and is limited by its restrictions, not secrecy.
    lowered = match.string.lower()
    return CAN_WAIT if "authdomain" in lowered or "firebase" in lowered else severity


def _check_private_key(secret: str, match: re.Match[str], ctx: FileContext, severity: str) -> str | None:
    return CAN_WAIT if "ENCRYPTED" in match.group(0) else severity


_DEV_HOSTS = frozenset(
    (
        "localhost",
        "127.0.0.1",
        "0.0.0.0",
        "db",
        "database",
        "postgres",
        "postgresql",
        "mysql",
        "mariadb",
        "mongo",
        "mongodb",
        "redis",
        "rabbitmq",
        "host.docker.internal",
    )
)


def _check_database_url(secret: str, match: re.Match[str], ctx: FileContext, severity: str) -> str | None:
    if secret.startswith(("$", "%", "{")) or secret.lower() == match.group("user").lower():
        return None
    if match.group("host").lower() in _DEV_HOSTS:
        # Local development databases: only a strong password is worth a look.
        return CAN_WAIT if len(secret) >= 12 and shannon_entropy(secret) >= 3.0 else None
    return severity


_NAME_CHARS = re.compile(r"[A-Za-z0-9_.-]{1,40}\Z")
_NAME_EXCLUDE_RE = re.compile(
    r"public|publishable|pub[_.-]?key|url|uri\b|path|file|dir|name|(?:^|[_.-])ids?$|[a-z]ids?$|type|len|size|ttl|expir|field|param|header|"
    r"endpoint|prefix|env$|var$|hash|checksum|digest|integrity|fingerprint|max[_.-]?tokens|tokens?[_.-]?(?:count|limit|usage)|tokeniz|"
    r"count|limit|timeout|policy|format|version|algorithm|regex|pattern|label|placeholder|hint|mask|min|max|rounds|cost|column|input|"
    r"selector|class|provider|strategy|mode|method|scope|audience|issuer|location|reset|forgot|confirm|strength|validator|"
    r"required|enabled|visible|show|toggle|icon|error|message|text|title|route|page|form|button|csrf|xsrf"
)
_VALUE_REJECT_RE = re.compile(
    r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$|^\$\(|^\$ANSIBLE_VAULT|^%[A-Za-z_][A-Za-z0-9_]*%$|^@Microsoft\.KeyVault|"
    r"process\.env|os\.environ|getenv|ENV\[|\s|://|\\\\|^(?:\.{1,2}|~)/|^/[a-z0-9_.-]+(?:/[a-z0-9_.-]*)*$|"
    r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$|^(?:[A-Z][a-z]*|[a-z]+)(?:[A-Z][a-z]+)+$|\{[A-Za-z_.][^}]*\}|"
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$|^(?:sha\d+|md5)[-:]"
)
# Unquoted values are code as often as data: a call or a shell substitution is not a secret.
_BARE_REJECT_RE = re.compile(r"[()\[\]{}]")
_HEX_RE = re.compile(r"[0-9a-fA-F]+\Z")
# Token formats with a checksum: one that failed its checksum is a fake, not a generic secret.
_CHECKSUMMED_RE = re.compile(r"(?:gh[pousr]|npm)_[A-Za-z0-9]{36}\Z")


def assigned_name(match: re.Match[str]) -> str:
    """The whole variable name a keyword-anchored match belongs to (``STRIPE_`` + ``secret_key``)."""
    start = match.start()
    prefix = _NAME_CHARS.search(match.string, max(0, start - 40), start)
    return ((prefix.group(0) if prefix else "") + match.group("name")).lower()


def _char_classes(secret: str) -> int:
    return sum(1 for pattern in ("[a-z]", "[A-Z]", "[0-9]") if re.search(pattern, secret))


def _value_is_secret_like(match: re.Match[str], secret: str, min_length: int, min_entropy: float) -> bool:
    if len(secret) < min_length or _VALUE_REJECT_RE.search(secret) or _char_classes(secret) < 2:
        return False
    if match.group("bare") is not None and _BARE_REJECT_RE.search(secret):
        return False
    threshold = min_entropy - 0.5 if _HEX_RE.match(secret) else min_entropy
    return shannon_entropy(secret) >= threshold


def _encodes_a_placeholder(secret: str) -> bool:
    """Base64 of readable text that is itself a placeholder (``bm90IG15IHJlYWwgcGFzc3dvcmQ=``: "not my real password")."""
    if len(secret) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", secret):
        return False
    try:
        decoded = base64.b64decode(secret, validate=True).decode("ascii")
    except (ValueError, binascii.Error):
        return False
    return decoded.isprintable() and looks_like_placeholder(decoded)


def _check_assignment(secret: str, match: re.Match[str], ctx: FileContext, severity: str) -> str | None:
    if match.group("bare") is not None and not ctx.config_like:
        return None
    name = assigned_name(match)
    if _NAME_EXCLUDE_RE.search(name) or _CHECKSUMMED_RE.match(secret) or _encodes_a_placeholder(secret):
        return None
    if re.search(r"pass|pwd", name):
        return severity if _value_is_secret_like(match, secret, 8, 2.5) else None
    return severity if _value_is_secret_like(match, secret, 16, 3.5) else None


def _check_session_secret(secret: str, match: re.Match[str], ctx: FileContext, severity: str) -> str | None:
    if match.group("bare") is not None and not ctx.config_like:
        return None
    return severity if _value_is_secret_like(match, secret, 12, 3.0) else None


def _check_sandbox_host(secret: str, match: re.Match[str], ctx: FileContext, severity: str) -> str | None:
    return severity if "." in secret else None


def _check_log_password(secret: str, match: re.Match[str], ctx: FileContext, severity: str) -> str | None:
    return None if secret.lower() in _PLACEHOLDER_VALUES or re.fullmatch(r"\[?(?:filtered|hidden|masked|removed)\]?|\**", secret.lower()) else severity


# --- patterns ---------------------------------------------------------------------------------------
# The end of a name (closing quote or bracket: ``"key":``, ``ENV['KEY'] =``) and an assignment operator.
_ASSIGN = r"""["'`]?\]?\s*(?:=>|:=|\?\?=|\|\|=|[:=])\s*"""
_VALUE = r"""(?:(?P<q>["'`])(?P<quoted>[^"'`\r\n]{1,300}?)(?P=q)|(?P<bare>[^\s"'`,;#)\]}]{1,300}))"""
_QUOTE_OPT = r"""["'`]?"""


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _assignment(names: str, value: str) -> re.Pattern[str]:
    """``<name><assign><optional quote><value>``, the name matched case-insensitively."""
    return _compile(r"(?i:%s)[\w.-]{0,30}?%s%s(?P<secret>%s)" % (names, _ASSIGN, _QUOTE_OPT, value))


_ROTATE = "Revoke and rotate it at the provider now, remove it from the code (and from git history), load it from the environment file."

RULES: tuple[Rule, ...] = (
    # Test credentials and sandbox endpoints: only in production configuration, before the secret rules.
    Rule(
        "stripe-test-key-in-production",
        "Stripe test-mode key in production configuration",
        TEST_CREDENTIAL,
        MUST_DO_NOW,
        "Payments in production would run in test mode: put the live keys (sk_live_/pk_live_) in the production environment.",
        _compile(r"(?<![A-Za-z0-9_])(?P<secret>(?:sk|pk|rk)_test_[0-9a-zA-Z]{16,247})(?![0-9a-zA-Z])"),
        ("sk_test_", "pk_test_", "rk_test_"),
        anchored=True,
        production_only=True,
    ),
    Rule(
        "sandbox-endpoint-in-production",
        "Sandbox or test endpoint in production configuration",
        TEST_CREDENTIAL,
        MUST_DO_NOW,
        "Point production at the provider's live endpoint (payments, email) and use live credentials.",
        _compile(
            r"(?i)(?<![a-z0-9.-])(?P<secret>[a-z0-9.-]{0,100}(?:sandbox|mailtrap\.io|apitest\.authorize\.net|checkout-test\.adyen\.com)"
            r"[a-z0-9.-]{0,100}\.[a-z]{2,24})(?![a-z0-9-])"
        ),
        ("sandbox", "mailtrap", "apitest.authorize", "checkout-test.adyen"),
        check=_check_sandbox_host,
        placeholder_check=False,
        production_only=True,
        redacted=False,
    ),
    Rule(
        "sandbox-mode-in-production",
        "Provider switched to sandbox mode in production configuration",
        TEST_CREDENTIAL,
        MUST_DO_NOW,
        "Switch the provider to live mode in the production environment.",
        _compile(r"(?i)(?:mode|environment|env)" + _ASSIGN + _QUOTE_OPT + r"(?P<secret>sandbox)\b"),
        ("mode", "env"),
        anchored=True,
        placeholder_check=False,
        production_only=True,
        redacted=False,
    ),
    Rule(
        "postmark-test-token-in-production",
        "Postmark test token in production configuration",
        TEST_CREDENTIAL,
        MUST_DO_NOW,
        "POSTMARK_API_TEST accepts mail and delivers nothing: use the server's real token in production.",
        _compile(r"(?P<secret>POSTMARK_API_TEST)(?![A-Z_])"),
        ("postmark_api_test",),
        anchored=True,
        placeholder_check=False,
        production_only=True,
        redacted=False,
    ),
    # Provider secrets with a recognisable shape.
    Rule(
        "aws-access-key-id",
        "AWS access key ID",
        SECRET,
        MUST_DO_NOW,
        "Deactivate the access key in IAM, create a new one, and keep it out of the repository. " + _ROTATE,
        _compile(r"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Z0-9])"),
        ("akia", "asia", "abia", "acca"),
        anchored=True,
        min_entropy=3.0,
    ),
    Rule(
        "aws-secret-access-key",
        "AWS secret access key",
        SECRET,
        MUST_DO_NOW,
        "Deactivate the access key in IAM and create a new one. " + _ROTATE,
        _compile(r"(?i:aws[\w.-]{0,30}?(?:secret|sk)[\w.-]{0,20}?)" + _ASSIGN + _QUOTE_OPT + r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
        ("aws",),
        anchored=True,
        min_entropy=4.0,
    ),
    Rule(
        "stripe-live-secret-key",
        "Stripe live secret or restricted key",
        SECRET,
        MUST_DO_NOW,
        "Roll the key in the Stripe dashboard (Developers > API keys). " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_])(?P<secret>(?:sk|rk)_live_[0-9a-zA-Z]{16,247})(?![0-9a-zA-Z])"),
        ("sk_live_", "rk_live_"),
        anchored=True,
        min_entropy=3.5,
    ),
    Rule(
        "stripe-test-secret-key",
        "Stripe test secret key",
        SECRET,
        CAN_WAIT,
        "Test keys cannot move money but can read and change test data: roll it and load it from the environment.",
        _compile(r"(?<![A-Za-z0-9_])(?P<secret>(?:sk|rk)_test_[0-9a-zA-Z]{16,247})(?![0-9a-zA-Z])"),
        ("sk_test_", "rk_test_"),
        anchored=True,
        min_entropy=3.5,
    ),
    Rule(
        "stripe-webhook-secret",
        "Stripe webhook signing secret",
        SECRET,
        MUST_DO_NOW,
        "Roll the endpoint's signing secret in the Stripe dashboard; anyone holding it can forge webhook events. " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_])(?P<secret>whsec_[A-Za-z0-9+/=]{24,})"),
        ("whsec_",),
        anchored=True,
        min_entropy=3.5,
    ),
    Rule(
        "github-token",
        "GitHub token",
        SECRET,
        MUST_DO_NOW,
        "Revoke the token in GitHub (Settings > Developer settings) and create a narrower one. " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_])(?P<secret>gh[pousr]_[A-Za-z0-9]{36})(?![A-Za-z0-9])"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        anchored=True,
        check=_check_crc32_token,
    ),
    Rule(
        "github-fine-grained-token",
        "GitHub fine-grained personal access token",
        SECRET,
        MUST_DO_NOW,
        "Revoke the token in GitHub (Settings > Developer settings). " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_])(?P<secret>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9])"),
        ("github_pat_",),
        anchored=True,
        min_entropy=4.0,
    ),
    Rule(
        "gitlab-token",
        "GitLab personal access token",
        SECRET,
        MUST_DO_NOW,
        "Revoke the token in GitLab (User settings > Access tokens). " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_])(?P<secret>glpat-[A-Za-z0-9_.-]{20,})(?![A-Za-z0-9_.-])"),
        ("glpat-",),
        anchored=True,
        min_entropy=3.5,
    ),
    Rule(
        "npm-token",
        "npm access token",
        SECRET,
        MUST_DO_NOW,
        "Revoke the token on npmjs.com (Access Tokens). " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_])(?P<secret>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])"),
        ("npm_",),
        anchored=True,
        check=_check_crc32_token,
    ),
    Rule(
        "slack-token",
        "Slack token",
        SECRET,
        MUST_DO_NOW,
        "Revoke the token (Slack app settings > OAuth & Permissions, or auth.revoke). " + _ROTATE,
        _compile(
            r"(?<![A-Za-z0-9])(?P<secret>xox[abposr]-[0-9]{6,}-[0-9A-Za-z-]{14,}|xoxe(?:\.xox[bp])?-1-[0-9A-Za-z-]{40,}"
            r"|xapp-[0-9]-[A-Z0-9]{8,}-[0-9]{8,}-[a-z0-9]{32,})"
        ),
        ("xox", "xapp-"),
        anchored=True,
        min_entropy=3.0,
    ),
    Rule(
        "slack-webhook",
        "Slack incoming webhook URL",
        SECRET,
        MUST_DO_NOW,
        "Anyone with the URL can post to the channel: regenerate the webhook in the Slack app settings and load it from the environment.",
        _compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{6,12}/[A-Z0-9]{6,14}/(?P<secret>[A-Za-z0-9]{20,})"),
        ("hooks.slack.com",),
        anchored=True,
        min_entropy=3.0,
    ),
    Rule(
        "cloudflare-api-token",
        "Cloudflare API token or key",
        SECRET,
        MUST_DO_NOW,
        "Roll the token in the Cloudflare dashboard (My Profile > API Tokens) and give the new one only the permissions it needs. " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_])(?P<secret>cf(?:k|ut|at)_[A-Za-z0-9]{40}[0-9a-f]{8})(?![A-Za-z0-9])"),
        ("cfk_", "cfut_", "cfat_"),
        anchored=True,
        min_entropy=3.5,
    ),
    Rule(
        "cloudflare-legacy-token",
        "Cloudflare API token or global API key",
        SECRET,
        MUST_DO_NOW,
        "Roll the token (or the global API key) in the Cloudflare dashboard; prefer a scoped API token. " + _ROTATE,
        _compile(
            r"(?i:(?:cloudflare|(?<![a-z0-9])cf)[\w.-]{0,20}?(?:token|key|secret))"
            + _ASSIGN
            + _QUOTE_OPT
            + r"(?P<secret>[A-Za-z0-9_-]{37,40})(?![A-Za-z0-9_-])"
        ),
        ("cloudflare", "cf"),
        anchored=True,
        min_entropy=3.3,
    ),
    Rule(
        "cloudflare-origin-ca-key",
        "Cloudflare Origin CA key",
        SECRET,
        MUST_DO_NOW,
        "Revoke the Origin CA key in the Cloudflare dashboard. " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9])(?P<secret>v1\.0-[a-f0-9]{24}-[a-f0-9]{146})(?![a-f0-9])"),
        ("v1.0-",),
        anchored=True,
    ),
    Rule(
        "sendgrid-api-key",
        "SendGrid API key",
        SECRET,
        MUST_DO_NOW,
        "Delete the key in SendGrid (Settings > API Keys) and create one with Mail Send only. " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9])(?P<secret>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])"),
        ("sg.",),
        anchored=True,
        min_entropy=4.0,
    ),
    Rule(
        "postmark-token",
        "Postmark server or account token",
        SECRET,
        MUST_DO_NOW,
        "Regenerate the token in Postmark (server > API Tokens). " + _ROTATE,
        _compile(
            r"(?i:postmark[\w.-]{0,30}?(?:token|key))[\"'`]?\]?\s*(?:=>|:=|[:=,])\s*[\"'`]?"
            r"(?P<secret>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![0-9a-fA-F])"
        ),
        ("postmark",),
        anchored=True,
        min_entropy=3.0,
    ),
    Rule(
        "mailgun-api-key",
        "Mailgun API key",
        SECRET,
        MUST_DO_NOW,
        "Rotate the key in Mailgun (API Security). " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9])(?P<secret>key-[0-9a-f]{32}|[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8})(?![0-9a-f-])"),
        ("key-", "mailgun"),
        min_entropy=3.0,
    ),
    Rule(
        "twilio-auth-token",
        "Twilio auth token or API key secret",
        SECRET,
        MUST_DO_NOW,
        "Rotate the auth token (Twilio console > Account > API keys & tokens). " + _ROTATE,
        _compile(r"(?i:twilio[\w.-]{0,30}?(?:auth[\w.-]{0,10}?token|secret))" + _ASSIGN + _QUOTE_OPT + r"(?P<secret>[0-9a-zA-Z]{32})(?![0-9a-zA-Z])"),
        ("twilio",),
        anchored=True,
        min_entropy=3.0,
    ),
    Rule(
        "openai-api-key",
        "OpenAI API key",
        SECRET,
        MUST_DO_NOW,
        "Revoke the key in the OpenAI dashboard (API keys) and set a usage limit on the new one. " + _ROTATE,
        _compile(
            r"(?<![A-Za-z0-9_-])(?P<secret>sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{58,}|[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,}))(?![A-Za-z0-9_-])"
        ),
        ("sk-",),
        anchored=True,
        min_entropy=4.0,
    ),
    Rule(
        "anthropic-api-key",
        "Anthropic API key",
        SECRET,
        MUST_DO_NOW,
        "Revoke the key in the Anthropic console (API keys). " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_-])(?P<secret>sk-ant-(?:api|admin|oat|sid)[0-9]{2}-[A-Za-z0-9_-]{80,})(?![A-Za-z0-9_-])"),
        ("sk-ant-",),
        anchored=True,
        min_entropy=4.0,
    ),
    Rule(
        "llm-api-key",
        "LLM provider API key (Groq, Hugging Face, xAI, Perplexity, OpenRouter, Replicate)",
        SECRET,
        MUST_DO_NOW,
        "Revoke the key in the provider's dashboard and set a spending limit on the new one. " + _ROTATE,
        _compile(
            r"(?<![A-Za-z0-9_-])(?P<secret>gsk_[A-Za-z0-9]{52}|hf_[A-Za-z]{34}|xai-[A-Za-z0-9]{80}|pplx-[A-Za-z0-9]{48}"
            r"|sk-or-v1-[0-9a-f]{64}|r8_[A-Za-z0-9]{37})(?![A-Za-z0-9_-])"
        ),
        ("gsk_", "hf_", "xai-", "pplx-", "sk-or-v1-", "r8_"),
        anchored=True,
        min_entropy=3.5,
    ),
    Rule(
        "google-api-key",
        "Google API key",
        SECRET,
        MUST_DO_NOW,
        "Restrict the key (HTTP referrers or IPs, and only the APIs it needs) in Google Cloud console; if it is not a public "
        "browser key (Maps, Firebase web config), rotate it. " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_-])(?P<secret>AIza[0-9A-Za-z_-]{35})(?![0-9A-Za-z_-])"),
        ("aiza",),
        anchored=True,
        min_entropy=3.5,
        check=_check_google_key,
    ),
    Rule(
        "google-oauth-client-secret",
        "Google OAuth client secret",
        SECRET,
        MUST_DO_NOW,
        "Reset the client secret in Google Cloud console (Credentials). " + _ROTATE,
        _compile(r"(?<![A-Za-z0-9_-])(?P<secret>GOCSPX-[A-Za-z0-9_-]{28})(?![A-Za-z0-9_-])"),
        ("gocspx-",),
        anchored=True,
        min_entropy=3.5,
    ),
    Rule(
        "private-key",
        "Private key (PEM)",
        SECRET,
        MUST_DO_NOW,
        "Replace the key pair (new TLS certificate, SSH key or signing key), remove the key from the repository and its history.",
        _compile(
            r"-----BEGIN [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:\\[rn]|\s)+(?:[A-Za-z-]+:[^\n\\]*(?:\\[rn]|\s)+)*"
            r"(?P<secret>[A-Za-z0-9+/]{40,}={0,2})"
        ),
        ("-----begin",),
        anchored=True,
        min_entropy=3.5,
        check=_check_private_key,
        placeholder_check=False,  # DER bodies have long runs of A
    ),
    Rule(
        "authorization-header",
        "Hard-coded Authorization header credential",
        SECRET,
        MUST_DO_NOW,
        "Revoke the credential and send it from configuration, never from code or logs.",
        _compile(r"(?i:authorization)[\"'`]?\]?\s*(?:=>|[:=,])\s*[\"'`]?(?i:bearer|token|basic)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)"),
        ("authorization",),
        anchored=True,
        min_entropy=3.5,
        dev_severity=CAN_WAIT,
    ),
    Rule(
        "jwt",
        "JSON Web Token",
        SECRET,
        MUST_DO_NOW,
        "A committed token works until it expires: revoke the session or rotate the signing key, and keep tokens out of code.",
        _compile(r"(?<![A-Za-z0-9_-])(?P<secret>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,})"),
        ("eyj",),
        anchored=True,
        check=_check_jwt,
        dev_severity=CAN_WAIT,
    ),
    Rule(
        "database-url-password",
        "Database URL with a password",
        SECRET,
        MUST_DO_NOW,
        "Change the database password and load the URL from the environment file, not from code.",
        _compile(
            r"(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|cockroachdb)(?:\+[a-z0-9]+)?://"
            r"(?P<user>[^:/?#@\s\"'`]*):(?P<secret>[^@/?#\s\"'`]{3,})@(?P<host>[^/:?#\s\"'`,;]+)"
        ),
        ("postgres", "mysql", "mariadb", "mongodb", "redis", "amqp", "mssql", "sqlserver", "clickhouse", "cockroach"),
        anchored=True,
        check=_check_database_url,
        dev_severity=CAN_WAIT,
    ),
    # Log lines (only log_hygiene selects them): before the generic rules, which they refine.
    Rule(
        "log-password",
        "Password written to a log",
        LOG,
        MUST_DO_NOW,
        "Stop logging request bodies and credentials (filter password fields in the logger), rotate the exposed passwords, purge the logs.",
        _compile(r"(?i:\b(?:password|passwd|passwort|pwd|pass))\b[\"'`]?\s*(?:=>|[:=])\s*[\"'`]?(?P<secret>[^\s\"'`&,;}\]]{4,})"),
        ("pass", "pwd"),
        anchored=True,
        check=_check_log_password,
        placeholder_check=False,
    ),
    Rule(
        "log-session-id",
        "Session id or cookie written to a log",
        LOG,
        MUST_DO_NOW,
        "Do not log cookies or session ids (mask them in the logger); expire the logged sessions and purge the logs.",
        _compile(
            r"(?i:\b(?:session[_-]?id|sessionid|sid|phpsessid|jsessionid|connect\.sid|laravel_session|_session|session|"
            r"remember_token|remember_user_token))[\"'`]?\s*[:=]\s*[\"'`]?(?P<secret>[A-Za-z0-9%._:+/-]{16,})"
        ),
        ("session", "sid", "phpsessid", "jsessionid", "connect.sid", "laravel_session", "_session", "remember"),
        anchored=True,
        min_entropy=3.0,
    ),
    Rule(
        "log-url-credential",
        "Token or key in a logged URL query string",
        LOG,
        MUST_DO_NOW,
        "Send credentials in headers, not URLs, or strip the query string from access logs; rotate what was logged.",
        _compile(
            r"(?i)[?&](?:access_token|id_token|refresh_token|token|api_key|apikey|key|secret|password|signature|sig|auth|code)="
            r"(?P<secret>[^&\s\"'#]{8,})"
        ),
        ("token=", "key=", "secret=", "password=", "sig", "auth=", "code="),
        min_entropy=3.0,
    ),
    Rule(
        "session-secret",
        "Session, JWT or app signing secret assigned in code or settings",
        SECRET,
        MUST_DO_NOW,
        "Anyone with this secret can forge sessions or tokens: generate a new one, keep it only in the environment file.",
        _compile(
            r"(?i:(?P<name>secret[_.-]?key(?:[_.-]?base)?|jwt[_.-]?(?:secret|signing[_.-]?key|private[_.-]?key|key)"
            r"|(?:session|cookie|nextauth|auth|app|encryption|signing|hmac|flask|django|rails|master)[_.-]?(?:secret|key)))"
            r"(?![A-Za-z0-9])" + _ASSIGN + _VALUE
        ),
        ("secret", "jwt", "session", "cookie", "nextauth", "auth", "app", "encryption", "signing", "hmac", "flask", "django", "rails", "master"),
        anchored=True,
        check=_check_session_secret,
        dev_severity=CAN_WAIT,
    ),
    Rule(
        "generic-secret",
        "High-entropy value assigned to a secret-like name",
        SECRET,
        MUST_DO_NOW,
        "If this is a real credential, rotate it and load it from the environment file; if not, add it to the baseline.",
        _compile(
            r"(?P<name>(?i:secret|passw(?:or)?d|passphrase|pwd|token|api[_.-]?key|apikey|access[_.-]?key|private[_.-]?key|auth[_.-]?key"
            r"|credentials?|signing[_.-]?key|encryption[_.-]?key|master[_.-]?key)[A-Za-z0-9_.-]{0,30}?)" + _ASSIGN + _VALUE
        ),
        ("secret", "pass", "pwd", "token", "api", "access", "private", "auth", "credential", "signing", "encryption", "master"),
        anchored=True,
        check=_check_assignment,
        dev_severity=CAN_WAIT,
    ),
    # Hard-coded dev and preview URLs (source audit); the preview and staging rules are built per scan.
    Rule(
        "dev-url-localhost",
        "Hard-coded localhost URL",
        DEV_URL,
        CAN_WAIT,
        "Read the URL from configuration (APP_URL, API_URL) so production uses the public hostname.",
        _compile(r"(?i)\b(?:https?|wss?)://(?P<secret>(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::[0-9]{2,5})?)(?![A-Za-z0-9.-])"),
        ("localhost", "127.0.0.1", "0.0.0.0", "[::1]"),
        placeholder_check=False,
        dev_severity=SKIP,
        production_severity=MUST_DO_NOW,
        redacted=False,
    ),
)

_RULES_BY_ID = {rule.id: rule for rule in RULES}

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}")

EMAIL_WITH_TOKEN = Rule(
    "log-email-with-token",
    "Member email logged on the same line as a token",
    LOG,
    MUST_DO_NOW,
    "A log line that ties an email to a working token is an account takeover: mask tokens and emails in the logger, rotate the tokens, purge the logs.",
    EMAIL_RE,
    ("@",),
)


def preview_rule(domains: tuple[str, ...] | list[str]) -> Rule:
    alternatives = "|".join(re.escape(domain.lower().strip(".")) for domain in domains)
    return Rule(
        "preview-url",
        "Hard-coded preview or tunnel hostname",
        DEV_URL,
        MUST_DO_NOW,
        "The app must not depend on a preview deployment or a tunnel: read the URL from configuration and use the production hostname.",
        _compile(r"(?i)(?<![a-z0-9.-])(?P<secret>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:%s))(?![a-z0-9-])" % alternatives),
        tuple(domain.lower().strip(".") for domain in domains),
        placeholder_check=False,
        dev_severity=SKIP,
        redacted=False,
    )


def staging_rule(hosts: tuple[str, ...] | list[str]) -> Rule:
    alternatives = "|".join(re.escape(host.lower().strip(".")) for host in hosts)
    return Rule(
        "staging-host",
        "Hard-coded staging hostname",
        DEV_URL,
        MUST_DO_NOW,
        "Production must not call staging: read the hostname from configuration.",
        _compile(r"(?i)(?<![a-z0-9.-])(?P<secret>(?:[a-z0-9-]+\.)*(?:%s))(?![a-z0-9-])" % alternatives),
        tuple(host.lower().strip(".") for host in hosts),
        placeholder_check=False,
        dev_severity=SKIP,
        redacted=False,
    )


def select_rules(
    categories: tuple[str, ...] | list[str],
    skip_rules: tuple[str, ...] | list[str] = (),
    preview_domains: tuple[str, ...] | list[str] = DEFAULT_PREVIEW_DOMAINS,
    staging_hosts: tuple[str, ...] | list[str] = (),
) -> list[Rule]:
    """The rules of the given categories, in priority order (an earlier rule wins an overlapping match)."""
    unknown = sorted(set(skip_rules) - set(_RULES_BY_ID) - {"preview-url", "staging-host", EMAIL_WITH_TOKEN.id})
    if unknown:
        raise ValueError("unknown rule ids in skip_rules: %s" % ", ".join(unknown))
    rules = [rule for rule in RULES if rule.category in categories]
    if DEV_URL in categories:
        if preview_domains:
            rules.append(preview_rule(preview_domains))
        if staging_hosts:
            rules.append(staging_rule(staging_hosts))
    return [rule for rule in rules if rule.id not in skip_rules]


@dataclass
class ScanOptions:
    """Everything a worker needs to scan a text: picklable."""

    rules: list[Rule]
    production_paths: PathMatcher = field(default_factory=lambda: PathMatcher(DEFAULT_PRODUCTION_PATHS))
    dev_paths: PathMatcher = field(default_factory=lambda: PathMatcher(DEFAULT_DEV_PATHS))
    allowlist: tuple[re.Pattern[str], ...] = ()
    email_with_token: bool = False
    all_config_like: bool = False
    rule_index: dict[str, Rule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rule_index = {rule.id: rule for rule in self.rules}
        self.rule_index[EMAIL_WITH_TOKEN.id] = EMAIL_WITH_TOKEN

    def context(self, path: str) -> FileContext:
        return FileContext(
            path=path,
            production=self.production_paths(path),
            dev=self.dev_paths(path),
            config_like=self.all_config_like or is_config_like(path),
        )


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    for group in ("secret", "quoted", "bare"):
        if group in match.re.groupindex and match.group(group) is not None:
            return match.span(group)
    return match.span()


def _matches(rule: Rule, text: str, lowered: str) -> Iterator[re.Match[str]]:
    """Like ``finditer``, but an anchored rule is only tried where one of its keywords starts."""
    if not rule.anchored:
        yield from rule.pattern.finditer(text)
        return
    positions = set()
    for keyword in rule.keywords:
        index = lowered.find(keyword)
        while index != -1:
            positions.add(index)
            index = lowered.find(keyword, index + 1)
    end = 0
    for position in sorted(positions):
        if position < end:
            continue
        match = rule.pattern.match(text, position)
        if match:
            end = max(match.end(), position + 1)
            yield match


def scan_text(text: str, path: str, options: ScanOptions) -> list[Hit]:
    """All matches of the options' rules in ``text`` (the content of ``path``), in order of position."""
    ctx = options.context(path)
    lowered = text.lower()
    accepted: list[tuple[int, int, Rule, str]] = []
    for rule in options.rules:
        if not rule.anchored and not any(keyword in lowered for keyword in rule.keywords):
            continue
        if rule.production_only and not ctx.production:
            continue
        if rule.dev_severity == SKIP and ctx.dev:
            continue
        for match in _matches(rule, text, lowered):
            start, end = _secret_span(match)
            if any(start < other_end and other_start < end for other_start, other_end, _rule, _severity in accepted):
                continue
            secret = text[start:end]
            severity = rule.evaluate(secret, match, ctx)
            if severity is None:
                continue
            line_start = text.rfind("\n", 0, start) + 1
            line_end = text.find("\n", end)
            line_text = text[line_start : len(text) if line_end == -1 else line_end]
            if ALLOW_MARKER in line_text or any(pattern.search(line_text) for pattern in options.allowlist):
                continue
            accepted.append((start, end, rule, severity))
    if not accepted:
        return []
    accepted.sort(key=lambda item: item[0])
    hits = []
    line, counted_to = 1, 0
    for start, end, rule, severity in accepted:
        secret = text[start:end]
        line += text.count("\n", counted_to, start)
        counted_to = start
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        shown = redact(secret) if rule.redacted else secret[:120]
        hits.append(Hit(rule.id, line, column, severity, shown, fingerprint(secret)))
    if options.email_with_token:
        hits.extend(_emails_with_tokens(text, hits))
        hits.sort(key=lambda hit: (hit.line, hit.column))
    return hits


def _emails_with_tokens(text: str, hits: list[Hit]) -> list[Hit]:
    """One extra hit per line that holds both a token hit and an email address (the email is never shown)."""
    lines = text.split("\n")
    extra = []
    seen = set()
    for hit in hits:
        if hit.line in seen:
            continue
        seen.add(hit.line)
        if EMAIL_RE.search(lines[hit.line - 1]):
            extra.append(Hit(EMAIL_WITH_TOKEN.id, hit.line, hit.column, MUST_DO_NOW, hit.match, hit.fingerprint))
    return extra
