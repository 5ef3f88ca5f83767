"""The run lock: one changing run of a plan at a time, on one host or on many.

A run takes the plan's lock before it changes anything and gives it back at the end.
Where the lock lives is a ``LockStore``:

- ``FileStore``: a local file under ``flock``, for runs on one host. The operating
  system frees it when its process dies, so it needs no lease; the holder's identity is
  written into the file so a refused run can name it.
- ``DynamoStore``: an item ``pk = "lock#<name>"`` in a DynamoDB table, for runners on
  several machines or in ephemeral containers. Conditional writes make taking it
  atomic; a lease, renewed by a heartbeat, frees it when its holder dies, and only after
  the lease expired may another run take it over. Only the owner (by a random token)
  renews or releases it.
- ``MemoryStore``: the same rules in the process, for a rehearsal (``--simulate``),
  which must never touch the real table or file.

``RunLock`` does the rest the same way for every store: waiting, the heartbeat (every
third of the lease, on the run's clock), and noticing a lost lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from ecs_deploy_many.core.clock import Clock, utc_iso
from ecs_deploy_many.core.errors import LockError, LockHeld, LockLost
from ecs_deploy_many.plan.model import LockSpec

__all__ = [
    "DynamoStore",
    "FileStore",
    "Holder",
    "LockStore",
    "MemoryStore",
    "RunLock",
    "breaker",
    "open_store",
]

RENEWALS_PER_LEASE = 3
"""The heartbeat renews the lease this many times per lease: two may fail in a row."""
WAIT_POLL = 5.0
"""Seconds between attempts while ``--lock-wait`` waits for the lock."""
RELEASE_DEADLINE = 15.0
"""Seconds the release at the end of a run may take; after that the lease frees it."""
TABLE_SCHEMA_HINT = (
    "a table with a string partition key pk (aws dynamodb create-table --table-name {table} "
    "--attribute-definitions AttributeName=pk,AttributeType=S "
    "--key-schema AttributeName=pk,KeyType=HASH --billing-mode PAY_PER_REQUEST)"
)
IAM_HINT = "dynamodb:GetItem, PutItem, UpdateItem and DeleteItem on the table"

_log = structlog.get_logger("ecs_deploy_many")


@dataclass(frozen=True)
class Holder:
    """Who holds the lock: enough for a refused run, or a person, to find that run."""

    run_id: str
    host: str
    pid: int
    plan: str
    started: float
    """When the holder took the lock, epoch seconds on its clock."""
    lease_expires: float | None
    """When the lease runs out unless renewed; None for a file lock (no lease)."""
    token: str
    """A random token of the owner's: renewals and the release are conditional on it."""

    def describe(self, now: float | None = None) -> str:
        """``run R on host H (pid P), plan X, since T, lease until E``."""
        text = (
            f"run {self.run_id} on host {self.host} (pid {self.pid}), plan {self.plan}, "
            f"since {utc_iso(self.started, timespec='seconds')}"
        )
        if self.lease_expires is not None:
            expired = now is not None and self.lease_expires < now
            text += f", lease {'expired at' if expired else 'until'} "
            text += utc_iso(self.lease_expires, timespec="seconds")
        return text

    def expired(self, now: float) -> bool:
        return self.lease_expires is not None and self.lease_expires < now

    @classmethod
    def of_run(cls, run_id: str, plan: str, now: float, lease: float | None) -> Holder:
        """This process as the holder of a lock taken ``now``."""
        return cls(
            run_id=run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            plan=plan,
            started=now,
            lease_expires=None if lease is None else now + lease,
            token=secrets.token_hex(16),
        )

    @classmethod
    def from_fields(cls, given: Mapping[str, Any]) -> Holder:
        expires = given.get("lease_expires")
        return cls(
            run_id=str(given.get("run_id", "unknown")),
            host=str(given.get("host", "unknown")),
            pid=int(given.get("pid", 0)),
            plan=str(given.get("plan", "unknown")),
            started=float(given.get("started", 0.0)),
            lease_expires=None if expires is None else float(expires),
            token=str(given.get("token", "")),
        )


