"""What verify reads from a task definition: each reference, checked where it lives."""

from __future__ import annotations

from typing import Any

from ecs_deploy_many.core.scope import AwsScope
from ecs_deploy_many.deploy.verify import Check, Reference, references_of

SCOPE = AwsScope("eu-west-1", profile="prod")
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
SECRET = "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf"


def checks(definition: dict[str, Any]) -> list[tuple[str, Check | None, str]]:
    return [
        (r.kind, r.check, r.settled.detail if r.settled else "")
        for r in references_of(definition, SCOPE)
    ]


def test_ecr_images_are_checked_in_their_own_region_by_tag_or_digest() -> None:
    digest = "sha256:" + "a" * 64
    definition = {
        "containerDefinitions": [
            {"name": "a", "image": f"{ECR}/team/app:7"},
            {"name": "b", "image": f"{ECR}/team/app@{digest}"},
            {"name": "c", "image": "nginx:1.27"},
        ]
    }
    east = AwsScope("us-east-1", profile="prod")
    assert checks(definition) == [
        ("image", Check("ecr", east, "7", ("123456789012", "team/app")), ""),
        ("image", Check("ecr", east, digest, ("123456789012", "team/app")), ""),
        ("image", None, "not in Amazon ECR"),
    ]


def test_secrets_go_to_the_service_and_region_their_reference_names() -> None:
    ssm_arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/app/token"
    definition = {
        "containerDefinitions": [
            {
                "name": "app",
                "image": "nginx",
                "secrets": [
                    {"name": "WHOLE", "valueFrom": SECRET},
                    {"name": "KEY", "valueFrom": f"{SECRET}:password:AWSCURRENT:"},
                    {"name": "PARAMETER", "valueFrom": ssm_arn},
                    {"name": "BARE", "valueFrom": "/app/token"},
                    {"name": "ODD", "valueFrom": "arn:aws:s3:::bucket/key"},
                    {"name": "VIA_SSM", "valueFrom": "/aws/reference/secretsmanager/db"},
                ],
                "repositoryCredentials": {"credentialsParameter": SECRET},
            }
        ]
    }
    west = AwsScope("us-west-2", profile="prod")
    central = AwsScope("eu-central-1", profile="prod")
    assert checks(definition)[1:] == [
        ("secret", Check("secretsmanager", west, SECRET), ""),
        ("secret", Check("secretsmanager", west, SECRET), ""),  # the JSON key is not asked
        ("secret", Check("ssm", central, ssm_arn), ""),
        ("secret", Check("ssm", SCOPE, "/app/token"), ""),  # ECS reads a name as SSM's
        ("secret", None, "not a Secrets Manager or SSM reference"),
        ("secret", Check("secretsmanager", SCOPE, "db"), ""),  # by name, never decrypted
        ("secret", Check("secretsmanager", west, SECRET), ""),
    ]


def test_no_secret_reference_is_shown() -> None:
    definition = {
        "containerDefinitions": [
            {
                "name": "app",
                "image": "nginx",
                "secrets": [{"name": "DB", "valueFrom": SECRET}],
                "logConfiguration": {
                    "logDriver": "splunk",
                    "secretOptions": [{"name": "splunk-token", "valueFrom": "/splunk/token"}],
                },
            }
        ]
    }
    shown = [r.shown for r in references_of(definition, SCOPE)]
    assert shown[1:] == [
        "DB of container app (Secrets Manager, us-west-2)",
        "log option splunk-token of container app (SSM parameter)",
    ]


def test_roles_by_name_and_log_groups_by_region_unless_ecs_creates_them() -> None:
    definition = {
        "taskRoleArn": "arn:aws:iam::123456789012:role/service/app-task",
        "executionRoleArn": "ecsTaskExecutionRole",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "nginx",
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/app", "awslogs-region": "us-east-2"},
                },
            },
            {
                "name": "sidecar",
                "image": "nginx",
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/new", "awslogs-create-group": "true"},
                },
            },
        ],
    }
    assert [c for c in checks(definition) if c[0] != "image"] == [
        ("log group", Check("logs", AwsScope("us-east-2", profile="prod"), "/ecs/app"), ""),
        ("log group", None, "created by ECS"),
        ("task role", Check("iam", SCOPE, "app-task"), ""),
        ("execution role", Check("iam", SCOPE, "ecsTaskExecutionRole"), ""),
    ]


def test_the_text_says_what_was_found_missing_and_not_checked_per_target() -> None:
    from ecs_deploy_many.aws.references import Finding
    from ecs_deploy_many.deploy.verify import TargetVerification, Verification, format_verification

    image = Reference("image", "repo/app:1 (container app)")
    role = Reference("task role", "arn:aws:iam::123456789012:role/app")
    group = Reference("log group", "/ecs/app (eu-west-1, container app)")
    skipped = "ECS is at http://sim and these have no endpoint of their own"
    verification = Verification(
        targets=[
            TargetVerification("a", missing=((role, Finding("missing", "no such role")),)),
            TargetVerification(
                "b",
                unchecked=((role, Finding("unchecked", "access denied (AccessDenied)")),),
                found=(image,),
            ),
            TargetVerification("c", unchecked=((group, Finding("unchecked", skipped)),)),
            TargetVerification("d", error="service d not found in cluster prod"),
            TargetVerification("e", error="service e uses CODE_DEPLOY", refused=True),
        ],
        skipped={"logs": skipped, "iam": skipped},
    )
    assert format_verification(verification).splitlines() == [
        "a  1 missing: missing 1 task role",
        "  missing      task role arn:aws:iam::123456789012:role/app: no such role",
        "b  ok: found 1 image; not checked 1 task role",
        "  not checked  task role arn:aws:iam::123456789012:role/app: access denied (AccessDenied)",
        "c  not checked: 1 log group",
        "d  not verified: service d not found in cluster prod",
        "e  refused: service e uses CODE_DEPLOY",
        f"not checked: CloudWatch Logs, IAM ({skipped})",
        "verify: 5 targets: 1 ok, 1 with 1 missing, 1 refused, 1 not checked, 1 not verified",
    ]
    assert verification.problems == 2  # the missing role and the refused service
