# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_envfile: quoting that python-dotenv, Node and sh read back unchanged, validation before writing."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess

import pytest

from ansible_collections.launchready.core.plugins.module_utils import _envfile
from ansible_collections.launchready.core.plugins.module_utils._envfile import EnvFileError, ForbiddenRule

# Values that break naive quoting: quotes, $, #, backslashes, newlines, spaces, unicode, empty.
AWKWARD = {
    "PLAIN": "plain-value",
    "DOLLAR": "pa$$word $HOME $",
    "HASH": "#not-a-comment # still value",
    "DOUBLE": 'say "hi"',
    "SINGLE": "it's",
    "SINGLE_NEWLINE": "it's\nsecond line",
    "BACKTICK": "`whoami`",
    "BACKSLASH": "C:\\path\\n",
    "PEM": "-----BEGIN PRIVATE KEY-----\nMIIEvQ+/=\n-----END PRIVATE KEY-----",
    "SPACES": "  padded  ",
    "UNICODE": "naïve café ✓\ttab",
    "EQUALS": "a=b=c",
    "EMPTY": "",
}
# What the dotenv format refuses (no quoting reads back the same everywhere), and systemd takes.
NOT_PORTABLE = {
    "MIXED": 'it\'s "quoted"',
    "QUOTE_DOLLAR": "it's $5",
    "DOUBLE_BACKSLASH": "a\\\\b",
    "TRAILING_BACKSLASH": "ends\\",
    "CARRIAGE_RETURN": "line\r\nnext",
    "BRACED_VARIABLE": "pa${HOME}ss",
}


def test_dotenv_rendering_is_sorted_and_quoted():
    text = _envfile.render({"B": "two", "A": "it's", "C": "x\ny"}, "dotenv")
    assert text == _envfile.HEADER + "A=\"it's\"\nB='two'\nC='x\ny'\n"


def test_systemd_rendering_escapes_shell_specials():
    text = _envfile.render({"A": 'a"b\\c$d`e', "B": "x\ny"}, "systemd")
    assert text == _envfile.HEADER + 'A="a\\"b\\\\c\\$d\\`e"\nB="x\ny"\n'


@pytest.mark.parametrize("fmt", _envfile.FORMATS)
def test_own_parser_round_trips(fmt):
    values = dict(AWKWARD)
    if fmt == "systemd":
        values.update(NOT_PORTABLE)
    assert _envfile.parse(_envfile.render(values, fmt), fmt) == values


@pytest.mark.parametrize("key", sorted(NOT_PORTABLE))
def test_dotenv_refuses_values_without_a_portable_spelling_naming_only_the_key(key):
    with pytest.raises(EnvFileError) as error:
        _envfile.render({key: NOT_PORTABLE[key]}, "dotenv")
    assert str(error.value).startswith(key + ":")
    assert NOT_PORTABLE[key] not in str(error.value)


def test_python_dotenv_reads_the_dotenv_format_back(tmp_path):
    dotenv = pytest.importorskip("dotenv", reason="python-dotenv is a test-only dependency")
    path = tmp_path / ".env"
    path.write_text(_envfile.render(AWKWARD, "dotenv"), encoding="utf-8")
    assert dict(dotenv.dotenv_values(path)) == AWKWARD
    # and interpolation does not touch our values even when the variables exist
    assert dict(dotenv.dotenv_values(path, interpolate=True)) == AWKWARD


NODE_READERS = {
    "util.parseEnv": "const r = require('util').parseEnv(require('fs').readFileSync(process.argv[1], 'utf8'));",
    "dotenv": "const r = require('dotenv').parse(require('fs').readFileSync(process.argv[1]));",
}


