"""Read a plan's YAML into plain data plus the line of every key, interpolating as it goes.

PyYAML's ``safe_load`` forgets where values came from, so the plan is composed into
nodes and built by hand: each mapping key and list item records its line under its key
path, which is how every later error can say ``file:line: key``.

Choices that differ from plain ``safe_load``, each to make plans less surprising:

- Mapping keys are taken as written (``on:`` is the key ``"on"``, not ``True``).
- A duplicate key is an error instead of silently keeping the last value.
- ``${VAR}`` references are expanded in string values (never in keys). The result is an
  ``Interpolated`` string, which checks for numbers and booleans read as one, so
  ``desired_count: ${COUNT}`` works, while a tag ``${RELEASE}`` of ``1.10`` stays "1.10".
- Merge keys (``<<: *anchor``) work; keys written in the mapping win over merged ones.

Input is bounded before it can cost much: the text's size, how many values it writes,
how deeply they nest, and how many values aliases may build (a few hundred bytes of
nested aliases would otherwise expand to billions). Each limit, when reached, is one
located plan issue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

import yaml

from ecs_deploy_many.plan.checks import INVALID, Interpolated
from ecs_deploy_many.plan.interpolate import InterpolationError, interpolate
from ecs_deploy_many.plan.issues import Issues, KeyPath

__all__ = [
    "MAX_ALIAS_VALUES",
    "MAX_NESTING",
    "MAX_PLAN_BYTES",
    "MAX_VALUES",
    "Document",
    "line_at",
    "read_document",
    "size_problem",
]

MAX_PLAN_BYTES: Final = 1024 * 1024
"""A plan's largest size: room for about 9,000 targets written one per line."""
MAX_VALUES: Final = 150_000
"""How many values (keys included) a plan may write: PyYAML's nodes take ~600 bytes each."""
MAX_NESTING: Final = 32
"""How deeply mappings and lists may nest; a plan's own keys need fewer than 10 levels."""
MAX_ALIAS_VALUES: Final = 100_000
"""How many values aliases (``*name``, ``<<: *name``) may build in all."""

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
"""What YAML counts as a line break, so a position becomes the line an editor shows."""
_NO_CONSTRUCTOR = (ArithmeticError, LookupError, TypeError, ValueError, AttributeError)
"""What PyYAML's scalar constructors raise on values their tag cannot hold
(``!!int abc``, ``!!bool maybe``, ``2024-13-45``, an integer of 5,000 digits)."""


