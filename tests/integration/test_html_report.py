"""The HTML report of a real run on the simulator: rows, details, highlights, no fetch, no secret.

The page is read back with the standard library's parser into a tree, so every check is
about elements and classes a browser would see, not about substrings of markup.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path

import pytest

from ecs_deploy_many.core.events import Step, TargetEvent, fan_out
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.deploy.engine import RunResult, RunVerdict, run_plan
from ecs_deploy_many.deploy.pipeline import RunContext
from ecs_deploy_many.observe.html import render_html_report, write_html_report
from ecs_deploy_many.observe.timeline import Timeline
from ecs_deploy_many.plan import parse_plan
from ecs_deploy_many.sim.server import Simulator
from tests.clocks import START
from tests.integration.helpers import (
    REGION,
    REPORTED_PLAN,
    SECRET_ACCESS_KEY,
    SECRET_ENV_VALUE,
    reported_fleet,
    sim_pool,
)

pytestmark = pytest.mark.anyio

SPEED = 40.0
PLAN_PATH = "plans/release.yaml"
PLAN = REPORTED_PLAN
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
FETCHING_TAGS = {"link", "img", "iframe", "object", "embed", "audio", "video", "source"}


fleet = reported_fleet


async def run_with_timeline(
    services: tuple[str, ...], plan_text: str
) -> tuple[RunResult, Timeline, list[TargetEvent]]:
    """``plan_text`` run on a simulated fleet of ``services``, watched by a timeline."""
    timeline, events = Timeline(), []
    async with (
        Simulator(fleet(*services), speed=SPEED, strict_output=True, listen=False) as sim,
        sim_pool(sim) as pool,
    ):
        context = RunContext(pool, sim.clock, fan_out(timeline, events.append))
        run = await run_plan(parse_plan(plan_text, environ={}), context)
    return run, timeline, events


def synthetic_run(count: int) -> tuple[RunResult, Timeline]:
    """``count`` services in two waves, their events made up on a fixed clock.

    Every 50th is rolled back, every 70th fails waiting, every 90th is skipped; each
    deployed one has three ECS events.
    """
    targets = "".join(f"  - {{service: svc{i:04d}}}\n" for i in range(count))
    plan = parse_plan(
        "version: 1\ndefaults: {region: eu-west-1, cluster: prod, image: example/app:2}\n"
        "waves:\n  - {name: canary, targets: [prod/svc0000]}\n  - {name: rest, targets: ['*']}\n"
        f"targets:\n{targets}",
        environ={},
    )
    timeline = Timeline()
    run = RunResult(plan, started_at=START, verdict=RunVerdict.FAILED)
    for i, target in enumerate(plan.targets):
        at = START if i == 0 else START + 40 + (i % 25) * 2.0
        result = run.results[target.name] = TargetResult(target, Status.SUCCEEDED)
        if i % 90 == 89:
            result.status, result.error = Status.SKIPPED, "the run halted"
            timeline(TargetEvent(target, "done", "target_finished", at, {"status": "skipped"}))
            continue
        result.started_at = at
        result.old_task_definition = f"arn:aws:ecs:eu-west-1:123456789012:task-definition/svc{i}:1"
        result.new_task_definition = f"arn:aws:ecs:eu-west-1:123456789012:task-definition/svc{i}:2"
        result.deployment_id = f"ecs-svc/{i:019d}"
        steps: list[tuple[Step, float]] = [
            ("resolve", 0.4),
            ("render", 0.1),
            ("register", 0.3),
            ("update", 1.0),
            ("wait", 20.0 + i % 17),
        ]
        if i % 50 == 49:
            steps.append(("rollback", 25.0))
            result.status, result.error = Status.ROLLED_BACK, "did not finish within 30 s"
        elif i % 70 == 69:
            result.status, result.error = Status.FAILED, "did not finish within 30 s"
        for step, seconds in steps:
            timeline(TargetEvent(target, step, "step", at))
            if step in ("wait", "rollback"):
                for n in range(3):
                    message = f"(service svc{i:04d}) has started 1 tasks: (task {i:08d}{n:024d})."
                    result.service_events.append({"at": at + n, "message": message})
                    timeline(TargetEvent(target, step, "ecs_event", at + n, {"message": message}))
            at += seconds
        result.finished_at = at
        timeline(TargetEvent(target, "done", "target_finished", at, {"status": str(result.status)}))
    run.finished_at = timeline.end
    return run, timeline


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
async def watched() -> tuple[RunResult, Timeline, list[TargetEvent]]:
    """api succeeds, web is rolled back, worker is skipped after it, jobs fails."""
    return await run_with_timeline(("api", "web", "worker", "jobs"), PLAN)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find(self, tag: str, cls: str | None = None) -> list[Node]:
        return [n for n in self.walk() if n.tag == tag and (cls is None or cls in n.classes)]


class TreeBuilder(HTMLParser):
    """The page as a tree; an end tag that closes anything but the open element fails."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> Node:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def rows(root: Node) -> dict[str, Node]:
    """Gantt rows by the target name in their link."""
    return {row.find("a")[0].text: row for row in root.find("div", "row")}


