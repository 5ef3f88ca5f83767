"""The least-privilege IAM policy a run of some targets needs, derived from them alone.

Each statement (a ``Grant``) names the feature of the plan that makes its calls, and each
action is scoped to the narrowest resource ECS and IAM support (the Service
Authorization Reference): services by cluster and name, one-off tasks by family and
cluster, the ECR repositories, alarms, lock table and journal the plan names. Actions
that take no resource (RegisterTaskDefinition, DescribeTaskDefinition, ListClusters,
ListTaskDefinitions, DeregisterTaskDefinition, ListServices and ListTasks across every
cluster) are granted on ``"*"`` in statements of their own.

What the targets do not say is widened on purpose, and only to one account and region:
a service target's task and execution roles are those of the revision it runs, unknown
without reading AWS, so ``iam:PassRole`` names every role of the account unless the
plan (a ``task_definition_file``, ``task_role``/``execution_role``) or ``roles`` name
them all; a selector's cluster globs become IAM wildcards; an account the plan does not
name (no ``assume_role``) is ``account``, else ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ecs_deploy_many.core.errors import ImageError
from ecs_deploy_many.core.images import ECR_REGISTRY, parse_image
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.pipeline import registers_revision
from ecs_deploy_many.plan.model import Plan

__all__ = ["Grant", "PolicyInputs", "grants_for", "policy_document"]

VERSION = "2012-10-17"
ANY = "*"
TASKS_SERVICE = "ecs-tasks.amazonaws.com"
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(?P<account>[0-9]{12}):role/.+")
_GLOB_CLASS = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Grant:
    """One statement: the feature that needs it, its actions, resources and condition."""

    sid: str
    feature: str
    """What in the plan (or flags) makes these calls, for people and tests."""
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]] | None = None
    in_dry_run: bool = False
    """A dry run makes these calls too (it reads, never changes)."""


@dataclass(frozen=True)
class PolicyInputs:
    """What a run does besides its targets: the flags that add AWS calls."""

    account: str | None = None
    """The account of targets that assume no role (None: any, ``*``)."""
    roles: tuple[str, ...] = ()
    """Task and execution role ARNs the run may pass; given, they replace the wildcard."""
    journal: str | None = None
    """``s3://bucket/prefix`` when the journal (and approvals) live in S3."""
    run_table: str | None = None
    verify: bool = True
    pin_digests: bool = True
    """Whether ECR tags are pinned to digests (a plan's ``images: {pin_digests}``)."""
    stop_deployments: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class _Scope:
    account: str
    region: str

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


@dataclass
class _Needs:
    """What the targets of one account and region call, gathered before the grants."""

    services: set[tuple[str, str]] = field(default_factory=set)
    cluster_globs: set[str] = field(default_factory=set)
    registers: bool = False
    tagged_families: set[str] = field(default_factory=set)
    runs: set[tuple[str, str]] = field(default_factory=set)
    """(family, cluster) of one-off tasks."""
    cleanup: bool = False
    roles: set[str] = field(default_factory=set)
    unknown_roles: bool = False
    repositories: set[str] = field(default_factory=set)
    """ECR repository ARNs of the images named."""
    retags: bool = False


def grants_for(plan: Plan | None, targets: Sequence[Target], inputs: PolicyInputs) -> list[Grant]:
    """Every grant a run of ``targets`` (of ``plan``, if from one) needs, in a stable order."""
    needs: dict[_Scope, _Needs] = {}
    assumed: set[str] = set()
    for target in targets:
        scope = _scope_of(target, inputs)
        _gather(needs.setdefault(scope, _Needs()), target, scope, inputs)
        if target.scope.assume_role:
            assumed.add(target.scope.assume_role)
    grants: list[Grant] = []
    if assumed:
        grants.append(
            Grant(
                "AssumeTargetRoles",
                "targets' assume_role",
                ("sts:AssumeRole",),
                _sorted(assumed),
                in_dry_run=True,
            )
        )
    accounts = sorted({scope.account for scope in needs})
    for account in accounts:
        found = [
            grant
            for scope in sorted(needs, key=lambda s: s.region)
            if scope.account == account
            for grant in _ecs_grants(scope, needs[scope], inputs)
            + _reference_grants(scope, needs[scope], inputs)
        ]
        several = len(accounts) > 1  # each account's statements named after it
        grants.extend(_suffixed(g, account) if several else g for g in _merged(found))
    if plan is not None:
        grants.extend(_plan_grants(plan, inputs))
    if inputs.journal and not inputs.dry_run:
        grants.extend(_journal_grants(inputs.journal))
    if inputs.run_table and not inputs.dry_run:
        table = f"arn:aws:dynamodb:{ANY}:{inputs.account or ANY}:table/{inputs.run_table}"
        grants.append(
            Grant(
                "ShareRunTable",
                "--run-table (shards share a failure budget)",
                ("dynamodb:GetItem", "dynamodb:UpdateItem"),
                (table,),
            )
        )
    return [g for g in grants if g.in_dry_run or not inputs.dry_run]


