"""Deployment strategies beyond the rolling update: BLUE_GREEN, LINEAR and CANARY.

What ECS documents, and the simulator follows:

- BLUE_GREEN: the green service revision scales up to its full count beside blue, which
  keeps serving production; test traffic shifts to green, then production traffic; both
  run through the bake time ("the time period when both blue and green service revisions
  are running simultaneously after the production traffic has shifted"); then CLEAN_UP
  scales blue to 0 and green becomes the production revision. Lifecycle stages, in
  order: PRE_SCALE_UP, SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT,
  POST_TEST_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT,
  BAKE_TIME, CLEAN_UP. (API reference, ServiceDeployment.lifecycleStage and
  DeploymentConfiguration.bakeTimeInMinutes;
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html)
- LINEAR shifts production traffic in steps of ``stepPercent`` (multiples of 0.1 from 3.0
  to 100.0, default 10.0) with ``stepBakeTimeInMinutes`` (0 to 1440, default 6) between
  steps, "not applied after reaching 100 percent traffic".
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LinearConfiguration.html)
- CANARY shifts ``canaryPercent`` (multiples of 0.1 from 0.1 to 100.0, default 5.0),
  waits ``canaryBakeTimeInMinutes`` (0 to 1440, default 10), then shifts the rest.
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CanaryConfiguration.html)
- Both then bake for ``bakeTimeInMinutes`` like BLUE_GREEN ("the time, in minutes, Amazon
  ECS waits after shifting all production traffic to the new service revision, before it
  terminates the old service revision";
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/canary-deployment.html).

Simulator choices [unconfirmed]: a missing ``bakeTimeInMinutes`` bakes 0 minutes (the API
reference says it must be given for BLUE_GREEN and documents no default; the simulator
does not refuse); each stage without a wait of its own (PRE_SCALE_UP, POST_SCALE_UP,
the traffic shifts of BLUE_GREEN, the POST_ stages) lasts ``Timings.lifecycle_stage``
simulated seconds, where real ECS moves its load balancer and runs lifecycle hooks;
lifecycle hooks are accepted and echoed but never invoked; traffic is a number on the
service revision summary (requestedTestTrafficWeight, requestedProductionTrafficWeight),
as no load balancer is modelled.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ecs_deploy_many.sim.model import Deployment, Service, ServiceDeployment, invalid

if TYPE_CHECKING:
    from ecs_deploy_many.sim.deployments import Scheduler

__all__ = [
    "CANARY_BAKE",
    "CANARY_PERCENT",
    "LINEAR_STEP_BAKE",
    "LINEAR_STEP_PERCENT",
    "MAX_BAKE_MINUTES",
    "STAGED",
    "StagedRollout",
    "check_settings",
    "is_tenths",
]

LINEAR_STEP_PERCENT = 10.0
LINEAR_STEP_BAKE = 6
CANARY_PERCENT = 5.0
CANARY_BAKE = 10
MAX_BAKE_MINUTES = 1440


def is_tenths(value: float) -> bool:
    """Whether a percentage is a multiple of 0.1, as step and canary percentages must be."""
    return abs(value * 10 - round(value * 10)) < 1e-6


STAGED = frozenset({"BLUE_GREEN", "LINEAR", "CANARY"})
FULL = 100.0
_MINUTE = 60.0


def check_settings(settings: dict[str, Any], controller: str) -> None:
    """Refuse what ECS documents as invalid, in the simulator's words [unconfirmed]."""
    strategy = settings.get("strategy", "ROLLING")
    if strategy != "ROLLING" and controller != "ECS":
        raise invalid(f"The {strategy} deployment strategy requires the ECS deployment controller.")
    for key, owner in (("linearConfiguration", "LINEAR"), ("canaryConfiguration", "CANARY")):
        if key in settings and strategy != owner:
            raise invalid(f"deploymentConfiguration.{key} is only valid with strategy {owner}.")
    bounds = {
        "bakeTimeInMinutes": (settings, 0, MAX_BAKE_MINUTES),
        "stepPercent": (settings.get("linearConfiguration", {}), 3.0, FULL),
        "stepBakeTimeInMinutes": (settings.get("linearConfiguration", {}), 0, MAX_BAKE_MINUTES),
        "canaryPercent": (settings.get("canaryConfiguration", {}), 0.1, FULL),
        "canaryBakeTimeInMinutes": (
            settings.get("canaryConfiguration", {}),
            0,
            MAX_BAKE_MINUTES,
        ),
    }
    for key, (where, low, high) in bounds.items():
        value = where.get(key)
        if value is None:
            continue
        if not low <= value <= high or (key.endswith("Percent") and not is_tenths(value)):
            step = " in multiples of 0.1" if key.endswith("Percent") else ""
            raise invalid(f"{key} must be between {low} and {high}{step}; got {value}.")