def details(root: Node) -> dict[str, Node]:
    """Details sections by the target name in their summary."""
    return {d.find("summary")[0].find("b")[0].text: d for d in root.find("details")}


def bars(row: Node) -> list[tuple[str, float, float]]:
    """A row's step bars as (step, left %, width %), left to right as drawn."""
    found = []
    for bar in row.find("i"):
        kind = next((c[2:] for c in bar.classes if c.startswith("k-")), None)
        if kind is None:
            continue
        style = dict(re.findall(r"(left|width):([\d.]+)%", bar.attrs["style"]))
        found.append((kind, float(style["left"]), float(style["width"])))
    return found


def messages(details_node: Node) -> list[str]:
    """ECS event messages as listed: each item's own text after its time and offset."""
    items = details_node.find("ol", "events")[0].find("li") if details_node.find("ol") else []
    return [
        "".join(c for c in li.children if isinstance(c, str))
        for li in items
        if "phase" not in li.classes
    ]


def phases(details_node: Node) -> list[str]:
    """The headings that split a target's ECS events by the step they arrived in."""
    return [li.text for li in details_node.find("li", "phase")]


def service_messages(result: TargetResult) -> list[str]:
    return [str(event["message"]) for event in result.service_events]


async def test_every_target_has_a_row_and_details_with_rollback_and_failure_highlighted(
    watched: tuple[RunResult, Timeline, list[TargetEvent]],
) -> None:
    run, timeline, _ = watched
    statuses = {name: r.status for name, r in run.results.items()}
    assert statuses == {
        "prod/api": Status.SUCCEEDED,
        "prod/web": Status.ROLLED_BACK,
        "prod/worker": Status.SKIPPED,
        "prod/jobs": Status.FAILED,
    }
    root = parse(render_html_report(run, timeline, plan_path=PLAN_PATH))

    by_row, by_details = rows(root), details(root)
    assert list(by_row) == ["prod/api", "prod/web", "prod/worker", "prod/jobs"]  # wave order
    assert set(by_details) == set(run.results)
    for name, row in by_row.items():
        assert f"st-{statuses[name]}" in row.classes
        anchor = row.find("a")[0].attrs["href"]
        assert anchor == "#" + by_details[name].attrs["id"]
    assert [w.find("span")[0].text for w in root.find("div", "wave")] == [
        "Wave canary1 target",
        "Wave rest3 targets",
    ]
    # the second wave's start is marked across the chart
    assert len(root.find("div", "grid")[0].find("i", "w")) == 1

    api, web = bars(by_row["prod/api"]), bars(by_row["prod/web"])
    assert [kind for kind, _, _ in api] == ["resolve", "render", "register", "update", "wait"]
    assert [kind for kind, _, _ in web] == [
        "resolve",
        "render",
        "register",
        "update",
        "wait",
        "rollback",
    ]
    for steps in (api, web):
        for (_, left, width), (_, after, _) in pairwise(steps):
            assert left + width == pytest.approx(after, abs=0.02)  # each ends where the next starts
    assert run.started_at is not None
    assert run.finished_at is not None
    run_seconds = run.finished_at - run.started_at
    update, wait, rollback = web[-3:]
    # The bars draw the steps the timeline recorded: from the update to the rollback,
    # at least web's 30 s timeout (how much more depends on how busy the machine was).
    recorded = timeline.get("prod/web")
    assert recorded is not None
    drawn = (update[2] + wait[2]) / 100 * run_seconds
    spans = {span.step: span for span in recorded.spans}
    took = spans["rollback"].start - spans["update"].start
    assert drawn == pytest.approx(took, abs=run_seconds * 0.0002)
    assert took >= 29
    assert rollback[1] + rollback[2] <= 100.01
    assert "ok" not in by_row["prod/web"].classes  # "only problems" keeps it

    assert "st-rolled_back" in by_details["prod/web"].classes
    assert "open" in by_details["prod/web"].attrs  # a problem is shown unfolded
    assert "open" not in by_details["prod/api"].attrs
    assert by_row["prod/worker"].find("i", "end")  # a skipped target is a marker, no bars
    assert bars(by_row["prod/worker"]) == []
    assert "dependency prod/web was rolled back" in by_details["prod/worker"].text
    jobs = by_row["prod/jobs"]
    assert "st-failed" in jobs.classes
    assert not any(kind == "rollback" for kind, _, _ in bars(jobs))

    web_details = by_details["prod/web"].text
    result = run.results["prod/web"]
    assert f"{result.old_task_definition} → {result.new_task_definition}" in web_details
    assert str(result.deployment_id) in web_details
    assert "did not finish within 30 s" in web_details

    header = root.find("header")[0]
    assert PLAN_PATH in header.text
    assert root.find("span", "verdict")[0].text == "failed"
    assert len(header.find("li")) == len(Status)
    assert [li.find("b")[0].text for li in header.find("li", "st-rolled_back")] == ["1"]


