"""The exit codes of ``ecs-deploy-many``, one place for every command that ends with one.

0 every target succeeded or was unchanged; 1 one failed, the run halted, or an output
could not be written; 2 a plan, usage or setup error, nothing touched; 73 another run
holds the plan's lock; 75 (EX_TEMPFAIL) the release schedule does not allow a run now;
130 interrupted. ``ecs-deploy`` keeps the original tool's codes (``cli.single``).
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_OUTSIDE_WINDOW",
    "EXIT_PLAN",
]

EXIT_FAILED = 1
EXIT_PLAN = 2
EXIT_LOCKED = 73
EXIT_OUTSIDE_WINDOW = 75
EXIT_INTERRUPTED = 130
