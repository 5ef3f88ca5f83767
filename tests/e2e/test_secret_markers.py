"""A unique marker in every place a task definition holds a secret, and in no output.

``ecs-deploy-many`` run as a user runs it, rehearsing on its in-process simulator, whose
fleet runs the task definitions (as ECS would describe them) and whose plan hands one in
as a file. The markers sit in every place ``replace_task_definition_secrets`` knows, once
with ECS's types and once wrongly typed (lists and objects where strings belong, a
mapping where a list belongs), which the AWS client refuses with an error quoting each
value. One target succeeds, one fails on that error, one is rolled back by ECS after its
events, one registers from the file; the plan names a webhook, whose URL is a marker
too. Then every output is searched: console logs, JSON
logs, ``-v`` logs, the summary, the JSON, JUnit and HTML reports, the GitHub step
summary, the run's journal, and a dry run of the same plan. No marker may appear, in
any form; and names that contain an environment value of the run (``KEY=value`` beside
services named ``...-value``) appear whole.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import SCRIPT

ACCESS_KEY_SECRET = "mk-aws-secret-access-key/K7MDENG"
SESSION_TOKEN = "mk-aws-session-token-FwoGZXIv"
WEBHOOK = "https://hooks.example.com/services/T0/B0/mk-webhook-token"
SERVICES = {
    "existing-proxyconfiguration-value": "vault",  # succeeds
    "typo-value": "typo",  # the client refuses its wrongly typed secrets
    "broken-value": "broken",  # fails to start, rolled back
    "file-value": "vault",  # deploys task-definition.json, whose secrets differ
}


def every_place(marker: str) -> dict[str, Any]:
    """A task definition (no family) with ``marker`` in every place a secret can be."""
    return {
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "example/app:1",
                "secrets": [{"name": "DB_URL", "valueFrom": f"{marker}-secret-reference"}],
                "environment": [
                    {"name": "DB_PASSWORD", "value": f"{marker}-db-password"},
                    {"name": "KEY", "value": "value"},
                ],
                "repositoryCredentials": {"credentialsParameter": f"{marker}-registry-creds"},
                "logConfiguration": {
                    "logDriver": "awsfirelens",
                    "options": {"Name": "datadog", "apikey": f"{marker}-log-apikey"},
                    "secretOptions": [{"name": "Password", "valueFrom": f"{marker}-log-secret"}],
                },
                "dockerLabels": {"com.example.token": f"{marker}-docker-label"},
                "credentialSpecs": [f"credentialspecdomainless:{marker}-credential-spec"],
                "command": ["serve", f"--api-key={marker}-command-option"],
            },
            {
                "name": "router",
                "image": "example/router:1",
                "firelensConfiguration": {
                    "type": "fluentbit",
                    "options": {"http_passwd": f"{marker}-firelens"},
                },
            },
        ],
        "proxyConfiguration": {
            "type": "APPMESH",
            "containerName": "app",
            "properties": [{"name": "AuthToken", "value": f"{marker}-proxy-property"}],
        },
        "volumes": [
            {
                "name": "share",
                "fsxWindowsFileServerVolumeConfiguration": {
                    "fileSystemId": "fs-1",
                    "rootDirectory": "share",
                    "authorizationConfig": {
                        "credentialsParameter": f"{marker}-fsx-creds",
                        "domain": "corp",
                    },
                },
            },
            {
                "name": "cifs",
                "dockerVolumeConfiguration": {
                    "driver": "local",
                    "driverOpts": {
                        "password": f"{marker}-driver-opt",
                        "o": f"username=svc,password={marker}-mount-option",
                    },
                    "labels": {"secret": f"{marker}-volume-label"},
                },
            },
        ],
        "tags": [{"key": "api_token", "value": f"{marker}-tag"}],
    }


def wrongly_typed(marker: str) -> dict[str, Any]:
    """The same places, each secret a list or an object where ECS wants a string."""
    body = every_place(marker)
    app, router = body["containerDefinitions"]
    app["secrets"] = [
        {"name": "DB_URL", "valueFrom": [f"{marker}-list-reference"]},
        {"name": "API_URL", "valueFrom": {"arn": f"{marker}-object-reference"}},
    ]
    app["environment"] = [
        {"name": "DB_PASSWORD", "value": {"password": f"{marker}-object-env"}},
        {"name": "API_TOKEN", "value": [f"{marker}-list-env", 7_310_000_000_000_017]},
        {"name": "KEY", "value": "value"},
    ]
    app["repositoryCredentials"] = {"credentialsParameter": [f"{marker}-list-registry"]}
    app["logConfiguration"]["options"]["apikey"] = {"key": f"{marker}-object-apikey"}
    app["logConfiguration"]["secretOptions"][0]["valueFrom"] = [f"{marker}-list-log-secret"]
    app["dockerLabels"]["com.example.token"] = [f"{marker}-list-label"]
    router["firelensConfiguration"]["options"]["http_passwd"] = [f"{marker}-list-firelens"]
    body["proxyConfiguration"]["properties"][0]["value"] = [f"{marker}-list-property"]
    body["tags"][0]["value"] = {"v": f"{marker}-object-tag"}
    return body


def wrongly_shaped(marker: str) -> dict[str, Any]:
    """Wrongly typed, and holders shaped as docker-compose habits write them."""
    body = wrongly_typed(marker)
    app = body["containerDefinitions"][0]
    app["secrets"] = {"DB_URL": f"{marker}-mapping-secrets"}
    app["environment"] = [f"SESSION_SECRET={marker}-string-env", {"name": "KEY", "value": "value"}]
    app["repositoryCredentials"] = f"{marker}-string-registry"
    app["logConfiguration"]["secretOptions"] = f"{marker}-string-secret-options"
    return body


def fleet() -> dict[str, Any]:
    return {
        "region": "eu-west-1",
        "timings": {"provisioning": 2, "pending": 3, "activating": 1, "health_grace": 10},
        "behaviour": {"images": [{"match": "*:broken*", "outcome": "fail_to_start"}]},
        "task_definitions": {
            "vault": every_place("mk-vault"),
            "typo": wrongly_typed("mk-typo"),
            "broken": every_place("mk-broken"),
        },
        "clusters": [
            {
                "name": "silorg",
                "services": [
                    {
                        "name": name,
                        "task_definition": family,
                        "desired_count": 1,
                        # ECS stops the failing deployment: no deadline of ours decides
                        "circuit_breaker": {"enable": name == "broken-value", "rollback": True},
                    }
                    for name, family in SERVICES.items()
                ],
            }
        ],
    }


PLAN = """\
version: 1
defaults: {region: eu-west-1, cluster: silorg, timeout: 36000, progress_deadline: 36000}
failure_budget: 5
notifications:
  - {url: "${WEBHOOK_URL}", format: json, on: [start, finish, target_failed]}
