# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check rule expressions of Cloudflare's Rules language before they are sent (pure: no I/O).

Only the part of the language this collection writes is accepted, so a typo fails on the
controller with the rule's name and a caret under the mistake, not as an API error after other
changes were made:

- fields: ``http.host``, ``http.request.uri``, ``http.request.uri.path``, ``http.request.uri.query``,
  ``http.request.full_uri``, ``http.request.method``, ``http.cookie``, ``http.user_agent``,
  ``http.referer`` (text), ``ip.src`` (an IP address) and ``ssl`` (a boolean);
- comparisons ``eq``/``==``, ``ne``/``!=``, ``contains``, ``matches``/``~`` and ``in {...}`` on text;
  ``eq``, ``ne`` and ``in {...}`` on ``ip.src``, whose values are written unquoted (``192.0.2.1``,
  ``198.51.100.0/24``); ``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge`` on numbers (``len()``);
- functions ``starts_with()``, ``ends_with()``, ``lower()``, ``upper()``, ``len()``, and ``concat()``
  in a dynamic redirect's target;
- ``not``/``!``, ``and``/``&&``, ``xor``/``^^``, ``or``/``||`` (binding in that order) and parentheses.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 4096  # Cloudflare's limit on a rule expression

TEXT, IP, BOOL, NUMBER = "text value", "IP address", "boolean", "number"
FIELDS = {
    "http.host": TEXT, "http.request.uri": TEXT, "http.request.uri.path": TEXT, "http.request.uri.query": TEXT,
    "http.request.full_uri": TEXT, "http.request.method": TEXT, "http.cookie": TEXT, "http.user_agent": TEXT,
    "http.referer": TEXT, "ip.src": IP, "ssl": BOOL,
}
COMPARISONS = {"eq": "eq", "==": "eq", "ne": "ne", "!=": "ne", "contains": "contains", "matches": "matches", "~": "matches",
               "lt": "lt", "<": "lt", "le": "le", "<=": "le", "gt": "gt", ">": "gt", "ge": "ge", ">=": "ge"}
OPERATORS_BY_TYPE = {TEXT: ("eq", "ne", "contains", "matches"), IP: ("eq", "ne"), NUMBER: ("eq", "ne", "lt", "le", "gt", "ge")}
LOGICAL = {"and": "and", "&&": "and", "or": "or", "||": "or", "xor": "xor", "^^": "xor", "not": "not", "!": "not"}
# name: (argument types, or None for one or more text arguments; result type; where it is allowed)
FUNCTIONS: dict[str, tuple[tuple[str, ...] | None, str, str]] = {
    "starts_with": ((TEXT, TEXT), BOOL, "any"),
    "ends_with": ((TEXT, TEXT), BOOL, "any"),
    "lower": ((TEXT,), TEXT, "any"),
    "upper": ((TEXT,), TEXT, "any"),
    "len": ((TEXT,), NUMBER, "any"),
    "concat": (None, TEXT, "target"),
}

_TOKEN = re.compile(
    r"\s*(?:"
    r'(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<ipv6>(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]*(?:/\d{1,3})?)"
    r"|(?P<ipv4>\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?)"
    r"|(?P<number>\d+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<symbol>==|!=|<=|>=|&&|\|\||\^\^|[(){},!~<>])"
    r"|(?P<open_string>\")"
    r"|(?P<other>\S)"
    r")"
)


class ExpressionError(ValueError):
    """An expression outside the accepted language; the message points at the mistake."""


@dataclass
class _Token:
    kind: str
    text: str
    start: int
    value: Any = None


def _pointer(expression: str, start: int, length: int, reason: str) -> str:
    line_start = expression.rfind("\n", 0, start) + 1
    line_end = expression.find("\n", start)
    line = expression[line_start:line_end if line_end >= 0 else len(expression)]
    column = start - line_start + 1
    line_number = expression.count("\n", 0, start) + 1
    return "%s at line %d, column %d:\n    %s\n    %s%s" % (reason, line_number, column, line, " " * (column - 1), "^" * max(1, length))


