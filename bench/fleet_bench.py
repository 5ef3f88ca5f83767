#!/usr/bin/env python3
"""Fleet benchmark: ecs-deploy-many (and fabfuel's ecs-deploy) against the ECS simulator.

For each scenario this script writes a simulator fleet file and a deploy plan, starts
``ecs-deploy-many sim serve --throttling aws`` on 127.0.0.1 (port 0), runs the deployer
as a subprocess against it, and prints one Markdown table: simulated and real wall time,
the throttling lower bound, API calls per target, throttled answers, failed targets, and
the deployer's own peak RSS and CPU time (from ``os.wait4``).

Run ``python bench/fleet_bench.py --help`` for the options; ``bench/README.md`` explains
every column and how the lower bound is computed. Nothing here talks to anything but
127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ecs_deploy_many.core.ratelimit import ECS_BUCKETS, OPERATION_CATEGORY, BucketSpec
from ecs_deploy_many.sim.fleet import Timings

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = ROOT / ".bench"
FABFUEL_VENV = WORK / "fabfuel-venv"
FABFUEL_REQUIREMENT = "ecs-deploy==1.17.0"
REGION = "us-east-1"
ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
OLD_TAG, NEW_TAG = "previous", "next"
DEFAULT_SPEED = 25.0
DEFAULT_FABFUEL_SPEED = 1.0
HEAD_TO_HEAD_SIZE = 50
FABFUEL_TIMEOUT_SIM_S = 600  # per process, simulated seconds; about 5x its lower bound
# Above this share of one core the engine may lag the simulator's clock (it is one
# asyncio thread), and simulated walls stretch with the speed.
SATURATION = 0.7
# A run whose event loop woke this late (99th percentile, simulated seconds), or was
# late for this share of its real wall in all, ran behind its clock: flagged. So is a run
# whose engine waited for a CPU (runnable, other processes running) this share of it.
LAG_P99_LIMIT_SIM_S = 5.0
LAG_SHARE_LIMIT = 0.10
CPU_WAIT_LIMIT = 0.10

# Short names for the per-target call counts, in the order they are printed.
OPERATION_ABBREVIATIONS = {
    "RegisterTaskDefinition": "Reg",
    "UpdateService": "Upd",
    "DescribeServices": "DS",
    "DescribeTaskDefinition": "DTD",
    "ListTasks": "LT",
    "DescribeTasks": "DT",
    "ListTaskDefinitions": "LTD",
    "DeregisterTaskDefinition": "Dereg",
}


# -- scenarios --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One fleet and one tool; ``families`` None means one family per service."""

    name: str
    targets: int
    clusters: int
    families: int | None = None
    tool: str = "ecs-deploy-many"  # or "ecs-deploy" (fabfuel's)

    @property
    def distinct_families(self) -> int:
        return self.targets if self.families is None else self.families


