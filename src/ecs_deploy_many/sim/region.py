"""One account's namespace in one region: its clusters and its task-definition registry.

Requests name clusters, services and tasks by short name or by ARN; the lookups here accept
both and raise the error ECS raises when the thing is not there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ecs_deploy_many.sim.model import Cluster, Service, SimError, Task
from ecs_deploy_many.sim.taskdefs import TaskDefinitions

__all__ = ["Region"]

DEFAULT_CLUSTER = "default"


def short_name(ref: str) -> str:
    """The last path element of an ARN (``cluster/NAME``, ``service/CLUSTER/NAME``...)."""
    return ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref


@dataclass(eq=False)
class Region:
    name: str
    account_id: str
    taskdefs: TaskDefinitions = field(init=False)
    clusters: dict[str, Cluster] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.taskdefs = TaskDefinitions(self.name, self.account_id)

    def arn(self, resource: str) -> str:
        return f"arn:aws:ecs:{self.name}:{self.account_id}:{resource}"

    def find_cluster(self, ref: str | None) -> Cluster | None:
        ref = ref or DEFAULT_CLUSTER
        if ref.startswith("arn:") and not ref.startswith(self.arn("cluster/")):
            return None
        return self.clusters.get(short_name(ref))

    def cluster(self, ref: str | None) -> Cluster:
        if (cluster := self.find_cluster(ref)) is None:
            raise SimError("ClusterNotFoundException", "Cluster not found.")
        return cluster

    def find_service(self, cluster: Cluster, ref: str) -> Service | None:
        """By name, by ARN (``service/CLUSTER/NAME``) or by old-format ARN (``service/NAME``)."""
        if ref.startswith("arn:"):
            prefix = self.arn("service/")
            parts = ref.removeprefix(prefix).split("/")
            if (
                not ref.startswith(prefix)
                or len(parts) > 2
                or parts[:-1] not in ([], [cluster.name])
            ):
                return None
            ref = parts[-1]
        return cluster.services.get(ref)

    def service(self, cluster: Cluster, ref: str) -> Service:
        """An ACTIVE or DRAINING service: what UpdateService and friends may act on."""
        service = self.find_service(cluster, ref)
        if service is None or service.status == "INACTIVE":
            raise SimError("ServiceNotFoundException", "Service not found.")
        return service

    @staticmethod
    def find_task(cluster: Cluster, ref: str) -> Task | None:
        return cluster.tasks.get(short_name(ref))
