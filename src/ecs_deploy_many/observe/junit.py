"""JUnit XML, so a CI system shows a run like a test run: one test case per target.

``classname`` is the target's wave (its cluster where it has none), ``name`` the target.
A failed or rolled-back target is a ``<failure>`` whose message is the one-line reason
and whose text is the whole error and the ECS service events it last saw. A target
allowed to fail is ``<skipped>`` instead (as pytest reports an xfail), so the report
agrees with the run's exit code; a skipped target is ``<skipped>`` with why, and an
interrupted one an ``<error>``. Every string passes the run's ``Redactor``.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.deploy.engine import RunResult
from ecs_deploy_many.observe.summary import reason, run_duration, status_label

__all__ = ["junit_xml", "write_junit"]

SERVICE_EVENTS = 10
"""The last ECS service events a failure's text carries."""
# Characters XML 1.0 cannot hold at all; an ECS message or error could carry one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def junit_xml(
    run: RunResult, *, plan_path: str, redactor: Redactor | None = None
) -> ET.ElementTree:
    """The JUnit document of ``run``: one suite named after the plan."""
    mask = redactor or Redactor()
    mask.keep(run.plan.targets)  # names are shown whole, whatever secret they contain
    cases = [_testcase(result, mask) for result in run.results.values()]
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(case.find("failure") is not None for case in cases)),
        "errors": str(sum(case.find("error") is not None for case in cases)),
        "skipped": str(sum(case.find("skipped") is not None for case in cases)),
    }
    took = run_duration(run) or 0.0
    root = ET.Element("testsuites", {"name": "ecs-deploy-many", "time": f"{took:.3f}", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": plan_path, "time": f"{took:.3f}", **counts})
    if run.started_at is not None:
        # JUnit's schema wants a local time without a zone; UTC is the one CI agrees on.
        started = datetime.fromtimestamp(run.started_at, UTC).replace(tzinfo=None)
        suite.set("timestamp", started.isoformat(timespec="seconds"))
    suite.extend(cases)
    ET.indent(root)
    return ET.ElementTree(root)


def _testcase(result: TargetResult, mask: Redactor) -> ET.Element:
    target = result.target
    case = ET.Element(
        "testcase",
        classname=target.wave or target.cluster or "ecs-deploy-many",
        name=target.name,
        time=f"{result.duration_s or 0.0:.3f}",
    )
    message = _clean(reason(result, mask))
    if result.status.counts_as_failure and target.allow_failure:
        ET.SubElement(case, "skipped", message=_clean(f"{status_label(result)}: {message}"))
    elif result.status.counts_as_failure:
        failure = ET.SubElement(case, "failure", message=message, type=str(result.status))
        failure.text = _clean(_details(result, mask))
    elif result.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", message=message)
    elif result.status is Status.INTERRUPTED:
        ET.SubElement(case, "error", message=message, type=str(result.status))
    return case


def _details(result: TargetResult, mask: Redactor) -> str:
    """The error in full, where it happened, and what ECS said last."""
    lines = [str(mask.scrub(result.error or ""))]
    if result.failed_step:
        lines.append(f"step: {result.failed_step}")
    if result.error_code:
        lines.append(f"AWS error code: {result.error_code}")
    if result.deployment_id:
        lines.append(f"deployment: {result.deployment_id}")
    events = result.service_events[-SERVICE_EVENTS:]
    if events:
        lines.append("last ECS service events:")
        lines += [f"  {mask.scrub(str(event.get('message', '')))}" for event in events]
    return "\n".join(lines)


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def write_junit(
    path: str | os.PathLike[str],
    run: RunResult,
    *,
    plan_path: str,
    redactor: Redactor | None = None,
) -> None:
    """Write the JUnit XML of ``run`` to ``path``."""
    junit_xml(run, plan_path=plan_path, redactor=redactor).write(
        path, encoding="utf-8", xml_declaration=True
    )
