"""The IAM policy a plan needs, derived from the plan alone, and the document checker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.iam_documents import actions_of, allowed, check_document

from ecs_deploy_many.deploy.iam_policy import PolicyInputs, grants_for, policy_document
from ecs_deploy_many.plan import load_plan

ACCOUNT = "123456789012"
EU = f"arn:aws:ecs:eu-west-1:{ACCOUNT}"
TWO_ACCOUNTS = """
version: 1
defaults: {image: app:2}
targets:
  - {cluster: prod, service: api, region: eu-west-1,
     assume_role: "arn:aws:iam::111111111111:role/deploy"}
  - {name: us-api, cluster: prod, service: api, region: us-east-1,
     assume_role: "arn:aws:iam::222222222222:role/deploy"}
  - {cluster: edge, service: web, region: eu-central-1,
     assume_role: "arn:aws:iam::222222222222:role/deploy"}
"""


def policy(tmp_path: Path, text: str, **inputs: Any) -> dict[str, Any]:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    plan = load_plan(path, environ={})
    document = policy_document(grants_for(plan, plan.targets, PolicyInputs(**inputs)))
    check_document(document)
    return document


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    [found] = [s for s in document["Statement"] if s["Sid"] == sid]
    return found


def test_two_accounts_and_regions_get_statements_scoped_to_each(tmp_path: Path) -> None:
    document = policy(tmp_path, TWO_ACCOUNTS)
    check_document(
        document,
        scopes={
            ("111111111111", "eu-west-1"),
            ("222222222222", "us-east-1"),
            ("222222222222", "eu-central-1"),
        },
    )
    first, second = "arn:aws:ecs:eu-west-1:111111111111", "arn:aws:ecs:us-east-1:222222222222"
    assert statement(document, "DeployServicesIn111111111111")["Resource"] == (
        f"{first}:service/prod/api"
    )
    assert statement(document, "DeployServicesIn222222222222")["Resource"] == [
        "arn:aws:ecs:eu-central-1:222222222222:service/edge/web",
        f"{second}:service/prod/api",
    ]
    assert statement(document, "AssumeTargetRoles")["Resource"] == [
        "arn:aws:iam::111111111111:role/deploy",
        "arn:aws:iam::222222222222:role/deploy",
    ]
    assert allowed(document, "ecs:UpdateService", f"{second}:service/prod/api")
    # Each account's service is allowed in its own account and region only.
    assert not allowed(document, "ecs:UpdateService", f"{first}:service/edge/web")
    assert not allowed(
        document, "ecs:UpdateService", "arn:aws:ecs:us-east-1:111111111111:service/prod/api"
    )
    roles = statement(document, "PassTaskRolesIn222222222222")["Resource"]
    assert roles == "arn:aws:iam::222222222222:role/*"


def test_without_an_account_arns_name_any_account_or_the_given_one(tmp_path: Path) -> None:
    plan = "version: 1\ntargets: [{cluster: prod, service: api, image: app:2, region: eu-west-1}]\n"
    assert allowed(policy(tmp_path, plan), "ecs:UpdateService", f"{EU}:service/prod/api")
    scoped = policy(tmp_path, plan, account=ACCOUNT)
    assert statement(scoped, "DeployServices")["Resource"] == f"{EU}:service/prod/api"
    other = "arn:aws:ecs:eu-west-1:999999999999:service/prod/api"
    assert not allowed(scoped, "ecs:UpdateService", other)


def test_selector_globs_become_iam_wildcards(tmp_path: Path) -> None:
    document = policy(
        tmp_path,
        "version: 1\ndefaults: {region: eu-west-1}\ntargets:\n"
        "  - {name: agents, select: {clusters: ['prod-*', 'edge-[ab]'], runs: agent},\n"
        "     image: agent:7}\n",
        account=ACCOUNT,
    )
    listing = statement(document, "FindSelectedServices")
    assert listing["Condition"] == {
        "ArnLike": {"ecs:cluster": [f"{EU}:cluster/edge-?", f"{EU}:cluster/prod-*"]}
    }
    assert allowed(document, "ecs:ListServices", "*", {"ecs:cluster": f"{EU}:cluster/prod-eu-1"})
    assert not allowed(document, "ecs:ListServices", "*", {"ecs:cluster": f"{EU}:cluster/dev"})
    assert allowed(document, "ecs:UpdateService", f"{EU}:service/prod-eu-1/storefront")
    assert allowed(document, "ecs:UpdateService", f"{EU}:service/edge-a/proxy")
    assert not allowed(document, "ecs:UpdateService", f"{EU}:service/staging/storefront")
    assert "ecs:ListClusters" in actions_of(document)


def test_one_off_tasks_run_their_family_on_their_cluster_only(tmp_path: Path) -> None:
    document = policy(
        tmp_path,
        "version: 1\ndefaults: {region: eu-west-1}\ntargets:\n"
        "  - {name: migrate, cluster: prod, task_definition: orders-migrate, image: app:2,\n"
        "     run_task: {wait_for_success: true}}\n",
        account=ACCOUNT,
    )
    on_prod = {"ecs:cluster": f"{EU}:cluster/prod"}
    assert allowed(document, "ecs:RunTask", f"{EU}:task-definition/orders-migrate:7", on_prod)
    assert not allowed(document, "ecs:RunTask", f"{EU}:task-definition/other:7", on_prod)
    on_dev = {"ecs:cluster": f"{EU}:cluster/dev"}
    assert not allowed(document, "ecs:RunTask", f"{EU}:task-definition/orders-migrate:7", on_dev)
    assert allowed(document, "ecs:DescribeTasks", f"{EU}:task/prod/0123abcd")
    assert not allowed(document, "ecs:DescribeTasks", f"{EU}:task/dev/0123abcd")
    assert "ecs:UpdateService" not in actions_of(document)


def test_pass_role_names_the_roles_the_plan_names(tmp_path: Path) -> None:
    plan = (
        "version: 1\ndefaults: {region: eu-west-1, cluster: prod}\ntargets:\n"
        "  - {service: api, image: app:2, task_role: api-task,\n"
        "     execution_role: 'arn:aws:iam::123456789012:role/ecs-exec'}\n"
    )
    document = policy(tmp_path, plan, account=ACCOUNT)
    passing = statement(document, "PassTaskRoles")
    assert passing["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/api-task",
        f"arn:aws:iam::{ACCOUNT}:role/ecs-exec",
    ]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    # Only the task role named: the execution role is the running revision's, any role.
    exec_role = ",\n     execution_role: 'arn:aws:iam::123456789012:role/ecs-exec'"
    unknown = policy(tmp_path, plan.replace(exec_role, ""), account=ACCOUNT)
    assert f"arn:aws:iam::{ACCOUNT}:role/*" in statement(unknown, "PassTaskRoles")["Resource"]
    given = policy(tmp_path, plan, account=ACCOUNT, roles=("ecs-exec",))
    assert "role/*" not in json.dumps(statement(given, "PassTaskRoles"))


@pytest.mark.parametrize(
    ("plan_keys", "inputs", "sid", "actions", "resources"),
    [
        (
            "lock: {table: release-locks, region: eu-west-1}\n",
            {},
            "HoldRunLock",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/release-locks",
        ),
        (
            "",
            {"journal": "s3://releases/journal"},
            "WriteJournal",
            ["s3:GetObject", "s3:PutObject"],
            "arn:aws:s3:::releases/journal/*",
        ),
        (
            "",
            {"journal": "s3://releases/journal"},
            "ListJournal",
            ["s3:ListBucket"],
            "arn:aws:s3:::releases",
        ),
        (
            "",
            {"run_table": "release-runs"},
            "ShareRunTable",
            ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            f"arn:aws:dynamodb:*:{ACCOUNT}:table/release-runs",
        ),
        (
            "waves: [{name: all, targets: ['*'], bake: 60,"
            " alarms: {names: [api-5xx], prefix: api-}}]\n",
            {},
            "ReadWaveAlarms",
            ["cloudwatch:DescribeAlarms"],
            [
                f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:api-*",
                f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:api-5xx",
            ],
        ),
        (
            "",
            {},
            "ReadImages",
            ["ecr:BatchGetImage"],
            f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/team/api",
        ),
        (
            "",
            {},
            "VerifySecrets",
            ["secretsmanager:DescribeSecret"],
            f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:*",
        ),
        (
            "",
            {},
            "VerifyParameters",
            ["ssm:GetParameters"],
            f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/*",
        ),
        ("", {}, "VerifyRoles", ["iam:GetRole"], f"arn:aws:iam::{ACCOUNT}:role/*"),
        (
            "",
            {},
            "VerifyLogGroups",
            ["logs:DescribeLogGroups"],
            f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:*",
        ),
        (
            "",
            {"stop_deployments": True},
            "StopServiceDeployments",
            ["ecs:StopServiceDeployment"],
            f"{EU}:service-deployment/prod/api/*",
        ),
    ],
)
def test_each_feature_adds_its_statement(
    tmp_path: Path,
    plan_keys: str,
    inputs: dict[str, Any],
    sid: str,
    actions: list[str],
    resources: str | list[str],
) -> None:
    """The lock (lock.py), the journal and approvals (journal/stores.py, approvals.py),
    the shared run table (run_table.py), alarm gates (aws/alarms.py), digest pinning
    (jobs/pinning.py) and verify (aws/references.py) call these, and only then."""
    plan = (
        f"version: 1\n{plan_keys}defaults: {{region: eu-west-1, cluster: prod}}\ntargets:\n"
        f"  - {{service: api, image: '{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/api:2'}}\n"
    )
    document = policy(tmp_path, plan, account=ACCOUNT, **inputs)
    found = statement(document, sid)
    assert found["Action"] == actions
    assert found["Resource"] == resources
    without = policy(
        tmp_path,
        plan.replace(plan_keys, "").replace(f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/", "")
        if plan_keys or sid == "ReadImages"
        else plan,
        account=ACCOUNT,
        verify=not sid.startswith("Verify"),
    )
    assert sid not in {s["Sid"] for s in without["Statement"]}


def test_cleanup_deregisters_and_reads_what_every_cluster_uses(tmp_path: Path) -> None:
    plan = (
        "version: 1\ndefaults: {region: eu-west-1}\ntargets:\n"
        "  - {cluster: prod, service: api, image: app:2, max_definitions: 5}\n"
    )
    document = policy(tmp_path, plan, account=ACCOUNT)
    assert statement(document, "CleanUpRevisions")["Action"] == [
        "ecs:ListTaskDefinitions",
        "ecs:DeregisterTaskDefinition",
    ]
    assert allowed(document, "ecs:DescribeServices", f"{EU}:service/other/anything")
    assert allowed(document, "ecs:DescribeTasks", f"{EU}:task/other/0123")
    assert "CleanUpRevisions" not in json.dumps(
        policy(tmp_path, plan.replace(", max_definitions: 5", ""))
    )


def test_a_dry_run_needs_reads_only(tmp_path: Path) -> None:
    plan = (
        "version: 1\nlock: {table: locks}\ndefaults: {region: eu-west-1}\ntargets:\n"
        "  - {cluster: prod, service: api, max_definitions: 5,\n"
        f"     image: '{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/api:2'}}\n"
    )
    document = policy(tmp_path, plan, account=ACCOUNT, dry_run=True, journal="s3://b/p")
    assert actions_of(document) == {
        "ecs:DescribeTaskDefinition",
        "ecs:DescribeServices",
        "ecr:BatchGetImage",
    }


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"Statement": []}, "Version"),
        ({"Version": "2008-10-17", "Statement": []}, "Version"),
        ({"Version": "2012-10-17", "Statement": []}, "at least one"),
        (
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:X"}]},
            "missing",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "a-b", "Effect": "Allow", "Action": "ecs:X", "Resource": "*"}
                ],
            },
            "Sid",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Permit", "Action": "ecs:X", "Resource": "*"}],
            },
            "Effect",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "UpdateService", "Resource": "*"}],
            },
            "Action",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "ecs:X",
                        "Resource": "arn:aws:ecs:eu-west:123456789012:service/a/b",
                    }
                ],
            },
            "region",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iam:PassRole",
                        "Resource": "arn:aws:iam:eu-west-1:123456789012:role/x",
                    }
                ],
            },
            "no region",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "ecs:X",
                        "Resource": "*",
                        "Condition": {"StringIs": {"ecs:cluster": "x"}},
                    }
                ],
            },
            "operator",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "ecs:X",
                        "Resource": "arn:aws:ecs:us-east-1:123456789012:service/a/b",
                    }
                ],
            },
            "no target's",
        ),
    ],
)
def test_the_checker_refuses_what_iam_refuses(document: dict[str, Any], problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        check_document(document, scopes={("123456789012", "eu-west-1")})
