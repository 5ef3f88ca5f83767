"""The record the shards of a run share in DynamoDB (``--run-table TABLE``): one failure
budget and one halt for every runner of the run.

The table needs only a string partition key ``pk`` (on-demand capacity suits it; a TTL
on ``expires_at`` lets DynamoDB delete old records). A run's record is the item
``pk = "run#<run id>"``:

- ``failures`` (number): failures counted so far by every shard, each new one added
  atomically (``ADD``), the new total read back in the same call;
- ``budget`` (number): the failures the run tolerates, set by the first shard to start;
  a shard whose plan says otherwise is refused, as the shards would not agree;
- ``halted`` and ``halted_by`` (strings): why the run halted and the shard that halted
  it, set once (on the condition that ``halted`` does not exist yet);
- ``expires_at`` (number): epoch seconds, 30 days after the last shard started.

Each shard reads ``halted`` when it starts and then every few seconds of the run's clock
(``deploy.engine.SHARED_POLL_INTERVAL``; a strongly consistent ``GetItem``) to see
another shard's halt. IAM: ``dynamodb:UpdateItem`` and ``dynamodb:GetItem`` on the
table. The client is the SDK's usual one: credentials, region and
``AWS_ENDPOINT_URL_DYNAMODB`` come from the environment.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ecs_deploy_many.core.errors import RunTableError

__all__ = ["RunTable", "open_run_table"]

KEEP_FOR = 30 * 24 * 3600.0
"""Seconds a record is kept (with a TTL on ``expires_at``) after its last shard started."""

T = TypeVar("T")


class RunTable:
    """One shard's view of its run's record; a ``deploy.engine.SharedBudget``.

    A call that fails mid-run raises RunTableError and calls ``on_failure`` once with
    why, so the command says it at once.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        run_id: str,
        *,
        shard: str,
        on_failure: Callable[[str], None],
    ) -> None:
        self.table = table
        self._client = client
        self._key = {"pk": {"S": f"run#{run_id}"}}
        self._run_id = run_id
        self._shard = shard
        self._on_failure = on_failure
        self._failed = False

    @property
    def shard(self) -> str:
        return self._shard

    async def join(self, budget: int) -> None:
        """Make the run's record (the first shard to start does) or find it; RunTableError
        when the table cannot be used or the run's budget is not ``budget``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = await self._client.update_item(
                TableName=self.table,
                Key=self._key,
                UpdateExpression="SET budget = if_not_exists(budget, :budget), "
                "expires_at = :expires",
                ExpressionAttributeValues={
                    ":budget": {"N": str(budget)},
                    ":expires": {"N": str(int(time.time() + KEEP_FOR))},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise RunTableError(
                    f"the run table {self.table} does not exist: create it with a string "
                    "partition key pk (see the README's sharding section), or name another"
                ) from None
            raise RunTableError(f"cannot use the run table {self.table}: {error}") from None
        except BotoCoreError as error:  # no region, no credentials, no network
            raise RunTableError(f"cannot use the run table {self.table}: {error}") from None
        agreed = int(answer["Attributes"]["budget"]["N"])
        if agreed != budget:
            raise RunTableError(
                f"run {self._run_id} in {self.table} tolerates {agreed} failure(s), this "
                f"shard's plan {budget}: give every shard the same plan and selection"
            )

    async def count_failure(self) -> int:
        answer = await self._call(
            "count a failure",
            lambda: self._client.update_item(
                TableName=self.table,
                Key=self._key,
                UpdateExpression="ADD failures :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            ),
        )
        return int(answer["Attributes"]["failures"]["N"])

    async def halt(self, reason: str) -> str:
        from botocore.exceptions import ClientError

        async def set_once() -> str:
            try:
                await self._client.update_item(
                    TableName=self.table,
                    Key=self._key,
                    UpdateExpression="SET halted = :reason, halted_by = :shard",
                    ConditionExpression="attribute_not_exists(halted)",
                    ExpressionAttributeValues={
                        ":reason": {"S": reason},
                        ":shard": {"S": self._shard},
                    },
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code != "ConditionalCheckFailedException":
                    raise
                return await self._halted_now() or reason
            return reason

        return await self._call("record the halt", set_once)

    async def halted(self) -> str | None:
        return await self._call("be read", self._halted_now)

    async def _halted_now(self) -> str | None:
        answer = await self._client.get_item(
            TableName=self.table, Key=self._key, ConsistentRead=True
        )
        halted = answer.get("Item", {}).get("halted")
        return None if halted is None else str(halted["S"])

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call``, its SDK error a RunTableError said once."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await call()
        except (BotoCoreError, ClientError) as error:
            message = f"the run table {self.table} could not {what}: {error}"
            if not self._failed:
                self._failed = True
                self._on_failure(message)
            raise RunTableError(message) from None


@asynccontextmanager
async def open_run_table(
    table: str,
    run_id: str,
    *,
    shard: str,
    budget: int,
    on_failure: Callable[[str], None],
) -> AsyncIterator[RunTable]:
    """The record of run ``run_id`` in ``table``, this shard's start recorded.

    Raises RunTableError when the table cannot be used: nothing has been changed then.
    """
    import aioboto3  # only a shared run record needs DynamoDB's client
    from aiobotocore.config import AioConfig

    # A few quick attempts: a shard waiting on a lost table would hold its targets.
    config = AioConfig(
        connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}
    )
    async with aioboto3.Session().client("dynamodb", config=config) as client:
        run_table = RunTable(client, table, run_id, shard=shard, on_failure=on_failure)
        await run_table.join(budget)
        yield run_table
