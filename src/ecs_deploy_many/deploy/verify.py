"""Verify: does everything each target's task definition references exist, before a deploy?

The definition checked is the one the dry run renders (``TargetPreview.definition``:
``deploy.pipeline.render_revision``, never a second renderer), so whatever a rendering
sets, the checks see. What is checked, each thing once for the whole fleet however many
targets share it, in the account (the target's credentials) and region it lives in:

- images in Amazon ECR: ECR BatchGetImage, one call per repository (and 100 images);
  images elsewhere are not checked;
- secrets (containers' ``secrets``, log ``secretOptions``, ``repositoryCredentials``):
  a Secrets Manager ARN by DescribeSecret (its JSON key and version suffix are not
  checked: that would read the value); an SSM parameter, by ARN or, as ECS reads a bare
  name, by name in the target's region, by GetParameters, ten a call; SSM's name for a
  Secrets Manager secret (``/aws/reference/secretsmanager/NAME``) by DescribeSecret;
- the task and execution roles: IAM GetRole, by the name the ARN ends with;
- awslogs log groups: CloudWatch Logs DescribeLogGroups by name prefix, unless
  ``awslogs-create-group`` is ``"true"`` (ECS creates it; the execution role needs
  ``logs:CreateLogGroup``, which is not checked).

A thing is ``missing`` only when its service says it does not exist; when it cannot be
asked (access denied, throttled, no endpoint) it is ``not checked``, which never blocks
a run: the deploy's credentials often may not read secrets or roles. A secret reference
is never shown (the redactor masks ``valueFrom`` everywhere): the container and the name
the secret has there say which it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import anyio

from ecs_deploy_many.aws.references import (
    FOUND,
    Finding,
    find_images,
    find_log_groups,
    find_parameters,
    find_roles,
    find_secrets,
    unchecked,
)
from ecs_deploy_many.core.errors import EcsDeployError, ImageError
from ecs_deploy_many.core.images import ECR_REGISTRY, parse_image
from ecs_deploy_many.core.redact import MASK, Redactor
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.deploy.dryrun import TargetPreview

__all__ = [
    "CREATED",
    "SERVICES",
    "Check",
    "Reference",
    "Service",
    "TargetVerification",
    "Verification",
    "format_verification",
    "references_of",
    "verify_previews",
]

Service = Literal["ecr", "secretsmanager", "ssm", "iam", "logs"]

SERVICES: Mapping[Service, str] = {
    "ecr": "ECR",
    "secretsmanager": "Secrets Manager",
    "ssm": "SSM Parameter Store",
    "iam": "IAM",
    "logs": "CloudWatch Logs",
}
"""The services verify reads, by botocore's name, with the name people know them by."""


class Clients(Protocol):
    """Where verify gets its clients (``aws.session.ClientPool``)."""

    async def client(self, service: str, scope: AwsScope) -> Any: ...


@dataclass(frozen=True)
class Check:
    """One question to one service: equal checks are asked once for the whole fleet."""

    service: Service
    scope: AwsScope
    """Whose credentials ask, in which region (IAM's: the target's; it is global)."""
    key: str
    """What is asked for: a tag or digest, a secret's ARN, a parameter, a role, a group."""
    repository: tuple[str, str] = ("", "")
    """ECR's registry (account) and repository."""


@dataclass(frozen=True)
class Reference:
    """One thing a task definition references, as a person reads it."""

    kind: str
    """``image``, ``secret``, ``task role``, ``execution role``, ``log group``."""
    shown: str
    """How output names it; never a secret's reference."""
    check: Check | None = None
    """None when it is not checked: ``settled`` says why."""
    settled: Finding | None = None


@dataclass(frozen=True)
class TargetVerification:
    """What verify found for one target."""

    name: str
    missing: tuple[tuple[Reference, Finding], ...] = ()
    unchecked: tuple[tuple[Reference, Finding], ...] = ()
    created: tuple[Reference, ...] = ()
    """Log groups ECS creates (``awslogs-create-group``)."""
    found: tuple[Reference, ...] = ()
    error: str | None = None
    """Why the target's definition could not be read (the dry run's error), or why the
    deploy refuses its service."""
    refused: bool = False
    """Its service's deployment controller lets no UpdateService deploy it: a problem,
    like a missing secret, that stops a run before any change."""


