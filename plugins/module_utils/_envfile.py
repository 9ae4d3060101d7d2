# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Environment files: validate, render and parse back, never showing a value (``_files.write_atomic`` writes them).

Two formats:

``dotenv``
    One file that python-dotenv, Node's ``dotenv`` (and Node's built-in ``util.parseEnv``) and
    docker compose (``env_file:`` and ``.env``) all read back to the same values. Their quoting
    rules differ, so only the common ground is written:

    * a value without ``'``, without ``\\\\`` and not ending in ``\\`` is single-quoted:
      ``KEY='value'``. All three read single-quoted text literally, so ``$``, ``#``, ``"`` and real
      newlines (multi-line values such as PEM keys) are safe;
    * otherwise a value without ``"``, ``\\`` and ``$`` is double-quoted with newlines written as
      ``\\n``, the one escape all three decode alike;
    * a carriage return is refused (Node's built-in parser keeps ``\\r`` as two characters), and so
      is ``${`` (python-dotenv expands ``${NAME}`` in every value, single-quoted too, with no escape);
    * any other value (``'`` together with ``"``, ``\\`` or ``$``; a double or a trailing
      backslash) has no spelling all three read the same way, and is refused with its key name
      (use ``systemd``, which can hold any value, or change the value).

``systemd``
    ``EnvironmentFile=`` of systemd.exec(5): every value double-quoted, ``\\``, ``"``, ``$`` and
    backquote escaped with a backslash, newlines kept literally inside the quotes (current systemd
    reads a double-quoted value over several lines, with the escapes of POSIX shell double quotes,
    so the file can also be sourced by ``sh``).

Error messages name keys, never values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ansible_collections.launchready.core.plugins.module_utils._redact import MASK, fingerprint

FORMATS = ("dotenv", "systemd")
HEADER = "# Managed by Ansible (launchready.core.env_file). Changes made here will be overwritten.\n"
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class EnvFileError(Exception):
    """A problem with the input; the message names keys, never values."""


class EnvFileParseError(Exception):
    """An existing file that this module cannot read back."""


@dataclass(frozen=True)
class ForbiddenRule:
    pattern: str
    keys: tuple[str, ...] = ("*",)
    ignore_keys: tuple[str, ...] = ()

    def applies_to(self, key: str) -> bool:
        return any(fnmatchcase(key, glob) for glob in self.keys) and not any(fnmatchcase(key, glob) for glob in self.ignore_keys)


@dataclass
class Plan:
    """What writing the values over the current file changes, in key names only."""

    content: str
    file_changed: bool
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    before_keys: list[str] = field(default_factory=list)
    before_unreadable: bool = False


def normalize_values(values: dict) -> dict[str, str]:
    """Strings as they are, numbers as written, booleans as ``true``/``false``; anything else is refused."""
    result = {}
    for key, value in values.items():
        if isinstance(value, bool):
            result[key] = "true" if value else "false"
        elif isinstance(value, (int, float)):
            result[key] = str(value)
        elif isinstance(value, str):
            result[key] = value
        elif value is None:
            result[key] = ""
        else:
            raise EnvFileError("%s: a value must be a string, number or boolean, not a %s" % (key, type(value).__name__))
    return result


def validate(values: dict[str, str], required_keys: list[str], forbidden: list[ForbiddenRule]) -> None:
    """Refuse bad key names, missing or empty required keys, NUL bytes and forbidden patterns."""
    bad_names = sorted(key for key in values if not KEY_RE.match(key))
    if bad_names:
        raise EnvFileError("invalid key names (letters, digits and _ only, not starting with a digit): %s" % ", ".join(bad_names))
    missing = [key for key in required_keys if not values.get(key, "").strip()]
    if missing:
        raise EnvFileError("required keys missing or empty: %s" % ", ".join(missing))
    with_nul = sorted(key for key, value in values.items() if "\0" in value)
    if with_nul:
        raise EnvFileError("values cannot contain a NUL byte: %s" % ", ".join(with_nul))
    violations = []
    for rule in forbidden:
        try:
            regex = re.compile(rule.pattern)
        except re.error as exc:
            raise EnvFileError("forbidden pattern %r is not a valid regular expression: %s" % (rule.pattern, exc)) from None
        for key in sorted(values):
            if rule.applies_to(key) and regex.search(values[key]):
                violations.append("%s matches forbidden pattern %r" % (key, rule.pattern))
    if violations:
        raise EnvFileError("; ".join(violations))


def _dotenv_value(key: str, value: str) -> str:
    if "\r" in value:
        raise EnvFileError(
            "%s: the value holds a carriage return, which Node's built-in parser and python-dotenv read differently; "
            "remove it (often a secret pasted with Windows line endings) or use format=systemd" % key
        )
    if "${" in value:
        raise EnvFileError("%s: python-dotenv expands ${...} in every value, quoted or not, and has no escape for it; use format=systemd" % key)
    if "'" not in value and "\\\\" not in value and not value.endswith("\\"):
        return "'%s'" % value
    if not any(char in value for char in '"\\$'):
        return '"%s"' % value.replace("\n", "\\n")
    raise EnvFileError(
        "%s: no dotenv quoting makes python-dotenv, Node's dotenv and docker compose all read this value back unchanged "
        "(it mixes a single quote with a double quote, backslash or $, or holds a double or trailing backslash); "
        "use format=systemd or change the value" % key
    )


def _systemd_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return '"%s"' % escaped


def render(values: dict[str, str], fmt: str) -> str:
    """The file text: a header line, then one assignment per key, sorted by name."""
    lines = [HEADER]
    for key in sorted(values):
        value = _systemd_value(values[key]) if fmt == "systemd" else _dotenv_value(key, values[key])
        lines.append("%s=%s\n" % (key, value))
    return "".join(lines)


_DOTENV_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_SHELL_ESCAPABLE = '"\\$`'


def _read_quoted(text: str, pos: int, quote: str, fmt: str) -> tuple[str, int]:
    """Read a quoted value starting after the opening quote; return it and the position after the closing quote."""
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == quote:
            return "".join(out), pos + 1
        if char == "\\" and quote == '"' and pos + 1 < len(text):
            nxt = text[pos + 1]
            if fmt == "systemd":
                if nxt == "\n":
                    pos += 2
                    continue
                if nxt in _SHELL_ESCAPABLE:
                    out.append(nxt)
                    pos += 2
                    continue
            elif nxt in _DOTENV_ESCAPES:
                out.append(_DOTENV_ESCAPES[nxt])
                pos += 2
                continue
        out.append(char)
        pos += 1
    raise EnvFileParseError("unterminated quoted value")


_ASSIGNMENT_RE = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*")


def parse(text: str, fmt: str) -> dict[str, str]:
    """Read an environment file back (this module's output and the usual hand-written forms).

    Lines that are not assignments (blank lines, ``#`` and ``;`` comments) are skipped.
    """
    values: dict[str, str] = {}
    pos = 0
    length = len(text)
    while pos < length:
        end = text.find("\n", pos)
        end = length if end == -1 else end
        match = _ASSIGNMENT_RE.match(text, pos, end)
        if not match:
            pos = end + 1
            continue
        vpos = match.end()
        if vpos < end and text[vpos] in "'\"":
            value, after = _read_quoted(text, vpos + 1, text[vpos], fmt)
            newline = text.find("\n", after)
            pos = length if newline == -1 else newline + 1
        else:
            raw = text[vpos:end]
            # dotenv: an unquoted value ends at " #"; systemd: backslash escapes the next character.
            raw = re.split(r"\s#", raw, maxsplit=1)[0] if fmt == "dotenv" else re.sub(r"\\(.)", r"\1", raw)
            value = raw.strip()
            pos = end + 1
        values[match.group(1)] = value
    return values


def plan(values: dict[str, str], fmt: str, current_text: str | None) -> Plan:
    """Render ``values`` and compare them with the file's current text (``None`` when there is no file)."""
    content = render(values, fmt)
    before: dict[str, str] = {}
    unreadable = False
    if current_text is not None:
        try:
            before = parse(current_text, fmt)
        except EnvFileParseError:
            unreadable = True
    return Plan(
        content=content,
        file_changed=current_text != content,
        added=sorted(set(values) - set(before)),
        removed=sorted(set(before) - set(values)),
        changed=sorted(key for key in set(values) & set(before) if values[key] != before[key]),
        before_keys=sorted(before),
        before_unreadable=unreadable,
    )


def masked_listing(keys: list[str], marked: list[str] | None = None) -> str:
    """``KEY=********`` lines for a diff; keys in ``marked`` get a ``(changed)`` note."""
    marked_set = set(marked or ())
    return "".join("%s=%s%s\n" % (key, MASK, " (changed)" if key in marked_set else "") for key in sorted(keys))


def fingerprints(values: dict[str, str]) -> dict[str, str]:
    return {key: fingerprint(value) for key, value in sorted(values.items())}


def parse_mode(mode: str) -> int:
    if not re.fullmatch(r"0?[0-7]{3}", mode):
        raise EnvFileError("mode must be an octal string such as 0600, not %r" % mode)
    return int(mode, 8)
