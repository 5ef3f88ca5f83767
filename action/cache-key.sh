#!/usr/bin/env bash
# The cache key of the action's virtual environment: the runner's system, the exact
# Python, and what is installed (the `version` input, or else the content of the
# action's own checkout), so a cached environment is reused only for the same tool.
set -euo pipefail
"${PYTHON:-python3}" - <<'PYTHON' >> "$GITHUB_OUTPUT"
import hashlib
import os
import platform
from pathlib import Path

digest = hashlib.sha256()
if version := os.environ.get("INPUT_VERSION", ""):
    digest.update(version.encode())
else:
    checkout = Path(os.environ["GITHUB_ACTION_PATH"])
    files = [checkout / "pyproject.toml", checkout / "README.md"]
    files += (p for p in (checkout / "src").rglob("*") if "__pycache__" not in p.parts)
    for path in sorted(p for p in files if p.is_file()):
        digest.update(str(path.relative_to(checkout)).encode() + b"\0" + path.read_bytes())
system = f"{os.environ.get('RUNNER_OS', 'os')}-{os.environ.get('RUNNER_ARCH', 'arch')}"
print(f"key=ecs-deploy-many-{system}-py{platform.python_version()}-{digest.hexdigest()[:16]}")
PYTHON
