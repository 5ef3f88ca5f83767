"""Concurrent callers asking for the same thing share one answer.

At fleet scale many targets ask ECS the same question at once (the same task-definition
revision, the same registration); one call answers them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import anyio

__all__ = ["AsyncMemo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class AsyncMemo(Generic[K, V]):
    """Remember each key's value; callers arriving while it is computed wait for it.

    A failed computation is not remembered: the next caller tries again.
    """

    def __init__(self) -> None:
        self._values: dict[K, V] = {}
        self._pending: dict[K, anyio.Event] = {}

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        while key not in self._values:
            pending = self._pending.get(key)
            if pending is None:
                return await self._compute(key, compute)
            await pending.wait()
        return self._values[key]

    async def _compute(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        done = self._pending[key] = anyio.Event()
        try:
            value = self._values[key] = await compute()
            return value
        finally:
            del self._pending[key]
            done.set()
