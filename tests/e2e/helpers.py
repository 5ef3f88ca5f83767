"""Starting the simulator as a user does: a process other tools point at."""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "ecs-deploy-many"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The server started with ``args``, and the first line it printed; killed if still up."""
    proc = subprocess.Popen(
        [SCRIPT, "sim", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        first = proc.stdout.readline() if ready else ""
        assert first, "no address printed"
        yield proc, first.strip()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # reaps the process and closes its pipes
