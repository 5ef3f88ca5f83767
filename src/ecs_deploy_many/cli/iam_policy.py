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
    print_policy(plan, plan.targets, inputs_of(plan, options), explain=options["explain"])


MANAGED_POLICY_LIMIT = 6144
"""Characters (whitespace not counted) an IAM customer managed policy may hold."""


def print_policy(
    plan: Plan | None, targets: Sequence[Target], inputs: PolicyInputs, *, explain: bool = False
) -> None:
    """Print the policy document; say on stderr what it leaves to the reader and, with
    ``explain``, which feature needs each statement."""
    grants = grants_for(plan, targets, inputs)
    document = policy_document(grants)
    click.echo(json.dumps(document, indent=2))
    if explain:
        width = max(len(grant.sid) for grant in grants)
        for grant in grants:
            click.echo(f"{grant.sid:<{width}}  {grant.feature}", err=True)
    size = len(json.dumps(document, separators=(",", ":")).replace(" ", ""))
    if size > MANAGED_POLICY_LIMIT:
        click.echo(
            f"note: the policy holds {size:,} characters, more than one managed policy "
            f"may ({MANAGED_POLICY_LIMIT:,}): split the plan's targets over several "
            "policies (--only/--exclude)",
            err=True,
        )
    if inputs.account is None and any(not t.scope.assume_role for t in targets):
        click.echo(
            "note: no --account given: ARNs name any account (*); give --account ID to "
            "scope them to yours",
            err=True,
        )