def _tokens(expression: str) -> list[_Token]:
    tokens = []
    position = 0
    while True:
        found = _TOKEN.match(expression, position)
        if found is None or not found.group(0).strip():
            break
        kind = found.lastgroup or "other"
        text = found.group(kind)
        start = found.start(kind)
        if kind == "open_string":
            raise ExpressionError(_pointer(expression, start, 1, "unterminated string: this quote is never closed"))
        if kind == "other":
            raise ExpressionError(_pointer(expression, start, 1, "unexpected character %r" % text))
        value: Any = None
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", text[1:-1])
        elif kind == "number":
            value = int(text)
        elif kind in ("ipv4", "ipv6"):
            try:
                value = ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text)
            except ValueError:
                raise ExpressionError(_pointer(expression, start, len(text), "%r is not an IP address or network" % text)) from None
            kind = "ip"
        tokens.append(_Token(kind, text, start, value))
        position = found.end()
    tokens.append(_Token("end", "", len(expression)))
    _check_balance(expression, tokens)
    return tokens


def _check_balance(expression: str, tokens: list[_Token]) -> None:
    """Unbalanced brackets, reported where the user can see them before the parser gets lost."""
    pairs = {")": "(", "}": "{"}
    open_stack: list[_Token] = []
    for token in tokens:
        if token.kind != "symbol":
            continue
        if token.text in ("(", "{"):
            open_stack.append(token)
        elif token.text in pairs:
            if not open_stack or open_stack[-1].text != pairs[token.text]:
                raise ExpressionError(_pointer(expression, token.start, 1, "unbalanced %r: nothing opened it" % token.text))
            open_stack.pop()
    if open_stack:
        opening = open_stack[-1]
        raise ExpressionError(_pointer(expression, opening.start, 1, "unbalanced %r: it is never closed" % opening.text))


_TIGHTER = {"or": "xor", "xor": "and", "and": "not"}  # each logical operator and the one that binds tighter


