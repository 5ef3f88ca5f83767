"""``ecs-deploy-many iam-policy PLAN`` and ``ecs-deploy --print-iam-policy``: print the
IAM policy a run needs (``deploy.iam_policy``), calling nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncclick as click

from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.iam_policy import PolicyInputs, grants_for, policy_document
from ecs_deploy_many.plan import Plan

__all__ = ["inputs_of", "print_plan_policy", "print_policy"]


def inputs_of(plan: Plan, options: dict[str, Any]) -> PolicyInputs:
    """The flags of ``iam-policy`` that add calls, and the plan's pinning, as policy inputs."""
    return PolicyInputs(
        pin_digests=plan.images.pin_digests,
        account=options.get("account"),
        roles=tuple(options.get("roles") or ()),
        journal=options.get("journal"),
        run_table=options.get("run_table"),
        verify=not options.get("no_verify", False),
        stop_deployments=bool(options.get("stop_deployments_on_interrupt")),
        dry_run=options.get("for_") == "dry-run",
    )


def print_plan_policy(plan: Plan, options: dict[str, Any]) -> None:
    """Print the policy a run of ``plan`` (its selected targets) needs."""
    print_policy(plan, plan.targets, inputs_of(plan, options))


def print_policy(plan: Plan | None, targets: Sequence[Target], inputs: PolicyInputs) -> None:
    click.echo(json.dumps(policy_document(grants_for(plan, targets, inputs)), indent=2))
    if inputs.account is None and any(not t.scope.assume_role for t in targets):
        click.echo(
            "note: no --account given: ARNs name any account (*); give --account ID to "
            "scope them to yours",
            err=True,
        )
