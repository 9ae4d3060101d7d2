# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_secret_rules: every rule on generated positives and hard negatives, severities by place, the corpus bounds."""

from __future__ import annotations

import base64
import json
import random
import re
import string
import time

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _secret_rules as rules
from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, MUST_DO_NOW
from ansible_collections.launchready.core.plugins.module_utils._redact import MASK, fingerprint
from ansible_collections.launchready.core.tests.unit.plugins.fixtures import secret_corpus
from ansible_collections.launchready.core.tests.unit.plugins.fixtures.secret_corpus import Fakes

ALL = rules.select_rules([rules.SECRET, rules.DEV_URL, rules.TEST_CREDENTIAL], staging_hosts=["staging.members.example.org"])
SECRETS_ONLY = rules.ScanOptions(rules=rules.select_rules([rules.SECRET]))
AUDIT = rules.ScanOptions(rules=ALL)
LOGS = rules.ScanOptions(
    rules=rules.select_rules([rules.SECRET, rules.LOG]),
    production_paths=rules.PathMatcher(()),
    dev_paths=rules.PathMatcher(()),
    email_with_token=True,
    all_config_like=True,
)


def scan(text, path="app/config.py", options=SECRETS_ONLY):
    return rules.scan_text(text, path, options)


def only(hits):
    assert len(hits) == 1, hits
    return hits[0]


def jwt(payload):
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return "%s.%s.%s" % (part({"alg": "HS256", "typ": "JWT"}), part(payload), Fakes(3).chars(secret_corpus.B64URL, 43))


fakes = Fakes(7)