def breaker() -> str:
    """``user@host``: who broke a lock, for the record."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class LockStore(Protocol):
    """Where a lock lives; every operation is atomic where the lock is."""

    where: str
    """The lock, for people: ``file /path``, ``DynamoDB table T, item lock#N``."""
    leased: bool
    """Whether the lock has a lease (and so needs a heartbeat to stay held)."""

    async def put(self, holder: Holder, now: float) -> Holder | None:
        """Take the lock for ``holder`` when it is free or its lease expired before
        ``now``; None when taken, else the holder in the way."""
        ...

    async def renew(self, holder: Holder, expires: float) -> None:
        """Extend ``holder``'s lease to ``expires``; LockLost when it is not ours."""
        ...

    async def delete(self, holder: Holder) -> bool:
        """Give the lock back if ``holder`` still owns it; whether it did."""
        ...

    async def read(self) -> Holder | None:
        """Who holds the lock (perhaps with an expired lease), or None."""
        ...

    async def break_lock(self, reason: str, by: str, now: float) -> Holder | None:
        """Remove the lock whoever holds it, recording ``reason`` and ``by``; the holder
        it had, or None when it was free."""
        ...


# -- a local file ----------------------------------------------------------------------


class FileStore:
    """A lock file under ``flock``: held while its holder's descriptor is open.

    Breaking it removes the file: a new run locks a new file, and the old holder's
    heartbeat sees that its file is gone.
    """

    leased = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"file {path}"
        self._fd: int | None = None

    async def put(self, holder: Holder, now: float) -> Holder | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    in_way = self._holder_in(fd)
                    os.close(fd)
                    return in_way
                if self._names(fd):
                    break
                os.close(fd)  # broken while we locked it: lock the new file
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
            except OSError:
                os.close(fd)
                raise
        except OSError as error:
            raise LockError(
                f"cannot use the lock file {self.path}: {error.strerror or error}"
            ) from None
        self._fd = fd
        return None

    async def renew(self, holder: Holder, expires: float) -> None:
        if self._fd is None or not self._names(self._fd):
            raise LockLost(f"the lock file {self.path} was removed (ecs-deploy-many lock break)")

    async def delete(self, holder: Holder) -> bool:
        fd, self._fd = self._fd, None
        if fd is None:
            return False
        ours = self._names(fd)
        if ours:
            os.ftruncate(fd, 0)
        os.close(fd)  # the lock goes with the descriptor
        return ours

    async def read(self) -> Holder | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise LockError(f"cannot read the lock file {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self._holder_in(fd)
        finally:
            os.close(fd)
        return None

    async def break_lock(self, reason: str, by: str, now: float) -> Holder | None:
        holder = await self.read()
        if holder is not None:
            self.path.unlink(missing_ok=True)
        return holder

    def _names(self, fd: int) -> bool:
        """Whether the lock's path still names the file open at ``fd``."""
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _holder_in(self, fd: int) -> Holder:
        """The identity a holder wrote; a holder caught before writing it is unknown."""
        try:
            return Holder.from_fields(json.loads(os.pread(fd, 4096, 0)))
        except (ValueError, TypeError, OSError):
            return Holder.from_fields({"plan": str(self.path), "started": os.fstat(fd).st_mtime})


# -- DynamoDB --------------------------------------------------------------------------


class DynamoStore:
    """The lock as the item ``pk = "lock#<name>"`` of a DynamoDB table.

    A break removes the item and records who broke it, why and whom in an item
    ``pk = "lockbreak#<name>#<time>"``.
    """

    leased = True

    def __init__(self, client: Any, table: str, name: str) -> None:
        self._client = client
        self.table = table
        self.name = name
        self._key = {"pk": {"S": f"lock#{name}"}}
        self.where = f"DynamoDB table {table}, item lock#{name}"

    async def put(self, holder: Holder, now: float) -> Holder | None:
        for _ in range(3):  # the holder in the way may let go between two calls
            try:
                await self._call(
                    "put_item",
                    Item={**self._key, **_item(_stored(holder))},
                    ConditionExpression="attribute_not_exists(pk) OR lease_expires < :now",
                    ExpressionAttributeValues={":now": {"N": repr(now)}},
                )
                return None
            except _Refused:
                in_way = await self.read()
            if in_way is not None:
                return in_way
        raise LockError(f"the run lock ({self.where}) keeps changing hands; try again")

    async def renew(self, holder: Holder, expires: float) -> None:
        try:
            await self._call(
                "update_item",
                Key=self._key,
                UpdateExpression="SET lease_expires = :expires",
                ConditionExpression="owner_token = :token",
                ExpressionAttributeValues={
                    ":expires": {"N": repr(expires)},
                    ":token": {"S": holder.token},
                },
            )
        except _Refused:
            now_holding = await self.read()
            if now_holding is None:
                raise LockLost(f"the lock item was removed ({self.where})") from None
            raise LockLost(f"the lease was taken over by {now_holding.describe()}") from None

    async def delete(self, holder: Holder) -> bool:
        try:
            await self._call(
                "delete_item",
                Key=self._key,
                ConditionExpression="owner_token = :token",
                ExpressionAttributeValues={":token": {"S": holder.token}},
            )
        except _Refused:
            return False
        return True

    async def read(self) -> Holder | None:
        answer = await self._call("get_item", Key=self._key, ConsistentRead=True)
        item = answer.get("Item")
        if item is None:
            return None
        fields = _fields(item)
        return Holder.from_fields({**fields, "token": fields.get("owner_token", "")})

    async def break_lock(self, reason: str, by: str, now: float) -> Holder | None:
        holder = await self.read()
        if holder is None:
            return None
        if not await self.delete(holder):
            raise LockError(f"the run lock ({self.where}) changed hands meanwhile; look again")
        record = {"reason": reason, "broken_by": by, "broken_at": now, **_stored(holder)}
        record.pop("owner_token")
        await self._call(
            "put_item",
            Item={"pk": {"S": f"lockbreak#{self.name}#{utc_iso(now)}"}, **_item(record)},
        )
        return holder

    async def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        """One call to the table; a refused condition raises ``_Refused``, anything else
        that keeps the table from being used a LockError naming it and the fix."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer: dict[str, Any] = await getattr(self._client, operation)(
                TableName=self.table, **request
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _Refused from None
            if code == "ResourceNotFoundException":
                raise LockError(
                    f"the lock table {self.table} does not exist: create "
                    f"{TABLE_SCHEMA_HINT.format(table=self.table)}, or name another in "
                    "the plan's lock.table"
                ) from None
            message = error.response.get("Error", {}).get("Message", "")
            raise LockError(
                f"cannot use the lock table {self.table}: {code}: {message} (a run needs "
                f"{IAM_HINT})"
            ) from None
        except BotoCoreError as error:
            raise LockError(f"cannot reach the lock table {self.table}: {error}") from None
        return answer


class _Refused(Exception):
    """A conditional write's condition did not hold."""


def _stored(holder: Holder) -> dict[str, Any]:
    """The holder's fields as the item keeps them: the token as ``owner_token``."""
    fields = asdict(holder)
    fields["owner_token"] = fields.pop("token")
    return fields


def _item(fields: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Plain fields as DynamoDB attributes: numbers as N, the rest as S; None left out."""
    return {
        key: {"N": repr(value)} if isinstance(value, int | float) else {"S": str(value)}
        for key, value in fields.items()
        if value is not None
    }


def _fields(item: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    return {
        key: float(value["N"]) if "N" in value else value.get("S")
        for key, value in item.items()
        if key != "pk"
    }


# -- in the process (a rehearsal) ------------------------------------------------------


class MemoryStore:
    """A leased lock in a dict, with the DynamoDB lock's rules: a rehearsal's lock."""

    leased = True

    def __init__(self, name: str, table: dict[str, Holder] | None = None) -> None:
        self._table = {} if table is None else table
        self._key = f"lock#{name}"
        self.where = f"in-process lock {name}"

    async def put(self, holder: Holder, now: float) -> Holder | None:
        current = self._table.get(self._key)
        if current is not None and not current.expired(now):
            return current
        self._table[self._key] = holder
        return None

    async def renew(self, holder: Holder, expires: float) -> None:
        current = self._table.get(self._key)
        if current is None or current.token != holder.token:
            taken = f"taken over by {current.describe()}" if current else "removed"
            raise LockLost(f"the lease was {taken}")
        self._table[self._key] = replace(current, lease_expires=expires)

    async def delete(self, holder: Holder) -> bool:
        current = self._table.get(self._key)
        if current is None or current.token != holder.token:
            return False
        del self._table[self._key]
        return True

    async def read(self) -> Holder | None:
        return self._table.get(self._key)

    async def break_lock(self, reason: str, by: str, now: float) -> Holder | None:
        return self._table.pop(self._key, None)


@asynccontextmanager
async def open_store(spec: LockSpec, directory: Path) -> AsyncIterator[LockStore]:
    """The store ``spec`` names: its DynamoDB table, else the file ``<directory>/<name>.lock``."""
    if spec.table is None:
        yield FileStore(directory / f"{spec.name}.lock")
        return
    import aioboto3  # only a DynamoDB lock needs the SDK
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3})
    async with AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(
                aioboto3.Session().client("dynamodb", region_name=spec.region, config=config)
            )
        except BotoCoreError as error:
            raise LockError(
                f"cannot reach the lock table {spec.table}: {error} (name its region in "
                "lock.region, or set AWS_REGION)"
            ) from None
        yield DynamoStore(client, spec.table, spec.name)


# -- taking, keeping and giving back ---------------------------------------------------


class RunLock:
    """A run's hold on the lock in ``store``, leased on ``clock``."""

    def __init__(self, store: LockStore, clock: Clock, *, lease: float) -> None:
        self.store = store
        self._clock = clock
        self._lease = lease
        self.holder: Holder | None = None
        self.lost: str | None = None
        """Why the lock was lost mid-run, once it was."""

    async def acquire(
        self,
        run_id: str,
        plan: str,
        *,
        wait: float = 0.0,
        on_wait: Callable[[Holder], None] | None = None,
    ) -> Holder:
        """Take the lock, trying for ``wait`` seconds; LockHeld naming the holder when
        it stays taken. ``on_wait`` hears once of the holder it waits for."""
        clock = self._clock
        deadline = clock.now() + wait
        lease = self._lease if self.store.leased else None
        told = False
        while True:
            now = clock.now()
            me = Holder.of_run(run_id, plan, now, lease)
            in_way = await self.store.put(me, now)
            if in_way is None:
                self.holder = me
                return me
            left = deadline - clock.now()
            if left <= 0:
                raise LockHeld(self.store.where, in_way.describe(clock.now()))
            if on_wait is not None and not told:
                on_wait(in_way)
                told = True
            await clock.sleep(min(WAIT_POLL, left))

    async def keep(self, on_lost: Callable[[str], None]) -> None:
        """Renew the lease every third of it until cancelled; when the lock is lost (its
        lease taken over, the lock broken, or the store unreachable until the lease ran
        out) call ``on_lost`` with why, once, and stop."""
        holder = self.holder
        if holder is None:
            raise RuntimeError("keep() before acquire()")
        clock = self._clock
        interval = self._lease / RENEWALS_PER_LEASE
        pause = interval
        expires = holder.lease_expires
        while True:
            await clock.sleep(pause)
            renewed_until = clock.now() + self._lease
            try:
                with clock.fail_after(interval):
                    await self.store.renew(holder, renewed_until)
            except LockLost as error:
                self._lose(str(error), on_lost)
                return
            except (LockError, TimeoutError) as error:
                why = str(error) or "no answer in time"
                if expires is not None and clock.now() >= expires:
                    reason = f"{self.store.where} unreachable until the lease ran out: {why}"
                    self._lose(reason, on_lost)
                    return
                _log.warning("lock_renewal_failed", lock=self.store.where, error=why)
                pause = interval / RENEWALS_PER_LEASE
                continue
            expires, pause = renewed_until, interval

    def _lose(self, reason: str, on_lost: Callable[[str], None]) -> None:
        self.lost = reason
        on_lost(reason)

    async def release(self) -> bool:
        """Give the lock back if it is still ours; never raises (an unreleased lease
        frees itself when it expires). Whether it was released."""
        holder, self.holder = self.holder, None
        if holder is None:
            return False
        with self._clock.move_on_after(RELEASE_DEADLINE, shield=True):
            try:
                return await self.store.delete(holder)
            except LockError as error:
                _log.warning("lock_release_failed", lock=self.store.where, error=str(error))
        return False
