"""The fleet benchmark's verdicts on a run: lag, starvation and CPU per call."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fleet_bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleet_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fleet_bench"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def probe_file(
    tmp_path: Path, lateness: list[float], real_s: float, cpu_wait_s: float | None
) -> Path:
    path = tmp_path / "lag.json"
    figures = {
        "interval_s": 0.05,
        "real_s": real_s,
        "lateness_s": lateness,
        "cpu_wait_s": cpu_wait_s,
    }
    path.write_text(json.dumps(figures), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("lateness", "cpu_wait_s", "grew", "starved"),
    [
        ([0.001] * 100, 0.0, False, False),  # on time, never waiting for a CPU
        ([0.001] * 98 + [0.5, 0.5], 0.0, True, False),  # p99 of 12.5 simulated s
        ([0.001] * 100, 1.5, True, True),  # 15% of the run without a CPU
        ([0.001] * 100, None, False, False),  # no schedstat: lateness alone decides
    ],
)
def test_loop_lag_flags_a_run_behind_its_clock(
    bench: ModuleType,
    tmp_path: Path,
    lateness: list[float],
    cpu_wait_s: float | None,
    grew: bool,
    starved: bool,
) -> None:
    lag = bench.LoopLag.read(probe_file(tmp_path, lateness, 10.0, cpu_wait_s), speed=25)
    assert (lag.grew, lag.starved) == (grew, starved)


def result(bench: ModuleType, *, cpu_s: float, real_s: float, lag: object) -> object:
    run = bench.Result(bench.Scenario("distinct-100", 100, 4), 25.0)
    run.cpu_s, run.real_wall_s, run.lag = cpu_s, real_s, lag
    return run


def test_a_starved_engine_is_told_apart_from_a_busy_one(bench: ModuleType, tmp_path: Path) -> None:
    late = [0.001] * 98 + [0.5, 0.5]
    starved = bench.LoopLag.read(probe_file(tmp_path, late, 10.0, 2.0), speed=25)
    busy = bench.LoopLag.read(probe_file(tmp_path, late, 10.0, 0.0), speed=25)
    on_time = bench.LoopLag.read(probe_file(tmp_path, [0.0] * 100, 10.0, 0.0), speed=25)

    assert "stretched by a starved engine" in bench.lag_warning(
        result(bench, cpu_s=2.0, real_s=10.0, lag=starved)
    )
    assert "own work could not keep up" in bench.lag_warning(
        result(bench, cpu_s=9.0, real_s=10.0, lag=busy)
    )
    assert bench.lag_warning(result(bench, cpu_s=2.0, real_s=10.0, lag=on_time)) == ""


def test_cpu_per_call_leaves_out_start_up_and_divides_by_the_sdk(bench: ModuleType) -> None:
    start_up = bench.Result(bench.Scenario("single", 1, 1), 25.0, cpu_s=1.0, calls={"X": 10})
    run = bench.Result(bench.Scenario("distinct-100", 100, 4), 25.0, cpu_s=5.0, calls={"X": 410})
    run.baseline = start_up
    run.calibration = bench.Calibration(
        calls=400, throttled=0, errors=0, cpu_s=2.0, process_cpu_s=3.0
    )

    assert run.cpu_per_call_s == pytest.approx(0.01)  # (5 - 1) s over (410 - 10) calls
    assert run.cpu_per_call_ratio == pytest.approx(2.0)  # over the SDK's 5 ms
