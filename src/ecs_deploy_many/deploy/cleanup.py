"""``--max-definitions``: deregister old revisions of exactly one family, safely.

The original tool matched families by prefix (so ``api`` also pruned ``api-worker``) and
could deregister the revision a service ran. Here only revisions of the exact family are
considered, the newest ``keep`` stay, and protected revisions (any a service or task runs
or a deployment references, any a rollback would return to) are never touched. ``keep``
0 keeps every revision, as in the original.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["family_of", "revisions_to_deregister"]


def family_of(arn: str) -> str:
    """``arn:aws:ecs:r:a:task-definition/web:12`` (or ``web:12``) -> ``web``."""
    name = arn.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in name else name


def _revision(arn: str) -> int:
    return int(arn.rsplit(":", 1)[1])


def revisions_to_deregister(
    active: Sequence[str], *, family: str, keep: int, protected: Collection[str]
) -> list[str]:
    """The ACTIVE revisions beyond the newest ``keep`` of ``family``, oldest first.

    ``keep`` 0 means keep them all.
    """
    if keep < 0:
        raise ValueError("max definitions must be 0 (keep all) or more")
    if keep == 0:
        return []
    mine = sorted((arn for arn in active if family_of(arn) == family), key=_revision)
    surplus = mine[: max(0, len(mine) - keep)]
    return [arn for arn in surplus if arn not in protected]