targets:
  - {service: existing-proxyconfiguration-value, image: example/app:2}
  - {service: typo-value, image: example/app:2}
  - {service: broken-value, image: example/app:broken}
  - {service: file-value, image: example/app:2, task_definition_file: task-definition.json}
"""


def markers(*values: Any) -> set[str]:
    """Every marker string in ``values``, with the forms a repr or JSON escapes it to."""
    found: set[str] = set()
    for value in values:
        if isinstance(value, dict):
            found |= markers(*value.values())
        elif isinstance(value, list):
            found |= markers(*value)
        elif type(value) is int or (isinstance(value, str) and "mk-" in value):
            # credentialspecdomainless:<marker>, --api-key=<marker>, password=<marker>
            marker = re.split(r"[:=]", str(value))[-1]
            found |= {marker, repr(marker)[1:-1], json.dumps(marker)[1:-1]}
    return found


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "fleet.yaml").write_text(json.dumps(fleet()))
    file = {"family": "file-value", **every_place("mk-file")}
    (tmp_path / "task-definition.json").write_text(json.dumps(file))
    return tmp_path


SECRETS = markers(
    fleet()["task_definitions"], every_place("mk-file"), ACCESS_KEY_SECRET, SESSION_TOKEN, WEBHOOK
)


def ecs_deploy_many(files: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command run in ``files`` with AWS secrets set, as in a GitHub Actions job."""
    secrets = {
        "AWS_SECRET_ACCESS_KEY": ACCESS_KEY_SECRET,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "WEBHOOK_URL": WEBHOOK,
    }
    summary = {"GITHUB_STEP_SUMMARY": str(files / "step-summary.md")}
    return subprocess.run(
        [SCRIPT, "plan.yaml", "--simulate", "--fleet", "fleet.yaml", *args],
        cwd=files,
        env={**os.environ, **secrets, **summary},
        capture_output=True,
        text=True,
        timeout=100,
    )


