"""The post-mortem page: one self-contained HTML file showing where a run's time went.

It is opened from an incident ticket or a CI artifact, often offline or behind a proxy,
so it fetches nothing: styles are inline, bars are CSS boxes placed by percentage, and
the only script opens a target's details when a link jumps there. A run may have a
thousand targets, so rows are compact and per-element markup is kept to classes and
positions. Like the JSON report, every string (names, errors, ECS messages) is escaped
and goes through the run's ``Redactor``: any of them may echo what a call carried.
"""

from __future__ import annotations

import html
import math
import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

from ecs_deploy_many.core.events import Step
from ecs_deploy_many.core.redact import Redactor
from ecs_deploy_many.core.result import Status, TargetResult
from ecs_deploy_many.deploy.engine import RunResult
from ecs_deploy_many.observe.console import format_duration
from ecs_deploy_many.observe.timeline import TargetTimeline, Timeline

__all__ = ["render_html_report", "write_html_report"]

STEPS: tuple[Step, ...] = get_args(Step)
# Tick spacings a reader counts in without effort; past ten days, multiples of a day.
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
MAX_TICKS = 10

CSS = """
:root{--label:280px;--status:96px;--row:18px;color-scheme:light;
font:13px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#1e293b;background:#f1f5f9}
body{margin:0;padding:24px 32px 48px}
h1{font-size:22px;margin:0}
h2{font-size:15px;margin:0 0 10px;color:#334155}
code{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:16px 20px;
margin-bottom:20px;box-shadow:0 1px 2px rgba(15,23,42,.04)}
.head{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
.plan{color:#475569;margin:4px 0 14px}
.meta{display:flex;flex-wrap:wrap;gap:8px 32px;margin:0 0 14px}
.meta dt{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:#64748b}
.meta dd{margin:0;font-weight:600}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:0;padding:0;list-style:none}
.counts li{border-radius:999px;padding:2px 12px 2px 4px;background:#f1f5f9;color:#334155}
.counts b{display:inline-block;min-width:22px;padding:0 5px;box-sizing:border-box;
text-align:center;border-radius:999px;
margin-right:6px;color:#fff;background:var(--c)}
.counts .zero{opacity:.45}
.halted{margin:12px 0 0;padding:8px 12px;border-radius:6px;background:#fef2f2;color:#991b1b}
.verdict,.pill{display:inline-block;border-radius:999px;color:#fff;background:var(--c);
font-weight:600;white-space:nowrap}
.verdict{padding:2px 12px;font-size:13px;text-transform:uppercase;letter-spacing:.05em}
.pill{padding:0 8px;font-size:11px;line-height:15px}
.st-succeeded,.v-succeeded{--c:#16a34a}.st-unchanged{--c:#64748b}
.st-failed,.v-failed{--c:#dc2626}.st-rolled_back{--c:#ea580c}
.st-skipped{--c:#94a3b8}.st-interrupted,.v-interrupted,.st-unknown{--c:#a16207}
.legend{display:flex;flex-wrap:wrap;align-items:center;gap:6px 16px;margin:0 0 12px;
color:#475569}
.legend span{display:inline-flex;align-items:center;gap:6px}
.legend i{display:inline-block;width:22px;height:10px;border-radius:2px}
.legend .sep{width:1px;height:14px;background:#cbd5e1}
.legend .w{width:0;height:14px;border-radius:0;border-left:2px dashed #818cf8}
.filter{margin-left:auto;cursor:pointer;user-select:none;border:1px solid #cbd5e1;
border-radius:6px;padding:2px 10px;background:#fff}
#only{position:absolute;opacity:0;pointer-events:none}
#only:checked~section .filter{background:#1e293b;color:#fff;border-color:#1e293b}
#only:checked~section .ok{display:none}
.chart{position:relative;padding-right:16px}
.axis,.row,.wave{display:grid;grid-template-columns:var(--label) var(--status) 1fr}
.axis{position:sticky;top:0;z-index:3;height:26px;background:#fff;
border-bottom:1px solid #cbd5e1;font-size:11px;color:#64748b}
.axis>span{align-self:end;padding:0 8px 4px}
.track{position:relative;min-width:0}
.axis b{position:absolute;bottom:4px;font-weight:400;transform:translateX(-50%);
white-space:nowrap}
.axis b:first-child{transform:none}
.grid{position:absolute;top:0;bottom:0;left:calc(var(--label) + var(--status));right:16px;
pointer-events:none}
.grid i{position:absolute;top:0;bottom:0;border-left:1px solid #eef2f7}
.grid .w{border-left:2px dashed #818cf8}
.row,.wave{position:relative;z-index:1}
.row{height:var(--row);line-height:var(--row)}
.row:hover{background:rgba(99,102,241,.07)}
.row>a{padding:0 8px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;
color:inherit;text-decoration:none}
.row>a:hover{text-decoration:underline}
.row>.pill{align-self:center;justify-self:start;margin-left:8px}
.row .track i{position:absolute;top:4px;height:10px;min-width:2px;border-radius:2px}
.row.st-failed{background:rgba(220,38,38,.09)}
.row.st-rolled_back{background:rgba(234,88,12,.1)}
.row.st-interrupted,.row.st-unknown{background:rgba(161,98,7,.08)}
.row.st-failed>a,.row.st-rolled_back>a{font-weight:600;color:#9a3412}
.row.st-failed>a{color:#b91c1c}
.row.st-failed .track i:last-of-type{box-shadow:0 0 0 1.5px #dc2626}
.row.st-skipped>a{color:#64748b;font-style:italic}
.row .track .end{width:8px;min-width:0;height:8px;top:5px;margin-left:-4px;
border-radius:50%;background:#fff;border:1.5px solid #94a3b8;box-sizing:border-box}
.wave{height:24px;line-height:24px;margin-top:6px;border-top:1px solid #e2e8f0;
font-weight:600;color:#4338ca}
.wave>span{padding:0 8px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.wave small{font-weight:400;color:#64748b;font-size:12px;margin-left:10px}
.wave .track i{position:absolute;top:9px;height:6px;min-width:2px;border-radius:3px;
background:rgba(99,102,241,.25)}
.wave .track .bake{background:repeating-linear-gradient(90deg,rgba(99,102,241,.35) 0 2px,
transparent 2px 5px)}
.k-resolve{background:#94a3b8}.k-render{background:#c084fc}.k-register{background:#818cf8}
.k-update{background:#38bdf8}.k-wait{background:#2563eb}.k-run_task{background:#0d9488}
.k-cleanup{background:#a8a29e}.k-done{background:#475569}.k-bake{background:#dc2626}
.k-rollback{background:repeating-linear-gradient(135deg,#ea580c 0 3px,#fdba74 3px 6px)}
details{border-top:1px solid #e2e8f0;padding:6px 0}
details:first-of-type{border-top:0}
summary{cursor:pointer;display:flex;align-items:center;gap:8px;flex-wrap:wrap}
summary .muted{color:#64748b;font-size:12px}
details[open]>summary{margin-bottom:6px}
details.st-failed>summary b{color:#b91c1c}details.st-rolled_back>summary b{color:#9a3412}
.kv{display:grid;grid-template-columns:150px 1fr;gap:3px 12px;margin:0 0 8px 24px}
.kv dt{color:#64748b}.kv dd{margin:0}
.err{color:#991b1b;background:#fef2f2;border-radius:4px;padding:2px 8px}
.events{margin:0 0 4px 24px;padding:0;list-style:none;border-left:2px solid #e2e8f0}
.events li{display:grid;grid-template-columns:auto 52px 1fr;align-items:baseline;
gap:0 8px;padding:1px 0 1px 10px}
.events time{font:12px ui-monospace,"DejaVu Sans Mono",monospace;color:#475569}
.events small{color:#94a3b8;font-size:12px}
.events .phase{display:flex;align-items:center;gap:6px;margin:4px 0 2px;font-size:11px;
text-transform:uppercase;letter-spacing:.04em;color:#64748b}
.events .phase i{width:18px;height:8px;border-radius:2px}
.none{color:#94a3b8;margin-left:24px}
"""
# Following a link to a target opens its (collapsed) details.
SCRIPT = (
    "function openTarget(){var d=document.getElementById(location.hash.slice(1));"
    "if(d&&d.open===false)d.open=true}"
    "addEventListener('hashchange',openTarget);openTarget();"
)


