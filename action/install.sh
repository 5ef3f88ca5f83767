#!/usr/bin/env bash
# Installs ecs-deploy-many into the action's own virtual environment (the job's Python
# and packages stay untouched), unless the cache restored one made for the same key.
# INPUT_VERSION: empty for the action's own checkout, a version, or a pip requirement.
set -euo pipefail
venv="$ECS_DEPLOY_MANY_VENV"
if [[ -f "$venv/.ecs-deploy-many-key" && "$(cat "$venv/.ecs-deploy-many-key")" == "$CACHE_KEY" ]]; then
  echo "ecs-deploy-many: reusing the cached environment $venv"
else
  version="${INPUT_VERSION:-}"
  if [[ -z "$version" ]]; then
    requirement="$GITHUB_ACTION_PATH"
  elif [[ "$version" =~ ^[0-9] ]]; then
    requirement="ecs-deploy-many==$version"
  else
    requirement="$version"
  fi
  echo "ecs-deploy-many: installing $requirement into $venv"
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "$requirement"
  printf '%s' "$CACHE_KEY" > "$venv/.ecs-deploy-many-key"
fi
"$venv/bin/ecs-deploy-many" --version