@dataclass
class Verification:
    """Every target's findings, and the calls it took."""

    targets: list[TargetVerification] = field(default_factory=list)
    skipped: Mapping[Service, str] = field(default_factory=dict)
    """Services not asked at all, with why (a simulator has none of them)."""
    calls: int = 0
    """Distinct things asked about: each asked once."""

    @property
    def problems(self) -> int:
        return sum(len(t.missing) + t.refused for t in self.targets)


CREATED = Finding("found", "created by ECS")
"""A log group ECS creates when the task starts (``awslogs-create-group``)."""


def _arn_parts(text: str) -> list[str] | None:
    parts = text.split(":")
    return parts if text.startswith("arn:") and len(parts) >= 6 else None


def _image_reference(image: str, container: str, scope: AwsScope) -> Reference:
    shown = f"{image} (container {container})"
    try:
        ref = parse_image(image)
    except ImageError:
        return Reference("image", shown, settled=Finding("unchecked", "not an image name"))
    host = ECR_REGISTRY.fullmatch(ref.registry or "")
    if host is None:
        return Reference("image", shown, settled=Finding("unchecked", "not in Amazon ECR"))
    check = Check(
        "ecr",
        replace(scope, region=host["region"]),
        ref.digest or ref.tag or "latest",
        (host["account"], ref.path),
    )
    return Reference("image", shown, check)


_SECRETS_THROUGH_SSM = "/aws/reference/secretsmanager/"
"""SSM's names for Secrets Manager secrets: asked of Secrets Manager, which describes them
without reading their value (GetParameters would have to decrypt it)."""


def _secret_reference(value_from: str, shown: str, scope: AwsScope) -> Reference:
    """A secret as ECS resolves ``valueFrom``: a Secrets Manager or SSM ARN (in its own
    region), else the name of an SSM parameter in the target's region."""
    parts = _arn_parts(value_from)
    where = scope if parts is None else replace(scope, region=parts[3] or scope.region)
    parameter = value_from if parts is None else ":".join(parts[5:]).removeprefix("parameter")
    if (parts is None or parts[2] == "ssm") and parameter.startswith(_SECRETS_THROUGH_SSM):
        secret = parameter.removeprefix(_SECRETS_THROUGH_SSM)
        label = f"{shown} (Secrets Manager, {where.region})"
        return Reference("secret", label, Check("secretsmanager", where, secret))
    if parts is None:
        return Reference("secret", f"{shown} (SSM parameter)", Check("ssm", scope, value_from))
    if parts[2] == "secretsmanager" and len(parts) >= 7:
        # arn:aws:secretsmanager:region:account:secret:name[:json-key:stage:version-id]
        secret = ":".join(parts[:7])
        label = f"{shown} (Secrets Manager, {where.region})"
        return Reference("secret", label, Check("secretsmanager", where, secret))
    if parts[2] == "ssm":
        label = f"{shown} (SSM parameter, {where.region})"
        return Reference("secret", label, Check("ssm", where, value_from))
    return Reference(
        "secret", shown, settled=Finding("unchecked", "not a Secrets Manager or SSM reference")
    )


def _role_reference(kind: str, role: str, scope: AwsScope) -> Reference:
    name = role.rsplit("/", 1)[-1] if _arn_parts(role) else role
    return Reference(kind, role, Check("iam", scope, name))


def _log_reference(container: str, options: Mapping[str, Any], scope: AwsScope) -> Reference:
    group = str(options.get("awslogs-group"))
    region = str(options.get("awslogs-region") or scope.region or "")
    shown = f"{group} ({region or 'the target region'}, container {container})"
    if str(options.get("awslogs-create-group", "")).lower() == "true":
        return Reference("log group", shown, settled=CREATED)
    where = replace(scope, region=region or scope.region)
    return Reference("log group", shown, Check("logs", where, group))