class _Unreadable(Exception):
    """The plan is read no further: it is not YAML, or a bound was reached."""

    def __init__(self, line: int, path: KeyPath, message: str) -> None:
        super().__init__(message)
        self.line, self.path, self.message = line, path, message


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, composing at most MAX_VALUES nodes nested MAX_NESTING deep.

    PyYAML composes recursively: without a bound, deep brackets end in a RecursionError.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._values = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        self._values += 1
        try:
            if self._depth > MAX_NESTING:
                self._refuse(f"nested more than {MAX_NESTING} levels deep", "flatten it")
            if self._values > MAX_VALUES:
                self._refuse(
                    f"more than {MAX_VALUES:,} values (keys count too)",
                    "split it into several plans",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _refuse(self, problem: str, fix: str) -> NoReturn:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        raise _Unreadable(mark.line + 1, (), f"{problem}, the limit for a plan: {fix}")


@dataclass
class Document:
    """The plan as plain data, and the line where each key path was written."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)


def line_at(text: str, position: int) -> int:
    """The line (from 1) holding character ``position`` of ``text``."""
    return len(_LINE_BREAK.findall(text, 0, position)) + 1


def read_document(text: str, environ: Mapping[str, str], issues: Issues) -> Document | None:
    """Compose and build the YAML; None (with the issue recorded) when it cannot be read."""
    too_large = size_problem(len(text))
    if too_large:
        issues.add((), too_large)
        return None
    document = Document(data=None)
    try:
        root = _compose(text)
        issues.lines = document.lines
        if root is not None:
            document.lines[()] = root.start_mark.line + 1
            document.data = _Builder(document, environ, issues).build(root, ())
    except _Unreadable as stop:
        issues.add(stop.path, stop.message, line=stop.line)
        return None
    return document


def _compose(text: str) -> yaml.Node | None:
    """The YAML's node graph; _Unreadable, located, when the text is not YAML."""
    try:
        loader = _Loader(text)  # reads the text, refusing characters YAML does not allow
    except yaml.reader.ReaderError as exc:
        raise _Unreadable(
            line_at(text, exc.position),
            (),
            f"invalid YAML: character #x{exc.character:04x} is not allowed in a plan: {exc.reason}",
        ) from None
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else loader.line + 1
        raise _Unreadable(line, (), f"invalid YAML: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        # PyYAML's scanner passes an escape beyond Unicode ("\\UFFFFFFFF") to chr().
        raise _Unreadable(loader.line + 1, (), f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def size_problem(size: int) -> str | None:
    """Why a plan of ``size`` bytes (or characters) is not read, or None when it is."""
    if size <= MAX_PLAN_BYTES:
        return None
    return (
        f"the plan is larger than {MAX_PLAN_BYTES // 1024 // 1024} MiB, the limit for a plan:"
        " split it into several plans"
    )


class _Builder:
    """Walks composed nodes once, building data and recording lines and problems."""

    def __init__(self, document: Document, environ: Mapping[str, str], issues: Issues) -> None:
        self._lines = document.lines
        self._environ = environ
        self._issues = issues
        self._loader = yaml.SafeLoader("")
        self._active: set[int] = set()
        self._built: set[int] = set()
        self._through_aliases = 0

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        if id(node) in self._active:
            self._issues.add(path, "an alias refers to itself", line=_line(node))
            return INVALID
        self._count(node, path)
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path)
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _count(self, node: yaml.Node, path: KeyPath) -> None:
        """A node built a second time is built through an alias: those are bounded."""
        if id(node) not in self._built:
            self._built.add(id(node))
            return
        self._through_aliases += 1
        if self._through_aliases > MAX_ALIAS_VALUES:
            top = path[:1]
            raise _Unreadable(
                self._lines.get(top, _line(node)),
                top,
                f"aliases expand to more than {MAX_ALIAS_VALUES:,} values, the limit for a"
                " plan: use defaults, or fewer nested aliases",
            )

    def _sequence(self, node: yaml.SequenceNode, path: KeyPath) -> list[Any]:
        items = []
        for index, child in enumerate(node.value):
            self._lines[(*path, index)] = _line(child)
            items.append(self.build(child, (*path, index)))
        return items

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._issues.add(path, "a key must be a plain string", line=_line(key_node))
                continue
            key: str = key_node.value
            if key in result:
                first = self._lines[(*path, key)]
                self._issues.add(
                    (*path, key),
                    f"duplicate key (first written at line {first})",
                    line=_line(key_node),
                )
                continue
            self._lines[(*path, key)] = _line(key_node)
            result[key] = self.build(value_node, (*path, key))
        for source in merged:
            self._merge(source, path, result)
        return result

    def _merge(self, source: yaml.Node, path: KeyPath, result: dict[str, Any]) -> None:
        """Fill keys missing from ``result`` from a ``<<:`` mapping (or a list of them)."""
        for mapping in source.value if isinstance(source, yaml.SequenceNode) else [source]:
            if not isinstance(mapping, yaml.MappingNode):
                self._issues.add(path, "<< must merge a mapping", line=_line(mapping))
                continue
            if id(mapping) in self._active:
                self._issues.add(path, "a mapping merges itself", line=_line(mapping))
                continue
            self._count(mapping, path)
            self._active.add(id(mapping))
            try:
                self._merge_keys(mapping, path, result)
            finally:
                self._active.discard(id(mapping))

    def _merge_keys(self, mapping: yaml.MappingNode, path: KeyPath, result: dict[str, Any]) -> None:
        for key_node, value_node in mapping.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(value_node, path, result)
            elif isinstance(key_node, yaml.ScalarNode) and key_node.value not in result:
                self._lines[(*path, key_node.value)] = _line(key_node)
                result[key_node.value] = self.build(value_node, (*path, key_node.value))

    def _scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        if node.tag != _STR_TAG or "$" not in node.value:
            return self._construct(node, path)
        try:
            value = interpolate(node.value, self._environ)
        except InterpolationError as exc:
            for problem in exc.problems:
                self._issues.add(path, problem, line=_line(node))
            return INVALID
        return Interpolated(value) if value != node.value else value

    def _construct(self, node: yaml.Node, path: KeyPath) -> Any:
        try:
            return self._loader.construct_object(node)
        except yaml.constructor.ConstructorError as exc:
            self._issues.add(path, f"cannot read value: {exc.problem}", line=_line(node))
        except _NO_CONSTRUCTOR:
            kind = node.tag.rpartition(":")[2]
            self._issues.add(
                path,
                f"cannot read {_shown(node.value)} as !!{kind}: quote it if it is text",
                line=_line(node),
            )
        return INVALID


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _shown(raw: str) -> str:
    """A scalar as written, shortened: a 5,000-digit number need not be echoed whole."""
    return repr(raw) if len(raw) <= 40 else f"{raw[:30]!r}... ({len(raw):,} characters)"
