"""The deploy plan: typed model and the YAML loader with file:line errors.

``load_plan`` reads and validates a plan file into a frozen ``Plan``; ``select`` narrows
it for ``--only`` / ``--exclude``, and ``shard`` takes one runner's share of it
(``--shard K/N``). Every problem in a plan is reported at once, as one
``PlanError`` whose issues name file, line and key.
"""

from __future__ import annotations

from ecs_deploy_many.plan.interpolate import InterpolationError, interpolate
from ecs_deploy_many.plan.load import load_plan, parse_plan
from ecs_deploy_many.plan.model import FailureBudget, OnFailure, Plan, Polling, Wave
from ecs_deploy_many.plan.select import DependencyChoice, select
from ecs_deploy_many.plan.shard import shard

__all__ = [
    "DependencyChoice",
    "FailureBudget",
    "InterpolationError",
    "OnFailure",
    "Plan",
    "Polling",
    "Wave",
    "interpolate",
    "load_plan",
    "parse_plan",
    "select",
    "shard",
]