class _Parser:
    """Recursive descent that checks syntax and types; it builds nothing."""

    def __init__(self, expression: str, where: str):
        self.expression = expression
        self.where = where  # "filter" or "target"
        self.tokens = _tokens(expression)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def fail(self, token: _Token, reason: str) -> ExpressionError:
        if token.kind == "end":
            return ExpressionError(_pointer(self.expression, len(self.expression), 1, reason + " (the expression ends here)"))
        return ExpressionError(_pointer(self.expression, token.start, len(token.text), reason))

    def expect(self, text: str) -> _Token:
        if self.token.text != text:
            raise self.fail(self.token, "expected %r" % text)
        return self.take()

    def finish(self) -> None:
        if self.token.kind != "end":
            if self.where == "target":
                raise self.fail(self.token, "unexpected %r: a redirect target is one value, such as a concat(...) of text" % self.token.text)
            raise self.fail(self.token, "unexpected %r: join conditions with and, or, not" % self.token.text)

    def logical(self) -> None:
        self._binary("or")

    def _binary(self, word: str) -> None:
        tighter = _TIGHTER[word]
        operand = self._not if tighter == "not" else (lambda: self._binary(tighter))
        operand()
        while LOGICAL.get(self.token.text) == word:
            self.take()
            operand()

    def _not(self) -> None:
        if LOGICAL.get(self.token.text) == "not":
            self.take()
            self._not()
            return
        self._condition()

    def _condition(self) -> None:
        if self.token.text == "(":
            self.take()
            self.logical()
            self.expect(")")
            return
        start = self.token
        kind = self.value()
        operator = self.token
        if operator.text == "in":
            self.take()
            if kind not in (TEXT, IP, NUMBER):
                raise self.fail(operator, "in needs a text value, an IP address or a number on its left, not %s" % _a(kind))
            self._set(kind)
            return
        if operator.text in COMPARISONS:
            self.take()
            name = COMPARISONS[operator.text]
            if name not in OPERATORS_BY_TYPE.get(kind, ()):
                raise self.fail(operator, "%s cannot compare %s (it compares %s)" % (operator.text, _a(kind), self._types_of(name)))
            right = self.token
            right_kind = self.value()
            if right_kind != kind:
                raise self.fail(right, "expected %s to compare with, got %s%s" % (_a(kind), _a(right_kind), _quote_hint(kind, right_kind)))
            if name == "matches":
                self._check_regex(right)
            if right.kind == "ip" and "/" in right.text:
                raise self.fail(right, "a network is only accepted inside a set, as in ip.src in {%s}" % right.text)
            return
        if kind != BOOL and operator.kind == "name" and operator.text not in LOGICAL:
            raise self.fail(operator, "unknown operator %r; the operators accepted are %s and in" % (operator.text, ", ".join(
                name for name in COMPARISONS if name.isalpha())))
        if kind != BOOL:
            raise self.fail(start, "%s is not a condition: compare it with eq, ne, contains, matches or in" % _a(kind).capitalize())

    @staticmethod
    def _types_of(operator: str) -> str:
        return " or ".join(kind + "s" for kind, names in OPERATORS_BY_TYPE.items() if operator in names)

    def _check_regex(self, token: _Token) -> None:
        if token.kind != "string":
            raise self.fail(token, "matches takes a regular expression in quotes")
        try:
            re.compile(token.value)
        except re.error as exc:
            raise self.fail(token, "invalid regular expression: %s" % exc) from None

    def _set(self, kind: str) -> None:
        opening = self.expect("{")
        wanted = {TEXT: "string", IP: "ip", NUMBER: "number"}[kind]
        count = 0
        while self.token.text != "}":
            token = self.take()
            if token.kind != wanted:
                raise self.fail(token, "expected %s in the set%s" % (
                    {"string": "a quoted string", "ip": "an IP address or network (unquoted)", "number": "a number"}[wanted], _quote_hint(kind, token.kind)))
            count += 1
        if not count:
            raise self.fail(opening, "a set needs at least one value")
        self.take()

    def value(self) -> str:
        """One value (a literal, a field or a function call); its type."""
        token = self.take()
        if token.kind == "string":
            return TEXT
        if token.kind == "number":
            return NUMBER
        if token.kind == "ip":
            return IP
        if token.kind != "name":
            raise self.fail(token, "expected a field, a function or a value")
        if self.token.text == "(":
            return self._call(token)
        if token.text in FIELDS:
            return FIELDS[token.text]
        if token.text in LOGICAL or token.text in COMPARISONS or token.text == "in":
            raise self.fail(token, "expected a field, a function or a value before %r" % token.text)
        raise self.fail(token, "unknown field %r; the fields accepted are %s" % (token.text, ", ".join(FIELDS)))

    def _call(self, name: _Token) -> str:
        signature = FUNCTIONS.get(name.text)
        if signature is None:
            raise self.fail(name, "unknown function %r; the functions accepted are %s" % (name.text, ", ".join(f + "()" for f in FUNCTIONS)))
        arguments, result, allowed = signature
        if allowed == "target" and self.where != "target":
            raise self.fail(name, "%s() is only accepted in a redirect target expression" % name.text)
        self.expect("(")
        kinds: list[tuple[str, _Token]] = []
        while self.token.text != ")":
            if kinds:
                self.expect(",")
            token = self.token
            kinds.append((self.value(), token))
        closing = self.take()
        wanted = arguments if arguments is not None else (TEXT,) * max(1, len(kinds))
        if not kinds and arguments is None:
            raise self.fail(closing, "%s() takes at least one argument" % name.text)
        if len(kinds) != len(wanted):
            raise self.fail(closing, "%s() takes %d argument%s, got %d" % (name.text, len(wanted), "" if len(wanted) == 1 else "s", len(kinds)))
        for (kind, token), expected in zip(kinds, wanted, strict=True):
            if kind != expected:
                raise self.fail(token, "%s() expects %s here, got %s" % (name.text, _a(expected), _a(kind)))
        return result


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiouAEIOU" else "a ") + kind


def _quote_hint(wanted: str, got: str) -> str:
    if wanted == IP and got in (TEXT, "string"):
        return " (write IP addresses without quotes: ip.src in {192.0.2.0/24})"
    if wanted == TEXT and got in (NUMBER, IP, "number", "ip"):
        return " (put text in double quotes)"
    return ""


def check_filter(expression: str) -> None:
    """Raise ExpressionError unless ``expression`` is a rule expression (a condition) of the accepted language."""
    parser = _start(expression, "filter")
    parser.logical()
    parser.finish()


def check_target(expression: str) -> None:
    """Raise ExpressionError unless ``expression`` gives text, as a dynamic redirect target (``concat(...)``) must."""
    parser = _start(expression, "target")
    first = parser.token
    kind = parser.value()
    parser.finish()
    if kind != TEXT:
        raise parser.fail(first, "a redirect target must give a text value (a URL), not %s" % _a(kind))


def _start(expression: str, where: str) -> _Parser:
    if not isinstance(expression, str) or not expression.strip():
        raise ExpressionError("the expression is empty")
    if len(expression) > MAX_LENGTH:
        raise ExpressionError("the expression is %d characters long; Cloudflare accepts at most %d" % (len(expression), MAX_LENGTH))
    return _Parser(expression, where)


def quote(text: str) -> str:
    """``text`` as a string literal of the Rules language."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')
