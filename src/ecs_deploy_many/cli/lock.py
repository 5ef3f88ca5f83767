"""The plan's run lock on the command line: taken by every run that changes things,
shown by ``lock status PLAN`` and broken by ``lock break PLAN --reason TEXT``.

A run takes the lock once its plan is loaded, before its journal's ``run_started`` and
before any call to ECS, so a refused run leaves no journal and touches nothing; it
gives it back after its journal's ``run_finished``. Refused: exit 73. A lock that cannot
be used (its table missing or unreadable): exit 2. A lock lost mid-run halts the run
(nothing new starts, in-flight targets finish or roll back) and it exits 1.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import NoReturn

import asyncclick as click

from ecs_deploy_many.cli.exits import EXIT_LOCKED, EXIT_PLAN
from ecs_deploy_many.cli.options import say
from ecs_deploy_many.core.clock import Clock, real_clock
from ecs_deploy_many.core.errors import LockError, LockHeld
from ecs_deploy_many.jobs.lock import Holder, LockStore, MemoryStore, RunLock, breaker, open_store
from ecs_deploy_many.journal import default_directory
from ecs_deploy_many.plan import Plan
from ecs_deploy_many.plan.model import LockSpec

__all__ = ["EXIT_LOCKED", "break_lock", "held_lock", "lock_directory", "lock_status"]


def lock_directory() -> Path:
    """Where file locks are: ``locks`` in the state directory the journals default to."""
    return default_directory(os.environ) / "locks"


@asynccontextmanager
async def held_lock(
    plan: Plan, plan_path: str, run_id: str, clock: Clock, *, wait: float, rehearsal: bool
) -> AsyncIterator[RunLock | None]:
    """The plan's lock, held for the block (None when the plan names none); a rehearsal's
    is in the process. Exits 73 when another run holds it, 2 when it cannot be used."""
    spec = plan.lock
    if spec is None:
        yield None
        return
    async with _store(spec, plan_path, in_process=rehearsal) as store:
        lock = RunLock(store, clock, lease=spec.lease)

        def waiting(holder: Holder) -> None:
            say(
                f"waiting up to {wait:g} s for the run lock ({store.where}), held by "
                f"{holder.describe(clock.now())}"
            )

        try:
            await lock.acquire(run_id, _absolute(plan_path), wait=wait, on_wait=waiting)
        except LockHeld as error:
            _refused(error, plan_path, clock)
        except LockError as error:
            _unusable(error, plan_path)
        say(f"run {run_id}: holds the run lock ({store.where})")
        try:
            yield lock
        finally:
            await lock.release()


def _absolute(plan_path: str) -> str:
    """The plan as the holder names it: absolute, for people on other hosts too."""
    return os.path.abspath(plan_path)


def _refused(error: LockHeld, plan_path: str, clock: Clock) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    click.echo(
        f"{plan_path}: nothing was changed; wait for the lock with --lock-wait SECONDS, see "
        f"it with `ecs-deploy-many lock status {plan_path}`, or, when that run is gone, "
        f"break it with `ecs-deploy-many lock break {plan_path} --reason TEXT`",
        err=True,
    )
    raise click.exceptions.Exit(EXIT_LOCKED)


def _unusable(error: LockError, plan_path: str) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    click.echo(f"{plan_path}: nothing was changed", err=True)
    raise click.exceptions.Exit(EXIT_PLAN)


@asynccontextmanager
async def _store(spec: LockSpec, plan_path: str, *, in_process: bool) -> AsyncIterator[LockStore]:
    if in_process:
        yield MemoryStore(spec.name)
        return
    async with AsyncExitStack() as stack:
        try:
            store = await stack.enter_async_context(open_store(spec, lock_directory()))
        except LockError as error:
            _unusable(error, plan_path)
        yield store


def _spec_or_exit(plan: Plan, plan_path: str) -> LockSpec:
    if plan.lock is None:
        click.echo(
            f"error: {plan_path} names no run lock: add `lock: true` (a file lock on this "
            "host) or `lock: {table: TABLE}` (DynamoDB) to it",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_PLAN)
    return plan.lock


async def lock_status(plan: Plan, plan_path: str) -> None:
    """``lock status PLAN``: who holds the lock; exit 0 when it is free, 73 when held."""
    spec = _spec_or_exit(plan, plan_path)
    now = real_clock().now()
    async with _store(spec, plan_path, in_process=False) as store:
        try:
            holder = await store.read()
        except LockError as error:
            _unusable(error, plan_path)
    if holder is None:
        click.echo(f"free: {store.where}")
        return
    if holder.expired(now):
        click.echo(
            f"free: {store.where}: the lease of {holder.describe(now)} ran out; the next "
            "run takes it over"
        )
        return
    click.echo(f"held: {store.where}: {holder.describe(now)}")
    raise click.exceptions.Exit(EXIT_LOCKED)


async def break_lock(plan: Plan, plan_path: str, reason: str) -> None:
    """``lock break PLAN --reason TEXT``: remove the lock whoever holds it, saying (and,
    in DynamoDB, recording) who broke it and why."""
    spec = _spec_or_exit(plan, plan_path)
    now, by = real_clock().now(), breaker()
    async with _store(spec, plan_path, in_process=False) as store:
        try:
            holder = await store.break_lock(reason, by, now)
        except LockError as error:
            _unusable(error, plan_path)
    if holder is None:
        click.echo(f"free: {store.where}: nothing to break")
        return
    click.echo(
        f"broke the run lock ({store.where}) held by {holder.describe(now)}; by {by}, "
        f"reason: {reason}"
    )
