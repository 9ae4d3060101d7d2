#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dkim_key
short_description: Generate DKIM signing keys and the DNS records that publish them
version_added: 0.1.0
description:
  - Makes sure a DKIM key exists for O(domain) under the current selector, for each of O(key_types), and returns the TXT record
    that publishes its public half at C(<selector>._domainkey.<domain>), ready for M(launchready.core.email_auth_records).
  - RSA keys (2048 bits by default) publish their SubjectPublicKeyInfo, Ed25519 keys (RFC 8463) their raw 32-byte public key,
    both base64 in C(p=). The TXT value is also returned split into strings of at most 255 bytes for zone files.
  - Idempotent. A key is only generated when none exists for the selector, or when O(rotate=true) asks for a new generation.
    An existing key is never replaced.
  - Private keys are written to O(private_key_dir) with mode C(0600), atomically (a temporary file renamed into place), in a
    directory per domain created with mode C(0700). Or, without O(private_key_dir), keys live in Ansible Vault. Existing keys
    come in through O(private_keys) and new ones are returned in RV(generated_private_keys) for you to add to the vault.
  - "Selectors are named for rotation: C(<prefix><year><letters>), such as C(lr2026a), then C(lr2026b) at the next rotation, C(lr2027a)
    in a new year. The Ed25519 key of a generation is C(<base>-ed25519), such as C(lr2026a-ed25519)."
author:
  - launchready.core maintainers (@launchready)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports which keys it would generate or fix, and writes nothing. The public value of a key not generated yet is null.
  diff_mode:
    support: full
    details: Shows the keys of the domain before and after, by selector, type and size (never key material).
  platform:
    platforms: posix
options:
  domain:
    description:
      - The signing domain (C(d=) of the signatures), for example V(example.com).
    type: str
    required: true
  key_types:
    description:
      - The keys to keep. V(rsa) is what every verifier checks; V(ed25519) is shorter and faster, but not every verifier checks it yet,
        so sign with both or with RSA alone.
    type: list
    elements: str
    choices: [rsa, ed25519]
    default: [rsa]
  rsa_bits:
    description:
      - Size of new RSA keys. 2048 bits is what RFC 8301 asks for and what fits in DNS without trouble.
    type: int
    choices: [2048, 3072, 4096]
    default: 2048
  private_key_dir:
    description:
      - Directory for private keys, one file per selector at C(<private_key_dir>/<domain>/<selector>.pem) (PKCS#8 PEM, unencrypted,
        mode C(0600)).
      - Mutually exclusive with O(private_keys); one of the two is required.
    type: path
  private_keys:
    description:
      - Existing keys kept in Ansible Vault, each C({selector, private_key}) with the PEM private key. Use an empty list the first time.
      - Mutually exclusive with O(private_key_dir).
    type: list
    elements: dict
    suboptions:
      selector:
        description:
          - The selector the key signs with.
        type: str
        required: true
      private_key:
        description:
          - The PEM private key. It is never shown in results or logs.
        type: str
        required: true
  selector:
    description:
      - A fixed selector instead of the automatic names. It cannot be rotated; choose a new selector to replace its key.
    type: str
  selector_prefix:
    description:
      - Prefix of the automatic selector names (lower-case letters and digits).
    type: str
    default: lr
  rotate:
    description:
      - Start a new generation of keys under the next selector (for example C(lr2026b) after C(lr2026a)), keeping the old keys.
      - Every run with V(true) rotates, so set it for one run only. Publish the new records, switch signing to the new selector,
        keep the old record published for a few days (mail in flight is checked against it), then remove it.
    type: bool
    default: false
notes:
  - With O(private_keys), set C(no_log) on the task, since RV(generated_private_keys) holds private key material.
requirements:
  - cryptography >= 41.0 (on the controller)
