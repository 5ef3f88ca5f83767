"""The real aioboto3 client pointed at a simulator, and waits that poll it like a deployer.

Given a ``Simulator``, clients reach it in-process (``sim.transport``): botocore still
serializes, signs and parses every call, and the virtual-time loop sees every wait.
Given a URL, they go over HTTP, as the wire-protocol tests need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aioboto3
import anyio
from aiobotocore.config import AioConfig

from ecs_deploy_many.aws.session import ClientPool
from ecs_deploy_many.sim.fleet import Fleet
from ecs_deploy_many.sim.server import Simulator
from ecs_deploy_many.sim.transport import in_process

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

REGION = "eu-west-1"
# Simulated seconds: a healthy rollout takes about 20, a broken one never finishes.
FAST_TIMINGS = {
    "provisioning": 2,
    "pending": 3,
    "activating": 1,
    "health_grace": 10,
    "health_check": 5,
    "deactivating": 1,
    "stopping": 2,
    "deprovisioning": 2,
}
# Speed 100: a rolling deployment of a few simulated minutes takes a few seconds of the
# loop's time (virtual in tests: no real time at all).
SPEED = 100.0
# Polls every 0.02 s of the loop's time: every state a deployment passes through is seen.
POLL = 0.02


@asynccontextmanager
async def ecs_client(
    target: str | Simulator, region: str = REGION, *, attempts: int | None = None
) -> AsyncIterator[ECSClient]:
    """The real client with dummy credentials; ``attempts=1`` shows every error as is."""
    config: dict[str, Any] = {}
    if attempts is not None:
        config["retries"] = {"mode": "standard", "total_max_attempts": attempts}
    if isinstance(target, Simulator):
        config["http_session_cls"] = in_process(target.server)
    endpoint_url = target if isinstance(target, str) else target.endpoint_url
    session = aioboto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    async with session.client(
        "ecs", region_name=region, endpoint_url=endpoint_url, config=AioConfig(**config)
    ) as client:
        yield client


def sim_pool(sim: Simulator, **options: Any) -> ClientPool:
    """The engine's client pool, on the simulator's clock, reaching it in-process."""
    return ClientPool(
        sim.clock, endpoint_url=sim.endpoint_url, http_session_cls=in_process(sim.server), **options
    )


async def watch_service(
    ecs: ECSClient,
    cluster: str,
    service: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 15.0,
) -> list[dict[str, Any]]:
    """Every DescribeServices view of one service until ``until`` holds (the last one)."""
    seen: list[dict[str, Any]] = []
    deadline = anyio.current_time() + timeout
    while True:
        (current,) = (await ecs.describe_services(cluster=cluster, services=[service]))["services"]
        seen.append(current)
        if until(current):
            return seen
        if anyio.current_time() > deadline:
            raise AssertionError(f"{service} never got there; last seen: {current['deployments']}")
        await anyio.sleep(POLL)


async def watch_task(
    ecs: ECSClient,
    cluster: str,
    task_arn: str,
    until: Callable[[dict[str, Any]], bool] = lambda task: task["lastStatus"] == "STOPPED",
    *,
    timeout: float = 15.0,
) -> list[dict[str, Any]]:
    """Every DescribeTasks view of one task until ``until`` holds (by default, STOPPED)."""
    seen: list[dict[str, Any]] = []
    deadline = anyio.current_time() + timeout
    while True:
        (task,) = (await ecs.describe_tasks(cluster=cluster, tasks=[task_arn]))["tasks"]
        seen.append(task)
        if until(task):
            return seen
        if anyio.current_time() > deadline:
            raise AssertionError(f"task never got there; last seen: {task['lastStatus']}")
        await anyio.sleep(POLL)


def completed(service: dict[str, Any]) -> bool:
    """One deployment left and it is COMPLETED: the rollout is over, one way or another."""
    deployments = service["deployments"]
    return len(deployments) == 1 and deployments[0]["rolloutState"] == "COMPLETED"


def primary(service: dict[str, Any]) -> dict[str, Any]:
    (found,) = [d for d in service["deployments"] if d["status"] == "PRIMARY"]
    return found


def messages(service: dict[str, Any]) -> list[str]:
    """Event messages, newest first, as ECS keeps them."""
    return [event["message"] for event in service["events"]]


CLUSTER = "prod"
# Short task timings (simulated seconds): a rollout takes about 30 s.
FAST = {
    "provisioning": 5,
    "pending": 5,
    "activating": 1,
    "health_grace": 10,
    "health_check": 10,
    "deactivating": 1,
    "stopping": 2,
    "deprovisioning": 2,
    "crash_after": 10,
    "run_duration": 10,
}
IMAGE_RULES = [
    {"match": "*:broken*", "outcome": "fail_to_start"},
    {"match": "*:crashy*", "outcome": "crash"},
    {"match": "*:sick*", "outcome": "unhealthy"},
    {"match": "*:exit3*", "outcome": "exit:3"},
    {"match": "*:daylong*", "outcome": "exit:0", "after": 86_400},
]


def _service(name: str, desired: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "task_definition": "web",
        "desired_count": desired,
        "launch_type": "EC2",
        **extra,
    }


def fleet_spec() -> dict[str, Any]:
    """One cluster of steady services, one per deployment configuration under test."""
    return {
        "region": REGION,
        "timings": FAST,
        "task_definitions": {
            "web": {"containerDefinitions": [{"name": "web", "image": "app:1", "memory": 128}]}
        },
        "clusters": [
            {
                "name": CLUSTER,
                "services": [
                    _service("api"),
                    _service("guarded", circuit_breaker={"enable": True}),
                    _service("safe", circuit_breaker={"enable": True, "rollback": True}),
                    _service("tight", minimum_healthy_percent=100, maximum_percent=100),
                    _service("wide", 4, minimum_healthy_percent=50, maximum_percent=100),
                ],
            }
        ],
        "behaviour": {"images": IMAGE_RULES},
    }


async def register(ecs: ECSClient, image: str, family: str = "web") -> str:
    """A new revision running ``image``; its ARN."""
    registered = await ecs.register_task_definition(
        family=family, containerDefinitions=[{"name": "web", "image": image, "memory": 128}]
    )
    return registered["taskDefinition"]["taskDefinitionArn"]


async def deploy(ecs: ECSClient, service: str, image: str) -> dict[str, Any]:
    """Roll ``service`` to a new revision running ``image``; UpdateService's view of it."""
    arn = await register(ecs, image)
    updated = await ecs.update_service(cluster=CLUSTER, service=service, taskDefinition=arn)
    return dict(updated["service"])


