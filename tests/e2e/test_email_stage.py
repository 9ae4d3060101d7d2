# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secrets_env role's mail authentication (tasks/email.yml, tasks/verify_email.yml) against the lab.

The role runs as a client's launch runs it: its main entry point (environment file, then the
mail records, then verification) through ansible-playbook. The providers' DNS is the lab's
stand-in zones of tests/lab/config.json (``google.com``, ``sendgrid.net`` with SendGrid's
delegated DKIM keys), so SPF lookups are counted and CNAME-delegated DKIM is followed through
real DNS queries to the lab's nameserver.
"""

from __future__ import annotations

import base64
import os
import stat
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from tests.e2e.playbook import Result, run_playbook
from tests.lab.client import Lab

DNS_EDIT = ["zone:read", "dns_records:read", "dns_records:edit"]
# The SendGrid account host of tests/lab/config.json, whose s1 and s2 DKIM keys the lab serves.
SENDGRID_HOST = "u4821067.wl067.sendgrid.net"
# Task names as the results name them: the role's tasks carry its name.
ROLE = "launchready.core.secrets_env : "
KEYS = ROLE + "Keep the DKIM signing keys of each domain (generated when missing)"
VAULT_KEYS = ROLE + "Keep the DKIM signing keys of each domain in the vault (generated when missing, never shown)"
BUILD = ROLE + "Build the SPF, DKIM and DMARC records of each domain"
PUBLISH = ROLE + "Publish the mail records in Cloudflare"
CHECK = ROLE + "Check SPF, DKIM, DMARC and MX of every domain from the outside"
BLOCKERS = ROLE + "Fail the launch on blockers not accepted in the baseline"

LAUNCH = """
- name: Stage 4 - secrets, environment and mail authentication
  hosts: localhost
  gather_facts: false
  roles:
    - role: launchready.core.secrets_env
  post_tasks:
    - name: Show the launch findings
      ansible.builtin.debug:
        var: launchready_findings
"""

VERIFY = """
- name: Verify stage 4
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Verify secrets, environment and mail authentication
      ansible.builtin.include_role:
        name: launchready.core.secrets_env
        tasks_from: verify

    - name: Show the launch findings
      ansible.builtin.debug:
        var: launchready_findings