def references_of(definition: Mapping[str, Any], scope: AwsScope) -> list[Reference]:
    """Everything ``definition`` references that verify knows how to check."""
    references: list[Reference] = []
    for container in definition.get("containerDefinitions") or []:
        name = str(container.get("name"))
        if isinstance(container.get("image"), str):
            references.append(_image_reference(container["image"], name, scope))
        for secret in container.get("secrets") or []:
            shown = f"{secret.get('name')} of container {name}"
            references.append(_secret_reference(str(secret.get("valueFrom")), shown, scope))
        credentials = (container.get("repositoryCredentials") or {}).get("credentialsParameter")
        if credentials:
            shown = f"repository credentials of container {name}"
            references.append(_secret_reference(str(credentials), shown, scope))
        log = container.get("logConfiguration") or {}
        for secret in log.get("secretOptions") or []:
            shown = f"log option {secret.get('name')} of container {name}"
            references.append(_secret_reference(str(secret.get("valueFrom")), shown, scope))
        options = log.get("options") or {}
        if log.get("logDriver") == "awslogs" and options.get("awslogs-group"):
            references.append(_log_reference(name, options, scope))
    for key, kind in (("taskRoleArn", "task role"), ("executionRoleArn", "execution role")):
        if definition.get(key):
            references.append(_role_reference(kind, str(definition[key]), scope))
    return references


Finder = Callable[[Any, list[Check]], Awaitable[dict[str, Finding]]]


def _finders() -> Mapping[Service, Finder]:
    async def images(client: Any, checks: list[Check]) -> dict[str, Finding]:
        registry, repository = checks[0].repository
        return await find_images(client, registry, repository, [c.key for c in checks])

    def by_key(find: Callable[[Any, list[str]], Awaitable[dict[str, Finding]]]) -> Finder:
        async def finder(client: Any, checks: list[Check]) -> dict[str, Finding]:
            return await find(client, [c.key for c in checks])

        return finder

    return {
        "ecr": images,
        "secretsmanager": by_key(find_secrets),
        "ssm": by_key(find_parameters),
        "iam": by_key(find_roles),
        "logs": by_key(find_log_groups),
    }


def _identity(check: Check) -> Check:
    """What makes two checks the same question: IAM is global, so not the region."""
    if check.service != "iam":
        return check
    return replace(check, scope=replace(check.scope, region=None))


async def _ask(
    clients: Clients, checks: Iterable[Check], skipped: Mapping[Service, str]
) -> dict[Check, Finding]:
    """Every distinct check answered (by its ``_identity``): one batch per service,
    scope and repository."""
    groups: dict[tuple[Service, AwsScope, tuple[str, str]], list[Check]] = defaultdict(list)
    findings: dict[Check, Finding] = {}
    asked: dict[Check, Check] = {}
    for check in checks:
        asked.setdefault(_identity(check), check)
    for identity, check in asked.items():
        if check.service in skipped:
            findings[identity] = Finding("unchecked", skipped[check.service])
        else:
            groups[identity.service, identity.scope, identity.repository].append(check)
    finders = _finders()

    async def ask(service: Service, group: list[Check]) -> None:
        try:
            client = await clients.client(service, group[0].scope)
            answers = await finders[service](client, group)
        except EcsDeployError as error:  # no credentials or region for the scope
            answers = dict.fromkeys((c.key for c in group), unchecked(error))
        for check in group:
            findings[_identity(check)] = answers.get(check.key, Finding("unchecked", "no answer"))

    async with anyio.create_task_group() as task_group:
        for (service, _, _), group in groups.items():
            task_group.start_soon(ask, service, group)
    return {check: findings[_identity(check)] for check in checks}


def _role_in_another_account(reference: Reference, finding: Finding) -> Finding:
    """A role found by name whose ARN is not the one referenced (another account)."""
    referenced = _arn_parts(reference.shown)
    if finding.state != "found" or referenced is None or not finding.detail:
        return finding
    found = _arn_parts(finding.detail)
    if found is not None and found[4] != referenced[4]:
        return Finding(
            "unchecked",
            f"in account {referenced[4]}; the deploy credentials are account {found[4]}'s",
        )
    return FOUND