# (rule id, severity, line, secret, path); the secret must be found by that rule and never shown.
POSITIVES = [
    ("aws-access-key-id", MUST_DO_NOW, "AWS_ACCESS_KEY_ID=%s", fakes.aws_access_key_id(), ".env"),
    ("aws-secret-access-key", MUST_DO_NOW, "aws_secret_access_key = %s", fakes.aws_secret_access_key(), "credentials"),
    ("stripe-live-secret-key", MUST_DO_NOW, "stripe.api_key = '%s'", fakes.stripe_live(), "billing.py"),
    ("stripe-test-secret-key", CAN_WAIT, "STRIPE_KEY = '%s'", fakes.stripe_test(), "billing.py"),
    ("stripe-webhook-secret", MUST_DO_NOW, "endpoint_secret = '%s'", fakes.stripe_webhook_secret(), "webhooks.py"),
    ("github-token", MUST_DO_NOW, "token: %s", fakes.github_token(), "ci.yml"),
    ("github-fine-grained-token", MUST_DO_NOW, "GH=%s", fakes.github_fine_grained(), ".env"),
    ("gitlab-token", MUST_DO_NOW, "GITLAB=%s", fakes.gitlab_token(), ".env"),
    ("npm-token", MUST_DO_NOW, "//registry.npmjs.org/:_authToken=%s", fakes.npm_token(), ".npmrc"),
    ("slack-token", MUST_DO_NOW, "const slack = new WebClient('%s');", fakes.slack_bot_token(), "bot.js"),
    ("slack-token", MUST_DO_NOW, "SLACK_USER_TOKEN=%s", fakes.slack_user_token(), ".env"),
    ("cloudflare-api-token", MUST_DO_NOW, "api_token: %s", fakes.cloudflare_token(), "vars.yml"),
    ("cloudflare-legacy-token", MUST_DO_NOW, "CLOUDFLARE_API_TOKEN=%s", fakes.cloudflare_legacy_token(), ".env"),
    ("cloudflare-legacy-token", MUST_DO_NOW, "CF_API_KEY=%s", fakes.cloudflare_global_key(), ".env"),
    ("cloudflare-origin-ca-key", MUST_DO_NOW, 'key = "%s"', fakes.cloudflare_origin_ca_key(), "tls.tf"),
    ("sendgrid-api-key", MUST_DO_NOW, "sgMail.setApiKey('%s');", fakes.sendgrid(), "mail.js"),
    ("postmark-token", MUST_DO_NOW, "POSTMARK_SERVER_TOKEN=%s", fakes.uuid(), ".env"),
    ("postmark-token", MUST_DO_NOW, "headers['X-Postmark-Server-Token'] = '%s'", fakes.uuid(), "mail.py"),
    ("mailgun-api-key", MUST_DO_NOW, "auth=('api', '%s')", "key-" + fakes.chars(secret_corpus.HEX, 32), "mail.py"),
    (
        "mailgun-api-key",
        MUST_DO_NOW,
        "MAILGUN_KEY=%s",
        "%s-%s-%s" % (fakes.chars("0123456789abcdef", 32), fakes.chars("0123456789abcdef", 8), fakes.chars("0123456789abcdef", 8)),
        ".env",
    ),
    ("twilio-auth-token", MUST_DO_NOW, "TWILIO_AUTH_TOKEN=%s", fakes.twilio_auth_token(), ".env"),
    ("openai-api-key", MUST_DO_NOW, "client = OpenAI(api_key='%s')", fakes.openai(), "ai.py"),
    ("anthropic-api-key", MUST_DO_NOW, "ANTHROPIC_API_KEY=%s", fakes.anthropic(), ".env"),
    ("llm-api-key", MUST_DO_NOW, "groq = Groq(api_key='%s')", "gsk_" + fakes.chars(secret_corpus.ALNUM, 52), "ai.py"),
    ("llm-api-key", MUST_DO_NOW, "HF=%s", "hf_" + fakes.chars(string.ascii_letters, 34), ".env"),
    ("llm-api-key", MUST_DO_NOW, "OPENROUTER=%s", "sk-or-v1-" + fakes.chars(secret_corpus.HEX, 64), ".env"),
    ("google-api-key", MUST_DO_NOW, "const GEMINI = '%s';", fakes.google_api_key(), "ai.js"),
    ("google-oauth-client-secret", MUST_DO_NOW, "client_secret: %s", fakes.google_oauth_secret(), "oauth.yml"),
    ("authorization-header", MUST_DO_NOW, "fetch(url, {headers: {Authorization: 'Bearer %s'}})", fakes.chars(secret_corpus.B64URL, 40), "api.js"),
    ("jwt", MUST_DO_NOW, "SUPABASE_SERVICE_ROLE_KEY=%s", fakes.jwt(), ".env"),
    ("database-url-password", MUST_DO_NOW, "DATABASE_URL=postgresql+psycopg://app:%s@db.prod.internal/app", fakes.database_password(), ".env"),
    ("database-url-password", MUST_DO_NOW, "MONGO = 'mongodb+srv://svc:%s@cluster0.abcde.mongodb.net/app'", fakes.database_password(), "db.py"),
    ("session-secret", MUST_DO_NOW, "SECRET_KEY = '%s'", fakes.chars(secret_corpus.ALNUM + "!@%^&*(-_=+)", 50), "settings.py"),
    ("session-secret", MUST_DO_NOW, "NEXTAUTH_SECRET=%s", fakes.chars(secret_corpus.B64, 44), ".env.production"),
    ("session-secret", MUST_DO_NOW, "config.secret_key_base = '%s'", fakes.chars(secret_corpus.HEX, 128), "config/application.rb"),
    ("generic-secret", MUST_DO_NOW, "MAILCHIMP_API_KEY=%s", fakes.chars(secret_corpus.ALNUM, 32), ".env"),
    ("generic-secret", MUST_DO_NOW, '"clientSecret": "%s",', fakes.chars(secret_corpus.ALNUM, 40), "config.json"),
    ("generic-secret", MUST_DO_NOW, "db_password: %s", fakes.password(14), "group_vars/all.yml"),
]


@pytest.mark.parametrize(("rule_id", "severity", "template", "secret", "path"), POSITIVES, ids=[p[0] + "-" + p[4] for p in POSITIVES])
def test_positive(rule_id, severity, template, secret, path):
    hit = only(scan(template % secret, path))
    assert (hit.rule, hit.severity, hit.line) == (rule_id, severity, 1)
    assert hit.fingerprint == fingerprint(secret)
    assert secret not in hit.match
    assert hit.match.endswith(MASK)


