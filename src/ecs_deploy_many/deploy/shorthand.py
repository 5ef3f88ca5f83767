"""``--network-configuration`` as JSON or in the AWS CLI's shorthand syntax.

The original handed this flag to the AWS CLI, so both forms must keep working:
``awsvpcConfiguration={subnets=[subnet-1,subnet-2],securityGroups=[sg-1],assignPublicIp=ENABLED}``.
The result is checked against RunTask's NetworkConfiguration shape in botocore's ECS model,
which also turns a lone value into a one-item list where the model wants a list, as the
AWS CLI does (``subnets=subnet-1``). Every problem is a ValueError naming the place.
A real configuration is a few hundred characters nested three deep, so longer or deeper
input is refused before it is parsed (nesting would otherwise exhaust the stack).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.model import ListShape, Shape, StringShape, StructureShape

from ecs_deploy_many.core.ecs_api import ecs_service_model

__all__ = ["parse_network_configuration"]

_SPECIAL = ",=[]{}"
# 16 subnets and 5 security groups, with the longest IDs, fit in well under 2,000.
MAX_LENGTH = 10_000
# awsvpcConfiguration={subnets=[...]} is three deep.
MAX_DEPTH = 10


class _Parser:
    """Recursive descent over ``key=value,...`` where a value is a word, ``[...]`` or ``{...}``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, message: str) -> ValueError:
        text = self.text if len(self.text) <= 80 else f"{self.text[:77]}..."
        return ValueError(f"{message} at character {self.pos + 1} of {text!r}")

    def peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise self.fail(
                f"expected {char!r} but found {found!r}" if found else f"missing {char!r}"
            )
        self.pos += 1

    def word(self) -> str:
        """A bare word up to the next special character, or a quoted string."""
        quote = self.peek()
        if quote in ("'", '"'):
            end = self.text.find(quote, self.pos + 1)
            if end < 0:
                raise self.fail("unterminated quote")
            value, self.pos = self.text[self.pos + 1 : end], end + 1
            return value
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SPECIAL:
            self.pos += 1
        value = self.text[start : self.pos].strip()
        if not value:
            raise self.fail("expected a value")
        return value

    def starts_pair(self) -> bool:
        """Whether a ``key=`` comes next, which ends a bare list such as ``a,b,c``."""
        saved = self.pos
        try:
            self.word()
            return self.peek() == "="
        except ValueError:
            return False
        finally:
            self.pos = saved

    def more(self, closing: str) -> bool:
        """Whether anything comes before ``closing``; running out of text first is an error."""
        char = self.peek()
        if not char and closing:
            raise self.fail(f"missing {closing!r}")
        return char != closing

    def value(self) -> Any:
        char = self.peek()
        if char not in ("{", "["):
            return self.word()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} deep")
        self.pos += 1
        if char == "{":
            value: Any = self.pairs(closing="}")
            self.expect("}")
        else:
            value = []
            while self.more("]"):
                if value:
                    self.expect(",")
                value.append(self.value())
            self.expect("]")
        self.depth -= 1
        return value

    def pairs(self, closing: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while self.more(closing):
            if result:
                self.expect(",")
            key = self.word()
            if key in result:
                raise self.fail(f"{key!r} given twice")
            self.expect("=")
            value = self.value()
            values = [value]
            while self.peek() == "," and not isinstance(value, dict | list):
                self.pos += 1
                if self.starts_pair():
                    self.pos -= 1
                    break
                values.append(self.word())
            result[key] = value if len(values) == 1 else values
        return result


def _conform(value: Any, shape: Shape, where: str) -> Any:
    """Check ``value`` against ``shape``; a lone value becomes a list where one is wanted."""
    if isinstance(shape, StructureShape):
        label = where or "the network configuration"
        if not isinstance(value, dict):
            raise ValueError(f"{label} must be an object with keys {', '.join(shape.members)}")
        unknown = sorted(set(value) - set(shape.members))
        if unknown:
            raise ValueError(
                f"{label}: unknown key {', '.join(unknown)} (expected {', '.join(shape.members)})"
            )
        missing = [key for key in shape.required_members if key not in value]
        if missing:
            raise ValueError(f"{label}: {', '.join(missing)} is required")
        return {
            key: _conform(item, shape.members[key], f"{where}.{key}" if where else key)
            for key, item in value.items()
        }
    if isinstance(shape, ListShape):
        items = value if isinstance(value, list) else [value]
        return [_conform(item, shape.member, f"{where}[{i}]") for i, item in enumerate(items)]
    if isinstance(shape, StringShape):
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {json.dumps(value)}")
        if shape.enum and value not in shape.enum:
            raise ValueError(f"{where} must be one of {', '.join(shape.enum)}, got {value!r}")
        return value
    return value


def parse_network_configuration(text: str) -> dict[str, Any]:
    """The NetworkConfiguration for RunTask, from JSON or the AWS CLI shorthand."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("the network configuration is empty")
    if len(stripped) > MAX_LENGTH:
        raise ValueError(
            f"the network configuration is {len(stripped):,} characters; at most "
            f"{MAX_LENGTH:,} are accepted"
        )
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise ValueError(f"not valid JSON: {err.msg} at column {err.colno}") from err
        except RecursionError as err:  # the decoder nests one call per bracket
            raise ValueError("not valid JSON: nested too deeply") from err
    else:
        parser = _Parser(stripped)
        data = parser.pairs(closing="")
    shape = ecs_service_model().shape_for("NetworkConfiguration")
    conformed: dict[str, Any] = _conform(data, shape, "")
    return conformed
