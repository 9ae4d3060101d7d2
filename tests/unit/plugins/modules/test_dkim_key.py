# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dkim_key: keys generated only when missing or rotated, files 0600 written atomically, vault mode, check mode and diff."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.launchready.core.plugins.module_utils import _dkim
from ansible_collections.launchready.core.plugins.modules import dkim_key

YEAR = 2026


@pytest.fixture(autouse=True)
def fixed_year(monkeypatch):
    monkeypatch.setattr(dkim_key, "current_year", lambda: YEAR)


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        dkim_key.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert exited.value.code == (1 if result.get("failed") else 0)
    result["_raw"] = out
    return result


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_run_generates_then_nothing_changes(tmp_path, capsys):
    first = run(capsys, domain="Example.com", private_key_dir=str(tmp_path))
    assert first["changed"] is True
    assert first["selector"] == "lr2026a"
    key_dir = tmp_path / "example.com"
    path = key_dir / "lr2026a.pem"
    assert mode(key_dir) == 0o700
    assert mode(path) == 0o600
    assert sorted(os.listdir(key_dir)) == ["lr2026a.pem"]  # no temporary file left behind
    [key] = first["keys"]
    assert key["path"] == str(path) and key["generated"] is True and key["bits"] == 2048 and key["key_type"] == "rsa"
    assert key["dns_name"] == "lr2026a._domainkey.example.com"
    assert key["dns_value"].startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    assert "".join(key["dns_strings"]) == key["dns_value"] and max(len(s) for s in key["dns_strings"]) <= 255
    assert first["dkim_records"] == [{"selector": "lr2026a", "value": key["dns_value"]}]
    private = _dkim.load_private_pem(path.read_bytes())
    assert _dkim.txt_value(private) == key["dns_value"]
    assert "PRIVATE KEY" not in first["_raw"]
    content = path.read_bytes()

    second = run(capsys, domain="example.com", private_key_dir=str(tmp_path))
    assert second["changed"] is False
    assert second["keys"][0]["generated"] is False
    assert second["dkim_records"] == first["dkim_records"]
    assert path.read_bytes() == content


def test_rsa_and_ed25519(tmp_path, capsys):
    result = run(capsys, domain="example.com", private_key_dir=str(tmp_path), key_types=["rsa", "ed25519"], rsa_bits=3072)
    assert [(k["selector"], k["key_type"], k["bits"]) for k in result["keys"]] == [("lr2026a", "rsa", 3072), ("lr2026a-ed25519", "ed25519", 256)]
    ed = result["keys"][1]
    assert ed["dns_value"].startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(ed["dns_value"].split("p=")[1])) == 32
    assert ed["dns_strings"] == [ed["dns_value"]]
    assert mode(tmp_path / "example.com" / "lr2026a-ed25519.pem") == 0o600
    # adding a type later keeps the generation and generates only the missing key
    again = run(capsys, domain="example.com", private_key_dir=str(tmp_path), key_types=["ed25519"])
    assert again["changed"] is False and again["selector"] == "lr2026a"


def test_check_mode_writes_nothing(tmp_path, capsys):
    result = run(capsys, domain="example.com", private_key_dir=str(tmp_path), _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] is True
    assert not (tmp_path / "example.com").exists()
    assert result["keys"][0]["dns_value"] is None and result["keys"][0]["generated"] is True
    assert result["dkim_records"] == []
    assert result["diff"] == {"before": "", "after": "lr2026a (rsa 2048)\n", "before_header": str(tmp_path / "example.com"),
                              "after_header": str(tmp_path / "example.com")}


def test_rotation_keeps_old_keys_and_reports_them(tmp_path, capsys):
    run(capsys, domain="example.com", private_key_dir=str(tmp_path))
    rotated = run(capsys, domain="example.com", private_key_dir=str(tmp_path), rotate=True, _ansible_diff=True)
    assert rotated["changed"] is True
    assert rotated["selector"] == "lr2026b"
    assert rotated["previous_selectors"] == ["lr2026a"]
    assert sorted(os.listdir(tmp_path / "example.com")) == ["lr2026a.pem", "lr2026b.pem"]
    assert rotated["diff"]["before"] == "lr2026a (rsa 2048)\n"
    assert rotated["diff"]["after"] == "lr2026a (rsa 2048)\nlr2026b (rsa 2048)\n"
    steady = run(capsys, domain="example.com", private_key_dir=str(tmp_path))
    assert (steady["changed"], steady["selector"]) == (False, "lr2026b")


def test_a_new_year_keeps_the_key_until_rotation(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dkim_key, "current_year", lambda: 2025)
    run(capsys, domain="example.com", private_key_dir=str(tmp_path))
    monkeypatch.setattr(dkim_key, "current_year", lambda: 2026)
    assert run(capsys, domain="example.com", private_key_dir=str(tmp_path))["selector"] == "lr2025a"
    assert run(capsys, domain="example.com", private_key_dir=str(tmp_path), rotate=True)["selector"] == "lr2026a"