def policy_document(grants: Iterable[Grant]) -> dict[str, Any]:
    """The IAM policy document of ``grants``."""
    statements = []
    for grant in grants:
        statement: dict[str, Any] = {
            "Sid": grant.sid,
            "Effect": "Allow",
            "Action": list(grant.actions),
            "Resource": grant.resources[0] if len(grant.resources) == 1 else list(grant.resources),
        }
        if grant.condition:
            statement["Condition"] = {op: dict(keys) for op, keys in grant.condition.items()}
        statements.append(statement)
    return {"Version": VERSION, "Statement": statements}


def _scope_of(target: Target, inputs: PolicyInputs) -> _Scope:
    role = _ROLE_ARN.fullmatch(target.scope.assume_role or "")
    account = role["account"] if role else inputs.account or ANY
    return _Scope(account, target.scope.region or ANY)


def _gather(needs: _Needs, target: Target, scope: _Scope, inputs: PolicyInputs) -> None:
    if target.selector is not None and target.service is None:
        needs.cluster_globs.update(_iam_wildcard(glob) for glob in target.selector.clusters)
    elif target.kind == "service":
        needs.services.add((str(target.cluster), str(target.service)))
    registers = registers_revision(target)
    needs.registers |= registers
    family = _family(target)
    body = target.task_definition_body or {}
    if registers and (target.copy_task_definition_tags or body.get("tags")):
        needs.tagged_families.add(family or ANY)
    if target.run_task and target.cluster:
        needs.runs.add((family or ANY, target.cluster))
    needs.cleanup |= bool(target.max_definitions)
    if registers or target.run_task:
        _gather_roles(needs, target, scope, inputs)
    for image in (target.image, *target.containers.values()):
        if image and (repository := _repository(image)):
            needs.repositories.add(repository)
    needs.retags |= target.tag_only is not None


def _gather_roles(needs: _Needs, target: Target, scope: _Scope, inputs: PolicyInputs) -> None:
    """The roles the rendered definition names, or that they cannot be known here."""
    body = target.task_definition_body or {}
    named = [
        target.edits.task_role or body.get("taskRoleArn"),
        target.edits.execution_role or body.get("executionRoleArn"),
    ]
    needs.roles.update(_role_arn(role, scope) for role in named if role)
    from_file = target.task_definition_body is not None
    if not from_file and not all(named) and not inputs.roles:
        needs.unknown_roles = True