seealso:
  - module: launchready.core.email_auth_records
  - module: launchready.core.email_auth_check
  - name: RFC 6376 section 3.6.1 (DKIM key records)
    description: The C(v=DKIM1; k=...; p=...) record.
    link: https://www.rfc-editor.org/rfc/rfc6376#section-3.6.1
  - name: RFC 8463 (Ed25519 for DKIM)
    description: The raw 32-byte public key in C(p=).
    link: https://www.rfc-editor.org/rfc/rfc8463
"""

EXAMPLES = r"""
- name: Keep an RSA and an Ed25519 key for example.com on the controller
  launchready.core.dkim_key:
    domain: example.com
    key_types: [rsa, ed25519]
    private_key_dir: "{{ playbook_dir }}/keys/dkim"
  delegate_to: localhost
  register: dkim

- name: Publish them with the rest of the mail records
  launchready.core.email_auth_records:
    domain: example.com
    dkim: "{{ dkim.dkim_records }}"
    dmarc:
      policy: none
      rua: [mailto:dmarc@example.com]
  register: email_records

- name: Rotate (run once, for example with -e dkim_rotate=true)
  launchready.core.dkim_key:
    domain: example.com
    private_key_dir: "{{ playbook_dir }}/keys/dkim"
    rotate: "{{ dkim_rotate | default(false) | bool }}"

- name: Keys kept in Ansible Vault instead of files
  launchready.core.dkim_key:
    domain: example.com
    private_keys: "{{ vault_dkim_private_keys | default([]) }}"
  register: dkim
  no_log: true