def render_html_report(
    run: RunResult, timeline: Timeline, *, plan_path: str, redactor: Redactor | None = None
) -> str:
    """The page for ``run``, drawn from its results and the ``timeline`` that watched it."""
    mask = redactor or Redactor()
    mask.keep(run.plan.targets)  # names are shown whole, whatever secret they contain
    return _Page(run, timeline, mask).render(plan_path)


def write_html_report(
    path: Path,
    run: RunResult,
    timeline: Timeline,
    *,
    plan_path: str,
    redactor: Redactor | None = None,
) -> None:
    """Write the page; a reader sees the previous file or this one, never half.

    The temporary file sits beside ``path`` because a rename is atomic only within a
    file system.
    """
    page = render_html_report(run, timeline, plan_path=plan_path, redactor=redactor)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as out:
            out.write(page)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class _Page:
    """One rendering: the run's time scale, and its targets wave by wave."""

    def __init__(self, run: RunResult, timeline: Timeline, redactor: Redactor) -> None:
        self.run = run
        self.timeline = timeline
        self.redactor = redactor
        starts = [t for t in (run.started_at, timeline.start) if t is not None]
        ends = [t for t in (run.finished_at, timeline.end) if t is not None]
        self.t0 = min(starts, default=0.0)
        self.t1 = max([*ends, self.t0])
        self.total = self.t1 - self.t0 or 1.0
        # Wave by wave, plan order within each: the order the run started them.
        self.waves = [
            (wave, [run.results[n] for n in wave.targets if n in run.results])
            for wave in run.plan.waves
        ]
        self.ids = {target.name: f"t{i}" for i, target in enumerate(run.plan.targets)}

    # -- helpers ---------------------------------------------------------------------

    def text(self, value: object) -> str:
        """``value`` as safe HTML text, secrets masked first."""
        return html.escape(str(self.redactor.scrub(str(value))))

    def pct(self, at: float) -> str:
        return _number((at - self.t0) / self.total * 100)

    def bar(self, start: float, end: float) -> str:
        """The ``style`` placing a box from ``start`` to ``end`` on the time axis."""
        width = _number(max(end - start, 0.0) / self.total * 100)
        return f'style="left:{self.pct(start)}%;width:{width}%"'

    # -- the page --------------------------------------------------------------------

    def render(self, plan_path: str) -> str:
        verdict = str(self.run.verdict)
        return "".join(
            [
                '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width,initial-scale=1">',
                f"<title>Deploy report · {self.text(plan_path)} · {self.text(verdict)}</title>",
                f"<style>{CSS}</style></head><body>",
                '<input type="checkbox" id="only" aria-label="show only problems">',
                self.header(plan_path),
                self.gantt(),
                self.details(),
                f"<script>{SCRIPT}</script></body></html>\n",
            ]
        )

    def header(self, plan_path: str) -> str:
        run = self.run
        started, finished = run.started_at, run.finished_at
        duration = None if started is None or finished is None else finished - started
        facts = [
            ("Started", _utc(started)),
            ("Finished", _utc(finished)),
            ("Duration", "—" if duration is None else format_duration(duration)),
            ("Targets", str(len(run.results))),
            ("Failures", f"{run.failures} (budget {run.plan.failure_budget})"),
            ("On failure", run.plan.on_failure),
        ]
        if run.rolled_back_by_policy:
            undone, tried = run.policy_rollbacks, len(run.rolled_back_by_policy)
            facts.append(
                ("Rolled back by policy", f"{undone} of {tried}" if undone < tried else str(undone))
            )
        meta = "".join(f"<div><dt>{k}</dt><dd>{self.text(v)}</dd></div>" for k, v in facts)
        counts = "".join(
            f'<li class="st-{self.text(status)}{"" if n else " zero"}"><b>{n}</b>'
            f"{self.text(_label(status))}</li>"
            for status, n in run.statistics().items()
        )
        halted = f'<p class="halted">{self.text(run.halted)}</p>' if run.halted else ""
        verdict = self.text(run.verdict)
        return (
            f'<header class="card"><div class="head"><h1>Deploy report</h1>'
            f'<span class="verdict v-{verdict}">{verdict}</span></div>'
            f'<p class="plan">Plan <code>{self.text(plan_path)}</code></p>'
            f'<dl class="meta">{meta}</dl><ul class="counts">{counts}</ul>{halted}</header>'
        )

    def gantt(self) -> str:
        rows: list[str] = []
        boundaries: list[float] = []
        for wave, results in self.waves:
            records = [r for r in map(self.record, results) if r is not None]
            band = ""
            if records:
                began = min(r.first_seen for r in records)
                ended = max(self.t1 if r.finished_at is None else r.finished_at for r in records)
                boundaries.append(began)
                band = f"<i {self.bar(began, ended)}></i>"
                if wave.bake:
                    baked = min(ended + wave.bake, self.t1)
                    band += f'<i class="bake" {self.bar(ended, baked)}></i>'
            about = _plural(len(results), "target")
            if wave.bake:
                about += f" · bake {format_duration(wave.bake)}"
            rows.append(
                f'<div class="wave"><span>Wave {self.text(wave.name)}'
                f"<small>{self.text(about)}</small></span><span></span>"
                f'<div class="track">{band}</div></div>'
            )
            rows.extend(self.row(result) for result in results)
        ticks = _ticks(self.total)
        labels = "".join(f'<b style="left:{self.pct(self.t0 + t)}%">{_clock(t)}</b>' for t in ticks)
        lines = [f'<i style="left:{self.pct(self.t0 + t)}%"></i>' for t in ticks[1:]]
        lines += [f'<i class="w" style="left:{self.pct(at)}%"></i>' for at in boundaries[1:]]
        return (
            '<section class="card"><h2>Timeline</h2>'
            f"{self.legend()}"
            '<div class="chart"><div class="axis"><span>Target</span><span>Status</span>'
            f'<div class="track">{labels}</div></div>'
            f'<div class="grid">{"".join(lines)}</div>{"".join(rows)}</div></section>'
        )

    def legend(self) -> str:
        seen = {span.step for record in self.timeline for span in record.spans}
        chips = "".join(
            f'<span><i class="k-{step}"></i>{_label(step)}</span>' for step in STEPS if step in seen
        )
        return (
            f'<div class="legend">{chips}<span class="sep"></span>'
            '<span><i class="w"></i>wave start</span>'
            '<label class="filter" for="only">Only problems</label></div>'
        )

    def record(self, result: TargetResult) -> TargetTimeline | None:
        return self.timeline.get(result.target.name)

    def row(self, result: TargetResult) -> str:
        name = self.text(result.target.name)
        status = self.text(result.status)
        record = self.record(result)
        bars: list[str] = []
        if record is not None:
            for span in record.spans:
                end = span.end if span.end is not None else self.t1
                stages = [
                    f"{s.stage} {format_duration((s.end or end) - s.start)}"
                    for s in record.stages
                    if s.step == span.step and span.start <= s.start <= end
                ]
                about = f" ({', '.join(stages)})" if stages else ""
                title = self.text(f"{span.step} {format_duration(end - span.start)}{about}")
                bars.append(
                    f'<i class="k-{span.step}" {self.bar(span.start, end)} title="{title}"></i>'
                )
            if not record.spans and record.finished_at is not None:
                at = record.finished_at
                title = self.text(f"{result.status} at {_clock(at - self.t0)}")
                bars.append(f'<i class="end" style="left:{self.pct(at)}%" title="{title}"></i>')
        classes = f"row st-{status}{' ok' if result.status.ok else ''}"
        return (
            f'<div class="{classes}"><a href="#{self.ids[result.target.name]}" title="{name}">'
            f'{name}</a><span class="pill st-{status}">{self.text(_label(status))}</span>'
            f'<div class="track">{"".join(bars)}</div></div>'
        )

    def details(self) -> str:
        sections = [self.target(result) for _, results in self.waves for result in results]
        return f'<section class="card"><h2>Targets</h2>{"".join(sections)}</section>'

    def target(self, result: TargetResult) -> str:
        target = result.target
        status = self.text(result.status)
        where = (
            f"service {target.cluster}/{target.service}"
            if target.service
            else f"task definition {target.task_definition}"
        )
        summary = [f"wave {target.wave}", where, target.scope.region or "default region"]
        if result.duration_s is not None:
            summary.append(format_duration(result.duration_s))
        if target.allow_failure:
            summary.append("allowed to fail")
        if result.status is Status.SKIPPED and result.error:
            summary.append(result.error)  # its only fact, shown without unfolding
        facts: list[tuple[str, str]] = []
        if result.old_task_definition or result.new_task_definition:
            old = f"<code>{self.text(result.old_task_definition or '—')}</code>"
            new = f"<code>{self.text(result.new_task_definition or '—')}</code>"
            facts.append(("Task definition", f"{old} → {new}"))
        if result.deployment_id:
            facts.append(("Deployment", f"<code>{self.text(result.deployment_id)}</code>"))
        if result.error:
            step = f" (in {result.failed_step})" if result.failed_step else ""
            facts.append((f"Error{step}", f'<span class="err">{self.text(result.error)}</span>'))
        if target.depends_on:
            facts.append(("Depends on", self.text(", ".join(target.depends_on))))
        record = self.record(result)
        if record is not None and record.spans:
            facts.append(("Steps", self.text(" · ".join(self.steps(record)))))
        if record is not None and record.stages:
            facts.append(("Lifecycle stages", self.text(" · ".join(self.stages(record)))))
        kv = "".join(f"<dt>{self.text(k)}</dt><dd>{v}</dd>" for k, v in facts)
        # Open what a post-mortem reader wants; a skipped target only repeats its cause.
        opened = " open" if result.status.needs_attention else ""
        return (
            f'<details id="{self.ids[target.name]}" class="st-{status}'
            f'{" ok" if result.status.ok else ""}"{opened}>'
            f'<summary><span class="pill st-{status}">{self.text(_label(status))}</span>'
            f'<b>{self.text(target.name)}</b><span class="muted">'
            f"{self.text(' · '.join(summary))}</span></summary>"
            f'<dl class="kv">{kv}</dl>{self.events(result, record)}</details>'
        )

    def steps(self, record: TargetTimeline) -> Iterable[str]:
        for span in record.spans:
            end = span.end if span.end is not None else self.t1
            yield f"{span.step} {format_duration(end - span.start)}"

    def stages(self, record: TargetTimeline) -> Iterable[str]:
        """ECS's lifecycle stages of the service deployments waited for, with durations
        (a rollback's marked so)."""
        for stage in record.stages:
            end = stage.end if stage.end is not None else self.t1
            during = "" if stage.step == "wait" else f" ({stage.step})"
            yield f"{stage.stage}{during} {format_duration(end - stage.start)}"

    def events(self, result: TargetResult, record: TargetTimeline | None) -> str:
        if record is None or not record.ecs_events:
            return '<p class="none">No ECS events.</p>' if result.target.service else ""
        items: list[str] = []
        step = None
        for event in record.ecs_events:
            if event.step != step:  # a rollback's events read apart from the deploy's
                step = event.step
                items.append(
                    f'<li class="phase"><i class="k-{step}"></i>{self.text(f"during {step}")}</li>'
                )
            items.append(
                f"<li><time>{_utc(event.at, time_only=True)}</time>"
                f"<small>+{_clock(event.at - self.t0)}</small>{self.text(event.message)}</li>"
            )
        return f'<ol class="events">{"".join(items)}</ol>'


def _number(value: float) -> str:
    """A percentage with no more digits than a screen can show."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _label(name: str) -> str:
    return name.replace("_", " ")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _ticks(total: float) -> list[float]:
    """Offsets from the start for the axis: at most ``MAX_TICKS`` intervals, round values."""
    step = next((s for s in TICK_STEPS if total <= s * MAX_TICKS), TICK_STEPS[-1])
    step = max(step, math.ceil(total / MAX_TICKS / step) * step)
    return [i * step for i in range(int(total // step) + 1)]


def _clock(seconds: float) -> str:
    """Elapsed time as ``m:ss`` or ``h:mm:ss``, the axis's unit."""
    hours, rest = divmod(max(round(seconds), 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _utc(epoch: float | None, *, time_only: bool = False) -> str:
    if epoch is None:
        return "—"
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%H:%M:%S") if time_only else moment.strftime("%Y-%m-%d %H:%M:%S UTC")