def _ecs_grants(scope: _Scope, needs: _Needs, inputs: PolicyInputs) -> list[Grant]:
    grants = [
        Grant(
            "ReadTaskDefinitions",
            "every target: its current revision is read",
            ("ecs:DescribeTaskDefinition",),
            (ANY,),
            in_dry_run=True,
        )
    ]
    services = sorted(scope.arn("ecs", f"service/{c}/{s}") for c, s in needs.services)
    services += sorted(scope.arn("ecs", f"service/{glob}/*") for glob in needs.cluster_globs)
    if needs.cluster_globs:
        clusters = sorted(scope.arn("ecs", f"cluster/{glob}") for glob in needs.cluster_globs)
        grants += [
            Grant(
                "FindSelectedClusters",
                "select: targets (cluster globs)",
                ("ecs:ListClusters",),
                (ANY,),
                in_dry_run=True,
            ),
            Grant(
                "FindSelectedServices",
                "select: targets (services of the matching clusters)",
                ("ecs:ListServices",),
                (ANY,),
                {"ArnLike": {"ecs:cluster": clusters}},
                in_dry_run=True,
            ),
        ]
    if services:
        grants.append(
            Grant(
                "ReadServices",
                "service targets: read and wait",
                ("ecs:DescribeServices",),
                tuple(services),
                in_dry_run=True,
            )
        )
        history = [s.replace(":service/", ":service-deployment/", 1) + "/*" for s in services]
        revisions = [s.replace(":service/", ":service-revision/", 1) + "/*" for s in services]
        grants += [
            Grant(
                "DeployServices",
                "service targets: update (and roll back), then find ECS's service deployment",
                ("ecs:UpdateService", "ecs:ListServiceDeployments"),
                tuple(services),
            ),
            Grant(
                "ReadServiceDeployments",
                "service targets: ECS's verdict on a strategy's deployment",
                ("ecs:DescribeServiceDeployments", "ecs:DescribeServiceRevisions"),
                tuple(history + revisions),
            ),
        ]
        if inputs.stop_deployments:
            grants.append(
                Grant(
                    "StopServiceDeployments",
                    "--stop-deployments-on-interrupt",
                    ("ecs:StopServiceDeployment",),
                    tuple(history),
                )
            )
    if needs.registers:
        grants.append(
            Grant(
                "RegisterTaskDefinitions",
                "targets that change a task definition",
                ("ecs:RegisterTaskDefinition",),
                (ANY,),
            )
        )
    if needs.tagged_families:
        families = sorted(scope.arn("ecs", f"task-definition/{f}:*") for f in needs.tagged_families)
        grants.append(
            Grant(
                "TagNewRevisions",
                "copy_task_definition_tags, or tags in a task_definition_file",
                ("ecs:TagResource",),
                tuple(families),
                {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
            )
        )
    for family, cluster in sorted(needs.runs):
        name = "".join(
            part.title() for part in re.split(r"[^A-Za-z0-9]+", f"{family} {cluster}") if part
        )
        grants += [
            Grant(
                f"RunTask{name}",
                "run_task targets: the one-off task",
                ("ecs:RunTask",),
                (scope.arn("ecs", f"task-definition/{family}:*"),),
                {"ArnEquals": {"ecs:cluster": scope.arn("ecs", f"cluster/{cluster}")}},
            ),
            Grant(
                f"WatchTask{name}",
                "run_task targets: wait for the task",
                ("ecs:DescribeTasks",),
                (scope.arn("ecs", f"task/{cluster}/*"),),
            ),
        ]
    if needs.cleanup:
        grants += [
            Grant(
                "CleanUpRevisions",
                "max_definitions: deregister old revisions",
                ("ecs:ListTaskDefinitions", "ecs:DeregisterTaskDefinition"),
                (ANY,),
            ),
            Grant(
                "FindRevisionsInUse",
                "max_definitions: spare revisions any cluster uses",
                ("ecs:ListClusters", "ecs:ListServices", "ecs:ListTasks"),
                (ANY,),
            ),
            Grant(
                "ReadRevisionsInUse",
                "max_definitions: spare revisions any cluster uses",
                ("ecs:DescribeServices", "ecs:DescribeTasks"),
                (scope.arn("ecs", "service/*/*"), scope.arn("ecs", "task/*/*")),
            ),
        ]
    if needs.roles or needs.unknown_roles:
        roles = set(needs.roles) | {_role_arn(role, scope) for role in inputs.roles}
        if needs.unknown_roles:
            roles.add(f"arn:aws:iam::{scope.account}:role/*")
        grants.append(
            Grant(
                "PassTaskRoles",
                "registered revisions and one-off tasks: their task and execution roles",
                ("iam:PassRole",),
                _sorted(roles),
                {"StringEquals": {"iam:PassedToService": TASKS_SERVICE}},
            )
        )
    return grants


def _reference_grants(scope: _Scope, needs: _Needs, inputs: PolicyInputs) -> list[Grant]:
    """Reads of what the definitions reference: digest pinning and ``verify``."""
    repositories = set(needs.repositories)
    if needs.retags:  # the repository is the running container's
        repositories.add(f"arn:aws:ecr:{scope.region}:{scope.account}:repository/*")
    # A dry run shows the digests a run would pin; it verifies nothing.
    reads_images = inputs.pin_digests or (inputs.verify and not inputs.dry_run)
    grants = []
    if repositories and reads_images:
        grants.append(
            Grant(
                "ReadImages",
                "images: pin_digests, and verify (ECR images)",
                ("ecr:BatchGetImage",),
                _sorted(repositories),
                in_dry_run=True,
            )
        )
    if inputs.verify and not inputs.dry_run:
        grants += [
            Grant(
                "VerifySecrets",
                "verify: secrets exist",
                ("secretsmanager:DescribeSecret",),
                (scope.arn("secretsmanager", "secret:*"),),
            ),
            Grant(
                "VerifyParameters",
                "verify: SSM parameters exist",
                ("ssm:GetParameters",),
                (scope.arn("ssm", "parameter/*"),),
            ),
            Grant(
                "VerifyRoles",
                "verify: task and execution roles exist",
                ("iam:GetRole",),
                (f"arn:aws:iam::{scope.account}:role/*",),
            ),
            Grant(
                "VerifyLogGroups",
                "verify: awslogs log groups exist",
                ("logs:DescribeLogGroups",),
                (scope.arn("logs", "log-group:*"),),
            ),
        ]
    return grants


def _plan_grants(plan: Plan, inputs: PolicyInputs) -> list[Grant]:
    """What the plan's run-wide keys call: alarm gates and the DynamoDB lock."""
    grants = []
    alarms: set[str] = set()
    for wave in plan.waves:
        if gate := wave.alarms:
            where = _Scope(inputs.account or ANY, gate.scope.region or ANY)
            alarms.update(where.arn("cloudwatch", f"alarm:{name}") for name in gate.names)
            alarms.update(where.arn("cloudwatch", f"alarm:{prefix}*") for prefix in gate.prefixes)
    if alarms:
        grants.append(
            Grant(
                "ReadWaveAlarms",
                "waves' alarms: gates",
                ("cloudwatch:DescribeAlarms",),
                _sorted(alarms),
            )
        )
    if plan.lock and plan.lock.table:
        where = _Scope(inputs.account or ANY, plan.lock.region or ANY)
        table = where.arn("dynamodb", f"table/{plan.lock.table}")
        actions = (
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        )
        grants.append(Grant("HoldRunLock", "lock: table (one run at a time)", actions, (table,)))
    return grants


def _journal_grants(journal: str) -> list[Grant]:
    bucket, _, prefix = journal.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    keys = f"{prefix}/*" if prefix else "*"
    return [
        Grant(
            "WriteJournal",
            "--journal s3://: the run journal and approvals",
            ("s3:GetObject", "s3:PutObject"),
            (f"arn:aws:s3:::{bucket}/{keys}",),
        ),
        Grant(
            "ListJournal",
            "--journal s3://: finding runs to resume or approve",
            ("s3:ListBucket",),
            (f"arn:aws:s3:::{bucket}",),
            {"StringLike": {"s3:prefix": [keys]}} if prefix else None,
        ),
    ]


def _merged(grants: Iterable[Grant]) -> list[Grant]:
    """One grant per purpose: the same statement of several regions of one account
    becomes one, with the resources (and condition values) of each region."""
    merged: dict[tuple[str, tuple[str, ...]], Grant] = {}
    for grant in grants:
        key = (grant.sid, grant.actions)
        earlier = merged.get(key)
        if earlier is None:
            merged[key] = grant
            continue
        condition = None
        if grant.condition and earlier.condition:
            condition = {
                op: {k: _union(earlier.condition[op][k], v) for k, v in keys.items()}
                for op, keys in grant.condition.items()
            }
        merged[key] = replace(
            earlier,
            resources=_sorted([*earlier.resources, *grant.resources]),
            condition=condition or earlier.condition,
        )
    return list(merged.values())


def _union(first: Any, second: Any) -> Any:
    """Condition values of two grants: one value when both name the same, else a list."""
    values = sorted({*_as_list(first), *_as_list(second)})
    return values[0] if len(values) == 1 else values


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _suffixed(grant: Grant, account: str) -> Grant:
    return Grant(
        f"{grant.sid}In{'AnyAccount' if account == ANY else account}",
        grant.feature,
        grant.actions,
        grant.resources,
        grant.condition,
        grant.in_dry_run,
    )


def _family(target: Target) -> str | None:
    """The family a target registers, when the targets say it (else the service's)."""
    body = target.task_definition_body or {}
    if body.get("family"):
        return str(body["family"])
    if target.task_definition:
        return target.task_definition.rsplit("/", 1)[-1].split(":")[0]
    return None


def _repository(image: str) -> str | None:
    """The ECR repository ARN of ``image``, or None when it is not in ECR."""
    try:
        ref = parse_image(image)
    except ImageError:
        return None
    host = ECR_REGISTRY.fullmatch(ref.registry or "")
    if host is None:
        return None
    return f"arn:aws:ecr:{host['region']}:{host['account']}:repository/{ref.path}"


def _role_arn(role: str, scope: _Scope) -> str:
    """A role's ARN; a bare name is a role of the target's account."""
    return role if role.startswith("arn:") else f"arn:aws:iam::{scope.account}:role/{role}"


def _iam_wildcard(glob: str) -> str:
    """An fnmatch glob as an IAM ARN pattern: ``*`` and ``?`` mean the same; a class
    (``[ab]``) has no IAM form and widens to ``?`` (one character)."""
    return _GLOB_CLASS.sub("?", glob)


def _sorted(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))
