"""--network-configuration: JSON or the AWS CLI shorthand, checked against the ECS model."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecs_deploy_many.deploy.shorthand import parse_network_configuration

FULL = {
    "awsvpcConfiguration": {
        "subnets": ["subnet-1", "subnet-2"],
        "securityGroups": ["sg-1"],
        "assignPublicIp": "ENABLED",
    }
}


def awsvpc(**config: Any) -> dict[str, Any]:
    return {"awsvpcConfiguration": config}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "awsvpcConfiguration={subnets=[subnet-1,subnet-2],securityGroups=[sg-1],"
            "assignPublicIp=ENABLED}",
            FULL,
        ),
        (
            "awsvpcConfiguration={assignPublicIp=ENABLED,securityGroups=[sg-1],"
            "subnets=[subnet-1,subnet-2]}",
            FULL,
        ),
        (
            " awsvpcConfiguration = { subnets = [ subnet-1 , subnet-2 ] , "
            "securityGroups = [ sg-1 ] , assignPublicIp = ENABLED } ",
            FULL,
        ),
        # A bare comma list, as the AWS CLI accepts it, ends where the next key= begins.
        (
            "awsvpcConfiguration={subnets=subnet-1,subnet-2,securityGroups=sg-1,"
            "assignPublicIp=ENABLED}",
            FULL,
        ),
        # One value where the model wants a list becomes a one-item list.
        ("awsvpcConfiguration={subnets=subnet-1}", awsvpc(subnets=["subnet-1"])),
        ("awsvpcConfiguration={subnets=[subnet-1]}", awsvpc(subnets=["subnet-1"])),
        (
            "awsvpcConfiguration={subnets=[subnet-1],securityGroups=[]}",
            awsvpc(subnets=["subnet-1"], securityGroups=[]),
        ),
        (
            'awsvpcConfiguration={subnets=["subnet-1",\'subnet-2\'],assignPublicIp="DISABLED"}',
            awsvpc(subnets=["subnet-1", "subnet-2"], assignPublicIp="DISABLED"),
        ),
        (json.dumps(FULL), FULL),
        (json.dumps(FULL, indent=2), FULL),
        ('{"awsvpcConfiguration": {"subnets": "subnet-1"}}', awsvpc(subnets=["subnet-1"])),
        ('  {"awsvpcConfiguration": {"subnets": []}}\n', awsvpc(subnets=[])),
    ],
)
def test_parse_network_configuration(text: str, expected: dict[str, Any]) -> None:
    assert parse_network_configuration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("subnets=[subnet-1]", r"unknown key subnets \(expected awsvpcConfiguration\)"),
        ("awsvpcConfiguration={subnet=[a]}", "awsvpcConfiguration: unknown key subnet"),
        ("awsvpcConfiguration={securityGroups=[sg-1]}", "subnets is required"),
        ("awsvpcConfiguration={subnets=[a],assignPublicIp=YES}", "one of ENABLED, DISABLED"),
        ("awsvpcConfiguration={subnets=[a],assignPublicIp=[ENABLED]}", "must be a string"),
        ("awsvpcConfiguration=subnet-1", "awsvpcConfiguration must be an object"),
        ("awsvpcConfiguration={subnets=[a]", "missing '}'"),
        ("awsvpcConfiguration={subnets=[a}", "expected ',' but found '}'"),
        ("awsvpcConfiguration={subnets=[a]}}", "expected ',' but found '}' at character 34"),
        ("awsvpcConfiguration={subnets=[a]},awsvpcConfiguration={}", "given twice"),
        ("awsvpcConfiguration=", "expected a value"),
        ("awsvpcConfiguration", "missing '='"),
        ("awsvpcConfiguration={subnets=[a,]}", "expected a value"),
        ('awsvpcConfiguration={subnets="a}', "unterminated quote"),
        ("[subnet-1]", "expected a value"),
        ("{awsvpcConfiguration: {}}", "not valid JSON"),
        ('{"awsvpcConfiguration": {"subnets": [1]}}', r"subnets\[0\] must be a string"),
        ('{"awsvpcConfiguration": []}', "must be an object"),
        # Nesting and size are bounded before anything recurses.
        ("awsvpcConfiguration=" + "[" * 2_000, "nested more than 10 deep at character 31 "),
        ("awsvpcConfiguration={subnets=" + "{a=" * 11, "nested more than 10 deep"),
        ('{"awsvpcConfiguration": ' + "[" * 4_000, "not valid JSON: nested too deeply"),
        ("awsvpcConfiguration=" + "{a=" * 5_000, "15,020 characters; at most 10,000"),
    ],
)
def test_parse_network_configuration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_network_configuration(text)
