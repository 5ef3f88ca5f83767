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

__all__ = [
    "CANARY_BAKE",
    "CANARY_PERCENT",
    "LINEAR_STEP_BAKE",
    "LINEAR_STEP_PERCENT",
    "MAX_BAKE_MINUTES",
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
