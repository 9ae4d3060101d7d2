# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small part of Cloudflare's Rules language: parse an expression once, evaluate it per request.

What it understands (developers.cloudflare.com, Ruleset Engine > Rules language):

- fields: ``http.host``, ``http.request.uri`` (path and query), ``http.request.uri.path``,
  ``http.request.uri.query``, ``http.request.full_uri``, ``http.request.method``, ``http.cookie``,
  ``http.user_agent``, ``http.referer`` (strings), ``ip.src`` (an IP address) and ``ssl`` (boolean);
- comparisons ``eq``/``==``, ``ne``/``!=``, ``contains``, ``matches``/``~`` (a regular expression),
  ``in {"a" "b"}``; on ``ip.src``: ``eq``, ``ne`` and ``in {...}`` with unquoted addresses, and
  networks inside a set (``ip.src in {192.0.2.0/24 2001:db8::/32 198.51.100.7}``), as Cloudflare writes them;
- functions ``starts_with(field, "x")``, ``ends_with(field, "x")``, ``lower()``, ``upper()``, ``len()``
  and ``concat()`` (the last for dynamic redirect targets);
- ``and``/``&&``, ``or``/``||``, ``xor``/``^^``, ``not``/``!`` and parentheses, with Cloudflare's
  precedence (not, and, xor, or).

A mistake is reported the way Cloudflare words it: ``Filter parsing error (1:12):`` followed by the
expression and a caret line under the offending part, then what is wrong (``unknown identifier``...).

    rule = compile_filter('http.host in {"a.test" "b.test"} and not starts_with(http.request.uri.path, "/admin")')
    rule(Request.build("https", "a.test", "/x?y=1", "GET", {}, "127.0.0.1"))   # True
    target = compile_value('concat("https://b.test", http.request.uri.path)')
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_EXPRESSION = 4096  # Cloudflare's limit on the length of a rule expression

STRING_FIELDS = ("http.host", "http.request.uri", "http.request.uri.path", "http.request.uri.query", "http.request.full_uri",
                 "http.request.method", "http.cookie", "http.user_agent", "http.referer")
IP_FIELDS = ("ip.src",)
BOOLEAN_FIELDS = ("ssl",)
COMPARISONS = {"eq": "eq", "==": "eq", "ne": "ne", "!=": "ne", "contains": "contains", "matches": "matches", "~": "matches"}
LOGICAL = {"and": "and", "&&": "and", "or": "or", "||": "or", "xor": "xor", "^^": "xor", "not": "not", "!": "not"}
_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<ipv6>(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]*(?:/\d{1,3})?)'
                    r'|(?P<ipv4>\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?)|(?P<number>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)'
                    r'|(?P<symbol>==|!=|&&|\|\||\^\^|[(){},!~])|(?P<open_string>")|(?P<other>\S))')

Request = dict  # field name -> value, see ``fields``
Evaluator = Callable[[Request], Any]


class ExpressionError(ValueError):
    """An expression the Rules language refuses; the message is Cloudflare's ``Filter parsing error`` text."""


def fields(scheme: str, host: str, target: str, method: str, headers: dict[str, str], client_ip: str) -> Request:
    """The field values of one request (``target`` is the path with its query string, as sent)."""
    parts = urlsplit(target)
    path = parts.path or "/"
    uri = path + ("?" + parts.query if parts.query else "")
    lowered = {name.lower(): value for name, value in headers.items()}
    return {
        "http.host": host, "http.request.uri": uri, "http.request.uri.path": path, "http.request.uri.query": parts.query,
        "http.request.full_uri": "%s://%s%s" % (scheme, host, uri), "http.request.method": method.upper(),
        "http.cookie": lowered.get("cookie", ""), "http.user_agent": lowered.get("user-agent", ""),
        "http.referer": lowered.get("referer", ""), "ip.src": client_ip, "ssl": scheme == "https",
    }


@dataclass
class _Token:
    kind: str
    text: str
    start: int
    value: Any = None


def _tokens(expression: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(expression):
        found = _TOKEN.match(expression, position)
        if found is None or not found.group(0).strip():
            break
        kind = found.lastgroup or "other"
        text = found.group(kind)
        start = found.start(kind)
        if kind == "open_string":
            raise ExpressionError(_message(expression, start, len(expression) - start, "unterminated string"))
        if kind == "other":
            raise ExpressionError(_message(expression, start, 1, "unrecognised input"))
        value: Any = None
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", text[1:-1])
        elif kind == "number":
            value = int(text)
        elif kind in ("ipv4", "ipv6"):
            try:
                value = ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text)
            except ValueError:
                raise ExpressionError(_message(expression, start, len(text), "invalid IP address or network")) from None
            kind = "ip"
        tokens.append(_Token(kind, text, start, value))
        position = found.end()
    tokens.append(_Token("end", "", len(expression)))
    return tokens


