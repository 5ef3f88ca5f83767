"""Task-definition files: read with a size cap, checked against RegisterTaskDefinition's input.

A file is checked when the plan is loaded (or ``ecs-deploy`` parses its flags), so a
definition shaped by docker-compose habits (``environment`` as a mapping, ``secrets`` as
a string, ``logConfiguration`` as a list) is refused with its file and key path instead
of failing the deploy halfway. Messages name the key and the expected type, never the
value found: environment values and secrets live in these files.

Nulls are dropped at every depth, as some tools print them for unset keys
(``"placementConstraints": null``), and so are the read-only keys that
``aws ecs describe-task-definition`` output carries.

A plan's file is a template: ``${VAR}`` placeholders are resolved like plan strings
(``plan.interpolate``: the same environment, ``${VAR:-default}``, ``$${`` for a literal
``${``), each value written as JSON string content, so a quote or a backslash in it
cannot break the file; a placeholder outside quotes (``"memory": ${MEMORY}``) gives a
number. An unset variable is an error naming the file's line. No message about a file
quotes a value a placeholder put there: it may be a secret.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final, NoReturn

from botocore.model import Shape, StructureShape

from ecs_deploy_many.core.ecs_api import (
    READ_ONLY_KEYS,
    ecs_service_model,
    registerable_keys,
    registration_input,
)
from ecs_deploy_many.core.errors import InterpolationError, TaskDefinitionError
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.plan.interpolate import interpolate

__all__ = [
    "MAX_TASK_DEFINITION_BYTES",
    "parse_task_definition_file",
    "read_task_definition_file",
]

MAX_TASK_DEFINITION_BYTES: Final = 1024 * 1024
"""A task-definition file's largest size; ECS registers far smaller definitions."""

_FAMILY = re.compile(r"[A-Za-z0-9_-]{1,255}")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER_RANGE = (-(2**31), 2**31 - 1)
"""ECS's ``integer`` members are 32-bit."""
_SHOWN_PROBLEMS = 10
_LISTED_MEMBERS = 4


