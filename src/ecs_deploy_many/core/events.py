"""The typed events a run emits; logs, progress views and reports subscribe to them.

The pipeline and the engine never print. They emit ``TargetEvent``s to an ``Observer``;
``observe.log`` turns them into structlog lines, and later subscribers (live view,
journal, reports) read the same stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ecs_deploy_many.core.target import Target

__all__ = ["Level", "Observer", "Step", "TargetEvent", "fan_out"]

Step = Literal[
    "resolve",
    "render",
    "register",
    "update",
    "wait",
    "rollback",
    "cleanup",
    "run_task",
    "bake",
    "done",
]
Level = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class TargetEvent:
    """Something that happened to one target, with the facts of the step."""

    target: Target
    step: Step
    event: str
    at: float
    facts: Mapping[str, Any] = field(default_factory=dict)
    level: Level = "info"


Observer = Callable[[TargetEvent], None]


def fan_out(*observers: Observer) -> Observer:
    """One observer that hands every event to each of ``observers`` in turn."""

    def observe(event: TargetEvent) -> None:
        for observer in observers:
            observer(event)

    return observe
