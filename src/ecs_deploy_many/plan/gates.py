"""A wave's gates: the ``alarms:`` and ``approval:`` keys of a wave, checked.

``alarms`` names CloudWatch alarms (``names``, exact) and alarm-name prefixes
(``prefix``, one or a list) that must stay out of ALARM while the wave bakes; ``region``
reads them elsewhere than the wave's targets, ``interval`` paces the reads. ``approval``
holds the wave until ``ecs-deploy-many approve RUN WAVE``, at most ``timeout`` seconds.

A gate reads CloudWatch as one account in one region: the scope every target of the
wave shares. A wave whose targets span several must name the gate's ``region`` (and
share their credentials), so no alarm is read in a place nobody chose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecs_deploy_many.core.endpoints import region_problem
from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.plan.checks import INVALID, describe, fields, list_of, number, string
from ecs_deploy_many.plan.issues import Issues, KeyPath
from ecs_deploy_many.plan.model import AlarmGate, ApprovalGate

__all__ = ["MAX_ALARM_NAME", "alarm_gate", "alarms", "approval", "approval_gate"]

MAX_ALARM_NAME = 255
"""CloudWatch's limit on an alarm's name (PutMetricAlarm's AlarmName)."""
MIN_INTERVAL = 5.0
"""Reading faster buys nothing: CloudWatch evaluates an alarm once a period (10 s at best)."""


def _alarm_name(value: Any, path: KeyPath, issues: Issues) -> Any:
    if isinstance(value, str) and 0 < len(value) <= MAX_ALARM_NAME and value.strip() == value:
        return str(value)
    issues.add(
        path,
        f"expected an alarm name (1 to {MAX_ALARM_NAME} characters, no leading or trailing "
        f"space), got {describe(value)}",
    )
    return INVALID


def _prefixes(value: Any, path: KeyPath, issues: Issues) -> Any:
    """One prefix, or a list of them."""
    if isinstance(value, list):
        return list_of(_alarm_name)(value, path, issues)
    name = _alarm_name(value, path, issues)
    return INVALID if name is INVALID else [name]


def _region(value: Any, path: KeyPath, issues: Issues) -> Any:
    text = string(value, path, issues)
    if text is INVALID:
        return INVALID
    problem = region_problem(text)
    if problem:
        issues.add(path, problem)
        return INVALID
    return text


_ALARM_FIELDS = fields(
    {
        "names": list_of(_alarm_name),
        "prefix": _prefixes,
        "region": _region,
        "interval": number(MIN_INTERVAL, inclusive=True, unit="seconds"),
    }
)


def alarms(value: Any, path: KeyPath, issues: Issues) -> Any:
    """``{names: [...], prefix: ..., region: ..., interval: ...}``: names or a prefix."""
    given = _ALARM_FIELDS(value, path, issues)
    if given is INVALID or INVALID in given.values():
        return INVALID
    if not given.get("names") and not given.get("prefix"):
        issues.add(path, "name the alarms to watch: names: [...], prefix: ..., or both")
        return INVALID
    return given


approval = fields({"timeout": number(unit="seconds")}, required=["timeout"])


def approval_gate(given: Any) -> ApprovalGate | None:
    """The wave's approval gate from its checked ``approval:`` block."""
    if not isinstance(given, Mapping) or not isinstance(given.get("timeout"), float):
        return None
    return ApprovalGate(timeout=given["timeout"])


def alarm_gate(
    given: Any, members: Sequence[Target], path: KeyPath, issues: Issues
) -> AlarmGate | None:
    """The wave's alarm gate from its checked ``alarms:`` block and its targets."""
    if not isinstance(given, Mapping):
        return None
    scope = _gate_scope(members, given.get("region"), path, issues)
    if scope is None:
        return None
    return AlarmGate(
        names=tuple(dict.fromkeys(given.get("names") or ())),
        prefixes=tuple(dict.fromkeys(given.get("prefix") or ())),
        scope=scope,
        interval=given.get("interval") or AlarmGate.interval,
    )


def _gate_scope(
    members: Sequence[Target], region: str | None, path: KeyPath, issues: Issues
) -> AwsScope | None:
    """Where the gate reads: the account its targets share, in their region or its own."""
    credentials = {(t.scope.profile, t.scope.assume_role) for t in members}
    regions = {t.scope.region for t in members}
    if len(credentials) > 1:
        issues.add(
            path,
            "the wave's targets use different profiles or roles, and an alarm gate reads "
            "one account: split the wave so each gate's targets share their credentials",
        )
        return None
    if region is None and len(regions) > 1:
        listed = ", ".join(sorted(r or "the default region" for r in regions))
        issues.add(
            path,
            f"the wave's targets are in several regions ({listed}): give the gate the "
            "region of its alarms (region: ...), or split the wave",
        )
        return None
    profile, role = next(iter(credentials), (None, None))
    return AwsScope(region=region or next(iter(regions), None), profile=profile, assume_role=role)
