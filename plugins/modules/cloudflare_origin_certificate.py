#!/usr/bin/python
# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudflare_origin_certificate
short_description: Install a Cloudflare Origin CA certificate and its private key on the origin host
version_added: 0.1.0
description:
  - Keeps a Cloudflare Origin CA certificate for O(hostnames) installed on the host the module runs on, the origin server behind
    Cloudflare, so that the zone can use SSL mode C(strict).
  - The private key is generated on that host (ECDSA P-256 by default, RSA 2048 with O(key_type=rsa)) and never leaves it;
    the module sends Cloudflare only a certificate signing request (C(POST /certificates)).
  - Idempotent. A new certificate is requested only when there is none, it cannot be read, its hostnames (its subject alternative names)
    differ from O(hostnames), it does not belong to the installed key, or fewer than O(renew_before_days) days of validity remain.
    A run that needs nothing makes no API call.
  - The key is only replaced when there is none, its type is not O(key_type), or O(rotate_key=true); a renewal otherwise reuses it.
  - The key is written with mode C(0600) and the certificate with mode C(0644), each atomically (a temporary file in the same directory,
    with its final mode from the start, renamed into place); the modes (and O(owner), O(group)) of installed files are corrected.
author:
  - launchready.core maintainers (@launchready)
extends_documentation_fragment:
  - launchready.core.cloudflare
  - launchready.core.cloudflare.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Reads the installed files and reports whether (and why) a certificate would be requested; makes no API call and writes nothing.
  diff_mode:
    support: full
    details: Shows the certificate's hostnames, expiry and key (by fingerprint) before and after; never the key itself.