@pytest.mark.parametrize("reader", sorted(NODE_READERS))
def test_node_reads_the_dotenv_format_back(tmp_path, reader):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    probe = subprocess.run([node, "-e", NODE_READERS[reader].replace("process.argv[1]", "'/dev/null'")], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("%s is not available to node (set NODE_PATH to a node_modules holding dotenv)" % reader)
    path = tmp_path / ".env"
    path.write_text(_envfile.render(AWKWARD, "dotenv"), encoding="utf-8")
    script = NODE_READERS[reader] + " process.stdout.write(JSON.stringify(r));"
    completed = subprocess.run([node, "-e", script, str(path)], capture_output=True, check=True, text=True)
    assert json.loads(completed.stdout) == AWKWARD


def test_sh_reads_the_systemd_format_back(tmp_path):
    """systemd's EnvironmentFile double quotes follow POSIX shell double quotes, so sh is a faithful reader."""
    values = {**AWKWARD, **NOT_PORTABLE}
    path = tmp_path / "env"
    path.write_text(_envfile.render(values, "systemd"), encoding="utf-8")
    dump = "import json, os; print(json.dumps({k: os.environ[k] for k in %r}))" % sorted(values)
    completed = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; exec "$2" -c "$3"', "sh", str(path), shutil.which("python3") or "python3", dump],
        capture_output=True,
        check=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert json.loads(completed.stdout) == values


def test_parse_reads_hand_written_files():
    text = "# comment\n; other comment\nexport A=plain # trailing\nB = \"x\\ny\"\nnot an assignment\nC='lit $x'\n"
    assert _envfile.parse(text, "dotenv") == {"A": "plain", "B": "x\ny", "C": "lit $x"}
    with pytest.raises(_envfile.EnvFileParseError):
        _envfile.parse("A='unterminated\n", "dotenv")


def test_normalize_values():
    assert _envfile.normalize_values({"A": 1, "B": 1.5, "C": True, "D": False, "E": None, "F": "x"}) == {
        "A": "1",
        "B": "1.5",
        "C": "true",
        "D": "false",
        "E": "",
        "F": "x",
    }
    with pytest.raises(EnvFileError, match=r"^G: a value must be"):
        _envfile.normalize_values({"G": ["list"]})


def test_validate_required_and_names():
    with pytest.raises(EnvFileError, match="required keys missing or empty: B, C"):
        _envfile.validate({"A": "x", "C": "  "}, ["A", "B", "C"], [])
    with pytest.raises(EnvFileError, match=r"invalid key names .*: 1BAD, WITH-DASH"):
        _envfile.validate({"1BAD": "x", "WITH-DASH": "y", "OK_1": "z"}, [], [])
    with pytest.raises(EnvFileError, match="NUL byte: A"):
        _envfile.validate({"A": "x\0y"}, [], [])


def test_validate_forbidden_names_key_and_pattern_never_value():
    secret = "sk_test_" + secrets.token_hex(12)
    rules = [ForbiddenRule("sk_test_"), ForbiddenRule(r"localhost", keys=("*_URL",), ignore_keys=("REDIS_URL",))]
    values = {"STRIPE_KEY": secret, "REDIS_URL": "redis://localhost:6379", "API_URL": "http://localhost:3000", "NOTE": "localhost"}
    with pytest.raises(EnvFileError) as error:
        _envfile.validate(values, [], rules)
    message = str(error.value)
    assert message == "STRIPE_KEY matches forbidden pattern 'sk_test_'; API_URL matches forbidden pattern 'localhost'"
    assert secret not in message
    with pytest.raises(EnvFileError, match="not a valid regular expression"):
        _envfile.validate({"A": "x"}, [], [ForbiddenRule("(")])


def test_plan_reports_key_names_only():
    old = _envfile.render({"KEEP": "same", "CHANGE": "old", "DROP": "gone"}, "dotenv")
    result = _envfile.plan({"KEEP": "same", "CHANGE": "new", "ADD": "fresh"}, "dotenv", old)
    assert (result.added, result.removed, result.changed, result.before_keys) == (["ADD"], ["DROP"], ["CHANGE"], ["CHANGE", "DROP", "KEEP"])
    assert result.file_changed is True
    same = _envfile.plan({"A": "1"}, "dotenv", _envfile.render({"A": "1"}, "dotenv"))
    assert same.file_changed is False and not (same.added or same.removed or same.changed)
    # same values, other spelling: rewritten, but no key changed
    respelled = _envfile.plan({"A": "1"}, "dotenv", "A=1\n")
    assert respelled.file_changed is True and respelled.changed == []
    unreadable = _envfile.plan({"A": "1"}, "dotenv", "A='open\n")
    assert unreadable.before_unreadable is True and unreadable.added == ["A"]


def test_masked_listing_and_fingerprints():
    assert _envfile.masked_listing(["B", "A"], ["B"]) == "A=********\nB=******** (changed)\n"
    prints = _envfile.fingerprints({"A": "value"})
    assert prints == {"A": "sha256:cd42404d52ad"}


def test_parse_mode():
    assert _envfile.parse_mode("0600") == 0o600
    assert _envfile.parse_mode("640") == 0o640
    with pytest.raises(EnvFileError):
        _envfile.parse_mode("rw-------")
