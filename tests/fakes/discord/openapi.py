"""Check the bot's Discord REST requests against Discord's published OpenAPI 3.1 spec.

The spec is big (1.2 MB), so it is loaded once per process and each operation's validator is compiled once.
The few places where the spec disagrees with what Discord accepts (and what discord.py sends) are patched
in `RELAXATIONS`, each with its reason; `EXTRA_RULES` are checks stricter than the spec where Discord itself is.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

_REPO = Path(__file__).resolve().parents[3]
#: Discord's OpenAPI spec, from shared/ beside the checkout (as laid for sessions and CI); HAILUO_DISCORD_SPEC wins.
SPEC_CANDIDATES = (
    Path(os.environ.get("HAILUO_DISCORD_SPEC", _REPO.parent / "shared" / "discord-api-spec" / "openapi.json")),
    _REPO.parent / "shared" / "discord-api-spec" / "openapi.json",
    Path("/work/shared/discord-api-spec/openapi.json"),
)
SPEC_PATH = next((p for p in SPEC_CANDIDATES if p.is_file()), SPEC_CANDIDATES[0])

PERMISSION_BITFIELD_MAX = 18014398509481983  # 2**54 - 1, how the spec bounds permission bitfields

RELAXATIONS: dict[str, str] = {
    "SnowflakeType accepts non-negative integers": (
        "the spec types snowflakes as digit strings only, but Discord accepts JSON integers too and discord.py "
        "sends integers for attachment ids (files[n] index) and allowed_mentions users/roles"
    ),
    "permission bitfields accept digit strings": (
        "the spec types default_member_permissions/permissions as integers, but Discord serialises permissions "
        "as strings and discord.py sends default_member_permissions as a string"
    ),
}

EXTRA_RULES: dict[str, str] = {
    "message content is at most 2000 characters": (
        "the spec allows 4000 in MessageCreateRequest/MessageEditRequest (the Nitro user limit); a bot gets "
        "400 BASE_TYPE_MAX_LENGTH over 2000"
    ),
}

BOT_CONTENT_LIMIT = 2000

_SNOWFLAKE = {"type": "string", "pattern": "^(0|[1-9][0-9]*)$", "format": "snowflake"}


@dataclass(frozen=True)
class Operation:
    """One OpenAPI operation: its path template, and its compiled body and query validators."""

    method: str
    template: str
    operation_id: str
    regex: re.Pattern[str]
    literal_segments: int
    body_schemas: dict[str, Any]  # content type -> schema (raw, refs into #/components)
    body_required: bool
    query_schemas: dict[str, Any]


class OpenAPISpec:
    """The Discord OpenAPI document, its operations and compiled validators."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = _relaxed_components(document["components"])
        self._operations: dict[str, list[Operation]] = {}
        for template, item in document["paths"].items():
            shared_params = item.get("parameters", [])
            regex, literal_segments = _template_regex(template)
            for method, op in item.items():
                if method == "parameters":
                    continue
                params = [*shared_params, *op.get("parameters", [])]
                body = op.get("requestBody") or {}
                self._operations.setdefault(method.upper(), []).append(
                    Operation(
                        method=method.upper(),
                        template=template,
                        operation_id=op.get("operationId", ""),
                        regex=regex,
                        literal_segments=literal_segments,
                        body_schemas={ct: c["schema"] for ct, c in body.get("content", {}).items()},
                        body_required=bool(body.get("required")),
                        query_schemas={p["name"]: p.get("schema", {}) for p in params if p.get("in") == "query"},
                    )
                )
        for ops in self._operations.values():  # literal segments ("@me", "@original") beat placeholders
            ops.sort(key=lambda o: (-o.literal_segments, o.template))
        self._validators: dict[tuple[str, str, str], Draft202012Validator] = {}

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """Find the operation for a concrete request path (relative to /api/v10)."""
        for op in self._operations.get(method.upper(), []):
            m = op.regex.fullmatch(path)
            if m is not None:
                return op, m.groupdict()
        return None

    def templates(self) -> Iterator[tuple[str, str]]:
        """Yield every (method, template) pair the spec defines."""
        for method, ops in self._operations.items():
            for op in ops:
                yield method, op.template

    def validator(self, op: Operation, key: str, schema: dict[str, Any]) -> Draft202012Validator:
        """Return a cached Draft 2020-12 validator for one schema of an operation."""
        cache_key = (op.method, op.template, key)
        validator = self._validators.get(cache_key)
        if validator is None:
            # Refs are "#/components/...": give the schema a root that carries the (relaxed) components.
            root = dict(schema)
            root["components"] = self.components
            validator = Draft202012Validator(root)
            self._validators[cache_key] = validator
        return validator

    def check_request(
        self,
        method: str,
        path: str,
        *,
        content_type: str | None,
        body: Any,
        has_body: bool,
        query: dict[str, str],
    ) -> list[str]:
        """Return readable violations for one request; an unknown route is itself a violation."""
        found = self.match(method, path)
        if found is None:
            return [f"{method} {path}: no such operation in the OpenAPI spec"]
        op, _ = found
        where = f"{method} {op.template}"
        problems: list[str] = []
        for name, value in query.items():
            schema = op.query_schemas.get(name)
            if schema is None:
                continue  # Discord ignores unknown query parameters
            coerced = _coerce_query(value, schema, self.components)
            for error in self.validator(op, f"query:{name}", schema).iter_errors(coerced):
                problems.append(f"{where}: query {name}={value!r}: {error.message}")
        if not has_body:
            if op.body_required and op.body_schemas:
                problems.append(f"{where}: request body is required")
            return problems
        if not op.body_schemas:
            problems.append(f"{where}: the operation takes no request body")
            return problems
        # A multipart body is checked through its payload_json part against the JSON schema.
        media = "application/json" if "application/json" in op.body_schemas else next(iter(op.body_schemas))
        if content_type and content_type not in ("application/json", "multipart/form-data"):
            problems.append(f"{where}: unexpected content type {content_type}")
        schema = op.body_schemas[media]
        validator = self.validator(op, media, schema)
        problems.extend(_render_errors(where, validator.iter_errors(body)))
        problems.extend(_extra_rules(where, body))
        return problems


