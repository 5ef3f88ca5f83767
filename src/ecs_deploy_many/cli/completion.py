"""Shell completion for both commands, by click's protocol (bash, zsh, fish).

A shell asks for its script once, e.g. ``_ECS_DEPLOY_MANY_COMPLETE=bash_source
ecs-deploy-many`` (``zsh_source``, ``fish_source``; ``_ECS_DEPLOY_COMPLETE`` for
``ecs-deploy``); the script then runs the command with ``..._COMPLETE=bash_complete``
and the words typed so far at each Tab. Click answers before any argument is checked,
so a command must not turn an empty command line into its usage message first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["complete_var", "completion_requested"]


def complete_var(prog_name: str) -> str:
    """The variable click reads for ``prog_name``: ``ecs-deploy`` -> ``_ECS_DEPLOY_COMPLETE``."""
    return f"_{prog_name.replace('-', '_').replace('.', '_')}_COMPLETE".upper()


def completion_requested(prog_name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the shell runs ``prog_name`` for a completion script or completions."""
    return bool(environ.get(complete_var(prog_name)))
