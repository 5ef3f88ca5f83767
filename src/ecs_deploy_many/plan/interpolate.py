"""``${VAR}`` interpolation in plan strings, from a mapping the caller passes in.

Three forms are recognised and nothing is ever handed to a shell:

- ``${NAME}``: the value of NAME; a plan error when NAME is not set.
- ``${NAME:-fallback}``: the value of NAME, or ``fallback`` when NAME is unset or empty.
- ``$${``: a literal ``${`` (for text that must reach ECS unexpanded).

Any other ``$`` is kept as written, so ``$HOME`` or ``a$b`` pass through untouched.
The fallback is literal text: references do not nest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ecs_deploy_many.core.errors import InterpolationError

__all__ = ["InterpolationError", "interpolate"]

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)(\}?)")
_REFERENCE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<fallback>.*))?", re.DOTALL)


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Expand the references in ``text``; raise InterpolationError listing all bad ones."""
    problems: list[str] = []

    def expand(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body, closed = match.group(1), match.group(2)
        reference = _REFERENCE.fullmatch(body)
        if not closed or reference is None:
            shown = match.group(0) if closed else match.group(0) + "..."
            problems.append(
                f"bad variable reference {shown!r}: use ${{NAME}} or ${{NAME:-default}}"
                " (write $${ for a literal ${)"
            )
            return ""
        name, fallback = reference.group("name"), reference.group("fallback")
        value = environ.get(name)
        if fallback is not None:
            return value or fallback
        if value is None:
            problems.append(f"variable {name} is not set and ${{{name}}} has no default")
            return ""
        return value

    result = _TOKEN.sub(expand, text)
    if problems:
        raise InterpolationError(problems)
    return result