def _render_errors(where: str, errors: Iterator[ValidationError]) -> list[str]:
    out = []
    for error in errors:
        for shown in _closest_branch_errors(error):
            message = _short_message(shown)
            out.append(f"{where}: {shown.json_path}: {message}")
    return out


def _short_message(error: ValidationError) -> str:
    shown = repr(error.instance)
    if len(shown) > 80:
        length = f" (length {len(error.instance)})" if isinstance(error.instance, (str, list, dict)) else ""
        return error.message.replace(shown, shown[:60] + "..." + shown[-1] + length)
    return error.message


def _closest_branch_errors(error: ValidationError) -> list[ValidationError]:
    """For an anyOf/oneOf failure, report the errors of the one branch the instance was meant for."""
    if not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0] if sub.relative_schema_path else None, []).append(sub)
    meant = [subs for subs in branches.values() if not any(_wrong_kind(sub, error) for sub in subs)]
    if len(meant) == 1:
        return [leaf for sub in meant[0] for leaf in _closest_branch_errors(sub)]
    shown = best_match(error.context)
    return [shown] if shown is not None else [error]


def _wrong_kind(sub: ValidationError, parent: ValidationError) -> bool:
    """Tell whether a branch error says the instance is another kind of thing (wrong type or discriminator)."""
    depth = len(sub.absolute_path) - len(parent.absolute_path)
    if depth == 0 and sub.validator in ("type", "const", "enum"):
        return True
    return depth == 1 and sub.absolute_path[-1] == "type" and sub.validator in ("const", "enum", "type")


def _extra_rules(where: str, body: Any) -> list[str]:
    out = []
    for path, content in _message_contents(body, "$"):
        if isinstance(content, str) and len(content) > BOT_CONTENT_LIMIT:
            out.append(f"{where}: {path}: content is {len(content)} characters, a bot may send {BOT_CONTENT_LIMIT}")
    return out


def _message_contents(body: Any, path: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(body, dict):
        return
    if "content" in body:
        yield f"{path}.content", body["content"]
    for key in ("data", "message"):  # interaction callback data, forum thread starter message
        if isinstance(body.get(key), dict):
            yield from _message_contents(body[key], f"{path}.{key}")


def _coerce_query(value: str, schema: dict[str, Any], components: dict[str, Any]) -> Any:
    resolved = _resolve_local(schema, components)
    kind = resolved.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "boolean" in kinds:
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        return value
    if "integer" in kinds or "number" in kinds:
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _resolve_local(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/"):
        node: Any = {"components": components}
        for part in ref[2:].split("/"):
            node = node[part]
        return _resolve_local(node, components)
    return schema


def _template_regex(template: str) -> tuple[re.Pattern[str], int]:
    parts = []
    literal = 0
    for segment in template.strip("/").split("/"):
        names = re.findall(r"\{([^}]+)\}", segment)
        if names:
            pattern = re.escape(segment)
            for name in names:
                pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
            parts.append(pattern)
        else:
            parts.append(re.escape(segment))
            literal += 1
    return re.compile("/" + "/".join(parts)), literal


def _relaxed_components(components: dict[str, Any]) -> dict[str, Any]:
    relaxed = copy.deepcopy(components)
    relaxed["schemas"]["SnowflakeType"] = {"anyOf": [_SNOWFLAKE, {"type": "integer", "minimum": 0}]}
    _walk(relaxed, _relax_permission_bitfield)
    return relaxed


def _relax_permission_bitfield(node: dict[str, Any]) -> None:
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "integer" in kinds and node.get("maximum") == PERMISSION_BITFIELD_MAX and not node.get("x-relaxed"):
        integer = {k: v for k, v in node.items() if k != "type"}
        integer["type"] = "integer"
        integer["x-relaxed"] = True
        alternatives: list[dict[str, Any]] = [integer, {"type": "string", "pattern": "^(0|[1-9][0-9]{0,16})$"}]
        if "null" in kinds:
            alternatives.append({"type": "null"})
        node.clear()
        node["anyOf"] = alternatives


def _walk(node: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in list(node.values()):
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


@functools.cache
def load_spec(path: Path = SPEC_PATH) -> OpenAPISpec:
    """Load and index the spec once per process."""
    with path.open("rb") as fh:
        return OpenAPISpec(json.load(fh))
