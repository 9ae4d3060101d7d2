# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloudflare's OpenAPI document (tests/lab/openapi/): route matching and body validation.

The document is OpenAPI 3.0, whose schema dialect is close to JSON Schema draft 4, so bodies are
checked with jsonschema's ``Draft4Validator`` and ``$ref`` is resolved within the document with
``referencing``. OpenAPI's ``nullable: true`` (not a JSON Schema keyword) is turned into
``"type": [<type>, "null"]`` when the document is loaded, and a ``readOnly`` property listed in
``required`` is required in responses only, as OpenAPI 3.0 says (a request need not send the
``version`` or ``last_updated`` of a rule: the server sets them).

Requests are checked against the operation's parameters and ``requestBody`` schema without
``format`` (an A record with a bad address is Cloudflare's own error 9005, not a malformed request);
responses are checked with ``format`` (ipv4, ipv6, hostname, date-time), because a response that
misses a format is a bug in the emulator.

Each schema is first checked by its compiled yes/no check (schema_checks.py: the same Draft 4
semantics, made once, about a hundred times faster on DNS record listings); jsonschema runs only
when that check refuses a body, to say why, so the problems reported are the ones it always gave.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.lab.config import OPENAPI_FILE
from tests.lab.schema_checks import CompiledSchemas

BASE_URI = "urn:launchready-lab:cloudflare-openapi-subset"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_MAX_MESSAGE = 300


def _response_format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("ipv4", raises=ValueError)
    def _ipv4(value: Any) -> bool:
        return not isinstance(value, str) or bool(ipaddress.IPv4Address(value))

    @checker.checks("ipv6", raises=ValueError)
    def _ipv6(value: Any) -> bool:
        return not isinstance(value, str) or bool(ipaddress.IPv6Address(value))

    @checker.checks("hostname")
    def _hostname(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        labels = value.rstrip(".").split(".")
        return len(value) <= 253 and all(_HOST_LABEL.match(label) for label in labels)

    @checker.checks("date-time")
    def _date_time(value: Any) -> bool:
        return not isinstance(value, str) or bool(_DATE_TIME.match(value))

    return checker


def _openapi_nullable(node: Any) -> None:
    """Rewrite OpenAPI 3.0 ``nullable: true`` into JSON Schema, in place."""
    if isinstance(node, dict):
        if node.get("nullable") is True:
            if isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            if isinstance(node.get("enum"), list) and None not in node["enum"]:
                node["enum"] = node["enum"] + [None]
        for value in node.values():
            _openapi_nullable(value)
    elif isinstance(node, list):
        for value in node:
            _openapi_nullable(value)


def _is_read_only(node: Any, doc: dict[str, Any]) -> bool:
    """Whether a property schema is ``readOnly``, directly, through ``$ref`` or in one of its ``allOf`` parts."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    if not isinstance(node, dict):
        return False
    return node.get("readOnly") is True or any(_is_read_only(part, doc) for part in node.get("allOf", []))


def _request_view(node: Any, doc: dict[str, Any]) -> Any:
    """A copy of the document where ``required`` leaves out ``readOnly`` properties (what a request must send)."""
    if isinstance(node, list):
        return [_request_view(value, doc) for value in node]
    if not isinstance(node, dict):
        return node
    copied = {key: _request_view(value, doc) for key, value in node.items()}
    properties = node.get("properties")
    if isinstance(node.get("required"), list) and isinstance(properties, dict):
        copied["required"] = [name for name in node["required"] if not _is_read_only(properties.get(name), doc)]
    return copied


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


class OpenApi:
    """The routes and schemas of the OpenAPI document."""

    def __init__(self, path: Path = OPENAPI_FILE, compiled: bool = True):
        """``compiled=False``: jsonschema alone, as the reference that tests compare the compiled checks with."""
        self.doc = json.loads(Path(path).read_text(encoding="utf-8"))
        _openapi_nullable(self.doc)
        self.registry = Registry().with_resource(BASE_URI, Resource.from_contents(self.doc, default_specification=DRAFT4))
        request_doc = _request_view(self.doc, self.doc)
        self.request_registry = Registry().with_resource(BASE_URI, Resource.from_contents(request_doc, default_specification=DRAFT4))
        self._validators: dict[tuple[str, bool], Draft4Validator] = {}
        self._format_checker = _response_format_checker()
        # The same schemas as yes/no checks compiled once (schema_checks.py); jsonschema only explains a refusal.
        self._compiled = {True: CompiledSchemas(self.doc, self._format_checker), False: CompiledSchemas(request_doc, None)} if compiled else {}
        self.routes = []
        for template in self.doc["paths"]:
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            self.routes.append((template, re.compile("^" + pattern + "$"), template.count("{")))
        # A literal segment beats a parameter: /dns_records/batch before /dns_records/{dns_record_id}.
        self.routes.sort(key=lambda route: route[2])

    def match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """The path template and path parameters for a request path (relative to /client/v4)."""
        for template, regex, _count in self.routes:
            found = regex.match(path)
            if found and method.lower() in self.doc["paths"][template]:
                return template, found.groupdict()
        return None

    def request_errors(self, method: str, template: str, path_params: dict[str, str], query: dict[str, list[str]], body: Any, has_body: bool) -> list[str]:
        operation = self.doc["paths"][template][method.lower()]
        problems: list[str] = []
        for index, parameter in enumerate(operation.get("parameters", [])):
            parameter = self._resolve(parameter)
            where, name = parameter.get("in"), parameter.get("name")
            pointer = _pointer("paths", template, method.lower(), "parameters", str(index), "schema")
            if where == "path":
                value = path_params.get(name)
            elif where == "query":
                value = query[name][-1] if name in query else None
            else:
                continue
            if value is None:
                if parameter.get("required"):
                    problems.append("%s parameter %s is required" % (where, name))
                continue
            coerced = _coerce(value, self._resolve(parameter.get("schema", {})))
            problems += ["%s parameter %s: %s" % (where, name, message) for message in self._errors(pointer, coerced, formats=False)]
        request_body = self._resolve(operation.get("requestBody", {}))
        if "schema" in request_body.get("content", {}).get("application/json", {}):
            if not has_body:
                if request_body.get("required"):
                    problems.append("request body is required")
            else:
                pointer = self._body_pointer(template, method)
                problems += ["request body %s" % message for message in self._errors(pointer, body, formats=False)]
        return problems

    def response_errors(self, method: str, template: str, status: int, body: Any) -> list[str]:
        responses = self.doc["paths"][template][method.lower()].get("responses", {})
        for key in (str(status), "%dXX" % (status // 100), "default"):
            if key in responses:
                break
        else:
            return []
        response = responses[key]
        base = ("paths", template, method.lower(), "responses", key)
        if "$ref" in response:
            base = tuple(response["$ref"][2:].split("/"))
            response = self._resolve(response)
        if "schema" not in response.get("content", {}).get("application/json", {}):
            return []
        pointer = _pointer(*[part.replace("~1", "/").replace("~0", "~") for part in base], "content", "application/json", "schema")
        return ["response body %s" % message for message in self._errors(pointer, body, formats=True)]

    def _body_pointer(self, template: str, method: str) -> str:
        ref = self.doc["paths"][template][method.lower()]["requestBody"].get("$ref")
        base = [part.replace("~1", "/").replace("~0", "~") for part in ref[2:].split("/")] if ref else ["paths", template, method.lower(), "requestBody"]
        return _pointer(*base, "content", "application/json", "schema")

    def _errors(self, pointer: str, instance: Any, formats: bool) -> list[str]:
        check = self._compiled[formats].check(pointer) if self._compiled else None
        if check is not None and check(instance):
            return []
        validator = self._validators.get((pointer, formats))
        if validator is None:
            # Responses are checked with formats and the document as it is; requests without formats and
            # without the readOnly properties in ``required``.
            checker, registry = (self._format_checker, self.registry) if formats else (None, self.request_registry)
            validator = Draft4Validator({"$ref": BASE_URI + pointer}, registry=registry, format_checker=checker)
            self._validators[(pointer, formats)] = validator
        messages = []
        for error in validator.iter_errors(instance):
            for where, message in _details(error):
                message = message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "..."
                messages.append("at %s: %s" % (where, message))
        if check is not None and not messages:
            messages.append("at /: the compiled check refused what jsonschema accepts (a bug in tests/lab/schema_checks.py)")
        return messages

    def _resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target: Any = self.doc
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node


def _details(error: ValidationError) -> list[tuple[str, str]]:
    """(where, what) for one failure; inside a oneOf/anyOf, the errors of the branch whose ``type`` matched."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        type_errors = [sub for subs in branches.values() for sub in subs if list(sub.relative_path) == ["type"]]
        matching = [subs for subs in branches.values() if not any(sub in type_errors for sub in subs)]
        if len(matching) == 1:
            return [detail for sub in matching[0] for detail in _details(sub)]
        if not matching and type_errors and all(sub.validator == "enum" for sub in type_errors):
            allowed = sorted({str(value) for sub in type_errors for value in sub.validator_value})
            where = _where(type_errors[0])
            return [(where, "%r is not one of the types %s" % (type_errors[0].instance, ", ".join(allowed)))]
    return [(_where(error), error.message)]


def _where(error: ValidationError) -> str:
    return "/" + "/".join(str(part) for part in error.absolute_path)


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A query or path parameter (always text) as the JSON type its schema declares, when it reads as one."""
    kind = schema.get("type")
    try:
        if kind == "number":
            return int(value) if re.fullmatch(r"-?\d+", value) else float(value)
        if kind == "integer":
            return int(value)
    except ValueError:
        return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value
