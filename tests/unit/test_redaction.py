"""Secrets never reach an output, and names are never masked.

Where a task definition can hold a secret, in whatever shape, and the AWS client's own
ParamValidationError (the real botocore validator, fed the real ECS model) quoting a
wrongly typed one: the redactor masks every form of it. Names, and values secret by their
name alone but short or plain words (``KEY=value``), are never masked.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import structlog
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters
from hypothesis import given
from hypothesis import strategies as st

from ecs_deploy_many.core.ecs_api import ecs_service_model
from ecs_deploy_many.core.redact import MASK, Redactor, run_redactor, task_definition_secrets
from ecs_deploy_many.core.target import AwsScope, Target


def test_masks_known_secret_strings_anywhere() -> None:
    redactor = Redactor(["wJalrXUtnFEMI/K7MDENG", "s3cr3t-db-pass"])
    event = {
        "event": "failed",
        "error": "InvalidParameterException: bad value s3cr3t-db-pass in container app",
        "nested": {"items": ["x", "key wJalrXUtnFEMI/K7MDENG"]},
    }
    out = redactor(None, "info", dict(event))
    assert "s3cr3t-db-pass" not in str(out)
    assert "wJalrXUtnFEMI/K7MDENG" not in str(out)
    assert out["error"].endswith(f"bad value {MASK} in container app")


def test_masks_secret_looking_keys() -> None:
    out = Redactor()(None, "info", {"aws_secret_access_key": "abc", "session_token": "t", "n": 1})
    assert out == {"aws_secret_access_key": MASK, "session_token": MASK, "n": 1}


def test_short_strings_are_not_treated_as_secrets() -> None:
    # masking "1" would mangle every count in every line
    out = Redactor(["1", ""])(None, "info", {"running": "1/2"})
    assert out == {"running": "1/2"}


def test_overlapping_secrets_are_masked_whole() -> None:
    assert Redactor(["abcd1234", "1234wxyz"]).scrub("key abcd1234wxyz!") == f"key {MASK}!"


# -- names ------------------------------------------------------------------------------


def line(target: str, service: str, **facts: Any) -> dict[str, Any]:
    identity = {"target": target, "cluster": "silorg", "service": service, "region": "eu-west-1"}
    return {**identity, "wave": "all", "event": "target_finished", **facts}


def test_identity_fields_are_never_rewritten() -> None:
    # A secret that happens to be part of a name (a name is not a secret).
    redactor = Redactor(["value"])
    name = "silorg-existing-proxyconfiguration-value"
    arn = f"arn:aws:ecs:eu-west-1:123456789012:task-definition/{name}:2"
    out = redactor(
        None,
        "error",
        line(
            "existing-value",
            name,
            new_task_definition=arn,
            error=f"service {name} failed: the value was wrong",
        ),
    )
    assert out == line(
        "existing-value",
        name,
        new_task_definition=arn,
        error=f"service {name} failed: the {MASK} was wrong",
    )


def test_one_targets_secret_never_masks_another_targets_name() -> None:
    secret = "payments-2024"
    redactor = run_redactor({}, definitions=[definition(env("DB_PASSWORD", secret))])
    mine = redactor(None, "info", line("billing", "billing", error=f"password {secret} refused"))
    theirs = redactor(None, "info", line("payments-2024-api", "payments-2024-api"))
    other = redactor(None, "info", line("a", "a", error="dependency payments-2024-api failed"))
    assert mine["error"] == f"password {MASK} refused"
    assert (theirs["target"], theirs["service"]) == ("payments-2024-api", "payments-2024-api")
    assert other["error"] == "dependency payments-2024-api failed"


def test_the_names_of_a_runs_targets_are_kept_before_any_line_shows_them() -> None:
    secret = "payments-2024"
    target = Target("payments-2024-api", "prod", "payments-2024-api", scope=AwsScope("eu-west-1"))
    redactor = run_redactor({}, definitions=[definition(env("DB_PASSWORD", secret))])
    redactor.keep([target])
    assert redactor.scrub("payments-2024-api waits on payments-2024") == (
        f"payments-2024-api waits on {MASK}"
    )


def test_a_reports_names_are_never_rewritten() -> None:
    redactor = Redactor(["prod-db-7"])
    report = {
        "halted": "target prod-db-7-migrate failed",
        "targets": [
            {"name": "prod-db-7-migrate", "cluster": "prod-db-7", "depends_on": ["prod-db-7"]},
            {"name": "api", "error": "cannot reach prod-db-7 with password prod-db-7"},
        ],
    }
    assert redactor.scrub(report) == {
        "halted": "target prod-db-7-migrate failed",
        "targets": [
            {"name": "prod-db-7-migrate", "cluster": "prod-db-7", "depends_on": ["prod-db-7"]},
            # identity wins: where the secret is a whole name, it is that name
            {"name": "api", "error": "cannot reach prod-db-7 with password prod-db-7"},
        ],
    }


# -- what a task definition holds -------------------------------------------------------


def env(name: str, value: Any) -> dict[str, Any]:
    return {"environment": [{"name": name, "value": value}]}


def definition(*containers: dict[str, Any], **task: Any) -> dict[str, Any]:
    return {
        "family": "vault",
        "containerDefinitions": [
            {"name": f"c{i}", "image": "example/app:1", **extra}
            for i, extra in enumerate(containers)
        ],
        **task,
    }


@pytest.mark.parametrize(
    ("name", "value", "learned"),
    [
        ("KEY", "value", False),  # a word: the original's own test definitions hold this
        ("API_KEY", "true", False),
        ("DB_PASSWORD", "disabled", False),
        ("DB_PASSWORD", "Localhost", False),
        ("DB_PASSWORD", "hunter2", False),  # shorter than 8
        ("DB_PASSWORD", "hunter2-db", True),
        ("DB_PASSWORD", 987654321, True),  # a number where a string belongs
        ("SENTRY_DSN", "https://k3y@o1.ingest.example/4", True),
        ("LOG_LEVEL", "debug-verbose-9", False),  # not a secret-looking name
    ],
)
def test_a_value_secret_by_its_name_alone_is_learned_only_when_long_and_no_plain_word(
    name: str, value: Any, learned: bool
) -> None:
    assert (str(value) in task_definition_secrets(definition(env(name, value)))) is learned


# A marker in every place a task definition (RegisterTaskDefinition's input) holds a secret.
EVERY_PLACE = definition(
    {
        "secrets": [{"name": "DB_URL", "valueFrom": "mk-secret-ref-01"}],
        "environment": [
            {"name": "DB_PASSWORD", "value": "mk-env-02"},
            {"name": "LOG_LEVEL", "value": "debug"},
        ],
        "repositoryCredentials": {"credentialsParameter": "mk-repo-cred-03"},
        "logConfiguration": {
            "logDriver": "splunk",
            "options": {"splunk-token": "mk-log-token-04", "splunk-url": "https://splunk:8088"},
            "secretOptions": [{"name": "splunk-password", "valueFrom": "mk-log-secret-05"}],
        },
        "dockerLabels": {"com.example.api-key": "mk-label-06", "team": "payments"},
        "credentialSpecs": ["credentialspecdomainless:mk-credspec-07"],
        "command": ["migrate", "--db-password=mk-command-15", "--log-level=debug"],
    },
    {
        "logConfiguration": {"logDriver": "awsfirelens", "options": {"apikey": "mk-apikey-08"}},
        "firelensConfiguration": {"type": "fluentbit", "options": {"http_passwd": "mk-fl-09"}},
    },
    proxyConfiguration={
        "type": "APPMESH",
        "containerName": "c0",
        "properties": [{"name": "AuthToken", "value": "mk-proxy-10"}],
    },
    volumes=[
        {
            "name": "share",
            "fsxWindowsFileServerVolumeConfiguration": {
                "fileSystemId": "fs-1",
                "rootDirectory": "share",
                "authorizationConfig": {"credentialsParameter": "mk-fsx-11", "domain": "corp"},
            },
        },
        {
            "name": "cifs",
            "dockerVolumeConfiguration": {
                "driver": "local",
                "driverOpts": {"password": "mk-driver-12", "o": "user=svc,password=mk-mount-16"},
                "labels": {"secret": "mk-volume-label-13"},
            },
        },
    ],
    tags=[{"key": "api_token", "value": "mk-tag-14"}, {"key": "team", "value": "payments"}],
)
MARKERS = [f"{n:02}" for n in range(1, 17)]


def test_every_place_a_task_definition_holds_a_secret() -> None:
    learned = task_definition_secrets(EVERY_PLACE)
    assert [n for n in MARKERS if not any("mk-" in s and s.endswith(n) for s in learned)] == []
    # names and configuration are not secrets
    shown = ["DB_URL", "DB_PASSWORD", "debug", "splunk", "https://splunk:8088", "payments", "svc"]
    assert not [text for text in shown if text in learned]


def test_the_place_a_secret_is_in_is_valid_ecs_input() -> None:
    # The places above are where ECS takes them: the client accepts the definition.
    validate_parameters(EVERY_PLACE, _register_shape())


def _register_shape() -> Any:
    return ecs_service_model().operation_model("RegisterTaskDefinition").input_shape


WRONGLY_TYPED: dict[str, dict[str, Any]] = {
    "reference as a list": {
        "secrets": [{"name": "DB_URL", "valueFrom": ["mk-list-a1", "mk-list-a2"]}]
    },
    "reference as an object": {
        "secrets": [{"name": "DB_URL", "valueFrom": {"arn": "mk-object-b1"}}]
    },
    "reference as a YAML key": {
        "secrets": [{"name": "DB_URL", "valueFrom": {"arn:aws:ssm:mk-key-c1": None}}]
    },
    "secrets as a mapping": {"secrets": {"DB_URL": "mk-mapping-d1"}},
    "secrets as a string": {"secrets": "mk-string-e1"},
    "secret as a string": {"secrets": ["mk-item-f1"]},
    "env value as a list": {"environment": [{"name": "DB_PASSWORD", "value": ["mk-env-list-g1"]}]},
    "env value as an object": {
        "environment": [{"name": "API_TOKEN", "value": {"v": "mk-env-object-h1"}}]
    },
    "env value as a number": {"environment": [{"name": "DB_PASSWORD", "value": 7_000_000_000_123}]},
    "environment as a mapping": {
        "environment": {"DB_PASSWORD": "mk-env-mapping-i1", "LOG_LEVEL": "debug"}
    },
    "env item as a string": {"environment": ["SESSION_SECRET=mk-env-string-j1"]},
    "credentials as a string": {"repositoryCredentials": "mk-repo-string-k1"},
    "credentials reference as a list": {
        "repositoryCredentials": {"credentialsParameter": ["mk-repo-list-l1"]}
    },
    "log configuration as a list": {
        "logConfiguration": [{"logDriver": "splunk", "options": {"splunk-token": "mk-log-m1"}}]
    },
    "log option as a list": {
        "logConfiguration": {"logDriver": "x", "options": {"apikey": ["mk-opt-list-n1"]}}
    },
    "secretOptions as a string": {
        "logConfiguration": {"logDriver": "x", "secretOptions": "mk-secret-options-o1"}
    },
    "docker label as an object": {"dockerLabels": {"api-key": {"nested": "mk-label-object-p1"}}},
    "escaped characters": {
        "secrets": [{"name": "DB_URL", "valueFrom": ['mk-quote\'s \\ "here" ü']}]
    },
}


@pytest.mark.parametrize("container", WRONGLY_TYPED.values(), ids=WRONGLY_TYPED)
def test_a_wrongly_typed_secret_is_masked_in_the_clients_error(container: dict[str, Any]) -> None:
    body = definition(container)
    with pytest.raises(ParamValidationError) as raised:
        validate_parameters(body, _register_shape())
    message = str(raised.value)
    markers = [leaf for leaf in _leaves(container) if "mk-" in leaf or leaf.isdigit()]
    # as given, or escaped as the error's repr of a list or an object quotes it
    forms = [form for marker in markers for form in (marker, repr(marker)[1:-1])]
    assert [form for form in forms if form in message]
    masked = Redactor(task_definition_secrets(body)).scrub(message)
    assert not [form for form in forms if form in masked]
    assert MASK in masked


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*map(str, value), *(leaf for v in value.values() for leaf in _leaves(v))]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [str(value)]


_SECRET_TEXT = st.text(st.characters(blacklist_characters="*", codec="utf-8"), min_size=4)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _SECRET_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_SECRET_TEXT, inner, max_size=3),
    max_leaves=8,
)


@given(value=_JSON)
def test_a_reference_of_any_type_never_shows_in_the_clients_error(value: Any) -> None:
    body = definition({"secrets": [{"name": "DB_URL", "valueFrom": value}]})
    try:
        validate_parameters(body, _register_shape())
    except ParamValidationError as error:
        masked = Redactor(task_definition_secrets(body)).scrub(str(error))
    else:
        return  # a string: ECS's type, sent as is
    bits = ("True", "False", "None")  # booleans and null are not secrets
    secrets = [leaf for leaf in _leaves(value) if len(leaf) >= 4 and leaf not in bits]
    assert not [leaf for leaf in secrets if leaf in masked]


def test_a_traceback_is_masked_too() -> None:
    out = io.StringIO()
    # The processors in the order the CLI's logging has them: the traceback is rendered last.
    log = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[
            Redactor(["mk-traceback-secret"]),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    try:
        raise ValueError("refused mk-traceback-secret")
    except ValueError:
        log.error("crashed", exc_info=True)
    [logged] = [json.loads(text) for text in out.getvalue().splitlines()]
    assert "mk-traceback-secret" not in out.getvalue()
    assert f"ValueError: refused {MASK}" in logged["exception"]