def test_loose_permissions_are_fixed(tmp_path, capsys):
    run(capsys, domain="example.com", private_key_dir=str(tmp_path))
    path = tmp_path / "example.com" / "lr2026a.pem"
    os.chmod(path, 0o644)
    checked = run(capsys, domain="example.com", private_key_dir=str(tmp_path), _ansible_check_mode=True)
    assert checked["changed"] is True and mode(path) == 0o644
    fixed = run(capsys, domain="example.com", private_key_dir=str(tmp_path))
    assert fixed["changed"] is True and mode(path) == 0o600
    assert run(capsys, domain="example.com", private_key_dir=str(tmp_path))["changed"] is False


def test_fixed_selector(tmp_path, capsys):
    result = run(capsys, domain="example.com", private_key_dir=str(tmp_path), selector="mail2026")
    assert result["selector"] == "mail2026" and (tmp_path / "example.com" / "mail2026.pem").exists()
    refused = run(capsys, domain="example.com", private_key_dir=str(tmp_path), selector="mail2026", rotate=True)
    assert refused["failed"] is True
    assert "give a new selector" in refused["msg"]


@pytest.mark.parametrize("args, message", [
    (dict(selector="bad_selector"), "is not a valid selector"),
    (dict(selector_prefix="LR-"), "selector_prefix 'LR-' must be lower-case letters and digits"),
    (dict(rsa_bits=1024), "value of rsa_bits must be one of: 2048, 3072, 4096, got: 1024"),
])
def test_bad_options(tmp_path, capsys, args, message):
    result = run(capsys, domain="example.com", private_key_dir=str(tmp_path), **args)
    assert result["failed"] is True and message in result["msg"]
    assert not (tmp_path / "example.com").exists() or not os.listdir(tmp_path / "example.com")


def test_a_broken_key_file_fails_without_replacing_it(tmp_path, capsys):
    key_dir = tmp_path / "example.com"
    key_dir.mkdir()
    (key_dir / "lr2026a.pem").write_text("not a key")
    result = run(capsys, domain="example.com", private_key_dir=str(tmp_path))
    assert result["failed"] is True
    assert result["msg"].startswith("%s is not a usable DKIM private key" % (key_dir / "lr2026a.pem"))
    assert (key_dir / "lr2026a.pem").read_text() == "not a key"


def test_key_of_the_wrong_type_for_its_selector(tmp_path, capsys):
    key_dir = tmp_path / "example.com"
    key_dir.mkdir()
    (key_dir / "lr2026a-ed25519.pem").write_bytes(_dkim.private_pem(_dkim.generate("rsa")))
    result = run(capsys, domain="example.com", private_key_dir=str(tmp_path), key_types=["rsa", "ed25519"])
    assert result["failed"] is True and "is rsa, not ed25519" in result["msg"]


def test_vault_mode(capsys):
    first = run(capsys, domain="example.com", private_keys=[], key_types=["rsa", "ed25519"])
    assert first["changed"] is True
    assert [k["selector"] for k in first["generated_private_keys"]] == ["lr2026a", "lr2026a-ed25519"]
    assert all(k["path"] is None for k in first["keys"])
    vault = first["generated_private_keys"]
    for item, key in zip(vault, first["keys"], strict=True):
        assert _dkim.txt_value(_dkim.load_private_pem(item["private_key"].encode())) == key["dns_value"]
    second = run(capsys, domain="example.com", private_keys=vault, key_types=["rsa", "ed25519"])
    assert second["changed"] is False
    assert second["generated_private_keys"] == []
    assert second["dkim_records"] == first["dkim_records"]
    assert "PRIVATE KEY" not in second["_raw"]  # the keys given are never echoed back
    rotated = run(capsys, domain="example.com", private_keys=vault, rotate=True)
    assert [k["selector"] for k in rotated["generated_private_keys"]] == ["lr2026b"]
    assert rotated["previous_selectors"] == ["lr2026a", "lr2026a-ed25519"]


def test_vault_mode_refuses_a_bad_key_without_showing_it(capsys):
    result = run(capsys, domain="example.com", private_keys=[{"selector": "lr2026a", "private_key": "-----BEGIN PRIVATE KEY-----\nsecretstuff\n"}])
    assert result["failed"] is True
    assert result["msg"].startswith("private_keys entry lr2026a is not a usable DKIM private key")
    assert "secretstuff" not in result["_raw"]


def test_needs_a_place_for_keys(capsys, tmp_path):
    result = run(capsys, domain="example.com")
    assert result["failed"] is True and "one of the following is required: private_key_dir, private_keys" in result["msg"]
    result = run(capsys, domain="example.com", private_keys=[], private_key_dir=str(tmp_path))
    assert result["failed"] is True and "mutually exclusive" in result["msg"]