def traffic_shifts(
    configuration: dict[str, Any], stage_seconds: float
) -> list[tuple[float, float]]:
    """The production traffic weights green reaches, each with the wait that follows it."""
    strategy = configuration.get("strategy")
    if strategy == "LINEAR":
        linear = configuration.get("linearConfiguration", {})
        step = float(linear.get("stepPercent", LINEAR_STEP_PERCENT))
        wait = _MINUTE * linear.get("stepBakeTimeInMinutes", LINEAR_STEP_BAKE)
        count = math.ceil(FULL / step - 1e-9)
        return [(min(FULL, round(step * n, 1)), wait) for n in range(1, count)] + [(FULL, 0.0)]
    if strategy == "CANARY":
        canary = configuration.get("canaryConfiguration", {})
        percent = float(canary.get("canaryPercent", CANARY_PERCENT))
        wait = _MINUTE * canary.get("canaryBakeTimeInMinutes", CANARY_BAKE)
        return [(percent, wait), (FULL, 0.0)] if percent < FULL else [(FULL, 0.0)]
    return [(0.0, stage_seconds), (FULL, 0.0)]


class StagedRollout:
    """BLUE_GREEN, LINEAR and CANARY: green beside blue, stage after stage, then CLEAN_UP.

    ``advance`` makes every move due at ``now`` and, when a new wait begins, asks the
    scheduler to wake the service when it ends, so a bake costs nothing while it lasts.
    """

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    @staticmethod
    def begin(service: Service, green: Deployment, record: ServiceDeployment, now: float) -> float:
        """PRE_SCALE_UP: nothing started yet, blue serves everything. Returns its end."""
        green.weights = (0.0, 0.0)
        record.stage = "PRE_SCALE_UP"
        record.stage_until = now + service.timings.lifecycle_stage
        return record.stage_until

    def advance(
        self, service: Service, green: Deployment, record: ServiceDeployment, now: float
    ) -> None:
        waiting_until = record.stage_until
        while self._next_stage(service, green, record, now):
            pass
        if record.stage != "PRE_SCALE_UP":
            missing = service.desired - len(green.live())
            if missing > 0:
                self._scheduler.start_tasks(service, green, missing, now, False)
        if record.stage_until is not None and record.stage_until != waiting_until:
            self._scheduler.wake(service, record.stage_until)

    def _enter(self, record: ServiceDeployment, stage: str, now: float, wait: float | None) -> None:
        record.stage = stage
        record.stage_until = None if wait is None else now + wait
        record.updated_at = now

    def _next_stage(
        self, service: Service, green: Deployment, record: ServiceDeployment, now: float
    ) -> bool:
        """Leave the current stage if its wait is over; False when it must go on."""
        if record.stage_until is not None and now < record.stage_until:
            return False
        stage, pause = record.stage, service.timings.lifecycle_stage
        if stage == "PRE_SCALE_UP":
            self._enter(record, "SCALE_UP", now, None)
        elif stage == "SCALE_UP":
            live = green.live()
            if len(live) < service.desired or not all(t.healthy for t in live):
                return False
            self._enter(record, "POST_SCALE_UP", now, pause)
        elif stage == "POST_SCALE_UP":
            self._enter(record, "TEST_TRAFFIC_SHIFT", now, pause)
        elif stage == "TEST_TRAFFIC_SHIFT":
            green.weights = (FULL, (green.weights or (0.0, 0.0))[1])
            self._enter(record, "POST_TEST_TRAFFIC_SHIFT", now, pause)
        elif stage == "POST_TEST_TRAFFIC_SHIFT":
            record.shift = 0
            self._shift(green, record, now, pause, "PRODUCTION_TRAFFIC_SHIFT")
        elif stage == "PRODUCTION_TRAFFIC_SHIFT":
            record.shift += 1
            if record.shift < len(traffic_shifts(record.configuration, pause)):
                self._shift(green, record, now, pause, stage)
            else:
                self._enter(record, "POST_PRODUCTION_TRAFFIC_SHIFT", now, pause)
        elif stage == "POST_PRODUCTION_TRAFFIC_SHIFT":
            bake = _MINUTE * record.configuration.get("bakeTimeInMinutes", 0)
            self._enter(record, "BAKE_TIME", now, bake)
        elif stage == "BAKE_TIME":
            self._enter(record, "CLEAN_UP", now, None)
            for blue in service.deployments[1:]:
                self._scheduler.stop_tasks(service, blue.live(), now)
        else:  # CLEAN_UP: the scheduler completes green once blue has drained
            return False
        green.updated_at = now
        return True

    def _shift(
        self, green: Deployment, record: ServiceDeployment, now: float, pause: float, stage: str
    ) -> None:
        weight, wait = traffic_shifts(record.configuration, pause)[record.shift]
        test, _ = green.weights or (FULL, 0.0)
        green.weights = (test, weight)
        self._enter(record, stage, now, wait)