def test_private_keys_pem_and_json_escaped():
    pem = fakes.pem_private_key()
    hit = only(scan("# key\n" + pem + "\n", "deploy/origin.key"))
    assert (hit.rule, hit.severity, hit.line) == ("private-key", MUST_DO_NOW, 3)
    escaped = json.dumps({"private_key": fakes.pem_private_key("")})
    assert only(scan(escaped, "sa.json")).rule == "private-key"
    openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" + fakes.chars(
        secret_corpus.B64, 70
    )
    assert only(scan(openssh, "id_ed25519")).rule == "private-key"
    encrypted = pem.replace("RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
    assert only(scan(encrypted, "key.pem")).severity == CAN_WAIT


def test_slack_webhook_shows_only_the_redacted_token():
    url = fakes.slack_webhook()
    hit = only(scan("SLACK_WEBHOOK=%s" % url, ".env"))
    assert hit.rule == "slack-webhook" and hit.match == url.rsplit("/", 1)[1][:4] + MASK


# (line, path, why): no rule may fire.
HARD_NEGATIVES = [
    ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", ".env", "AWS documentation example"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "credentials", "AWS documentation example"),
    ("OPENAI_API_KEY=YOUR_API_KEY", ".env", "placeholder"),
    ("api_key = '<your-api-key>'", "app.py", "placeholder"),
    ("STRIPE_SECRET_KEY=sk_live_YOUR_KEY_HERE", ".env", "placeholder"),
    ("STRIPE_SECRET_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", ".env", "placeholder"),
    ("GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", ".env", "placeholder"),
    ("GITHUB_TOKEN=%s" % fakes.github_token_bad_checksum(), ".env", "wrong checksum"),
    ("STRIPE_PUBLISHABLE_KEY=%s" % fakes.stripe_publishable(), ".env", "publishable key"),
    ("SESSION_SECRET=changeme", ".env", "placeholder"),
    ('password: "********"', "config.yml", "mask"),
    ("password = request.form['password']", "views.py", "code"),
    ("api_key = os.environ['API_KEY']", "settings.py", "environment lookup"),
    ("const token = process.env.GITHUB_TOKEN;", "api.js", "environment lookup"),
    ("deploy_key: ${{ secrets.DEPLOY_KEY }}", "deploy.yml", "CI secret reference"),
    ('api_key: "{{ vault_api_key }}"', "vars.yml", "template"),
    ('export DB_PASSWORD="$(cat /run/secrets/db)"', "run.sh", "command substitution"),
    ("SECRET_KEY=$SECRET_KEY", ".env", "variable"),
    ("request_id = '%s'" % fakes.uuid(), "app.py", "uuid"),
    ("api_key_id: %s" % fakes.uuid(), "keys.yml", "uuid key id"),
    ("checksum_secret_hash = '%s'" % fakes.chars(secret_corpus.HEX, 64), "app.py", "hash"),
    ("commit = '%s'" % fakes.chars(secret_corpus.HEX, 40), "version.py", "git sha"),
    ('"integrity": "sha512-%s=="' % fakes.chars(secret_corpus.B64, 86), "package-lock.json", "lockfile integrity"),
    ("  integrity sha512-%s==" % fakes.chars(secret_corpus.B64, 86), "yarn.lock", "lockfile integrity"),
    ('{file = "x.whl", hash = "sha256:%s"},' % fakes.chars(secret_corpus.HEX, 64), "poetry.lock", "wheel hash"),
    ("DATABASE_URL=postgres://user:password@localhost:5432/app", ".env", "placeholder password"),
    ('var local = "postgres://postgres:postgres@localhost:5432/dev"', "main.go", "dev database"),
    ("AMQP_URL=amqp://guest:guest@localhost:5672", ".env", "default dev credentials"),
    ("REDIS_URL=redis://:${REDIS_PASSWORD}@cache:6379", ".env", "variable"),
    ("const anon = '%s';" % jwt({"iss": "supabase", "role": "anon"}), "supabase.js", "public anon key"),
    ("token = '%s'" % jwt({"sub": "1234567890", "name": "John Doe", "iat": 1516239022}), "docs.py", "jwt.io sample"),
    ("const x = 'eyJub3QiOiJhIGp3dCJ9.eyJhIjoxMjM0NTY3ODkwfQ.abcdefghijklmnopqrstuv';", "x.js", "not a JWT header"),
    ("const maxTokens = 4096;", "ai.js", "number"),
    ("token_url = 'https://oauth2.googleapis.com/token'", "oauth.py", "url"),
    ("PASSWORD_MIN_LENGTH = 12", "settings.py", "number"),
    ("SESSION_COOKIE_NAME = 'members_session'", "settings.py", "name"),
    ("TWILIO_ACCOUNT_SID=%s" % fakes.twilio_account_sid(), ".env", "identifier"),
    ("password_hash = '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG'", "fixtures.py", "hash"),
    ("The secret to a calm launch is rotating every token early.", "notes.txt", "prose"),
    ("-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----", "README.md", "PEM placeholder"),
    ("token = 'not-a-real-token-just-for-docs'", "docs.py", "placeholder"),
    ("api_key = 'sk-...'", "ai.py", "elided"),
    ("CLIENT_ID=%s.apps.googleusercontent.com" % fakes.chars(string.digits, 12), ".env", "client id"),
    ("logo = 'data:image/png;base64,%s'" % fakes.chars(secret_corpus.B64, 120), "logo.py", "data uri"),
    ("TOKEN=%s" % fakes.chars(string.ascii_lowercase, 30), ".env", "one character class"),
    ("'netcredentials_only': 'NetCredentialsOnly',", "runas.py", "CamelCase identifier"),
    ("model = Model(password='IAmSensitive', password_bytes=b'IAmSensitiveBytes')", "types.py", "CamelCase example"),
    ("  password: '%s'," % base64.b64encode(b"not my real password").decode(), "auth.js", "base64 of a placeholder"),
    ("r += f\", secret='{base64.b64encode(self.secret).decode()}'\"", "tsig.py", "f-string interpolation"),
]


@pytest.mark.parametrize(("line", "path", "why"), HARD_NEGATIVES, ids=[n[2] + "-" + n[1] for n in HARD_NEGATIVES])
def test_hard_negative(line, path, why):
    assert scan(line, path, AUDIT) == []


def test_bare_values_only_in_config_files():
    token = fakes.chars(secret_corpus.ALNUM, 32)
    assert only(scan("API_TOKEN=%s" % token, "deploy.env")).rule == "generic-secret"
    assert scan("API_TOKEN=%s" % token, "build.py") == []  # code: only quoted strings are values


def test_generic_defers_to_a_provider_rule_on_the_same_span():
    hit = only(scan("AWS_SECRET_ACCESS_KEY=%s" % fakes.aws_secret_access_key(), ".env"))
    assert hit.rule == "aws-secret-access-key"


def test_dev_paths_downgrade_generic_but_not_provider_keys():
    live = fakes.stripe_live()
    assert only(scan("KEY = '%s'" % live, "tests/test_billing.py")).severity == MUST_DO_NOW
    generic = "SUPPORT_API_KEY = '%s'" % fakes.chars(secret_corpus.ALNUM, 32)
    assert only(scan(generic, "app/support.py")).severity == MUST_DO_NOW
    assert only(scan(generic, "tests/test_support.py")).severity == CAN_WAIT
    assert only(scan(generic, "docs/setup.md")).severity == CAN_WAIT


def test_expired_jwt_can_wait_and_firebase_key_can_wait():
    expired = jwt({"sub": "u1", "role": "authenticated", "exp": int(time.time()) - 3600})
    assert only(scan("token = '%s'" % expired, "app.py")).severity == CAN_WAIT
    firebase = "const firebaseConfig = {\n  apiKey: '%s',\n  authDomain: 'members.firebaseapp.com',\n};" % fakes.google_api_key()
    hit = only(scan(firebase, "src/firebase.js"))
    assert (hit.rule, hit.severity, hit.line) == ("google-api-key", CAN_WAIT, 2)


def test_allowlist_marker_and_patterns():
    line = "STRIPE_KEY = '%s'" % fakes.stripe_live()
    assert scan(line + "  # launchready:allow (rotated test fixture)", "billing.py") == []
    options = rules.ScanOptions(rules=rules.select_rules([rules.SECRET]), allowlist=(re.compile("STRIPE_KEY"),))
    assert scan(line, "billing.py", options) == []
    assert len(scan(line, "billing.py")) == 1


def test_line_and_column_numbers():
    text = "a\nb\n\n  TOKEN = '%s'\n" % fakes.github_token()
    hit = only(scan(text, "x.py"))
    assert (hit.line, hit.column) == (4, 12)
    many = "\n".join("k%d = '%s'" % (index, fakes.github_token()) for index in range(20))
    assert [hit.line for hit in scan(many, "x.py")] == list(range(1, 21))


# --- source audit --------------------------------------------------------------------------------


def test_dev_urls_by_place():
    code = "const API = 'http://localhost:3000/api';\nconst PREVIEW = 'https://members-git-main-acme.vercel.app';\n"
    hits = scan(code, "src/api.js", AUDIT)
    assert [(hit.rule, hit.severity, hit.match) for hit in hits] == [
        ("dev-url-localhost", CAN_WAIT, "localhost:3000"),
        ("preview-url", MUST_DO_NOW, "members-git-main-acme.vercel.app"),
    ]
    production = scan("API_URL=http://127.0.0.1:8000\n", ".env.production", AUDIT)
    assert [(hit.rule, hit.severity) for hit in production] == [("dev-url-localhost", MUST_DO_NOW)]
    assert scan(code, "tests/api.test.js", AUDIT) == []
    assert scan(code, "src/api.js") == []  # not without the source-audit checks
    ngrok = scan("WEBHOOK = 'https://ab12-34.ngrok-free.app/hook'", "app.py", AUDIT)
    assert [hit.match for hit in ngrok] == ["ab12-34.ngrok-free.app"]


def test_staging_hosts_and_subdomains():
    hits = scan("BASE = 'https://api.staging.members.example.org/v1'\nOTHER = 'https://members.example.org'\n", "app.py", AUDIT)
    assert [(hit.rule, hit.line, hit.match) for hit in hits] == [("staging-host", 1, "api.staging.members.example.org")]


def test_test_credentials_only_in_production_config():
    test_key = fakes.stripe_test()
    publishable = "pk_test_" + fakes.chars(secret_corpus.ALNUM, 24)
    text = "STRIPE_SECRET_KEY=%s\nSTRIPE_PUBLISHABLE_KEY=%s\nPAYPAL_API=https://api-m.sandbox.paypal.com\nPAYPAL_MODE=sandbox\n" % (test_key, publishable)
    text += "SMTP_HOST=sandbox.smtp.mailtrap.io\nPOSTMARK_TOKEN=POSTMARK_API_TEST\n"
    hits = scan(text, "config/.env.production", AUDIT)
    assert [(hit.rule, hit.line) for hit in hits] == [
        ("stripe-test-key-in-production", 1),
        ("stripe-test-key-in-production", 2),
        ("sandbox-endpoint-in-production", 3),
        ("sandbox-mode-in-production", 4),
        ("sandbox-endpoint-in-production", 5),
        ("postmark-test-token-in-production", 6),
    ]
    assert {hit.severity for hit in hits} == {MUST_DO_NOW}
    # elsewhere, the secret key is only a leaked test key, and the rest is fine
    elsewhere = scan(text, ".env.development", AUDIT)
    assert [(hit.rule, hit.severity) for hit in elsewhere] == [("stripe-test-secret-key", CAN_WAIT)]


# --- logs ----------------------------------------------------------------------------------------


def test_log_rules_and_email_with_token():
    bearer = fakes.chars(secret_corpus.B64URL, 40)
    session = fakes.chars(secret_corpus.ALNUM, 32)
    log = "\n".join(
        [
            "2025-05-01 INFO login ok user=jane.doe@members.example.org Authorization: Bearer %s" % bearer,
            '2025-05-01 DEBUG params={"email": "a@b.org", "password": "Hunter2-%s"}' % fakes.chars(string.digits, 4),
            "2025-05-01 INFO GET /reset?token=%s 200" % fakes.chars(secret_corpus.ALNUM, 24),
            "2025-05-01 INFO cookie: sessionid=%s" % session,
            "2025-05-01 INFO password=[FILTERED] user=jane.doe@members.example.org",
            "2025-05-01 INFO payment ok for jane.doe@members.example.org",
        ]
    )
    hits = rules.scan_text(log, "/var/log/app.log", LOGS)
    assert [(hit.rule, hit.line) for hit in hits] == [
        ("authorization-header", 1),
        ("log-email-with-token", 1),
        ("log-password", 2),
        ("log-email-with-token", 2),
        ("log-url-credential", 3),
        ("log-session-id", 4),
    ]
    assert bearer not in repr(hits) and session not in repr(hits) and "jane.doe" not in repr(hits)


# --- engine internals ----------------------------------------------------------------------------


def test_crc32_checksum_matches_the_independent_fixture_implementation():
    for body in ("", "a", "0" * 30, Fakes(11).chars(secret_corpus.ALNUM, 30)):
        assert rules.base62_crc32(body) == Fakes.crc32_base62(body)
    assert rules.base62_crc32("") == "000000"


def test_entropy_and_placeholders():
    assert rules.shannon_entropy("") == 0.0
    assert rules.shannon_entropy("aaaa") == 0.0
    assert rules.shannon_entropy("abcd") == pytest.approx(2.0)
    assert rules.shannon_entropy(Fakes(5).chars(secret_corpus.B64, 64)) > 4.5
    for value in ("YOUR_API_KEY", "xxxxxxxxxxxxxxxx", "AKIAIOSFODNN7EXAMPLE", "${TOKEN}", "{{ token }}", "<token>", "changeme", "00000000000000"):
        assert rules.looks_like_placeholder(value), value
    assert not rules.looks_like_placeholder(Fakes(5).chars(secret_corpus.ALNUM, 40))


@pytest.mark.parametrize("rule", [rule for rule in ALL if rule.anchored], ids=lambda rule: rule.id)
def test_anchored_matching_finds_what_finditer_finds(rule):
    """Anchors must cover every way a match can start, or the anchored search would miss secrets."""
    rng = random.Random(rule.id)
    pieces = [template % secret for _rule, _severity, template, secret, _where in POSITIVES] + [line for line, _where, _why in HARD_NEGATIVES]
    pieces += ["PAYPAL_MODE=sandbox", "POSTMARK_API_TEST", "JWT_SECRET=x", "Cookie: session=abc", "pwd=hunter2hunter2"]
    for _round in range(5):
        rng.shuffle(pieces)
        text = "\n".join(pieces) + " " + "".join(rng.choice(string.printable) for _round in range(2000))
        lowered = text.lower()
        assert [m.span() for m in rules._matches(rule, text, lowered)] == [m.span() for m in rule.pattern.finditer(text)]


def test_select_rules():
    ids = [rule.id for rule in rules.select_rules([rules.SECRET], skip_rules=["generic-secret"])]
    assert "generic-secret" not in ids and "stripe-live-secret-key" in ids and "dev-url-localhost" not in ids
    audit = [rule.id for rule in rules.select_rules([rules.DEV_URL], staging_hosts=["stage.example.org"])]
    assert audit == ["dev-url-localhost", "preview-url", "staging-host"]
    with pytest.raises(ValueError, match="unknown rule ids in skip_rules: nope"):
        rules.select_rules([rules.SECRET], skip_rules=["nope"])


def test_path_matcher():
    matcher = rules.PathMatcher(("tests/*", "*.md", "config/prod/*"))
    assert matcher("tests/a.py") and matcher("docs/x/README.md") and matcher("README.md") and matcher("config/prod/a.yml")
    assert not matcher("src/tests.py") and not matcher("a/config/prod/x")
    assert not rules.PathMatcher(())("anything")


# --- the labelled corpus -------------------------------------------------------------------------


def test_recall_and_precision_on_the_generated_corpus():
    """The issue's targets: recall >= 0.95 and precision >= 0.90 on the labelled corpus (secret rules only)."""
    files = secret_corpus.generate(seed=20240501)
    detected = {(corpus_file.path, hit.line) for corpus_file in files for hit in scan(corpus_file.content, corpus_file.path)}
    score = secret_corpus.score(files, detected)
    assert score["positives"] >= 250 and score["negatives"] >= 400
    assert score["recall"] >= 0.95, score["missed"]
    assert score["precision"] >= 0.90, score["false"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_corpus_bounds_hold_for_other_seeds(seed):
    files = secret_corpus.generate(seed=seed, copies=2)
    detected = {(corpus_file.path, hit.line) for corpus_file in files for hit in scan(corpus_file.content, corpus_file.path)}
    score = secret_corpus.score(files, detected)
    assert score["recall"] >= 0.95 and score["precision"] >= 0.90, score
