"""The end-of-run summary in its renderings: the terminal table, one line for a single
target, GitHub Markdown and JUnit XML; all read the same selections and mask secrets."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ecs_deploy_many.deploy.engine import RunResult, RunVerdict
from ecs_deploy_many.deploy.result import Status, TargetResult
from ecs_deploy_many.deploy.target import Target
from ecs_deploy_many.observe.github import append_github_summary, markdown_summary
from ecs_deploy_many.observe.junit import junit_xml
from ecs_deploy_many.observe.log import Redactor
from ecs_deploy_many.observe.summary import format_duration, print_summary, summary_line
from ecs_deploy_many.plan.model import Plan, Wave

START = 1_800_000_000.0
SECRET = "hunter2-db-password"
ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition"


def result(
    name: str,
    status: Status,
    took: float | None = None,
    error: str | None = None,
    *,
    allow_failure: bool = False,
) -> TargetResult:
    cluster, service = name.split("/")
    target = Target(
        name=name, cluster=cluster, service=service, wave="rest", allow_failure=allow_failure
    )
    outcome = TargetResult(target, status, error=error)
    if took is not None:
        outcome.started_at, outcome.finished_at = START, START + took
        outcome.old_task_definition = f"{ARN}/{service}:1"
        outcome.new_task_definition = f"{ARN}/{service}:2"
    return outcome


def run_of(*results: TargetResult, verdict: RunVerdict = RunVerdict.FAILED) -> RunResult:
    targets = tuple(r.target for r in results)
    plan = Plan(Path("plan.yaml"), targets, (Wave("rest", tuple(t.name for t in targets)),))
    return RunResult(
        plan,
        {r.target.name: r for r in results},
        started_at=START,
        finished_at=START + 754,
        verdict=verdict,
    )


RUN = run_of(
    result("prod/api", Status.SUCCEEDED, 121.4),
    result("prod/web", Status.SUCCEEDED, 64),
    result(
        "prod/billing",
        Status.FAILED,
        300,
        f"RegisterTaskDefinition failed: ClientException:\nbad value {SECRET} | <b>",
    ),
    result("prod/search", Status.ROLLED_BACK, 410, "no progress for 180 s", allow_failure=True),
    result("prod/cart", Status.SKIPPED, error="dependency prod/billing failed"),
    result("prod/mail", Status.INTERRUPTED, 5, "interrupted during wait"),
)


def text_summary(run: RunResult) -> list[str]:
    out = io.StringIO()
    print_summary(run, redactor=Redactor([SECRET]), file=out)
    return [line.rstrip() for line in out.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, ""), (0.04, "0.0s"), (4.25, "4.2s"), (42.4, "42s"), (59.6, "1m 00s"),
     (125, "2m 05s"), (3725, "1h 02m")],
)  # fmt: skip
def test_durations_are_precise_when_short_and_brief_when_long(
    seconds: float | None, shown: str
) -> None:
    assert format_duration(seconds) == shown


def test_summary_counts_then_failures_then_the_slowest() -> None:
    lines = text_summary(RUN)
    assert lines[0] == "failed: 6 targets in 12m 34s"
    counts = lines[lines.index("status        targets") + 2 :][:5]
    assert [line.split() for line in counts] == [
        ["succeeded", "2"], ["failed", "1"], ["rolled_back", "1"], ["skipped", "1"],
        ["interrupted", "1"],
    ]  # fmt: skip
    failures = next(i for i, line in enumerate(lines) if line.startswith("failed or rolled back"))
    # one line each, in plan order, with the reason on one line and masked
    assert lines[failures + 2].split() == [
        "prod/billing", "rest", "failed", "RegisterTaskDefinition", "failed:",
        "ClientException:", "bad", "value", "***", "|", "<b>",
    ]  # fmt: skip
    assert lines[failures + 3].split()[:5] == [
        "prod/search",
        "rest",
        "rolled_back",
        "(allowed",
        "to",
    ]
    slowest = next(i for i, line in enumerate(lines) if line.startswith("slowest"))
    assert [line.split()[0] for line in lines[slowest + 2 :]] == [
        "prod/search", "prod/billing", "prod/api", "prod/web", "prod/mail",
    ]  # fmt: skip
    assert lines[slowest + 2].split()[-2:] == ["6m", "50s"]
    assert SECRET not in "\n".join(lines)


def test_a_halted_run_says_why() -> None:
    halted = run_of(result("prod/api", Status.FAILED, 10, "boom"))
    halted.halted = "the run halted: 1 failed target(s) exceed the failure budget of 0"
    assert text_summary(halted)[1] == halted.halted


def test_a_clean_run_lists_no_failures() -> None:
    lines = text_summary(
        run_of(result("prod/api", Status.SUCCEEDED, 30), verdict=RunVerdict.SUCCEEDED)
    )
    assert lines[0] == "succeeded: 1 target in 12m 34s"
    assert not any(line.startswith("failed or rolled back") for line in lines)


@pytest.mark.parametrize(
    ("outcome", "line"),
    [
        (result("prod/api", Status.SUCCEEDED, 32), f"prod/api: succeeded in 32s ({ARN}/api:2)"),
        (
            result("prod/api", Status.ROLLED_BACK, 95, f"timed out\nafter {SECRET}"),
            "prod/api: rolled_back in 1m 35s: timed out after ***",
        ),
        (result("prod/api", Status.FAILED, None, "no region"), "prod/api: failed: no region"),
    ],
)
def test_one_target_is_one_line(outcome: TargetResult, line: str) -> None:
    assert summary_line(outcome, redactor=Redactor([SECRET])) == line


def test_github_markdown_escapes_and_masks_every_cell() -> None:
    markdown = markdown_summary(RUN, plan_path="plans/release.yaml", redactor=Redactor([SECRET]))
    assert markdown.startswith("### ecs-deploy-many: failed\n\nplans/release.yaml: 6 targets")
    assert "| status | targets |\n| --- | --- |\n| succeeded | 2 |\n| failed | 1 |" in markdown
    assert (
        "| prod/billing | rest | failed | RegisterTaskDefinition failed: ClientException: "
        "bad value *** \\| &lt;b&gt; |"
    ) in markdown
    assert (
        "| prod/search | rest | rolled_back (allowed to fail) | no progress for 180 s |" in markdown
    )
    assert "| prod/search | rest | rolled_back | 6m 50s |" in markdown
    assert SECRET not in markdown


def test_github_summary_is_appended_only_inside_github_actions(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    append_github_summary(RUN, plan_path="p.yaml", environ={})
    assert summary.read_text() == "earlier step\n"
    append_github_summary(RUN, plan_path="p.yaml", environ={"GITHUB_STEP_SUMMARY": str(summary)})
    assert summary.read_text().startswith("earlier step\n### ecs-deploy-many: failed\n")


def test_junit_has_a_case_per_target_in_the_outcome_ci_expects() -> None:
    root = junit_xml(RUN, plan_path="plan.yaml", redactor=Redactor([SECRET])).getroot()
    assert root.attrib == {
        "name": "ecs-deploy-many", "time": "754.000",
        "tests": "6", "failures": "1", "errors": "1", "skipped": "2",
    }  # fmt: skip
    [suite] = root
    assert suite.get("name") == "plan.yaml"
    assert suite.get("timestamp") == "2027-01-15T08:00:00"
    cases = {case.get("name"): case for case in suite}
    assert list(cases) == list(RUN.results)
    assert {case.get("classname") for case in suite} == {"rest"}
    assert list(cases["prod/api"]) == []
    assert cases["prod/api"].get("time") == "121.400"
    failure = cases["prod/billing"].find("failure")
    assert failure is not None
    assert failure.get("type") == "failed"
    assert failure.get("message") == (
        "RegisterTaskDefinition failed: ClientException: bad value *** | <b>"
    )
    assert failure.text is not None
    assert failure.text.startswith("RegisterTaskDefinition failed: ClientException:\nbad value ***")
    # allowed to fail: reported like pytest's xfail, so the report agrees with the exit code
    allowed = cases["prod/search"].find("skipped")
    assert allowed is not None
    assert allowed.get("message") == "rolled_back (allowed to fail): no progress for 180 s"
    skipped = cases["prod/cart"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "dependency prod/billing failed"
    assert cases["prod/mail"].find("error") is not None
    assert SECRET not in ET.tostring(root, encoding="unicode")


def test_junit_drops_characters_xml_cannot_hold() -> None:
    run = run_of(result("prod/api", Status.FAILED, 3, "exited \x1b[31mred\x1b[0m\x00"))
    text = ET.tostring(junit_xml(run, plan_path="p.yaml").getroot(), encoding="unicode")
    assert "exited [31mred[0m" in text
    ET.fromstring(text)  # still parses
