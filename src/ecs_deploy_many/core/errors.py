"""Every error the tool raises on purpose, in one tree.

    EcsDeployError
    ├── UsageError             command-line flags are wrong (carries the exit code)
    ├── PlanError              the plan file is wrong (file, line, key for each problem)
    ├── InterpolationError     a ``${VAR}`` reference cannot be expanded
    ├── FleetError             a simulator fleet file is wrong
    ├── ImageError             an image reference cannot be parsed
    ├── TaskDefinitionError    a task definition cannot be rendered (no matching container...)
    ├── CredentialsError       no region or no credentials could be found
    ├── AwsError               an AWS call failed (operation, code, message)
    ├── JournalError           a run journal cannot be written or read (names where)
    ├── RunTableError          the shards' shared run record cannot be read or written
    ├── LockError              the run lock cannot be used (names the table or file, the fix)
    │   ├── LockHeld           another run holds the lock (names the holder)
    │   └── LockLost           the lease was taken over (or the lock broken) mid-run
    └── DeployError            a target did not reach its goal (target, step)
        ├── ControllerNotSupported  the service's deployment controller is not ECS
        ├── DeploymentFailed   ECS reported our deployment FAILED or rolled it back
        ├── DeploymentTimeout  the wait ran out of time
        ├── TaskRunFailed      a one-off task did not exit 0
        ├── VerdictUnknown     ECS could not be read: our deployment may still succeed
        └── RollbackFailed     a rollback we started did not finish

Exit codes are decided only by the CLI layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AwsError",
    "ControllerNotSupported",
    "CredentialsError",
    "DeployError",
    "DeploymentFailed",
    "DeploymentTimeout",
    "EcsDeployError",
    "FleetError",
    "ImageError",
    "InterpolationError",
    "JournalError",
    "LockError",
    "LockHeld",
    "LockLost",
    "PlanError",
    "PlanIssue",
    "RollbackFailed",
    "RunTableError",
    "TaskDefinitionError",
    "TaskRunFailed",
    "UsageError",
    "VerdictUnknown",
]


class EcsDeployError(Exception):
    """Base of every error this tool raises on purpose."""


@dataclass(frozen=True)
class PlanIssue:
    """One problem in a plan file, located so an editor can jump to it."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class PlanError(EcsDeployError):
    """The plan cannot be used; carries every problem found, not just the first."""

    def __init__(self, issues: Sequence[PlanIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class UsageError(EcsDeployError):
    """Invalid flags: the message names the flag to use; ``exit_code`` is the CLI's code."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class InterpolationError(EcsDeployError):
    """One string had references that cannot be expanded; every problem is listed."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class FleetError(EcsDeployError):
    """A simulator fleet file cannot be used; names the file and the key at fault."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file, self.key, self.message = file, key, message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


class ImageError(EcsDeployError):
    """An image reference does not follow the grammar."""

    def __init__(self, image: str, reason: str) -> None:
        super().__init__(f"cannot parse image {image!r}: {reason}")
        self.image = image
        self.reason = reason


class TaskDefinitionError(EcsDeployError):
    """A new task definition cannot be rendered from the base revision."""


class CredentialsError(EcsDeployError):
    """No region or credentials; the message says what to set."""


class AwsError(EcsDeployError):
    """An AWS call failed for good (after retries)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code
        self.aws_message = message


class JournalError(EcsDeployError):
    """A run journal cannot be written, found or read; the message names the place."""


class RunTableError(EcsDeployError):
    """The run record the shards of a run share (``--run-table``) cannot be read or
    written; the message names the table."""


class LockError(EcsDeployError):
    """The run lock cannot be taken, read or kept: its table or file cannot be used."""


class LockHeld(LockError):
    """Another run holds the lock; ``holder`` says who (a description of it)."""

    def __init__(self, where: str, holder: str) -> None:
        super().__init__(f"the run lock ({where}) is held by {holder}")
        self.where = where
        self.holder = holder


class LockLost(LockError):
    """The lock is no longer ours: its lease was taken over, or it was broken."""


class DeployError(EcsDeployError):
    """A target did not reach its goal."""

    def __init__(self, message: str, *, step: str = "") -> None:
        super().__init__(message)
        self.step = step


class ControllerNotSupported(DeployError):
    """The service is deployed by CodeDeploy or an external controller, so UpdateService
    cannot change its task definition; found before anything was registered or changed."""

    def __init__(self, message: str, *, controller: str) -> None:
        super().__init__(message, step="resolve")
        self.controller = controller


class DeploymentFailed(DeployError):
    """ECS marked our deployment FAILED, or replaced it (circuit-breaker rollback)."""

    def __init__(
        self,
        message: str,
        *,
        step: str = "wait",
        deployment_id: str | None = None,
        rolled_back_by_ecs: bool = False,
    ) -> None:
        super().__init__(message, step=step)
        self.deployment_id = deployment_id
        self.rolled_back_by_ecs = rolled_back_by_ecs


class DeploymentTimeout(DeployError):
    """The deployment did not finish within its time limit."""


class TaskRunFailed(DeployError):
    """A one-off task stopped without every essential container exiting 0."""


class VerdictUnknown(DeployError):
    """ECS could not be read before the deadline: our deployment may still complete.

    Not a failure of the deployment, so it is never reported as one.
    """

    def __init__(
        self, message: str, *, step: str = "wait", deployment_id: str, code: str | None = None
    ) -> None:
        super().__init__(message, step=step)
        self.deployment_id = deployment_id
        self.code = code
        """The AWS error code of a refused read, when one was."""


class RollbackFailed(DeployError):
    """The rollback we started did not bring the previous revision back."""