async def test_ecs_events_appear_in_order(
    watched: tuple[RunResult, Timeline, list[TargetEvent]],
) -> None:
    run, timeline, events = watched
    by_details = details(parse(render_html_report(run, timeline, plan_path=PLAN_PATH)))
    for name in ("prod/api", "prod/web"):
        shown = messages(by_details[name])
        emitted = [
            e.facts["message"] for e in events if e.target.name == name and e.event == "ecs_event"
        ]
        assert shown == service_messages(run.results[name]) == emitted
        assert len(shown) >= 2
    web = messages(by_details["prod/web"])
    assert any("steady state" in m for m in web)  # the rollback's deployment settled
    assert phases(by_details["prod/web"]) == ["during wait", "during rollback"]
    assert phases(by_details["prod/api"]) == ["during wait"]
    assert messages(by_details["prod/worker"]) == []


async def test_the_page_fetches_nothing(
    watched: tuple[RunResult, Timeline, list[TargetEvent]],
) -> None:
    run, timeline, _ = watched
    page = render_html_report(run, timeline, plan_path=PLAN_PATH)
    root = parse(page)
    for node in root.walk():
        assert node.tag not in FETCHING_TAGS
        assert not {"src", "srcset", "poster", "data", "action", "background"} & set(node.attrs)
        href = node.attrs.get("href")
        assert href is None or href.startswith("#"), href
    for code in (*root.find("style"), *root.find("script")):
        assert not re.search(r"@import|url\(|https?:|//[a-z]", code.text, re.IGNORECASE)
        assert "fetch(" not in code.text
        assert "XMLHttpRequest" not in code.text
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page
    assert "url(" not in page


async def test_the_page_never_holds_a_secret_the_redactor_knows(
    watched: tuple[RunResult, Timeline, list[TargetEvent]], tmp_path: Path
) -> None:
    run, timeline, _ = watched
    # An AWS error or an ECS event may echo what a call carried; make both do so.
    web = run.results["prod/web"]
    web.error = f"{web.error} (DB_PASSWORD={SECRET_ENV_VALUE})"
    finished = timeline.end
    assert finished is not None
    timeline(
        TargetEvent(web.target, "rollback", "ecs_event", finished, {"message": SECRET_ACCESS_KEY})
    )
    assert SECRET_ENV_VALUE in render_html_report(run, timeline, plan_path=PLAN_PATH)

    path = tmp_path / "report.html"
    redactor = Redactor([SECRET_ENV_VALUE, SECRET_ACCESS_KEY])
    write_html_report(path, run, timeline, plan_path=PLAN_PATH, redactor=redactor)

    page = path.read_text(encoding="utf-8")
    assert SECRET_ENV_VALUE not in page
    assert SECRET_ACCESS_KEY not in page
    shown = details(parse(page))["prod/web"]
    assert "(DB_PASSWORD=***)" in shown.text
    assert messages(shown)[-1] == "***"


def test_a_thousand_targets_make_a_compact_page() -> None:
    run, timeline = synthetic_run(1000)
    page = render_html_report(run, timeline, plan_path=PLAN_PATH)
    root = parse(page)
    assert len(rows(root)) == len(details(root)) == 1000
    # positions are the only inline style; everything else is a class
    styles = [node.attrs["style"] for node in root.walk() if "style" in node.attrs]
    assert all(re.fullmatch(r"left:[\d.]+%(;width:[\d.]+%)?", style) for style in styles)
    assert len(page.encode()) < 2_000_000  # about 1.6 MB: 3 to 6 ECS events per target


def test_write_replaces_the_page_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "report.html"
    path.write_text("old")
    run, timeline = synthetic_run(3)
    write_html_report(path, run, timeline, plan_path=PLAN_PATH)
    assert path.read_text(encoding="utf-8") == render_html_report(
        run, timeline, plan_path=PLAN_PATH
    )
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left

    written = path.read_text(encoding="utf-8")

    def broken_rename(*_: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_rename)
    with pytest.raises(OSError, match="disk gone"):
        write_html_report(path, *synthetic_run(5), plan_path=PLAN_PATH)
    assert path.read_text(encoding="utf-8") == written  # the old page survives
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


async def test_names_are_shown_whole_whatever_secret_they_contain(
    watched: tuple[RunResult, Timeline, list[TargetEvent]],
) -> None:
    run, timeline, _ = watched
    # "prod" is a secret here, and the cluster of every target: a name is not a secret.
    page = render_html_report(run, timeline, plan_path=PLAN_PATH, redactor=Redactor(["prod"]))
    assert "***/" not in page
    assert set(details(parse(page))) == {"prod/api", "prod/web", "prod/worker", "prod/jobs"}