options:
  hostnames:
    description:
      - The names the certificate covers, for example the zone apex and a wildcard (V(example.com), V(*.example.com)). Each must be in
        a zone the API token can reach. Compared as a set, without case.
    type: list
    elements: str
    required: true
  private_key_path:
    description:
      - Where the private key lives on the host. Its directory must exist. An existing key in PEM (PKCS#1, SEC1 or PKCS#8, without a passphrase) is reused.
    type: path
    required: true
  certificate_path:
    description:
      - Where the certificate (PEM) lives on the host. Its directory must exist.
    type: path
    required: true
  key_type:
    description:
      - V(ecdsa) (P-256, C(request_type=origin-ecc)) or V(rsa) (2048 bits, C(request_type=origin-rsa)).
      - Changing it replaces the key and the certificate.
    type: str
    choices: [ecdsa, rsa]
    default: ecdsa
  validity_days:
    description:
      - How long a new certificate is valid, in days, as the Origin CA offers it.
    type: int
    choices: [7, 30, 90, 365, 730, 1095, 5475]
    default: 5475
  renew_before_days:
    description:
      - Request a new certificate when fewer days than this remain. Must be less than O(validity_days).
    type: int
    default: 30
  rotate_key:
    description:
      - Replace the private key (and so the certificate) on this run. Leave it V(false) in the inventory, or every run rotates.
    type: bool
    default: false
  owner:
    description:
      - The user that owns both files (a name or a number). Left out, new files belong to the user the module runs as, and existing ones keep theirs.
    type: str
  group:
    description:
      - The group of both files (a name or a number). Left out, as for O(owner).
    type: str
requirements:
  - cryptography >= 41.0 (on the host the module runs on)
notes:
  - "The module runs on the origin host and calls the Cloudflare API from there, so that the private key is generated, used and stored in
    one place, and the decision to renew reads the installed files: the host needs C(httpx), C(cryptography) and HTTPS access to the API.
    Ansible sends module arguments, the API token included, to that host for the run; give the token only C(SSL and Certificates:Edit) on
    the zone. To keep the token on the controller, run the module on the controller (C(delegate_to=localhost)) with paths there and copy
    the files to the origin with M(ansible.builtin.copy) (key with C(mode=0600))."
  - This module overrides the note of the documentation fragment that says Cloudflare modules run on the controller.
  - Revoking the certificates a renewal replaces is left to the user (C(DELETE /certificates/{id})); Origin CA certificates are free and
    the old one stops being served as soon as the new one is installed and the web server reloads.
  - Reload the web server when the task reports C(changed), for example with a handler.
seealso:
  - module: launchready.core.cloudflare_zone_settings
  - name: Cloudflare Origin CA
    description: What Origin CA certificates are, and why only Cloudflare trusts them.
    link: https://developers.cloudflare.com/ssl/origin-configuration/origin-ca/
"""

EXAMPLES = r"""
- name: Origin certificate for the app server
  launchready.core.cloudflare_origin_certificate:
    api_token: "{{ vault_cloudflare_api_token }}"
    hostnames:
      - example.com
      - "*.example.com"
    private_key_path: /etc/ssl/private/origin.key
    certificate_path: /etc/ssl/certs/origin.pem
    validity_days: 5475
    renew_before_days: 30
  become: true
  notify: Reload nginx
  register: origin_certificate

- name: Rotate the key (run once, with -e rotate=true)
  launchready.core.cloudflare_origin_certificate:
    api_token: "{{ vault_cloudflare_api_token }}"
    hostnames: [example.com, "*.example.com"]
    private_key_path: /etc/ssl/private/origin.key
    certificate_path: /etc/ssl/certs/origin.pem
    rotate_key: "{{ rotate | default(false) | bool }}"
  become: true
"""

RETURN = r"""
certificate_id:
  description: The Origin CA id of the installed certificate (its serial number, in decimal). V(null) in check mode when a certificate would be requested.
  returned: success
  type: str
  sample: "328578533902268680212849205732770752308931942346"
expires_on:
  description: When the installed certificate expires (UTC); in check mode, when a new one would.
  returned: success
  type: str
  sample: "2040-01-01T00:00:00Z"
hostnames:
  description: The names the installed certificate covers (the desired ones, in check mode when a certificate would be requested), sorted.
  returned: success
  type: list
  elements: str
  sample: ["*.example.com", example.com]
renewed_because:
  description:
    - Why a certificate was (or, in check mode, would be) requested; empty when none was.
    - V(no_private_key), V(rotate_key), V(key_type_changed), V(no_certificate), V(unreadable_certificate), V(hostnames_changed),
      V(key_mismatch) (the certificate is not for the installed key) or V(expiring).
  returned: success
  type: list
  elements: str
  sample: [expiring]
key_replaced:
  description: Whether a new private key was (or would be) generated.
  returned: success
  type: bool
  sample: false
key_type:
  description: The type of the installed key, V(ecdsa) or V(rsa).
  returned: success
  type: str
  sample: ecdsa
key_fingerprint:
  description: C(sha256:) and 16 hex digits of the installed key's public key; tells keys apart without showing them. V(null) in check mode for a new key.
  returned: success
  type: str
  sample: "sha256:5f0c2a8e1d3b4c6a"
attributes_fixed:
  description: Files whose mode, owner or group were (or would be) corrected, each with C(path) and what was wrong.
  returned: success
  type: list
  elements: dict
  sample: [{path: /etc/ssl/private/origin.key, fixed: [mode]}]
api_calls:
  description: How many Cloudflare API calls the run made, retries included (0 when nothing had to be requested).
  returned: always
  type: int
  sample: 1
"""

import grp
import os
import pwd
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.launchready.core.plugins.module_utils import _origin_cert
from ansible_collections.launchready.core.plugins.module_utils._cloudflare import CloudflareClient, CloudflareError, cloudflare_argument_spec
from ansible_collections.launchready.core.plugins.module_utils._files import write_atomic


def argument_spec() -> dict:
    spec = cloudflare_argument_spec()
    spec.update(
        hostnames=dict(type="list", elements="str", required=True),
        private_key_path=dict(type="path", required=True),
        certificate_path=dict(type="path", required=True),
        key_type=dict(type="str", choices=list(_origin_cert.REQUEST_TYPES), default="ecdsa"),
        validity_days=dict(type="int", choices=list(_origin_cert.VALIDITY_DAYS), default=5475),
        renew_before_days=dict(type="int", default=30),
        rotate_key=dict(type="bool", default=False),
        owner=dict(type="str"),
        group=dict(type="str"),
    )
    return spec


def user_id(module: AnsibleModule, name: str | None, kind: str) -> int:
    if name is None:
        return -1
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid if kind == "owner" else grp.getgrnam(name).gr_gid
    except KeyError:
        module.fail_json(msg="%s %r does not exist on this host" % (kind, name), api_calls=0, changed=False)
        raise


def check_input(module: AnsibleModule) -> list[str]:
    params = module.params
    try:
        hostnames = _origin_cert.normalise_hostnames(params["hostnames"])
    except _origin_cert.OriginCertError as exc:
        module.fail_json(msg=str(exc), api_calls=0, changed=False)
    if not 0 <= params["renew_before_days"] < params["validity_days"]:
        module.fail_json(msg="renew_before_days (%d) must be from 0 to less than validity_days (%d), or every run would renew"
                         % (params["renew_before_days"], params["validity_days"]), api_calls=0, changed=False)
    for option in ("private_key_path", "certificate_path"):
        directory = os.path.dirname(os.path.abspath(params[option]))
        if not os.path.isdir(directory):
            module.fail_json(msg="%s: the directory %s does not exist" % (option, directory), api_calls=0, changed=False)
    if os.path.abspath(params["private_key_path"]) == os.path.abspath(params["certificate_path"]):
        module.fail_json(msg="private_key_path and certificate_path must be two different files", api_calls=0, changed=False)
    return hostnames


def request_certificate(module: AnsibleModule, key, hostnames: list[str]) -> tuple[dict, _origin_cert.Installed, int]:
    """POST /certificates for ``key``; the answer, the certificate read back, and the calls made."""
    params = module.params
    body = {
        "csr": _origin_cert.make_csr(key, hostnames),
        "hostnames": hostnames,
        "requested_validity": params["validity_days"],
        "request_type": _origin_cert.REQUEST_TYPES[params["key_type"]],
    }
    client = CloudflareClient.from_module(module)
    try:
        with client:
            answer = client.create_origin_certificate(body)
    except CloudflareError as exc:
        module.fail_json(msg="requesting the certificate failed: %s. Nothing was written." % client.scrub(str(exc)),
                         api_calls=client.api_calls, changed=False, **exc.as_result())
    issued = _origin_cert.read_certificate(str(answer.get("certificate") or "").encode("utf-8"))
    if issued is None or not issued.matches(key):
        module.fail_json(msg="Cloudflare answered a certificate that is not for the key's CSR (or none); nothing was written",
                         api_calls=client.api_calls, changed=False)
        raise AssertionError("fail_json exits")
    return answer, issued, client.api_calls


def describe(installed, key) -> dict:
    """What the diff shows of a certificate and its key (never the key itself)."""
    shown = {"hostnames": list(installed.hostnames), "expires_on": installed.expires_on, "certificate_id": installed.certificate_id} if installed else {}
    if key is not None:
        shown["key"] = "%s %s" % (_origin_cert.key_type_of(key), _origin_cert.key_fingerprint(key))
    return shown


def install(module: AnsibleModule, plan: _origin_cert.CertificatePlan, key, hostnames: list[str], uid: int, gid: int) -> dict:
    """Request the certificate (with a new key when the plan says so) and write the files; the result's certificate fields."""
    params = module.params
    if plan.new_key:
        key = _origin_cert.generate_key(params["key_type"])
    answer, issued, calls = request_certificate(module, key, hostnames)
    try:
        if plan.new_key:
            write_atomic(params["private_key_path"], _origin_cert.private_key_pem(key), _origin_cert.KEY_MODE, uid, gid)
        write_atomic(params["certificate_path"], str(answer["certificate"]).encode("utf-8"), _origin_cert.CERTIFICATE_MODE, uid, gid)
    except OSError as exc:
        module.fail_json(msg="the certificate was issued (id %s) but installing it failed: %s; run the task again" % (issued.certificate_id, exc),
                         api_calls=calls, changed=True)
    return dict(api_calls=calls, certificate_id=str(answer.get("id") or issued.certificate_id), expires_on=issued.expires_on,
                hostnames=list(issued.hostnames), key_type=_origin_cert.key_type_of(key), key_fingerprint=_origin_cert.key_fingerprint(key),
                diff=describe(issued, key))


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not _origin_cert.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=_origin_cert.CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    hostnames = check_input(module)
    uid, gid = user_id(module, params["owner"], "owner"), user_id(module, params["group"], "group")
    key_path, certificate_path = params["private_key_path"], params["certificate_path"]

    try:
        key_data = _origin_cert.read_file(key_path)
        certificate_data = _origin_cert.read_file(certificate_path)
        key = None
        if key_data is not None and not params["rotate_key"]:
            key = _origin_cert.load_private_key(key_data, key_path)
    except _origin_cert.OriginCertError as exc:
        module.fail_json(msg=str(exc), api_calls=0, changed=False)
    installed = _origin_cert.read_certificate(certificate_data) if certificate_data is not None else None
    now = datetime.now(timezone.utc)
    plan = _origin_cert.plan_certificate(key, key_data is not None, installed, certificate_data is not None, hostnames, params["key_type"],
                                         params["renew_before_days"], params["rotate_key"], now)
    modes = {key_path: _origin_cert.KEY_MODE, certificate_path: _origin_cert.CERTIFICATE_MODE}
    rewritten = {key_path: plan.new_key, certificate_path: plan.renew}
    attributes = [{"path": path, "fixed": wrong} for path, mode in modes.items() if not rewritten[path]
                  for wrong in [_origin_cert.attributes_to_fix(path, mode, uid, gid)] if wrong]

    result = dict(changed=plan.renew or bool(attributes), renewed_because=plan.reasons, key_replaced=plan.new_key, attributes_fixed=attributes, api_calls=0)
    before = describe(installed, key)
    if not plan.renew and installed is not None and key is not None:
        result.update(certificate_id=installed.certificate_id, expires_on=installed.expires_on, hostnames=list(installed.hostnames),
                      key_type=_origin_cert.key_type_of(key), key_fingerprint=_origin_cert.key_fingerprint(key))
        after = dict(before)
    elif module.check_mode:
        result.update(certificate_id=None, expires_on=_origin_cert.expected_expiry(now, params["validity_days"]), hostnames=sorted(hostnames),
                      key_type=params["key_type"], key_fingerprint=None if plan.new_key or key is None else _origin_cert.key_fingerprint(key))
        after = {"hostnames": sorted(hostnames), "expires_on": result["expires_on"], "certificate_id": "(new)",
                 "key": "%s (new key)" % params["key_type"] if plan.new_key else before.get("key")}
    else:
        installed_now = install(module, plan, key, hostnames, uid, gid)
        after = installed_now.pop("diff")
        result.update(installed_now)

    for item in attributes:
        if not module.check_mode:
            _origin_cert.fix_attributes(item["path"], modes[item["path"]], uid, gid)
        name = "key_file" if item["path"] == key_path else "certificate_file"
        before[name] = "wrong " + ", ".join(item["fixed"])
        after[name] = "mode 0%o%s" % (modes[item["path"]], "" if uid == gid == -1 else ", owner and group as set")
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