def assert_no_marker(outputs: dict[str, str]) -> None:
    for name, text in outputs.items():
        leaked = sorted(secret for secret in SECRETS if secret in text)
        assert not leaked, f"{name} shows {leaked}"


@pytest.mark.parametrize("logs", [["--log-format", "console"], ["--log-format", "json", "-v"]])
def test_no_marker_in_any_output_of_a_run(files: Path, logs: list[str]) -> None:
    files_written = ["--report", "report.json", "--junit", "junit.xml", "--html", "report.html"]
    journal = ["--journal", "journal"]
    run = ecs_deploy_many(files, "--speed", "100", *logs, *files_written, *journal)
    assert run.returncode == 1, run.stderr
    (journal_file,) = (files / "journal").glob("*/*.jsonl")
    outputs = {
        "logs": run.stderr,
        "summary": run.stdout,
        **{name: (files / name).read_text() for name in ("report.json", "junit.xml")},
        **{name: (files / name).read_text() for name in ("report.html", "step-summary.md")},
        "journal": journal_file.read_text(),
    }
    assert_no_marker(outputs)
    # The journal holds the whole run: the file's task definition (masked) and every event.
    assert '"task_definition_body":{' in outputs["journal"]
    assert outputs["journal"].count('"event":"target_finished"') == len(SERVICES)

    report = {t["name"]: t for t in json.loads(outputs["report.json"])["targets"]}
    assert {name: t["status"] for name, t in report.items()} == {
        "silorg/existing-proxyconfiguration-value": "succeeded",
        "silorg/typo-value": "failed",
        "silorg/broken-value": "rolled_back",
        "silorg/file-value": "succeeded",
    }
    # The client's error quoted every wrongly typed secret: all masked, the rest intact.
    typo = report["silorg/typo-value"]
    assert typo["error_code"] == "ParamValidationError"
    quoted = "containerDefinitions[0].secrets[0].valueFrom, value: ***, type: <class 'list'>"
    assert quoted in typo["error"]
    # Names holding the run's environment value "value" are never masked.
    for name in SERVICES:
        assert report[f"silorg/{name}"]["service"] == name
        assert report[f"silorg/{name}"]["old_task_definition"].startswith("arn:aws:ecs:")
        for output in ("logs", "report.json", "junit.xml", "report.html", "journal"):
            assert name in outputs[output], (output, name)
    for output in ("summary", "step-summary.md"):
        assert "silorg/typo-value" in outputs[output]
        assert "silorg/broken-value" in outputs[output]
    if "json" in logs:
        lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
        targets = {line["target"] for line in lines if "target" in line}
        assert targets == {f"silorg/{name}" for name in SERVICES}
        assert any(line["level"] == "debug" for line in lines)  # -v


def test_no_marker_in_a_dry_run(files: Path) -> None:
    run = ecs_deploy_many(files, "--dry-run")
    assert run.returncode == 0, run.stderr
    assert_no_marker({"dry run": run.stdout, "logs": run.stderr})
    # What changes shows: the file's secrets replace the running revision's.
    assert "repositoryCredentials.credentialsParameter ***" in run.stdout
    assert "logConfiguration.options.apikey ***" in run.stdout
    assert "silorg/existing-proxyconfiguration-value  (cluster silorg, " in run.stdout


def test_no_marker_when_a_file_holds_wrongly_typed_secrets(files: Path) -> None:
    """Refused at load or by the client, the file's secrets are never quoted."""
    file = {"family": "file-value", **wrongly_shaped("mk-file")}
    (files / "task-definition.json").write_text(json.dumps(file))
    secrets = markers(file)
    # A run fails on the client's error; a dry run shows the change; a plan error stops both.
    for extra, codes in (([], {1, 2}), (["--dry-run"], {0, 2})):
        run = ecs_deploy_many(
            files, "--speed", "100", "--log-format", "json", "--only", "silorg/file-value",
            "--report", "report.json", "--junit", "junit.xml", "--html", "report.html", *extra,
        )  # fmt: skip
        assert run.returncode in codes, run.stderr
        outputs = {"out": run.stdout, "err": run.stderr}
        written = ("report.json", "junit.xml", "report.html", "step-summary.md")
        outputs |= {name: (files / name).read_text() for name in written if (files / name).exists()}
        for name, text in outputs.items():
            leaked = sorted(secret for secret in secrets if secret in text)
            assert not leaked, f"{name} shows {leaked}"