def all_scenarios(head_to_head: int = HEAD_TO_HEAD_SIZE) -> list[Scenario]:
    """The standard set; ``head_to_head`` services for the fabfuel comparison."""
    pair_clusters = max(1, min(head_to_head // 25, head_to_head))
    return [
        Scenario(BASELINE, 1, 1),
        Scenario("distinct-100", 100, 4),
        Scenario("distinct-1000", 1000, 10),
        Scenario("distinct-2000", 2000, 20),
        Scenario("shared10-1000", 1000, 10, families=10),
        Scenario(f"many-{head_to_head}", head_to_head, pair_clusters),
        Scenario(f"fabfuel-{head_to_head}", head_to_head, pair_clusters, tool="ecs-deploy"),
    ]


BASELINE = "single"


def parse_custom(text: str) -> Scenario:
    """``N:C[:F]``: N targets over C clusters, F shared families (distinct when absent)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected N:C or N:C:F with positive integers: {text}")
    targets, clusters = int(parts[0]), int(parts[1])
    families = int(parts[2]) if len(parts) == 3 else None
    clusters = min(clusters, targets)
    kind = "distinct" if families is None else f"shared{families}"
    return Scenario(f"custom-{kind}-{targets}-{clusters}c", targets, clusters, families)


# -- fleet and plan files ---------------------------------------------------------------


def service_names(scenario: Scenario) -> list[tuple[str, str, str]]:
    """(cluster, service, family) per service, services spread round-robin over clusters."""
    width = len(str(scenario.targets))
    rows = []
    for index in range(scenario.targets):
        cluster = f"bench-{index % scenario.clusters:02d}"
        service = f"svc-{index:0{width}d}"
        family = service if scenario.families is None else f"family-{index % scenario.families:02d}"
        rows.append((cluster, service, family))
    return rows


def fleet_document(scenario: Scenario) -> dict[str, Any]:
    """A simulator fleet: default timings, every service steady on image tag ``previous``."""
    rows = service_names(scenario)
    families = sorted({family for _, _, family in rows})
    task_definitions = {
        family: {
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [
                {"name": "app", "image": f"{REGISTRY}/{family}:{OLD_TAG}", "essential": True}
            ],
        }
        for family in families
    }
    clusters: dict[str, list[dict[str, Any]]] = {}
    for cluster, service, family in rows:
        clusters.setdefault(cluster, []).append(
            {"name": service, "task_definition": family, "desired_count": 1}
        )
    return {
        "account_id": ACCOUNT,
        "region": REGION,
        "task_definitions": task_definitions,
        "clusters": [{"name": name, "services": svcs} for name, svcs in sorted(clusters.items())],
    }


def target_timeout(scenario: Scenario) -> int:
    """A per-target timeout (simulated s) no throttled queue of this size comes near."""
    return 3 * (scenario.targets + 300) + 900


def plan_document(scenario: Scenario) -> dict[str, Any]:
    """Every service to tag ``next``, all at once: concurrency is never the limit."""
    return {
        "version": 1,
        # The simulator serves ECS only: the tags are deployed as they are, as fabfuel's
        # ecs-deploy deploys them, and pinning (one more read per target) is left out.
        "images": {"pin_digests": False},
        "defaults": {
            "region": REGION,
            "tag_only": NEW_TAG,
            "timeout": target_timeout(scenario),
        },
        "concurrency": {"max_parallel": scenario.targets},
        "targets": [
            {"cluster": cluster, "service": service}
            for cluster, service, _ in service_names(scenario)
        ],
    }


def write_yaml(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=120), encoding="utf-8")


# -- lower bound ------------------------------------------------------------------------


def drain_seconds(calls: int, bucket: BucketSpec) -> float:
    """Simulated seconds a bucket needs to allow ``calls`` calls, starting full."""
    return max(0.0, calls - bucket.burst) / bucket.refill_per_s


def lower_bound(scenario: Scenario, deployment_s: float) -> float:
    """max(registration time, update time) + one deployment's duration.

    Registrations count one per distinct resulting task definition (services sharing a
    family and getting the same image share one): the fewest any tool can make.
    """
    registrations = drain_seconds(
        scenario.distinct_families,
        ECS_BUCKETS[OPERATION_CATEGORY["RegisterTaskDefinition"]],
    )
    updates = drain_seconds(scenario.targets, ECS_BUCKETS[OPERATION_CATEGORY["UpdateService"]])
    return max(registrations, updates) + deployment_s


def timings_deployment_s() -> float:
    """One replacement with default timings: the new task healthy, then the old one gone."""
    t = Timings()
    start = t.provisioning + t.pending + t.activating + t.health_grace
    return start + t.deactivating + t.stopping + t.deprovisioning


# -- processes --------------------------------------------------------------------------


@dataclass
class Usage:
    """What ``os.wait4`` says about one finished child."""

    exit_code: int
    real_s: float
    cpu_s: float
    max_rss_kib: int


def wait_for(pid: int, started: float) -> Usage:
    """Reap ``pid`` and return its own resource usage (ru_maxrss is KiB on Linux)."""
    _, status, usage = os.wait4(pid, 0)
    return Usage(
        exit_code=os.waitstatus_to_exitcode(status),
        real_s=time.monotonic() - started,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_kib=usage.ru_maxrss,
    )


def reap(process: subprocess.Popen[Any], started: float, deadline_s: float) -> Usage:
    """Wait for ``process`` (SIGTERM, then SIGKILL, once the real-time deadline passes)."""

    def stop() -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        time.sleep(10)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    watchdog = threading.Timer(deadline_s, stop)
    watchdog.daemon = True
    watchdog.start()
    try:
        usage = wait_for(process.pid, started)
    finally:
        watchdog.cancel()
    process.returncode = usage.exit_code  # reaped here, so Popen must not wait again
    return usage


def client_env(endpoint_url: str | None = None) -> dict[str, str]:
    """The environment of a deployer: dummy keys, one region, no AWS config, no proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="AKIDBENCHMARK",
        AWS_SECRET_ACCESS_KEY="benchmark-secret-not-a-real-key",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if endpoint_url:
        env["AWS_ENDPOINT_URL_ECS"] = endpoint_url
    return env


def tool_path(name: str) -> str:
    """A console script of the venv this script runs in (else from PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        sys.exit(f"error: {name} not found; run `make install` first")
    return found


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sim_get(endpoint: str, path: str) -> dict[str, Any]:
    with _NO_PROXY.open(f"{endpoint}{path}", timeout=30) as response:
        body: dict[str, Any] = json.load(response)
        return body


def sim_post(endpoint: str, path: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{endpoint}{path}", data=b"", method="POST")
    with _NO_PROXY.open(request, timeout=30) as response:
        body: dict[str, Any] = json.load(response)
        return body


@dataclass
class RunningSim:
    endpoint: str
    usage: Usage | None = None


@contextlib.contextmanager
def simulator(fleet_file: Path, speed: float, log_file: Path) -> Iterator[RunningSim]:
    """``sim serve`` on 127.0.0.1, port 0, throttling as AWS; stopped with SIGTERM."""
    command = [
        tool_path("ecs-deploy-many"),
        *("sim", "serve", "--host", "127.0.0.1", "--port", "0"),
        *("--throttling", "aws", "--speed", f"{speed:g}", "--fleet", str(fleet_file)),
    ]
    started = time.monotonic()
    running = RunningSim("")
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        assert process.stdout is not None
        try:
            line = _first_line(process, timeout_s=120)
            prefix = "ECS simulator listening on "
            if not line.startswith(prefix):
                raise RuntimeError(f"unexpected first line from the simulator: {line!r}")
            running.endpoint = line[len(prefix) :].strip()
            if not running.endpoint.startswith("http://127.0.0.1:"):
                raise RuntimeError(f"the simulator is not on 127.0.0.1: {running.endpoint}")
            yield running
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                running.usage = reap(process, started, deadline_s=30)
            process.stdout.close()


def _first_line(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise RuntimeError(f"the simulator said nothing within {timeout_s:g} s")
    line = process.stdout.readline().decode()
    if not line:
        raise RuntimeError("the simulator exited before listening; see its log")
    return line


# -- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopLag:
    """How late the engine's event loop woke, from ``engine_probe.py``'s samples."""

    speed: float
    wakeups: int
    p50_s: float  # real seconds
    p99_s: float
    max_s: float
    share: float  # all lateness over the probe's real time
    cpu_wait_share: float | None  # runnable but without a CPU, over the probe's real time

    @classmethod
    def read(cls, path: Path, speed: float) -> LoopLag:
        figures = json.loads(path.read_text(encoding="utf-8"))
        late: list[float] = sorted(figures["lateness_s"]) or [0.0]

        def percentile(p: float) -> float:
            return late[min(len(late) - 1, int(p * len(late)))]

        real: float = figures["real_s"] or 1.0
        waited = figures.get("cpu_wait_s")
        return cls(
            speed,
            len(late),
            percentile(0.5),
            percentile(0.99),
            late[-1],
            sum(late) / real,
            None if waited is None else waited / real,
        )

    @property
    def p99_sim_s(self) -> float:
        return self.p99_s * self.speed

    @property
    def grew(self) -> bool:
        """The engine ran behind its clock: its simulated walls are stretched."""
        return self.p99_sim_s > LAG_P99_LIMIT_SIM_S or self.share > LAG_SHARE_LIMIT or self.starved

    @property
    def starved(self) -> bool:
        """Other processes held the CPU while the engine had work to do."""
        return self.cpu_wait_share is not None and self.cpu_wait_share > CPU_WAIT_LIMIT

    def cell(self) -> str:
        """p50 / p99 / max lateness in simulated seconds; shares of the wall spent late
        and spent waiting for a CPU."""
        sim = [f"{v * self.speed:.2f}" for v in (self.p50_s, self.p99_s, self.max_s)]
        waited = "–" if self.cpu_wait_share is None else f"{100 * self.cpu_wait_share:.1f}%"
        return " / ".join(sim) + f" (late {100 * self.share:.1f}%, no CPU {waited})"

    def to_json(self) -> dict[str, Any]:
        return {
            "wakeups": self.wakeups,
            "p50_sim_s": round(self.p50_s * self.speed, 3),
            "p99_sim_s": round(self.p99_s * self.speed, 3),
            "max_sim_s": round(self.max_s * self.speed, 3),
            "late_share": round(self.share, 4),
            "cpu_wait_share": _round(self.cpu_wait_share, 4),
        }


@dataclass(frozen=True)
class Calibration:
    """Bare aiobotocore calls against the same simulator: the SDK's own CPU per call."""

    calls: int
    throttled: int
    errors: int
    cpu_s: float  # over the calls alone
    process_cpu_s: float  # the whole process, start-up included

    @property
    def cpu_per_call_s(self) -> float:
        return self.cpu_s / self.calls if self.calls else 0.0


@dataclass
class Result:
    scenario: Scenario
    speed: float
    sim_wall_s: float | None = None
    real_wall_s: float = 0.0
    lower_bound_s: float | None = None
    calls: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    max_rss_mb: float = 0.0
    rss_note: str = ""
    cpu_s: float = 0.0
    sim_cpu_s: float | None = None
    sim_real_s: float | None = None
    deployment_s: float | None = None  # first "has started" -> "deployment completed"
    notes: list[str] = field(default_factory=list)
    lag: LoopLag | None = None
    calibration: Calibration | None = None
    load_before: float | None = None  # 1-minute load average around the deployer's run
    load_after: float | None = None
    baseline: Result | None = None  # 'single': the engine's start-up, for per-call CPU

    @property
    def cpu_per_call_s(self) -> float | None:
        """The engine's CPU per call beyond its start-up (the 'single' run's CPU and calls).

        Without a baseline, the whole process over all its calls.
        """
        cpu, calls = self.cpu_s, self.total_calls
        if self.baseline is not None and self.baseline is not self:
            cpu -= self.baseline.cpu_s
            calls -= self.baseline.total_calls
        return cpu / calls if calls > 0 else None

    @property
    def cpu_per_call_ratio(self) -> float | None:
        """Engine CPU per call over the bare SDK's, measured in the same run."""
        engine, sdk = self.cpu_per_call_s, self.calibration
        if engine is None or sdk is None or not sdk.cpu_per_call_s:
            return None
        return engine / sdk.cpu_per_call_s

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_throttled(self) -> int:
        return sum(self.throttled.values())

    def to_json(self) -> dict[str, Any]:
        sdk = self.calibration
        return {
            "scenario": self.scenario.name,
            "tool": self.scenario.tool,
            "targets": self.scenario.targets,
            "clusters": self.scenario.clusters,
            "distinct_families": self.scenario.distinct_families,
            "speed": self.speed,
            "simulated_wall_s": self.sim_wall_s,
            "real_wall_s": round(self.real_wall_s, 3),
            "lower_bound_s": self.lower_bound_s,
            "calls": self.calls,
            "throttled": self.throttled,
            "failed_targets": self.failed,
            "statuses": self.statuses,
            "peak_rss_mb": round(self.max_rss_mb, 1),
            "cpu_s": round(self.cpu_s, 2),
            "simulator_cpu_s": None if self.sim_cpu_s is None else round(self.sim_cpu_s, 2),
            "cpu_per_call_ms": _ms(self.cpu_per_call_s),
            "sdk_cpu_per_call_ms": _ms(sdk.cpu_per_call_s) if sdk else None,
            "sdk_process_cpu_s": round(sdk.process_cpu_s, 2) if sdk else None,
            "cpu_per_call_ratio": _round(self.cpu_per_call_ratio, 2),
            "loop_lag": self.lag.to_json() if self.lag else None,
            "load_average": [self.load_before, self.load_after],
            "notes": self.notes,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 3)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def deployment_duration(target: dict[str, Any]) -> float | None:
    """Simulated seconds from the deployment's first task start to ECS calling it complete.

    Both come from ECS's own service events, stamped by the simulator's clock, so this is
    the deployment as ECS ran it, without any client's polling delay.
    """
    started = completed = None
    for event in target.get("service_events", []):
        at, message = event.get("at"), event.get("message", "")
        if not at:
            continue
        if "has started" in message:
            started = _epoch(at) if started is None else min(started, _epoch(at))
        elif "deployment completed" in message:
            completed = _epoch(at)
    if started is None or completed is None:
        return None
    return completed - started


def read_report(path: Path, result: Result) -> None:
    """Failed targets and first start -> last finish on the run's (simulated) clock."""
    report = json.loads(path.read_text(encoding="utf-8"))
    targets = report["targets"]
    starts = [_epoch(t["started_at"]) for t in targets if t.get("started_at")]
    finishes = [_epoch(t["finished_at"]) for t in targets if t.get("finished_at")]
    if starts and finishes:
        result.sim_wall_s = max(finishes) - min(starts)
    statuses: dict[str, int] = {}
    for target in targets:
        statuses[target["status"]] = statuses.get(target["status"], 0) + 1
    result.statuses = statuses
    result.failed = sum(n for s, n in statuses.items() if s not in ("succeeded", "unchanged"))
    missing = result.scenario.targets - len(targets)
    if missing:
        result.failed += missing
        result.notes.append(f"{missing} targets missing from the report")
    durations = [d for d in map(deployment_duration, targets) if d is not None]
    if durations:
        result.deployment_s = min(durations)
    errors = sorted({t["error"] for t in targets if t.get("error")})
    if errors:
        result.notes.append("errors: " + "; ".join(errors[:3]))


# -- runs -------------------------------------------------------------------------------


def prepare(scenario: Scenario, run_dir: Path) -> tuple[Path, Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    fleet_file, plan_file = run_dir / "fleet.yaml", run_dir / "plan.yaml"
    write_yaml(fleet_file, fleet_document(scenario))
    write_yaml(plan_file, plan_document(scenario))
    return fleet_file, plan_file


def run_many(
    scenario: Scenario,
    speed: float,
    run_dir: Path,
    *,
    calibrate: bool = True,
    profile_dir: Path | None = None,
) -> Result:
    """ecs-deploy-many PLAN against a fresh simulator at ``speed``, then the calibration.

    The deployer runs under ``engine_probe.py`` (its event-loop lag; cProfile into
    ``profile_dir`` when given). The bare-SDK calibration then makes as many calls as the
    engine made, against the same simulator, after its stats are read.
    """
    fleet_file, plan_file = prepare(scenario, run_dir)
    result = Result(scenario, speed)
    report = run_dir / "report.json"
    with simulator(fleet_file, speed, run_dir / "simulator.log") as sim:
        sim_post(sim.endpoint, "/_sim/reset-stats")
        command = [
            sys.executable,
            str(BENCH / "engine_probe.py"),
            str(plan_file),
            *("--endpoint-url", sim.endpoint, "--speed", f"{speed:g}"),
            *("--report", str(report), "--log-format", "json"),
            # journaled as any run is (its cost is measured), in the run's own directory
            *("--journal", str(run_dir / "journal")),
        ]
        lag_file = run_dir / "lag.json"
        env = {**client_env(), "ECS_BENCH_LAG_FILE": str(lag_file)}
        if profile_dir:
            env["ECS_BENCH_PROFILE"] = str(profile_dir / f"{scenario.name}.prof")
        deadline = (target_timeout(scenario) + 600) / speed + 120
        result.load_before = os.getloadavg()[0]
        with (run_dir / "engine.log").open("wb") as log:
            started = time.monotonic()
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            usage = reap(process, started, deadline)
        result.load_after = os.getloadavg()[0]
        stats = sim_get(sim.endpoint, "/_sim/stats")
        result.calls, result.throttled = dict(stats["calls"]), dict(stats["throttled"])
        if calibrate and result.total_calls:
            result.calibration = run_calibration(
                scenario, sim.endpoint, result.total_calls, speed, run_dir
            )
    (run_dir / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    result.real_wall_s, result.cpu_s = usage.real_s, usage.cpu_s
    result.max_rss_mb = usage.max_rss_kib / 1024
    if lag_file.exists():
        result.lag = LoopLag.read(lag_file, speed)
    if sim.usage:
        result.sim_cpu_s, result.sim_real_s = sim.usage.cpu_s, sim.usage.real_s
    if usage.exit_code not in (0, 1):
        result.notes.append(f"exit code {usage.exit_code}; see {run_dir / 'engine.log'}")
    if report.exists():
        read_report(report, result)
    else:
        result.failed = scenario.targets
        result.notes.append(f"no report; see {run_dir / 'engine.log'}")
    return result


def run_calibration(
    scenario: Scenario, endpoint: str, calls: int, speed: float, run_dir: Path
) -> Calibration | None:
    """``sdk_calibration.py``: ``calls`` bare DescribeServices, its CPU from ``os.wait4``."""
    services: dict[str, list[str]] = {}
    for cluster, service, _ in service_names(scenario):
        services.setdefault(cluster, []).append(service)
    services_file = run_dir / "services.json"
    services_file.write_text(json.dumps(services), encoding="utf-8")
    command = [
        sys.executable,
        str(BENCH / "sdk_calibration.py"),
        *(endpoint, str(services_file), str(calls), f"{speed:g}"),
    ]
    with (run_dir / "calibration.log").open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=client_env())
        assert process.stdout is not None
        output = process.stdout.read()
        process.stdout.close()
        usage = reap(process, started, deadline_s=600)
    if usage.exit_code != 0:
        return None
    counts = json.loads(output)
    return Calibration(
        int(counts["calls"]),
        int(counts["throttled"]),
        int(counts["errors"]),
        counts["cpu_s"],
        usage.cpu_s,
    )


def ensure_fabfuel() -> Path:
    """fabfuel's ``ecs`` command in a venv of its own (it pins its own boto3)."""
    ecs = FABFUEL_VENV / "bin" / "ecs"
    if ecs.exists():
        return ecs
    print(f"installing {FABFUEL_REQUIREMENT} into {FABFUEL_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(FABFUEL_VENV)], check=True)
    pip = [str(FABFUEL_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, FABFUEL_REQUIREMENT], check=True)
    return ecs


def fabfuel_versions() -> str:
    python = FABFUEL_VENV / "bin" / "python"
    code = (
        "import importlib.metadata as m; "
        "print(', '.join(f'{n} {m.version(n)}' for n in ('ecs-deploy', 'boto3')))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def run_fabfuel(
    scenario: Scenario, speed: float, run_dir: Path, fabfuel_env: dict[str, str]
) -> Result:
    """One ``ecs deploy CLUSTER SERVICE --tag next`` per service, all started at once.

    It runs on real time (its polls sleep one real second, its retries back off in real
    seconds) while the simulator runs at ``speed``: its ``--timeout`` is the plan's
    timeout divided by the speed, and its simulated wall comes from the simulator's clock
    read before the first process starts and after the last one exits.
    """
    ecs = ensure_fabfuel()
    fleet_file, _ = prepare(scenario, run_dir)
    result = Result(scenario, speed)
    timeout = max(30, math.ceil(FABFUEL_TIMEOUT_SIM_S / speed))
    usages: dict[str, Usage] = {}
    with simulator(fleet_file, speed, run_dir / "simulator.log") as sim:
        sim_post(sim.endpoint, "/_sim/reset-stats")
        env = {**client_env(sim.endpoint), **fabfuel_env}
        clock_before = sim_get(sim.endpoint, "/_sim/clock")["now"]
        started = time.monotonic()
        logs_dir = run_dir / "ecs-deploy-logs"
        logs_dir.mkdir(exist_ok=True)
        threads = []
        for cluster, service, _ in service_names(scenario):
            command = [
                str(ecs),
                *("deploy", cluster, service, "--tag", NEW_TAG),
                *("--region", REGION, "--timeout", str(timeout), "--no-deregister"),
            ]
            log = (logs_dir / f"{cluster}-{service}.log").open("wb")
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            log.close()

            def collect(p: subprocess.Popen[bytes] = process, key: str = service) -> None:
                usages[key] = reap(p, started, timeout + 120)

            thread = threading.Thread(target=collect, daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        result.real_wall_s = time.monotonic() - started
        clock_after = sim_get(sim.endpoint, "/_sim/clock")["now"]
        stats = sim_get(sim.endpoint, "/_sim/stats")
    (run_dir / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    result.sim_wall_s = clock_after - clock_before
    result.calls, result.throttled = dict(stats["calls"]), dict(stats["throttled"])
    if sim.usage:
        result.sim_cpu_s, result.sim_real_s = sim.usage.cpu_s, sim.usage.real_s
    result.cpu_s = sum(u.cpu_s for u in usages.values())
    peaks = [u.max_rss_kib / 1024 for u in usages.values()]
    result.max_rss_mb = sum(peaks)
    result.rss_note = f"sum of {len(peaks)}, each ≤{max(peaks):.0f}"
    failures = {k: u.exit_code for k, u in usages.items() if u.exit_code != 0}
    result.failed = len(failures)
    result.statuses = {"succeeded": len(usages) - len(failures), "failed": len(failures)}
    if failures:
        result.notes.append(_fabfuel_errors(logs_dir))
    settings = "".join(f", {k}={v}" for k, v in fabfuel_env.items())
    result.notes.append(
        f"{fabfuel_versions()}; --timeout {timeout} (real s), --no-deregister{settings}"
    )
    return result


def _fabfuel_errors(logs_dir: Path) -> str:
    """Why the failed processes failed: the error line of each, counted."""
    reasons: dict[str, int] = {}
    for log in sorted(logs_dir.glob("*.log")):
        lines = [line.lstrip(".").strip() for line in log.read_text(errors="replace").splitlines()]
        lines = [line for line in lines if line]
        if not lines or lines[-1].startswith("Duration"):
            continue
        reason = lines[-1][:150]
        reasons[reason] = reasons.get(reason, 0) + 1
    ranked = sorted(reasons.items(), key=lambda item: -item[1])
    return "failures: " + "; ".join(f"{n}x {r}" for r, n in ranked)


# -- table ------------------------------------------------------------------------------


def compact_calls(result: Result) -> str:
    targets = result.scenario.targets
    parts = []
    for operation, short in OPERATION_ABBREVIATIONS.items():
        if result.calls.get(operation):
            parts.append(f"{short} {result.calls[operation] / targets:.2f}")
    others = {k: v for k, v in result.calls.items() if k not in OPERATION_ABBREVIATIONS}
    parts.extend(f"{k} {v / targets:.2f}" for k, v in sorted(others.items()))
    return " ".join(parts)


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


COLUMNS = (
    "scenario",
    "targets",
    "clusters",
    "distinct families",
    "simulated wall (s)",
    "real wall (s)",
    "lower bound (s)",
    "wall / lower bound",
    "API calls per target",
    "throttled",
    "failed targets",
    "peak RSS (MB)",
    "CPU (s)",
    "CPU per call (ms): engine / bare SDK",
    "loop lag p50 / p99 / max (sim s)",
)


def row(result: Result) -> list[str]:
    s = result.scenario
    throttled = result.total_throttled
    share = 100 * throttled / result.total_calls if result.total_calls else 0.0
    busy = 100 * result.cpu_s / result.real_wall_s if result.real_wall_s else 0.0
    rss = _num(result.max_rss_mb)
    if result.rss_note:
        rss += f" ({result.rss_note})"
    name = s.name if s.tool == "ecs-deploy-many" else f"{s.name} (ecs-deploy)"
    name += f" @{result.speed:g}x"
    return [
        name,
        f"{s.targets:,}",
        f"{s.clusters:,}",
        f"{s.distinct_families:,}",
        _num(result.sim_wall_s),
        _num(result.real_wall_s, 1),
        _num(result.lower_bound_s),
        _ratio(result.sim_wall_s, result.lower_bound_s),
        compact_calls(result),
        f"{throttled:,} ({share:.1f}%)",
        f"{result.failed:,}",
        rss,
        f"{result.cpu_s:,.1f} ({busy:.0f}%)",
        per_call_cell(result),
        result.lag.cell() if result.lag else "–",
    ]


def per_call_cell(result: Result) -> str:
    """``engine / SDK = ratio``; the SDK's figure is this run's calibration."""
    engine, sdk = result.cpu_per_call_s, result.calibration
    if engine is None or result.scenario.tool != "ecs-deploy-many":
        return "–"
    if sdk is None or not sdk.cpu_per_call_s:
        return f"{1000 * engine:.2f} / –"
    return (
        f"{1000 * engine:.2f} / {1000 * sdk.cpu_per_call_s:.2f} = {result.cpu_per_call_ratio:.2f}×"
    )


def ratio_row(fabfuel: Result, many: Result) -> list[str]:
    """fabfuel's figures divided by ecs-deploy-many's on the same 50-service fleet."""
    n = fabfuel.scenario.targets
    return [
        f"ratio ecs-deploy ÷ ecs-deploy-many ({n} services)",
        "",
        "",
        "",
        _ratio(fabfuel.sim_wall_s, many.sim_wall_s),
        # Real walls compare only at one speed.
        _ratio(fabfuel.real_wall_s, many.real_wall_s) if fabfuel.speed == many.speed else "–",
        "",
        "",
        f"all calls {_ratio(fabfuel.total_calls, many.total_calls)}",
        f"{fabfuel.total_throttled:,} vs {many.total_throttled:,}",
        f"{fabfuel.failed} vs {many.failed}",
        _ratio(fabfuel.max_rss_mb, many.max_rss_mb),
        _ratio(fabfuel.cpu_s, many.cpu_s),
        "",
        "",
    ]


def markdown(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(COLUMNS), rule, *(line(r) for r in rows)])


# -- main -------------------------------------------------------------------------------


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    names = [s.name for s in all_scenarios()]
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--only-scenario",
        action="append",
        metavar="NAME",
        help=f"run only this scenario (repeatable); one of: {', '.join(names)} "
        "(the last two follow --head-to-head)",
    )
    parser.add_argument(
        "--head-to-head",
        type=int,
        default=HEAD_TO_HEAD_SIZE,
        metavar="N",
        help="services in the ecs-deploy vs ecs-deploy-many comparison",
    )
    parser.add_argument(
        "--custom",
        action="append",
        type=parse_custom,
        default=[],
        metavar="N:C[:F]",
        help="also run N services over C clusters (F shared families; distinct if absent)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help="simulator clock speed for the ecs-deploy-many runs",
    )
    parser.add_argument(
        "--fabfuel-speed",
        type=float,
        default=DEFAULT_FABFUEL_SPEED,
        help="simulator clock speed for the fabfuel run (it paces itself on real time)",
    )
    parser.add_argument(
        "--fabfuel-env",
        action="append",
        type=_env_pair,
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for each ecs-deploy process, e.g. AWS_MAX_ATTEMPTS=10",
    )
    parser.add_argument(
        "--no-fabfuel", action="store_true", help="skip fabfuel's ecs-deploy entirely"
    )
    parser.add_argument(
        "--deployment-s",
        type=float,
        help="D for the lower bound, in simulated seconds, instead of measuring it in "
        "the 'single' scenario",
    )
    parser.add_argument(
        "--no-calibration",
        action="store_true",
        help="skip the bare-SDK calibration after each ecs-deploy-many run",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="profile each ecs-deploy-many run with cProfile into DIR/SCENARIO.prof",
    )
    parser.add_argument("--json", type=Path, help="also write every figure as JSON to this file")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep each run's fleet, plan, report, logs and stats under .bench/runs/",
    )
    return parser.parse_args(argv)


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE: {text}")
    return key, value


def selected(args: argparse.Namespace) -> list[Scenario]:
    known = all_scenarios(args.head_to_head)
    unknown = set(args.only_scenario or ()) - {s.name for s in known}
    if unknown:
        names = ", ".join(s.name for s in known)
        sys.exit(f"error: unknown scenario {', '.join(sorted(unknown))}; known: {names}")
    chosen = [s for s in known if not args.only_scenario or s.name in args.only_scenario]
    chosen.extend(args.custom)
    if args.no_fabfuel:
        chosen = [s for s in chosen if s.tool != "ecs-deploy"]
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    scenarios = selected(args)
    if not scenarios:
        print("nothing to run", file=sys.stderr)
        return 2
    runs = WORK / "runs" / time.strftime("%Y%m%d-%H%M%S")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    began = time.monotonic()
    deployment_s = args.deployment_s
    baseline = all_scenarios()[0]
    if deployment_s is None and baseline not in scenarios:
        scenarios.insert(0, baseline)  # D for the lower bound is measured, not assumed
    try:
        for scenario in scenarios:
            speed = args.fabfuel_speed if scenario.tool == "ecs-deploy" else args.speed
            print(f"running {scenario.name} at {speed:g}x ...", file=sys.stderr, flush=True)
            run = runs / scenario.name
            if scenario.tool == "ecs-deploy":
                result = run_fabfuel(scenario, speed, run, dict(args.fabfuel_env))
            else:
                result = run_many(
                    scenario,
                    speed,
                    run,
                    calibrate=not args.no_calibration and scenario.name != BASELINE,
                    profile_dir=args.profile,
                )
            if scenario.name == BASELINE and deployment_s is None:
                deployment_s = result.deployment_s
            results.append(result)
            print(
                f"  {scenario.name}: simulated {_num(result.sim_wall_s)} s, real "
                f"{result.real_wall_s:.1f} s, {result.total_calls} calls, "
                f"{result.total_throttled} throttled, {result.failed} failed",
                file=sys.stderr,
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(runs, ignore_errors=True)
    start_up = next((r for r in results if r.scenario.name == BASELINE), None)
    for result in results:
        if deployment_s is not None:
            result.lower_bound_s = lower_bound(result.scenario, deployment_s)
        if result.scenario.tool == "ecs-deploy-many":
            result.baseline = start_up
    print_table(results, args, deployment_s, time.monotonic() - began)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "speed": args.speed,
                    "fabfuel_speed": args.fabfuel_speed,
                    "deployment_s": deployment_s,
                    "results": [r.to_json() for r in results],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return 0


def lag_warning(result: Result) -> str:
    """Why this run's walls cannot be trusted, if they cannot: the engine fell behind."""
    busy = result.cpu_s / result.real_wall_s if result.real_wall_s else 0.0
    if result.lag is None or not result.lag.grew:
        if busy > SATURATION:
            return "WARNING: the engine used most of a core; try a lower --speed"
        return ""
    lag = result.lag
    behind = (
        f"the engine's event loop woke up to {lag.p99_sim_s:.2f} simulated s late "
        f"(p99; late {100 * lag.share:.1f}% of the run)"
    )
    if lag.starved:
        assert lag.cpu_wait_share is not None
        return (
            f"WARNING: {behind}, and for {100 * lag.cpu_wait_share:.1f}% of the run it had "
            "work to do but other processes held the CPU: this wall / lower bound is "
            "stretched by a starved engine, not by the engine's own work; rerun on a "
            "quieter machine or at a lower --speed"
        )
    return (
        f"WARNING: {behind} at {100 * busy:.0f}% of a core: the engine's own work could "
        "not keep up with its clock, so the walls are stretched; try a lower --speed"
    )


def calibration_note(result: Result) -> str:
    sdk = result.calibration
    if sdk is None:
        return ""
    note = (
        f"bare SDK: {sdk.calls:,} DescribeServices in {sdk.cpu_s:.1f} s CPU "
        f"({sdk.process_cpu_s:.1f} s with start-up; {1000 * sdk.cpu_per_call_s:.2f} ms per call"
    )
    if result.cpu_per_call_ratio is not None:
        own = result.cpu_per_call_ratio - 1
        note += f"; the engine's own share {own:.2f}× the SDK's"
    note += ")"
    if sdk.throttled or sdk.errors:
        note += f", {sdk.throttled} throttled, {sdk.errors} errors"
    return note


def load_note(result: Result) -> str:
    if result.load_before is None or result.load_after is None:
        return ""
    return f"load average {result.load_before:.2f} -> {result.load_after:.2f}"


def source_revision() -> str:
    """Which engine was measured: the commit, and whether src/ had local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "engine revision unknown"
    return f"engine at {head}" + (" with local changes in src/" if dirty else "")


def print_table(
    results: Sequence[Result], args: argparse.Namespace, deployment_s: float | None, took: float
) -> None:
    rows = [row(r) for r in results]
    fabfuel = next((r for r in results if r.scenario.tool == "ecs-deploy"), None)
    many = next(
        (
            r
            for r in results
            if fabfuel
            and r.scenario.tool == "ecs-deploy-many"
            and r.scenario.targets == fabfuel.scenario.targets
            and r.scenario.clusters == fabfuel.scenario.clusters
            and r.scenario.families == fabfuel.scenario.families
        ),
        None,
    )
    if fabfuel and many:
        rows.append(ratio_row(fabfuel, many))
    print(markdown(rows))
    print()
    d_note = "not measured" if deployment_s is None else f"{deployment_s:.1f} s"
    print(
        f"Simulator at {args.speed:g}x for ecs-deploy-many"
        + (f", {args.fabfuel_speed:g}x for ecs-deploy" if fabfuel else "")
        + f"; throttling as AWS. D = {d_note} (one deployment as the simulator ran it in "
        f"'single', from ECS's service events; the default timings add up to "
        f"{timings_deployment_s():.0f} s). "
        f"Benchmark took {took:.0f} s; {source_revision()}."
    )
    for result in results:
        sim_cpu = (
            ""
            if result.sim_cpu_s is None or not result.sim_real_s
            else f"simulator CPU {result.sim_cpu_s:.1f} s "
            f"({100 * result.sim_cpu_s / result.sim_real_s:.0f}% of its {result.sim_real_s:.0f} s)"
        )
        extra = [sim_cpu, calibration_note(result), load_note(result), *result.notes]
        warning = lag_warning(result)
        if warning:
            extra.insert(0, warning)
        unusual = {k: v for k, v in result.statuses.items() if k != "succeeded" and v}
        if unusual:
            extra.insert(0, "statuses " + ", ".join(f"{k} {v}" for k, v in unusual.items()))
        print(f"- {result.scenario.name}: " + "; ".join(e for e in extra if e))


if __name__ == "__main__":
    sys.exit(main())
