# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compiled yes/no checks of the OpenAPI document's schemas, with jsonschema's Draft 4 semantics.

jsonschema walks a schema again for every instance (a new validator and a ``$ref`` lookup in the
registry per subschema), about 2 ms per DNS record, most of it in the 20-branch ``oneOf`` of
record types. ``CompiledSchemas`` turns a schema into nested Python closures once, following each
``$ref`` once (a reference cycle becomes a forwarding closure), and answers only "valid or not";
schema.py still asks jsonschema for the messages when a body is refused.

Every keyword is checked exactly as jsonschema 4's ``Draft4Validator`` checks it (``_keywords.py``
and ``_legacy_keywords.py``): draft 4 types (``integer`` is an ``int`` that is not a ``bool``, 1.0
is not one), ``enum`` with jsonschema's equality (``True`` is not 1), ``exclusiveMinimum`` as a
boolean, ``$ref`` siblings ignored, ``format`` through the same ``FormatChecker``. The keywords that
carry no subschema and that are rare here (``uniqueItems``, ``multipleOf``, an ``enum`` holding
arrays or objects) are handed to a small jsonschema validator of that one keyword. A draft 4
keyword not compiled here, a ``$ref`` outside the document or an ``id`` (a new resolution scope)
makes ``check`` answer None, and schema.py then validates that schema with jsonschema alone.