def prod_fleet(*services: str, environment: list[dict[str, str]] | None = None) -> Fleet:
    """One cluster ``prod`` of steady services, each on its own family with image
    ``example/NAME:1``; ``*:broken*`` images never start."""
    return Fleet.model_validate(
        {
            "region": REGION,
            "timings": FAST_TIMINGS,
            "task_definitions": {
                name: {
                    "containerDefinitions": [
                        {
                            "name": name,
                            "image": f"example/{name}:1",
                            "memory": 128,
                            "environment": environment or [],
                        }
                    ]
                }
                for name in services
            },
            "clusters": [
                {
                    "name": "prod",
                    "services": [{"name": name, "task_definition": name} for name in services],
                }
            ],
            "behaviour": {"images": [{"match": "*:broken*", "outcome": "fail_to_start"}]},
        }
    )


# A run with every outcome a report must show: api succeeds, web is rolled back, worker
# is skipped after it, jobs fails (allowed to); each definition carries a secret.
SECRET_ENV_VALUE = "hunter2-db-password"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REPORTED_SERVICES = ("api", "web", "worker", "jobs")
REPORTED_PLAN = """\
version: 1
defaults: {region: eu-west-1, cluster: prod, timeout: 300}
failure_budget: 5
waves:
  - {name: canary, targets: [prod/api]}
  - {name: rest, targets: ['*']}
targets:
  - {service: api, image: example/api:2}
  - {service: web, image: example/web:broken, timeout: 30, rollback: true}
  - {service: worker, image: example/worker:2, depends_on: [prod/web]}
  - {service: jobs, image: example/elsewhere:2, allow_failure: true}
"""


def reported_fleet(*services: str) -> Fleet:
    """The report tests' fleet: a secret in every task definition's environment."""
    return prod_fleet(*services, environment=[{"name": "DB_PASSWORD", "value": SECRET_ENV_VALUE}])


def one_family_per_service(
    services: Mapping[str, Mapping[str, Any]], container: str | None = None
) -> Fleet:
    """A fleet of ``services`` (name -> fleet service settings) in cluster prod, each of
    two tasks on a task-definition family of its own, whose one container (named
    ``container``, else after the service) runs ``example/<name>:1``; ``*:broken*``
    images never start."""
    return Fleet.model_validate(
        {
            "region": REGION,
            "timings": FAST_TIMINGS,
            "task_definitions": {
                name: {
                    "containerDefinitions": [
                        {"name": container or name, "image": f"example/{name}:1", "memory": 128}
                    ]
                }
                for name in services
            },
            "clusters": [
                {
                    "name": "prod",
                    "services": [
                        {"name": name, "task_definition": name, "desired_count": 2, **extra}
                        for name, extra in services.items()
                    ],
                }
            ],
            "behaviour": {"images": [{"match": "*:broken*", "outcome": "fail_to_start"}]},
        }
    )


def taskdef_arn(revision: str) -> str:
    """The ARN of ``family:revision`` in the simulator's default account and REGION."""
    return f"arn:aws:ecs:{REGION}:123456789012:task-definition/{revision}"
