"""ECS's service quotas the tool and the simulator both hold to.

Amazon ECS service quotas:
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_TASKS_PER_SERVICE"]

MAX_TASKS_PER_SERVICE: Final = 5_000
""""Tasks per service": the largest desired count (adjustable on request in a real
account, fixed here and in the simulator)."""