"""

RETURN = r"""
selector:
  description: The selector base in use (the RSA key's selector).
  returned: success
  type: str
  sample: lr2026a
keys:
  description: The current keys, each with C(selector), C(key_type), C(bits), C(path) (null in vault mode), C(generated) (by this run),
    C(dns_name), C(dns_value) and C(dns_strings) (the value in strings of at most 255 bytes). C(dns_value) is null in check mode for a
    key not generated yet.
  returned: success
  type: list
  elements: dict
  sample: [{selector: lr2026a, key_type: rsa, bits: 2048, path: /srv/keys/dkim/example.com/lr2026a.pem, generated: false,
            dns_name: lr2026a._domainkey.example.com, dns_value: "v=DKIM1; k=rsa; p=MIIBIjANBgkq...", dns_strings: ["v=DKIM1; k=rsa; p=MIIB..."]}]
dkim_records:
  description: The current keys as C({selector, value}), the shape O(launchready.core.email_auth_records#module:dkim) takes.
  returned: success
  type: list
  elements: dict
  sample: [{selector: lr2026a, value: "v=DKIM1; k=rsa; p=MIIBIjANBgkq..."}]
previous_selectors:
  description: Selectors of older generations that still have keys. Keep their records published a few days after a rotation, then remove them.
  returned: success
  type: list
  elements: str
  sample: [lr2025a]
generated_private_keys:
  description: In vault mode (O(private_keys)), the keys this run generated, each C({selector, private_key}), to add to the vault.
  returned: success, in vault mode
  type: list
  elements: dict
"""

# Ansible modules import after their documentation (validate-modules checks it; ruff ignores E402 here).
import datetime
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.launchready.core.plugins.module_utils import _dkim
from ansible_collections.launchready.core.plugins.module_utils._files import write_atomic


def current_year() -> int:
    return datetime.datetime.now(datetime.timezone.utc).year


def describe(keys: dict) -> str:
    return "".join("%s (%s %d)\n" % (selector, key_type, bits) for selector, (key_type, bits) in sorted(keys.items()))


def existing_files(directory: str) -> dict[str, str]:
    if not os.path.isdir(directory):
        return {}
    return {name[:-4]: os.path.join(directory, name) for name in os.listdir(directory) if name.endswith(".pem") and not name.startswith(".")}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            domain=dict(type="str", required=True),
            key_types=dict(type="list", elements="str", choices=list(_dkim.KEY_TYPES), default=["rsa"]),
            rsa_bits=dict(type="int", choices=[2048, 3072, 4096], default=2048),
            private_key_dir=dict(type="path"),
            # no_log on the keys themselves only: the selectors must stay readable in results
            private_keys=dict(type="list", elements="dict", no_log=False, options=dict(
                selector=dict(type="str", required=True),
                private_key=dict(type="str", required=True, no_log=True),
            )),
            selector=dict(type="str"),
            selector_prefix=dict(type="str", default="lr"),
            rotate=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("private_key_dir", "private_keys")],
        required_one_of=[("private_key_dir", "private_keys")],
        supports_check_mode=True,
    )
    if not _dkim.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=_dkim.CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    domain = params["domain"].strip().rstrip(".").lower()
    key_types = list(dict.fromkeys(params["key_types"])) or ["rsa"]
    vault = params["private_keys"] is not None
    directory = "" if vault else os.path.join(params["private_key_dir"], domain)
    sources = {k["selector"]: k["private_key"] for k in params["private_keys"]} if vault else existing_files(directory)
    try:
        base = _dkim.choose_base(sorted(sources), params["selector"], params["selector_prefix"], params["rotate"], current_year())
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    loaded = {}
    for selector, source in sources.items():
        try:
            if vault:
                loaded[selector] = _dkim.load_private_pem(source.encode("utf-8"))
            else:
                with open(source, "rb") as handle:
                    loaded[selector] = _dkim.load_private_pem(handle.read())
        except (OSError, ValueError, TypeError) as exc:
            where = "private_keys entry %s" % selector if vault else source
            module.fail_json(msg="%s is not a usable DKIM private key: %s" % (where, getattr(exc, "strerror", None) or exc))
    before = {selector: (_dkim.key_type_of(key), _dkim.key_bits(key)) for selector, key in loaded.items()}
    changed = False
    warnings = []
    keys, records, generated = [], [], []
    after = dict(before)
    if directory and not os.path.isdir(directory):
        changed = True
        if not module.check_mode:
            os.makedirs(directory, mode=0o700)
    for key_type in key_types:
        selector = _dkim.selector_for(base, key_type)
        path = None if vault else os.path.join(directory, selector + ".pem")
        key = loaded.get(selector)
        if key is not None and _dkim.key_type_of(key) != key_type:
            module.fail_json(msg="the key for selector %s is %s, not %s; give another selector" % (selector, _dkim.key_type_of(key), key_type))
        made = key is None
        if made:
            changed = True
            after[selector] = (key_type, 256 if key_type == "ed25519" else params["rsa_bits"])
            if not module.check_mode:
                key = _dkim.generate(key_type, params["rsa_bits"])
                pem = _dkim.private_pem(key)
                if path is None:
                    generated.append({"selector": selector, "private_key": pem.decode("ascii")})
                else:
                    write_atomic(path, pem, 0o600)
        elif path is not None and os.stat(path).st_mode & 0o777 != 0o600:
            changed = True
            if not module.check_mode:
                os.chmod(path, 0o600)
        if key is not None and key_type == "rsa" and _dkim.key_bits(key) < params["rsa_bits"] and not made:
            warnings.append("the key of %s is RSA %d bits, less than rsa_bits=%d; rotate to get a bigger one"
                            % (selector, _dkim.key_bits(key), params["rsa_bits"]))
        value = _dkim.txt_value(key) if key is not None else None
        keys.append({
            "selector": selector, "key_type": key_type, "bits": _dkim.key_bits(key) if key is not None else after[selector][1], "path": path,
            "generated": made, "dns_name": _dkim.record_name(selector, domain), "dns_value": value,
            "dns_strings": _dkim.split_txt(value) if value else None,
        })
        if value:
            records.append({"selector": selector, "value": value})
    current = {_dkim.selector_for(base, t) for t in key_types}
    previous = sorted(s for s in sources if s not in current and _dkim.base_of(s) != base)
    for warning in warnings:
        module.warn(warning)
    result = dict(changed=changed, selector=base, keys=keys, dkim_records=records, previous_selectors=previous)
    if vault:
        result["generated_private_keys"] = generated
    if module._diff:
        label = directory or "private_keys"
        result["diff"] = dict(before=describe(before), after=describe(after), before_header=label, after_header=label)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
