# ecs-deploy-many in a container, for an ECS scheduled task, a Kubernetes CronJob or a CI
# job. Build from the repository root: docker build -t ecs-deploy-many .
# Run: docker run --rm -e AWS_REGION ... ecs-deploy-many PLAN [FLAGS]; the original
# single-service command: docker run --rm --entrypoint ecs-deploy ecs-deploy-many -c ...
ARG PYTHON_IMAGE=python:3.12-slim

# The wheel, built from the sources here (the same as `make dist` builds).
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --disable-pip-version-check build==1.3.0 \
    && python -m build --wheel --outdir dist .

# The tool and its dependencies only, run by a user without privileges.
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /tmp/ecs-deploy-many
COPY --from=wheel /src/dist/ ./dist/
RUN pip install --no-cache-dir ./dist/*.whl \
    && rm -rf ./dist
RUN useradd --create-home --uid 10001 --user-group deploy
USER 10001:10001
WORKDIR /home/deploy
ENTRYPOINT ["ecs-deploy-many"]
CMD ["--help"]
