#!/usr/bin/env bash
# The cache key of the action's virtual environment: the runner's system and Python, and
# what is installed (a requirement, or the content of the action's own checkout), so a
# cached environment is only ever reused for exactly the same tool.
set -euo pipefail
python="${PYTHON:-python3}"
python_version="$("$python" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')"
if [[ -n "${INPUT_VERSION:-}" ]]; then
  installed="$(printf '%s' "$INPUT_VERSION" | sha256sum)"
else
  installed="$(cd "$GITHUB_ACTION_PATH" \
    && find pyproject.toml README.md src -type f ! -path '*/__pycache__/*' -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum)"
fi
echo "key=ecs-deploy-many-${RUNNER_OS:-os}-${RUNNER_ARCH:-arch}-py${python_version}-${installed:0:16}" \
  >> "$GITHUB_OUTPUT"
