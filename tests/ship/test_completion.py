"""Shell completion for both commands: the scripts click writes, and the completions the
installed commands give by click's protocol (``COMP_WORDS``/``COMP_CWORD``), through
bash itself for the bash script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
VAR = {"ecs-deploy-many": "_ECS_DEPLOY_MANY_COMPLETE", "ecs-deploy": "_ECS_DEPLOY_COMPLETE"}
SCRIPT_MARKS = {
    "bash": "complete -o nosort -F _{fn}_completion {prog}",
    "zsh": "#compdef {prog}",
    "fish": "complete --no-files --command {prog}",
}


def _source(prog: str, shell: str) -> str:
    env = {**ENV, VAR[prog]: f"{shell}_source"}
    done = subprocess.run([BIN / prog], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _complete(prog: str, words: str) -> list[str]:
    """What click answers bash for the command line ``words``, the last word being typed."""
    env = {
        **ENV,
        VAR[prog]: "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    done = subprocess.run([BIN / prog], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize("prog", ["ecs-deploy-many", "ecs-deploy"])
def test_each_shell_gets_a_script(prog: str, shell: str) -> None:
    mark = SCRIPT_MARKS[shell].format(prog=prog, fn=prog.replace("-", "_"))
    assert mark in _source(prog, shell)


def test_many_completes_a_subcommand_and_a_flag() -> None:
    assert _complete("ecs-deploy-many", "ecs-deploy-many val") == ["plain,validate"]
    assert _complete("ecs-deploy-many", "ecs-deploy-many rollback RUN --rea") == ["plain,--reason"]


def test_many_completes_deploy_flags_after_a_bare_plan() -> None:
    """``ecs-deploy-many PLAN`` is ``deploy PLAN``: its flags complete there too."""
    assert _complete("ecs-deploy-many", "ecs-deploy-many plan.yaml --dry") == ["plain,--dry-run"]


def test_single_completes_the_original_flags() -> None:
    assert _complete("ecs-deploy", "ecs-deploy --serv") == ["plain,--service-name"]
    assert "plain,--enable-rollback" in _complete("ecs-deploy", "ecs-deploy -c prod --ena")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    ("prog", "words", "expected"),
    [
        ("ecs-deploy-many", "ecs-deploy-many sim", "sim"),
        ("ecs-deploy-many", "ecs-deploy-many validate plan.yaml --he", "--help"),
        ("ecs-deploy", "ecs-deploy --task-def", "--task-definition --task-definition-file"),
    ],
)
def test_bash_script_fills_compreply(prog: str, words: str, expected: str) -> None:
    """The bash script, sourced into bash, fills COMPREPLY as bash's Tab would."""
    function = f"_{prog.replace('-', '_')}_completion"
    script = f"""
source /dev/stdin
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
{function} {prog}
echo "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        input=_source(prog, "bash"),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == expected.split()