"""


@pytest.fixture
def zone(lab: Lab):
    name = "mail%s.test" % uuid.uuid4().hex[:10]
    lab.add_zone(name)
    # what the zone holds before the launch: the mailbox provider's MX and a site verification record
    lab.seed_records(name, [{"type": "MX", "name": name, "content": "smtp.google.com", "priority": 1, "ttl": 300},
                            {"type": "TXT", "name": name, "content": "google-site-verification=before-launch", "ttl": 300}])
    yield name
    lab.delete_zone(name)


def lab_dns(lab: Lab) -> str:
    return "%s:%d" % (lab.dns_host, lab.dns_port)


def dig(lab: Lab, name: str, rtype: str) -> list[str]:
    answer = dns.query.tcp(dns.message.make_query(name, rtype), lab.dns_host, port=lab.dns_port, timeout=10)
    wanted = dns.rdatatype.from_text(rtype)
    texts = []
    for rrset in answer.answer:
        if rrset.rdtype == wanted:
            for rdata in rrset:
                texts.append(b"".join(rdata.strings).decode() if rtype == "TXT" else rdata.to_text().rstrip("."))
    return sorted(texts)


def settings(lab: Lab, zone: str, tmp_path: Path, **overrides) -> dict:
    values = {
        "secrets_env_deploy_root": str(tmp_path / "srv"),
        "launchready_state_dir": str(tmp_path / "state"),
        "secrets_env_values": {"production": {"SESSION_SECRET": "e2e-" + uuid.uuid4().hex}},
        "secrets_env_email_domains": [{
            "name": zone,
            "providers": [{"name": "google_workspace"},
                          {"name": "sendgrid", "settings": {"host": SENDGRID_HOST, "return_path": "em4821"}}],
        }],
        "secrets_env_email_dkim_key_types": ["rsa", "ed25519"],
        "secrets_env_email_dmarc_rua": ["mailto:dmarc@%s" % zone],
        "secrets_env_email_nameservers": [lab_dns(lab)],
        "launchready_cloudflare_api_token": lab.add_token(DNS_EDIT, zones=[zone]),
        "launchready_cloudflare_api_base_url": lab.api_base_url,
        # the token's least privilege is another part of the stage, with a test of its own
        "secrets_env_cloudflare_token_check": False,
    }
    values.update(overrides)
    return values


def findings(run: Result) -> list[dict]:
    return run.task("Show the launch findings")["launchready_findings"]


def titles(items: list[dict]) -> set[tuple[str, str]]:
    return {(f["severity"], f["title"]) for f in items}


def assert_secret_free(run: Result, values: dict) -> None:
    assert values["launchready_cloudflare_api_token"] not in run.output
    assert "PRIVATE KEY" not in run.output


def test_preview_publish_verify_then_nothing_to_do(lab, zone, tmp_path):
    values = settings(lab, zone, tmp_path)
    key_dir = tmp_path / "state" / "dkim"
    before = lab.records(zone)

    lab.reset_calls()
    preview = run_playbook(LAUNCH, values, check=True, diff=True)
    assert preview.rc == 0, preview.output[-4000:]
    assert lab.calls()["writes"] == 0 and lab.records(zone) == before
    assert not (key_dir / zone).exists(), "check mode generates no key"
    # --diff shows every record set the run would change, the apex TXT set with the record it keeps
    assert "v=spf1 include:_spf.google.com ~all" in preview.stdout
    assert "v=DMARC1; p=none; rua=mailto:dmarc@%s" % zone in preview.stdout
    assert "s1.domainkey.%s" % SENDGRID_HOST in preview.stdout
    assert "google-site-verification=before-launch" in preview.stdout
    assert_secret_free(preview, values)

    first = run_playbook(LAUNCH, values, diff=True)
    assert first.rc == 0, first.output[-4000:]
    assert first.recap["changed"] > 0
    assert_secret_free(first, values)
    keys = first.task(KEYS)["results"][0]["keys"]
    assert [k["key_type"] for k in keys] == ["rsa", "ed25519"]
    for key in keys:
        assert Path(key["path"]).parent == key_dir / zone
        assert stat.S_IMODE(os.stat(key["path"]).st_mode) == 0o600
        assert dig(lab, key["dns_name"], "TXT") == [key["dns_value"]]
    assert stat.S_IMODE(os.stat(key_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(key_dir / zone).st_mode) == 0o700

    # what the lab's nameserver answers now
    assert dig(lab, zone, "TXT") == ["google-site-verification=before-launch", "v=spf1 include:_spf.google.com ~all"]
    assert dig(lab, zone, "MX") == ["1 smtp.google.com"]
    assert dig(lab, "_dmarc." + zone, "TXT") == ["v=DMARC1; p=none; rua=mailto:dmarc@%s" % zone]
    assert dig(lab, "s1._domainkey." + zone, "CNAME") == ["s1.domainkey.%s" % SENDGRID_HOST]
    assert dig(lab, "s2._domainkey." + zone, "CNAME") == ["s2.domainkey.%s" % SENDGRID_HOST]
    assert dig(lab, "em4821." + zone, "CNAME") == [SENDGRID_HOST]
    assert any("google_workspace: DKIM not built" in note for note in first.task(BUILD)["results"][0]["notes"])

    check = first.task(CHECK)
    assert check["summary"]["must_do_now"] == 0, check["findings"]
    seen = titles(check["findings"])
    assert ("ok", "SPF of %s is valid" % zone) in seen
    assert ("ok", "%s has MX records" % zone) in seen
    assert ("can_wait", "DMARC record of %s: policy is p=none (monitoring only)" % zone) in seen
    for selector in [k["selector"] for k in keys] + ["s1", "s2"]:
        assert ("ok", "DKIM key %s._domainkey.%s is published" % (selector, zone)) in seen
    report = check["domains"][zone]
    assert {d["selector"]: d.get("matches_local_key") for d in report["dkim"]} == {
        keys[0]["selector"]: True, keys[1]["selector"]: True, "s1": None, "s2": None}
    assert {d["selector"]: d["cname"] for d in report["dkim"]}["s1"] == "s1.domainkey.%s" % SENDGRID_HOST
    # every mail finding reached the launch findings, once
    launch = findings(first)
    assert all(launch.count(finding) == 1 for finding in check["findings"])

    lab.reset_calls()
    second = run_playbook(LAUNCH, values)
    assert second.rc == 0, second.output[-4000:]
    assert second.recap["changed"] == 0, [r["task"] for r in second.results if r["status"] == "changed"]
    assert lab.calls()["writes"] == 0
    assert [k["selector"] for k in second.task(KEYS)["results"][0]["keys"]] \
        == [k["selector"] for k in keys]


def test_vault_mode_keys_wait_then_move_into_the_vault_and_sign(lab, zone, tmp_path):
    """Vault mode: a new key waits in a 0600 file (a can_wait finding) and stays the same key until moved; it signs mail
    that verifies against the record the role published (dkimpy, test-only)."""
    dkim = pytest.importorskip("dkim")
    pytest.importorskip("nacl")
    values = settings(lab, zone, tmp_path, secrets_env_email_dkim_key_store="vault", secrets_env_email_dkim_private_keys={})
    pending = tmp_path / "state" / "dkim" / ("%s.new-keys.yml" % zone)

    first = run_playbook(LAUNCH, values, diff=True)
    assert first.rc == 0, first.output[-4000:]
    assert_secret_free(first, values)
    assert stat.S_IMODE(os.stat(pending).st_mode) == 0o600
    waiting = yaml.safe_load(pending.read_text(encoding="utf-8"))
    # the key task's result is hidden (no_log: it holds the new private keys); the records built name the selectors
    assert first.task(VAULT_KEYS)["censored"]
    own = sorted(d["selector"] for d in first.task(BUILD)["results"][0]["dkim"] if d["source"] == "dkim")
    assert sorted(k["selector"] for k in waiting) == own and len(own) == 2
    assert ("can_wait", "DKIM private keys of %s are not in the vault yet" % zone) in titles(findings(first))

    again = run_playbook(LAUNCH, values)
    assert again.rc == 0, again.output[-4000:]
    assert again.recap["changed"] == 0, [r["task"] for r in again.results if r["status"] == "changed"]
    assert yaml.safe_load(pending.read_text(encoding="utf-8")) == waiting

    # the published keys are the halves of the waiting ones: sign with each, verify against the lab's DNS
    def lab_txt(name, timeout=5):
        texts = dig(lab, name.decode().rstrip("."), "TXT")
        return texts[0].encode() if texts else None

    message = ("From: Launch <receipts@%s>\r\nTo: member@example.net\r\nSubject: Your receipt\r\n"
               "Message-ID: <2@%s>\r\n\r\nThanks for your payment.\r\n" % (zone, zone)).encode()
    for entry in waiting:
        private = serialization.load_pem_private_key(entry["private_key"].encode(), password=None)
        if entry["selector"].endswith("-ed25519"):
            seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
            signature = dkim.sign(message, entry["selector"].encode(), zone.encode(), base64.b64encode(seed),
                                  signature_algorithm=b"ed25519-sha256", include_headers=[b"from", b"to", b"subject"])
        else:
            signature = dkim.sign(message, entry["selector"].encode(), zone.encode(), entry["private_key"].encode(),
                                  include_headers=[b"from", b"to", b"subject"])
        assert dkim.verify(signature + message, dnsfunc=lab_txt), entry["selector"]
        assert not dkim.verify(signature + message.replace(b"payment", b"refund"), dnsfunc=lab_txt)

    # moved into the vault (here: the variable), the file deleted: nothing changes, nothing waits
    pending.unlink()
    values["secrets_env_email_dkim_private_keys"] = {zone: waiting}
    moved = run_playbook(LAUNCH, values, diff=True, verbosity=3)
    assert moved.rc == 0, moved.output[-4000:]
    assert moved.recap["changed"] == 0, [r["task"] for r in moved.results if r["status"] == "changed"]
    assert not pending.exists()
    assert_secret_free(moved, values)
    assert not any("not in the vault" in f["title"] for f in findings(moved))
    report = moved.task(CHECK)["domains"][zone]
    assert [d.get("matches_local_key") for d in report["dkim"] if d["selector"] in own] == [True, True]


@pytest.fixture
def heavy_senders(lab: Lab):
    """Seven more senders with an SPF record each: with Google's four lookups, eleven."""
    name = "senders%s.test" % uuid.uuid4().hex[:8]
    lab.add_zone(name)
    lab.seed_records(name, [{"type": "TXT", "name": "p%d.%s" % (i, name), "content": "v=spf1 ip4:192.0.2.%d -all" % i, "ttl": 300}
                            for i in range(7)])
    yield name
    lab.delete_zone(name)