One shortcut that changes no answer: in a ``oneOf``/``anyOf`` whose branches each *require* a
property P and restrict it with an ``enum`` of strings (the ``type`` of a DNS record, the ``id`` of
a zone setting), a branch whose enum does not hold the object's P cannot match, so only the
branches that can are checked (those that do not constrain P always are).
"""

from __future__ import annotations

import numbers
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft4Validator, FormatChecker

Check = Callable[[Any], bool]

# jsonschema's draft 4 type checker (_types.py): bool is not a number, 1.0 is not an integer.
_TYPES: dict[str, Check] = {
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: isinstance(value, bool),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "null": lambda value: value is None,
    "number": lambda value: isinstance(value, numbers.Number) and not isinstance(value, bool),
    "object": lambda value: isinstance(value, dict),
    "string": lambda value: isinstance(value, str),
}
_COMPILED = {"$ref", "type", "enum", "format", "allOf", "anyOf", "oneOf", "not", "properties", "patternProperties",
             "additionalProperties", "required", "minProperties", "maxProperties", "items", "minItems", "maxItems",
             "uniqueItems", "minLength", "maxLength", "pattern", "minimum", "maximum", "multipleOf"}
_NOT_COMPILED = frozenset(Draft4Validator.VALIDATORS) - _COMPILED


class Unsupported(Exception):
    """A schema this module does not compile: schema.py validates it with jsonschema alone."""


def _always(_value: Any) -> bool:
    return True


def _never(_value: Any) -> bool:
    return False


class CompiledSchemas:
    """Yes/no checks of the schemas of one OpenAPI document (as loaded: ``nullable`` already rewritten)."""

    def __init__(self, doc: dict[str, Any], format_checker: FormatChecker | None):
        self.doc = doc
        self.format_checker = format_checker
        self._by_pointer: dict[str, Check | None] = {}
        self._compiling: dict[str, list[Check]] = {}
        self._lock = threading.Lock()

    def check(self, pointer: str) -> Check | None:
        """The check of the schema at ``pointer`` ("#/..."), made once; None if it has to be left to jsonschema."""
        if pointer not in self._by_pointer:
            with self._lock:
                if pointer not in self._by_pointer:
                    before = dict(self._by_pointer)
                    try:
                        compiled: Check | None = self._ref(pointer)
                    except Unsupported:
                        # Forget what this attempt compiled: a part of a reference cycle could forward to nothing.
                        self._by_pointer = before
                        compiled = None
                    self._by_pointer[pointer] = compiled
        return self._by_pointer[pointer]

    # $ref

    def _lookup(self, ref: str) -> Any:
        """What a "#/..." reference points at, read as referencing reads it (percent-decoded, ~1 and ~0)."""
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise Unsupported("not a JSON pointer into the document: %r" % (ref,))
        node: Any = self.doc
        for segment in unquote(ref[2:]).split("/") if ref != "#" else []:
            try:
                node = node[int(segment)] if isinstance(node, list) else node[segment.replace("~1", "/").replace("~0", "~")]
            except (LookupError, ValueError, TypeError) as exc:
                raise Unsupported("reference to nowhere: %r" % ref) from exc
        return node

    def _deref(self, node: Any) -> Any:
        seen = set()
        while isinstance(node, dict) and node.get("$ref") is not None:
            if node["$ref"] in seen:
                raise Unsupported("reference loop at %r" % node["$ref"])
            seen.add(node["$ref"])
            node = self._lookup(node["$ref"])
        return node

    def _ref(self, ref: Any) -> Check:
        if not isinstance(ref, str):
            raise Unsupported("$ref %r" % (ref,))
        done = self._by_pointer.get(ref)
        if done is not None:
            return done
        if ref in self._compiling:
            # A schema that refers to itself: a forwarding check, filled in once the schema is compiled.
            cell = self._compiling[ref]

            def forward(value: Any) -> bool:
                return cell[0](value)

            return forward
        self._compiling[ref] = cell = []
        try:
            compiled = self._compile(self._lookup(ref))
        finally:
            del self._compiling[ref]
        cell.append(compiled)
        self._by_pointer[ref] = compiled
        return compiled

    # Schemas

    def _compile(self, schema: Any) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise Unsupported("not a schema: %r" % (schema,))
        if schema.get("$ref") is not None:
            return self._ref(schema["$ref"])  # draft 4: the siblings of $ref are ignored
        unknown = _NOT_COMPILED.intersection(schema)
        if unknown or isinstance(schema.get("id"), str):
            raise Unsupported("keywords not compiled: %s" % sorted(unknown or ["id"]))

        any_kind: list[Check] = []
        by_kind: dict[type, list[Check]] = {dict: [], list: [], str: []}
        numeric: list[Check] = []
        for keyword, value in schema.items():
            if keyword == "type":
                any_kind.append(self._type(value))
            elif keyword == "enum":
                any_kind.append(self._enum(value))
            elif keyword == "format":
                if not isinstance(value, str):
                    raise Unsupported("format %r" % (value,))
                if self.format_checker is not None and value in self.format_checker.checkers:
                    any_kind.append(_format(self.format_checker, value))
            elif keyword in ("allOf", "anyOf", "oneOf"):
                any_kind.append(self._combination(keyword, value))
            elif keyword == "not":
                any_kind.append(_negation(self._compile(value)))
            elif keyword in ("properties", "patternProperties", "additionalProperties", "required", "minProperties", "maxProperties"):
                by_kind[dict].append(self._object_keyword(keyword, value, schema))
            elif keyword in ("items", "minItems", "maxItems", "uniqueItems"):
                by_kind[list].append(self._array_keyword(keyword, value))
            elif keyword in ("minLength", "maxLength", "pattern"):
                by_kind[str].append(self._string_keyword(keyword, value))
            elif keyword in ("minimum", "maximum", "multipleOf"):
                numeric.append(self._number_keyword(keyword, value, schema))
        return _node(any_kind, by_kind[dict], by_kind[list], by_kind[str], numeric)

    def _type(self, types: Any) -> Check:
        names = [types] if isinstance(types, str) else types
        if not isinstance(names, list) or not all(isinstance(name, str) and name in _TYPES for name in names):
            raise Unsupported("type %r" % (types,))  # jsonschema raises UnknownType for these
        tests = tuple(_TYPES[name] for name in names)
        if len(tests) == 1:
            return tests[0]
        return lambda instance: any(test(instance) for test in tests)

    def _enum(self, values: Any) -> Check:
        if not isinstance(values, list) or not all(value is None or isinstance(value, (str, bool, int, float)) for value in values):
            return Draft4Validator({"enum": values}).is_valid
        # jsonschema's equal(): a string equals only an equal string; None, True and False only themselves;
        # a number any equal number that is not a bool (1 == 1.0, True is not 1).
        texts = frozenset(value for value in values if isinstance(value, str))
        singletons = tuple(value for value in values if value is None or isinstance(value, bool))
        amounts = tuple(value for value in values if isinstance(value, (int, float)) and not isinstance(value, bool))

        def member(instance: Any) -> bool:
            if isinstance(instance, str):
                return instance in texts
            if any(instance is each for each in singletons):
                return True
            return not isinstance(instance, bool) and any(instance == each for each in amounts)

        return member

    def _combination(self, keyword: str, branches: Any) -> Check:
        if not isinstance(branches, list):
            raise Unsupported("%s %r" % (keyword, branches))
        checks = [self._compile(branch) for branch in branches]
        if keyword == "allOf":
            return lambda instance: all(check(instance) for check in checks)
        one = keyword == "oneOf"

        def verdict(candidates: list[Check] | tuple[Check, ...], instance: Any) -> bool:
            if one:
                return sum(1 for check in candidates if check(instance)) == 1
            return any(check(instance) for check in candidates)

        discriminator = self._discriminator(branches)
        if discriminator is None:
            return lambda instance: verdict(checks, instance)
        name, by_value, unconstrained = discriminator
        candidates = {value: tuple(checks[index] for index in indexes) for value, indexes in by_value.items()}
        others = tuple(checks[index] for index in unconstrained)

        def discriminated(instance: Any) -> bool:
            if not isinstance(instance, dict):
                return verdict(checks, instance)
            value = instance.get(name)
            return verdict(candidates.get(value, others) if isinstance(value, str) else others, instance)

        return discriminated

    def _discriminator(self, branches: list[Any]) -> tuple[str, dict[str, list[int]], list[int]] | None:
        """(property, {value: branches that can match an object holding it}, branches that never constrain it), or None.

        A branch constrains P when it (or one of its allOf parts) lists P in ``required`` and gives P
        an ``enum`` of strings: an object matching it has P, and P is one of those strings.
        """
        facts = [self._constraints(branch) for branch in branches]
        best: tuple[int, str] | None = None
        for name in sorted({name for _required, enums in facts for name in enums}):
            constrained = sum(1 for required, enums in facts if name in required and name in enums)
            if best is None or constrained > best[0]:
                best = (constrained, name)
        if best is None or best[0] < 2:
            return None
        name = best[1]
        unconstrained = [index for index, (required, enums) in enumerate(facts) if not (name in required and name in enums)]
        by_value: dict[str, list[int]] = {}
        for index, (required, enums) in enumerate(facts):
            if name in required and name in enums:
                for value in frozenset.intersection(*enums[name]):
                    by_value.setdefault(value, []).append(index)
        return name, {value: sorted(indexes + unconstrained) for value, indexes in by_value.items()}, unconstrained

    def _constraints(self, schema: Any, seen: frozenset[int] = frozenset()) -> tuple[set[str], dict[str, list[frozenset[str]]]]:
        """The properties ``schema`` requires and the string enums it puts on properties, through $ref and allOf."""
        schema = self._deref(schema)
        required: set[str] = set()
        enums: dict[str, list[frozenset[str]]] = {}
        if not isinstance(schema, dict) or id(schema) in seen:
            return required, enums
        if isinstance(schema.get("required"), list):
            required.update(name for name in schema["required"] if isinstance(name, str))
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for name, subschema in properties.items():
                subschema = self._deref(subschema)
                values = subschema.get("enum") if isinstance(subschema, dict) else None
                if isinstance(values, list) and values and all(isinstance(value, str) for value in values):
                    enums.setdefault(name, []).append(frozenset(values))
        for part in schema.get("allOf", []) if isinstance(schema.get("allOf"), list) else []:
            part_required, part_enums = self._constraints(part, seen | {id(schema)})
            required |= part_required
            for name, sets in part_enums.items():
                enums.setdefault(name, []).extend(sets)
        return required, enums

    def _object_keyword(self, keyword: str, value: Any, schema: dict[str, Any]) -> Check:
        if keyword == "properties":
            if not isinstance(value, dict):
                raise Unsupported("properties %r" % (value,))
            properties = tuple((name, self._compile(subschema)) for name, subschema in value.items())
            return lambda instance: all(name not in instance or check(instance[name]) for name, check in properties)
        if keyword == "patternProperties":
            if not isinstance(value, dict):
                raise Unsupported("patternProperties %r" % (value,))
            patterns = tuple((_regex(pattern), self._compile(subschema)) for pattern, subschema in value.items())
            return lambda instance: all(check(item) for regex, check in patterns for key, item in instance.items() if regex.search(key))
        if keyword == "additionalProperties":
            known = schema.get("properties", {})
            joined = "|".join(schema.get("patternProperties", {}))
            listed = _regex(joined) if joined else None

            def extras(instance: dict[str, Any]) -> list[str]:
                return [key for key in instance if key not in known and not (listed is not None and listed.search(key))]

            if isinstance(value, dict):
                extra = self._compile(value)
                return lambda instance: all(extra(instance[key]) for key in extras(instance))
            if not value:
                return lambda instance: not extras(instance)
            return _always
        if keyword == "required":
            if not isinstance(value, list):
                raise Unsupported("required %r" % (value,))
            names = tuple(value)
            return lambda instance: all(name in instance for name in names)
        if keyword == "minProperties":
            return lambda instance: not len(instance) < value
        return lambda instance: not len(instance) > value  # maxProperties

    def _array_keyword(self, keyword: str, value: Any) -> Check:
        if keyword == "items":
            if isinstance(value, dict):
                each = self._compile(value)
                return lambda instance: all(each(item) for item in instance)
            if isinstance(value, list):
                positional = [self._compile(subschema) for subschema in value]
                return lambda instance: all(check(item) for check, item in zip(positional, instance, strict=False))
            raise Unsupported("items %r" % (value,))
        if keyword == "minItems":
            return lambda instance: not len(instance) < value
        if keyword == "maxItems":
            return lambda instance: not len(instance) > value
        return Draft4Validator({"uniqueItems": value}).is_valid

    def _string_keyword(self, keyword: str, value: Any) -> Check:
        if keyword == "minLength":
            return lambda instance: not len(instance) < value
        if keyword == "maxLength":
            return lambda instance: not len(instance) > value
        regex = _regex(value)
        return lambda instance: regex.search(instance) is not None

    def _number_keyword(self, keyword: str, value: Any, schema: dict[str, Any]) -> Check:
        if keyword == "minimum":
            if schema.get("exclusiveMinimum", False):
                return lambda instance: not instance <= value
            return lambda instance: not instance < value
        if keyword == "maximum":
            if schema.get("exclusiveMaximum", False):
                return lambda instance: not instance >= value
            return lambda instance: not instance > value
        return Draft4Validator({"multipleOf": value}).is_valid


def _format(checker: FormatChecker, name: str) -> Check:
    return lambda instance: checker.conforms(instance, name)


def _negation(inner: Check) -> Check:
    return lambda instance: not inner(instance)


def _regex(pattern: Any) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise Unsupported("pattern %r" % (pattern,)) from exc


def _node(any_kind: list[Check], objects: list[Check], arrays: list[Check], strings: list[Check], numeric: list[Check]) -> Check:
    """One schema's check: every keyword, the ones about one JSON type only on instances of that type."""
    if not (objects or arrays or strings or numeric):
        if not any_kind:
            return _always
        if len(any_kind) == 1:
            return any_kind[0]
    number = _TYPES["number"]

    def check(instance: Any) -> bool:
        for test in any_kind:
            if not test(instance):
                return False
        if objects and isinstance(instance, dict):
            for test in objects:
                if not test(instance):
                    return False
        elif arrays and isinstance(instance, list):
            for test in arrays:
                if not test(instance):
                    return False
        elif strings and isinstance(instance, str):
            for test in strings:
                if not test(instance):
                    return False
        elif numeric and number(instance):
            for test in numeric:
                if not test(instance):
                    return False
        return True

    return check
