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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ecs_deploy_many.plan.checks import INVALID, Interpolated
from ecs_deploy_many.plan.interpolate import InterpolationError, interpolate
from ecs_deploy_many.plan.issues import Issues, KeyPath

__all__ = ["Document", "read_document"]

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Document:
    """The plan as plain data, and the line where each key path was written."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)


def read_document(text: str, environ: Mapping[str, str], issues: Issues) -> Document | None:
    """Compose and build the YAML; None (with the issue recorded) when it is not YAML."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        issues.add((), f"invalid YAML: {exc.problem or exc.context}", line=line)
        return None
    except yaml.YAMLError as exc:
        issues.add((), f"invalid YAML: {exc}")
        return None
    document = Document(data=None)
    issues.lines = document.lines
    if root is not None:
        document.lines[()] = root.start_mark.line + 1
        document.data = _Builder(document, environ, issues).build(root, ())
    return document


class _Builder:
    """Walks composed nodes once, building data and recording lines and problems."""

    def __init__(self, document: Document, environ: Mapping[str, str], issues: Issues) -> None:
        self._lines = document.lines
        self._environ = environ
        self._issues = issues
        self._loader = yaml.SafeLoader("")
        self._active: set[int] = set()

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        if id(node) in self._active:
            self._issues.add(path, "an alias refers to itself", line=_line(node))
            return INVALID
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path)
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

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
            return INVALID


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1