def _message(expression: str, start: int, length: int, reason: str) -> str:
    line_start = expression.rfind("\n", 0, start) + 1
    line_end = expression.find("\n", start)
    line = expression[line_start:line_end if line_end >= 0 else len(expression)]
    line_number = expression.count("\n", 0, start) + 1
    column = start - line_start + 1
    return "Filter parsing error (%d:%d):\n%s\n%s%s %s\n" % (line_number, column, line, " " * (column - 1), "^" * max(1, length), reason)


class _Parser:
    """Recursive descent over the tokens; every node becomes a closure over the request's fields."""

    def __init__(self, expression: str):
        if len(expression) > MAX_EXPRESSION:
            raise ExpressionError("Filter parsing error: the expression is longer than %d characters" % MAX_EXPRESSION)
        self.expression = expression
        self.tokens = _tokens(expression)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def fail(self, token: _Token, reason: str) -> ExpressionError:
        return ExpressionError(_message(self.expression, token.start, max(1, len(token.text)), reason))

    def take(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def expect(self, text: str) -> _Token:
        if self.token.text != text:
            raise self.fail(self.token, 'expected "%s"' % text)
        return self.take()

    def at_end(self) -> None:
        if self.token.kind != "end":
            raise self.fail(self.token, "unrecognised input")

    # Logical layer: or < xor < and < not

    def logical(self) -> Evaluator:
        return self._binary("or", self._xor, lambda left, right: lambda request: bool(left(request)) or bool(right(request)))

    def _xor(self) -> Evaluator:
        return self._binary("xor", self._and, lambda left, right: lambda request: bool(left(request)) != bool(right(request)))

    def _and(self) -> Evaluator:
        return self._binary("and", self._not, lambda left, right: lambda request: bool(left(request)) and bool(right(request)))

    def _binary(self, word: str, operand: Callable[[], Evaluator], combine: Callable[[Evaluator, Evaluator], Evaluator]) -> Evaluator:
        result = operand()
        while LOGICAL.get(self.token.text) == word:
            self.take()
            result = combine(result, operand())
        return result

    def _not(self) -> Evaluator:
        if LOGICAL.get(self.token.text) == "not":
            self.take()
            inner = self._not()
            return lambda request: not inner(request)
        return self._condition()

    def _condition(self) -> Evaluator:
        if self.token.text == "(":
            self.take()
            inner = self.logical()
            self.expect(")")
            return inner
        start = self.token
        left, kind = self.value()
        operator = self.token
        if operator.text == "in":
            self.take()
            members = self._set(kind)
            if kind == "ip":
                return lambda request: _in_addresses(left(request), members)
            return lambda request: left(request) in members
        if operator.text in COMPARISONS:
            self.take()
            return self._comparison(COMPARISONS[operator.text], left, kind, operator)
        if kind != "bool":
            raise self.fail(start, "expected a boolean: compare this value with eq, ne, contains, matches or in")
        return left

    def _comparison(self, name: str, left: Evaluator, kind: str, operator: _Token) -> Evaluator:
        right_token = self.token
        right, right_kind = self.value()
        if kind != right_kind or (kind in ("bool", "ip") and name not in ("eq", "ne")):
            if kind == right_kind:
                raise self.fail(operator, "%s cannot compare values of type %s" % (operator.text, kind))
            raise self.fail(right_token, "expected value of type %s, but got %s" % (kind, right_kind))
        if kind == "ip" and isinstance(right_token.value, _NETWORKS):
            raise self.fail(right_token, "a network is only accepted in a set: ip.src in {%s}" % right_token.text)
        if name == "eq":
            return lambda request: left(request) == right(request)
        if name == "ne":
            return lambda request: left(request) != right(request)
        if kind != "string":
            raise self.fail(operator, "%s needs text" % operator.text)
        if name == "contains":
            return lambda request: right(request) in left(request)
        if right_token.kind != "string":
            raise self.fail(right_token, "matches takes a regular expression in quotes")
        try:
            pattern = re.compile(right_token.value)
        except re.error as exc:
            raise self.fail(right_token, "invalid regular expression: %s" % exc) from None
        return lambda request: pattern.search(left(request)) is not None

    def _set(self, kind: str) -> frozenset[Any]:
        opening = self.expect("{")
        members = []
        while self.token.text != "}":
            token = self.take()
            if token.kind == "end":
                raise self.fail(opening, "unterminated set: expected }")
            wanted = {"string": "string", "ip": "ip"}.get(kind, "number")
            if token.kind != wanted:
                raise self.fail(token, "expected %s in the set" % _SET_MEMBERS[wanted])
            members.append(token.value)
        if not members:
            raise self.fail(opening, "a set needs at least one value")
        self.take()
        return frozenset(members)

    # Values: literals, fields, function calls

    def value(self) -> tuple[Evaluator, str]:
        token = self.take()
        if token.kind == "string":
            return (lambda _request, text=token.value: text), "string"
        if token.kind == "number":
            return (lambda _request, number=token.value: number), "number"
        if token.kind == "ip":
            return (lambda _request, address=token.value: address), "ip"
        if token.kind != "name":
            raise self.fail(token, "expected a field, a function or a value")
        if self.token.text == "(":
            return self._call(token)
        if token.text in STRING_FIELDS:
            return (lambda request, name=token.text: request[name]), "string"
        if token.text in IP_FIELDS:
            return (lambda request, name=token.text: _address(request[name])), "ip"
        if token.text in BOOLEAN_FIELDS:
            return (lambda request, name=token.text: request[name]), "bool"
        raise self.fail(token, "unknown identifier")

    def _call(self, name: _Token) -> tuple[Evaluator, str]:
        signature = _FUNCTIONS.get(name.text)
        if signature is None:
            raise self.fail(name, "unknown identifier")
        self.expect("(")
        arguments: list[tuple[Evaluator, str, _Token]] = []
        while self.token.text != ")":
            if arguments:
                self.expect(",")
            token = self.token
            evaluator, kind = self.value()
            arguments.append((evaluator, kind, token))
        closing = self.take()
        kinds, result, apply = signature
        if (kinds != "*" and len(arguments) != len(kinds)) or (kinds == "*" and not arguments):
            raise self.fail(closing, "invalid number of arguments")
        for index, (_evaluator, kind, token) in enumerate(arguments):
            wanted = "string" if kinds == "*" else kinds[index]
            if kind != wanted:
                raise self.fail(token, "expected value of type %s, but got %s" % (wanted, kind))
        evaluators = [argument[0] for argument in arguments]
        return (lambda request: apply(*[evaluator(request) for evaluator in evaluators])), result


_NETWORKS = (ipaddress.IPv4Network, ipaddress.IPv6Network)
_SET_MEMBERS = {"string": "a quoted string", "ip": "an IP address or network (unquoted)", "number": "a number"}


def _address(text: str) -> Any:
    """The client address of a request; None (equal to no address) for a lab client header that holds none."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _in_addresses(address: Any, members: frozenset[Any]) -> bool:
    """Whether ``address`` is one of the addresses of the set, or inside one of its networks."""
    return address is not None and any(address in member if isinstance(member, _NETWORKS) else address == member for member in members)


_FUNCTIONS: dict[str, tuple[Any, str, Callable[..., Any]]] = {
    "starts_with": (("string", "string"), "bool", lambda text, prefix: text.startswith(prefix)),
    "ends_with": (("string", "string"), "bool", lambda text, suffix: text.endswith(suffix)),
    "lower": (("string",), "string", lambda text: text.lower()),
    "upper": (("string",), "string", lambda text: text.upper()),
    "len": (("string",), "number", len),
    "concat": ("*", "string", lambda *parts: "".join(parts)),
}


def compile_filter(expression: str) -> Callable[[Request], bool]:
    """A rule's ``expression`` as a test of a request; ExpressionError if the language refuses it."""
    parser = _Parser(expression)
    if parser.token.kind == "end":
        raise ExpressionError("Filter parsing error (1:1): the expression is empty")
    evaluator = parser.logical()
    parser.at_end()
    return lambda request: bool(evaluator(request))


def compile_value(expression: str) -> Callable[[Request], str]:
    """An expression giving text (a dynamic redirect's ``target_url.expression``)."""
    parser = _Parser(expression)
    start = parser.token
    if start.kind == "end":
        raise ExpressionError("Filter parsing error (1:1): the expression is empty")
    evaluator, kind = parser.value()
    parser.at_end()
    if kind != "string":
        raise parser.fail(start, "expected value of type string, but got %s" % kind)
    return evaluator
