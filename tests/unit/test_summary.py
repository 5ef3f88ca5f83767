"""The end-of-run summary in its renderings: the terminal table, one line for a single
target, GitHub Markdown and JUnit XML; all read the same selections and mask secrets."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.core.target import Target
from ecs_deploy_many.deploy.engine import RunResult, RunVerdict
from ecs_deploy_many.observe.github import append_github_summary, markdown_summary
from ecs_deploy_many.observe.junit import junit_xml
from ecs_deploy_many.observe.summary import (
    format_duration,
    headline,
    print_summary,
    summary_line,
)
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


def test_summary_says_how_targets_ended_then_failures_then_the_slowest() -> None:
    lines = text_summary(RUN)
    assert lines[0] == (
        "run failed in 12m 34s: 6 targets: 2 succeeded, 1 failed, "
        "1 rolled back (allowed to fail), 1 skipped, 1 interrupted"
    )
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


def test_no_summary_line_ends_in_blanks() -> None:
    """Off a terminal too: rich pads the last column, the printed line ends at its text."""
    out = io.StringIO()
    print_summary(RUN, redactor=Redactor([SECRET]), file=out)
    assert [line for line in out.getvalue().splitlines() if line != line.rstrip()] == []


def allowed(name: str, status: Status) -> TargetResult:
    return result(name, status, 60, "no progress", allow_failure=True)


@pytest.mark.parametrize(
    ("results", "verdict", "simulated_at", "line"),
    [
        (
            [*(result(f"p/s{i}", Status.SUCCEEDED, 60) for i in range(11)),
             allowed("p/search", Status.ROLLED_BACK)],
            RunVerdict.SUCCEEDED, 20.0,
            "run succeeded in 12m 34s (simulated at 20x): 12 targets: 11 succeeded, "
            "1 rolled back (allowed to fail)",
        ),
        (
            [*(result(f"p/s{i}", Status.SUCCEEDED, 60) for i in range(5)),
             result("p/a", Status.FAILED, 60, "boom"), result("p/b", Status.FAILED, 60, "boom")],
            RunVerdict.FAILED, None,
            "run failed in 12m 34s: 7 targets: 5 succeeded, 2 failed",
        ),
        (
            [result("p/a", Status.FAILED, 60, "boom"), allowed("p/b", Status.FAILED)],
            RunVerdict.FAILED, None,
            "run failed in 12m 34s: 2 targets: 2 failed (1 allowed to fail)",
        ),
        (
            [result("p/a", Status.SUCCEEDED, 60)],
            RunVerdict.SUCCEEDED, 1.5,
            "run succeeded in 12m 34s (simulated at 1.5x): 1 target: 1 succeeded",
        ),
    ],
)  # fmt: skip
def test_the_headline_says_what_happened_to_the_targets(
    results: list[TargetResult], verdict: RunVerdict, simulated_at: float | None, line: str
) -> None:
    assert headline(run_of(*results, verdict=verdict), simulated_at=simulated_at).plain == line


def test_a_run_that_never_started_has_no_duration() -> None:
    run = run_of(result("p/a", Status.INTERRUPTED, None, "not started"))
    run.started_at = run.finished_at = None
    assert headline(run).plain == "run failed: 1 target: 1 interrupted"


def test_a_halted_run_says_why() -> None:
    halted = run_of(result("prod/api", Status.FAILED, 10, "boom"))
    halted.halted = "the run halted: 1 failed target(s) exceed the failure budget of 0"
    assert text_summary(halted)[1] == halted.halted


def test_a_clean_run_lists_no_failures() -> None:
    lines = text_summary(
        run_of(result("prod/api", Status.SUCCEEDED, 30), verdict=RunVerdict.SUCCEEDED)
    )
    assert lines[0] == "run succeeded in 12m 34s: 1 target: 1 succeeded"
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