@pytest.mark.parametrize("bad", ["unknown provider", "11 SPF lookups"])
def test_bad_input_publishes_nothing(lab, zone, tmp_path, heavy_senders, bad):
    """A second domain (in the same zone) that cannot be built stops the run before the first one is published."""
    if bad == "unknown provider":
        broken = {"name": "news." + zone, "zone": zone, "providers": [{"name": "sendgird"}]}
        message = "value of name must be one of: amazon_ses, google_workspace"
    else:
        broken = {"name": "news." + zone, "zone": zone, "providers": [{"name": "google_workspace"}],
                  "spf": {"include": ["p%d.%s" % (i, heavy_senders) for i in range(7)]}}
        message = ("Nothing was built for news.%s: SPF at news.%s would need 11 DNS lookups, over the limit of 10 (RFC 7208 "
                   "section 4.6.4): include:p0.%s (spf) costs 1" % (zone, zone, heavy_senders))
    values = settings(lab, zone, tmp_path)
    values["secrets_env_email_domains"].append(broken)
    before = lab.records(zone)
    lab.reset_calls()
    run = run_playbook(LAUNCH, values)
    assert run.rc != 0
    failed = [r for r in run.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == [BUILD]
    # the loop reports each domain: the good one built, the broken one says why
    items = failed[0]["result"]["results"]
    assert [item.get("failed", False) for item in items] == [False, True]
    assert message in items[1]["msg"], items[1]["msg"]
    assert PUBLISH not in [r["task"] for r in run.results]
    assert lab.calls()["writes"] == 0
    assert lab.records(zone) == before


def test_verify_only_reports_and_the_launch_fails_on_a_mail_blocker(lab, zone, tmp_path):
    values = settings(lab, zone, tmp_path)
    assert run_playbook(LAUNCH, values).rc == 0

    # a hand edit breaks DMARC: verification alone reports it, changes nothing and does not fail
    records = [r for r in lab.records(zone) if r["name"] != "_dmarc." + zone]
    lab.seed_records(zone, [*records, {"type": "TXT", "name": "_dmarc." + zone, "content": "v=DMARC1; p=rejct", "ttl": 300}])
    lab.reset_calls()
    verify = run_playbook(VERIFY, values)
    assert verify.rc == 0, verify.output[-4000:]
    assert verify.recap["changed"] == 0 and lab.calls()["writes"] == 0
    assert ("must_do_now", "DMARC record of %s: p=rejct is not a policy" % zone) in titles(findings(verify))
    # the launch's verification step alone (--tags verify) finds it too, and stops the launch on it
    tagged = run_playbook(LAUNCH, values, env={"ANSIBLE_RUN_TAGS": "verify"})
    assert tagged.recap["changed"] == 0 and lab.calls()["writes"] == 0
    assert tagged.rc != 0 and [r["task"] for r in tagged.results if r["status"] == "failed"] == [BLOCKERS]
    assert "DMARC record of %s: p=rejct is not a policy" % zone in tagged.task(BLOCKERS)["msg"]

    # reports sent to a domain that has not agreed to receive them: the launch publishes, verifies, then stops on it
    reports = "reports%s.test" % uuid.uuid4().hex[:8]
    lab.add_zone(reports)
    try:
        values["secrets_env_email_dmarc_rua"] = ["mailto:dmarc@%s" % reports]
        run = run_playbook(LAUNCH, values)
        assert run.rc != 0
        assert [r["task"] for r in run.results if r["status"] == "failed"] == [BLOCKERS]
        blocker = "DMARC reports of %s to %s are not authorized" % (zone, reports)
        assert blocker in run.task(BLOCKERS)["msg"]
        assert dig(lab, "_dmarc." + zone, "TXT") == ["v=DMARC1; p=none; rua=mailto:dmarc@%s" % reports]
        said = run.task(ROLE + "Say which DMARC report authorizations must be published outside these zones")["msg"]
        assert said.startswith('Publish TXT "v=DMARC1" at %s._report._dmarc.%s (in DNS this role does not manage)' % (zone, reports))
    finally:
        lab.delete_zone(reports)