def read_task_definition_file(
    path: str | os.PathLike[str],
    source: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Read, parse and check the file at ``path``; ``source`` is how messages name it.

    With ``environ`` the file is a template whose ``${VAR}`` placeholders it fills in;
    without, it is taken literally (``ecs-deploy --task-definition-file``, as the
    original tool). Reads at most MAX_TASK_DEFINITION_BYTES, so ``/dev/zero`` or a wrong
    file is refused instead of filling memory. Raises TaskDefinitionError for every
    problem, reading too.
    """
    name = str(path) if source is None else source
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_TASK_DEFINITION_BYTES + 1)
    except OSError as error:
        raise TaskDefinitionError(f"cannot read {name}: {error.strerror or error}") from None
    if len(data) > MAX_TASK_DEFINITION_BYTES:
        _fail(
            name,
            f"larger than {MAX_TASK_DEFINITION_BYTES // 1024} KiB, the limit for a task"
            " definition file: is it the right file?",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        _fail(name, f"line {line}: byte 0x{data[error.start]:02x} is not UTF-8 text")
    return parse_task_definition_file(text, name, environ=environ)


def parse_task_definition_file(
    text: str, source: str, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Parse a task definition file (a template when ``environ`` is given) into a
    registration input.

    Accepts the bare task definition and the ``{"taskDefinition": {...}, "tags": [...]}``
    that ``aws ecs describe-task-definition`` prints; read-only keys and nulls are
    dropped; keys RegisterTaskDefinition does not know, and values of the wrong type,
    are an error naming their key path (a typo would otherwise vanish, or fail the deploy).
    """
    if environ is None:
        return _parse(text, source)
    text, values = _filled_in(text, source, environ)
    try:
        return _parse(text, source)
    except TaskDefinitionError as error:
        raise TaskDefinitionError(Redactor(values).scrub(str(error))) from None


def _filled_in(text: str, source: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """The template's text with every placeholder resolved, and the values put in.

    Line by line, so each problem names its line: JSON strings never span lines.
    """
    used: list[str] = []
    escaped = _JsonEscaped(environ, used)
    lines: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if "$" not in line:
            lines.append(line)
            continue
        try:
            lines.append(interpolate(line, escaped))
        except InterpolationError as error:
            problems.extend(f"{source}:{number}: {problem}" for problem in error.problems)
    if problems:
        raise TaskDefinitionError("; ".join(problems))
    return "".join(lines), used


class _JsonEscaped(Mapping[str, str]):
    """The environment, each value escaped as JSON string content and remembered."""

    def __init__(self, environ: Mapping[str, str], used: list[str]) -> None:
        self._environ = environ
        self._used = used

    def __getitem__(self, name: str) -> str:
        value = self._environ[name]
        self._used.append(value)
        return json.dumps(value, ensure_ascii=False)[1:-1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def _parse(text: str, source: str) -> dict[str, Any]:
    data = _json(text, source)
    if not isinstance(data, dict):
        _fail(source, "expected a JSON object holding a task definition")
    if isinstance(data.get("taskDefinition"), dict):
        definition = dict(data["taskDefinition"])
        if "tags" in data:
            definition.setdefault("tags", data["tags"])
    else:
        definition = data
    definition = {k: v for k, v in definition.items() if v is not None and k not in READ_ONLY_KEYS}

    unknown = sorted(set(definition) - registerable_keys())
    if unknown:
        _fail(source, f"keys RegisterTaskDefinition does not accept: {', '.join(unknown)}")
    family = definition.get("family")
    if not isinstance(family, str) or not family:
        _fail(source, "the task definition has no family")
    if not _FAMILY.fullmatch(family):
        _fail(
            source,
            f"family: up to 255 letters, digits, hyphens and underscores, got {_shown(family)}",
        )
    _check_containers(definition, source)
    problems: list[str] = []
    shape = ecs_service_model().operation_model("RegisterTaskDefinition").input_shape
    assert shape is not None  # the operation has had an input since ECS began
    checked = _conform(definition, shape, "", problems)
    if problems:
        more = len(problems) - _SHOWN_PROBLEMS
        shown = problems[:_SHOWN_PROBLEMS] + ([f"and {more} more"] if more > 0 else [])
        _fail(source, "; ".join(shown))
    return registration_input(checked)


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        _fail(source, f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}")
    except RecursionError:
        _fail(source, "not a task definition: JSON nested deeper than Python can read")
    except ValueError as error:  # NaN, Infinity, or an integer of thousands of digits
        _fail(source, f"not valid JSON: {error}")


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _check_containers(definition: dict[str, Any], source: str) -> None:
    containers = definition.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        _fail(source, f"task definition {definition['family']!r} has no containerDefinitions")
    for container in containers:
        if not isinstance(container, dict) or not isinstance(container.get("name"), str):
            _fail(
                source,
                f"task definition {definition['family']!r} has a container without a name",
            )


def _fail(source: str, message: str) -> NoReturn:
    raise TaskDefinitionError(f"{source}: {message}")


def _conform(value: Any, shape: Shape, path: str, problems: list[str]) -> Any:
    """``value`` without nulls; each member of the wrong type or unknown goes to ``problems``.

    Values are never quoted: a wrongly typed secret must not reach any output.
    """
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        assert isinstance(shape, StructureShape)
        result = {}
        for key, item in value.items():
            where = _join(path, key)
            if item is None:
                continue
            if key not in shape.members:
                problems.append(f"{where}: unknown key")
                continue
            result[key] = _conform(item, shape.members[key], where, problems)
        problems.extend(
            f"{_join(path, key)}: required" for key in shape.required_members if key not in result
        )
        return result
    if kind == "list" and isinstance(value, list):
        member: Shape = shape.member  # type: ignore[attr-defined]
        return [_conform(item, member, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    if kind == "map" and isinstance(value, dict):
        mapped: Shape = shape.value  # type: ignore[attr-defined]
        return {
            key: _conform(item, mapped, _join(path, key), problems)
            for key, item in value.items()
            if item is not None
        }
    if _scalar_fits(kind, value):
        return value
    got = _kind_of(value)
    hint = " (quote it)" if kind == "string" and got in ("a number", "a boolean") else ""
    problems.append(f"{path}: expected {_expected(shape)}, got {got}{hint}")
    return value


def _scalar_fits(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("integer", "long"):
        low, high = _INTEGER_RANGE if kind == "integer" else (-(2**63), 2**63 - 1)
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind in ("double", "float"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return kind not in ("structure", "list", "map")  # timestamps, blobs: ECS judges them


def _expected(shape: Shape, *, many: bool = False) -> str:
    """What a member should hold (``many``: several of them), naming an object's few keys."""
    kind = shape.type_name
    if kind == "list":
        return f"a list of {_expected(shape.member, many=True)}"  # type: ignore[attr-defined]
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        keys = list(shape.members)
        listed = f" ({', '.join(keys)})" if len(keys) <= _LISTED_MEMBERS else ""
        return ("objects" if many else "an object") + listed
    if kind == "integer" and not many:
        return f"an integer from {_INTEGER_RANGE[0]} to {_INTEGER_RANGE[1]}"
    one, several = _KINDS.get(kind, (f"a {kind}", f"{kind}s"))
    return several if many else one


_KINDS: Final = {
    "map": ("an object", "objects"),
    "string": ("a string", "strings"),
    "boolean": ("true or false", "booleans"),
    "integer": ("an integer", "integers"),
    "long": ("an integer", "integers"),
}


def _kind_of(value: Any) -> str:
    """A value's JSON type, never the value itself."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _join(path: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:30]!r}... ({len(text):,} characters)"