async def verify_previews(
    previews: Sequence[TargetPreview],
    scopes: Mapping[str, AwsScope],
    clients: Clients,
    *,
    skipped: Mapping[Service, str] | None = None,
) -> Verification:
    """Check what every previewed target references; ``scopes`` maps a target's name to
    its AWS scope, ``skipped`` names services not to ask (and why)."""
    skipped = dict(skipped or {})
    references = {
        preview.name: references_of(preview.definition, scopes[preview.name])
        for preview in previews
        if preview.error is None and preview.definition is not None
    }
    checks = [r.check for refs in references.values() for r in refs if r.check is not None]
    findings = await _ask(clients, checks, skipped)
    verification = Verification(skipped=skipped, calls=len({_identity(check) for check in checks}))
    for preview in previews:
        if preview.name not in references:
            error = preview.error or "nothing to check"
            verification.targets.append(
                TargetVerification(preview.name, error=error, refused=preview.refused)
            )
            continue
        missing, not_checked, created, found = [], [], [], []
        for reference in references[preview.name]:
            if reference.settled is not None:
                finding = reference.settled
            else:
                assert reference.check is not None  # a reference is settled or checked
                finding = findings[reference.check]
            if reference.kind == "secret" and reference.check is not None:
                # a service's error text may quote the reference, which is never shown
                detail = finding.detail.replace(reference.check.key, MASK)
                finding = replace(finding, detail=detail)
            if reference.kind.endswith("role"):
                finding = _role_in_another_account(reference, finding)
            if finding.state == "missing":
                missing.append((reference, finding))
            elif finding.state == "unchecked":
                not_checked.append((reference, finding))
            elif finding == CREATED:
                created.append(reference)
            else:
                found.append(reference)
        verification.targets.append(
            TargetVerification(
                preview.name, tuple(missing), tuple(not_checked), tuple(created), tuple(found)
            )
        )
    return verification


def _counted(references: Iterable[Reference]) -> str:
    kinds: dict[str, int] = defaultdict(int)
    for reference in references:
        kinds[reference.kind] += 1
    return ", ".join(f"{n} {kind}{'s' * (n != 1)}" for kind, n in kinds.items())


def _headline(target: TargetVerification) -> str:
    """``name  verdict: found ...; missing ...; not checked ...``."""
    found = [*target.found, *target.created]
    missing = [reference for reference, _ in target.missing]
    unchecked = [reference for reference, _ in target.unchecked]
    if not (found or missing):
        verdict = "not checked" if unchecked else "ok"
        return f"{target.name}  {verdict}: {_counted(unchecked) or 'nothing referenced'}"
    verdict = f"{len(missing)} missing" if missing else "ok"
    parts = (("found", found), ("missing", missing), ("not checked", unchecked))
    return f"{target.name}  {verdict}: " + "; ".join(
        f"{label} {_counted(references)}" for label, references in parts if references
    )


def format_verification(verification: Verification, redactor: Redactor | None = None) -> str:
    """Plain text for a terminal: per target a line, and one for each thing missing or
    not checked; services not asked at all are said once, then a total."""
    mask = redactor or Redactor()
    skipped_reasons = set(verification.skipped.values())
    lines: list[str] = []
    for target in verification.targets:
        if target.error is not None:
            verdict = "refused" if target.refused else "not verified"
            lines.append(f"{target.name}  {verdict}: {target.error}")
            continue
        lines.append(_headline(target))
        lines.extend(
            f"  {word:<11}  {reference.kind} {reference.shown}: {finding.detail}"
            for word, pairs in (("missing", target.missing), ("not checked", target.unchecked))
            for reference, finding in pairs
            if finding.detail not in skipped_reasons
        )
        lines.extend(
            f"  {'created':<11}  log group {r.shown} (awslogs-create-group)" for r in target.created
        )
    for reason in dict.fromkeys(verification.skipped.values()):
        services = [SERVICES[s] for s, why in verification.skipped.items() if why == reason]
        lines.append(f"not checked: {', '.join(services)} ({reason})")
    targets = verification.targets
    failing = sum(1 for t in targets if t.missing)
    refused = sum(1 for t in targets if t.refused)
    unread = sum(1 for t in targets if t.error is not None) - refused
    unchecked = sum(1 for t in targets if t.unchecked and not (t.found or t.created or t.missing))
    total = len(targets)
    ok = total - failing - refused - unread - unchecked
    summary = f"verify: {total} target{'s' * (total != 1)}: {ok} ok"
    if failing:
        summary += f", {failing} with {sum(len(t.missing) for t in targets)} missing"
    if refused:
        summary += f", {refused} refused"
    if unchecked:
        summary += f", {unchecked} not checked"
    if unread:
        summary += f", {unread} not verified"
    lines.append(summary)
    return "\n".join(mask.scrub(line) for line in lines)
