"""An IAM policy document checker and evaluator, without AWS.

``check_document`` holds a document to IAM's grammar (``Version``, statement fields,
the shapes of ``Effect``, ``Action``, ``Resource`` and ``Condition``, ARN formats, the
managed-policy size limit) and to the accounts and regions its ECS ARNs may name.
``allowed`` says whether it allows an action on a resource in a request context, as
IAM evaluates an identity policy: ``*`` and ``?`` wildcards, and a condition whose key
the request lacks does not hold.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

VERSION = "2012-10-17"
STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}
CONDITION_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringLike", "StringNotLike",
    "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Bool", "NumericEquals",
}  # fmt: skip
MANAGED_POLICY_LIMIT = 6144
"""Characters of a customer managed policy, whitespace not counted."""
ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9*?]+")
SID = re.compile(r"[A-Za-z0-9]+")
ARN = re.compile(
    r"arn:aws:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-*]*):(?P<account>[0-9]{12}|\*|):(?P<resource>.+)"
)
REGION = re.compile(r"\*|[a-z]{2}(-[a-z]+)+-[0-9]")
GLOBAL_SERVICES = {"iam": "account", "sts": "account", "s3": "neither"}
"""Services whose ARNs name no region (IAM, STS) or neither region nor account (S3)."""


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def check_document(
    document: Mapping[str, Any], scopes: Collection[tuple[str, str]] | None = None
) -> None:
    """Raise AssertionError naming the first way ``document`` is not a valid IAM
    identity policy; with ``scopes``, every ECS ARN names one of these (account, region)."""
    assert set(document) <= {"Version", "Id", "Statement"}, f"unknown keys {set(document)}"
    assert document.get("Version") == VERSION, f"Version is {document.get('Version')!r}"
    statements = document.get("Statement")
    assert isinstance(statements, list), "Statement is a list"
    assert statements, "Statement names at least one statement"
    sids = [s.get("Sid") for s in statements if "Sid" in s]
    assert len(sids) == len(set(sids)), f"Sids repeat: {sids}"
    for statement in statements:
        _check_statement(statement, scopes)
    size = len(re.sub(r"\s", "", _compact(document)))
    assert size <= MANAGED_POLICY_LIMIT, f"{size} characters: more than a managed policy holds"


def _compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def _check_statement(
    statement: Mapping[str, Any], scopes: Collection[tuple[str, str]] | None
) -> None:
    where = statement.get("Sid", statement)
    assert set(statement) <= STATEMENT_KEYS, f"{where}: unknown keys {set(statement)}"
    assert {"Effect", "Action", "Resource"} <= set(statement), f"{where}: a field is missing"
    assert "Sid" not in statement or SID.fullmatch(statement["Sid"]), (
        f"{where}: Sid not alphanumeric"
    )
    assert statement["Effect"] in ("Allow", "Deny"), f"{where}: Effect {statement['Effect']!r}"
    actions = _listed(statement["Action"])
    assert actions, f"{where}: no Action"
    for action in actions:
        assert isinstance(action, str), f"{where}: Action {action!r}"
        assert ACTION.fullmatch(action), f"{where}: Action {action!r}"
    assert len(actions) == len(set(actions)), f"{where}: an action repeats"
    resources = _listed(statement["Resource"])
    assert resources, f"{where}: no Resource"
    assert len(resources) == len(set(resources)), f"{where}: a resource repeats"
    for resource in resources:
        assert resource == "*" or _arn_problem(resource, scopes) is None, (
            f"{where}: {resource}: {_arn_problem(resource, scopes)}"
        )
    condition = statement.get("Condition", {})
    assert isinstance(condition, dict), f"{where}: Condition is an object"
    for operator, keys in condition.items():
        assert operator in CONDITION_OPERATORS, f"{where}: condition operator {operator}"
        assert isinstance(keys, dict), f"{where}: {operator} is an object"
        assert keys, f"{where}: {operator} names no key"
        for key, values in keys.items():
            assert ACTION.fullmatch(key), f"{where}: condition key {key}"
            assert all(isinstance(v, str) for v in _listed(values)), f"{where}: {key} values"
            if operator.startswith("Arn"):
                for value in _listed(values):
                    assert _arn_problem(value, scopes) is None, f"{where}: {key}: {value}"


def _arn_problem(arn: str, scopes: Collection[tuple[str, str]] | None) -> str | None:
    match = ARN.fullmatch(arn)
    if match is None:
        return "not arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE"
    service, region, account = match["service"], match["region"], match["account"]
    kind = GLOBAL_SERVICES.get(service)
    if kind is not None:
        if region:
            return f"{service} ARNs name no region"
        if kind == "neither" and account:
            return f"{service} ARNs name no account"
        if kind == "account" and not account:
            return f"{service} ARNs name an account"
        return None
    if not REGION.fullmatch(region):
        return f"region {region!r}"
    if not account:
        return "no account"
    if scopes is not None and service == "ecs" and (account, region) not in scopes:
        return f"account {account} and region {region} are no target's"
    return None


def _matches(pattern: str, value: str, *, case: bool = True) -> bool:
    """IAM's wildcard match: ``*`` any characters (``/`` and ``:`` too), ``?`` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _condition_holds(
    condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]
) -> bool:
    for operator, keys in condition.items():
        for key, values in keys.items():
            if key not in context:
                return False
            given = context[key]
            if operator in ("StringEquals", "ArnEquals"):
                ok = given in _listed(values)
            elif operator in ("StringLike", "ArnLike"):
                ok = any(_matches(v, given) for v in _listed(values))
            else:
                raise AssertionError(f"no evaluation of {operator} here")
            if not ok:
                return False
    return True


def allowed(
    document: Mapping[str, Any],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """Whether ``document`` allows ``action`` on ``resource`` with the request's
    ``context`` (condition keys), no statement denying it."""
    verdict = False
    for statement in document["Statement"]:
        if not any(_matches(a, action, case=False) for a in _listed(statement["Action"])):
            continue
        if not any(_matches(r, resource) for r in _listed(statement["Resource"])):
            continue
        if not _condition_holds(statement.get("Condition", {}), context or {}):
            continue
        if statement["Effect"] == "Deny":
            return False
        verdict = True
    return verdict


def actions_of(document: Mapping[str, Any]) -> set[str]:
    """Every action the document names."""
    return {a for s in document["Statement"] for a in _listed(s["Action"])}


__all__ = ["actions_of", "allowed", "check_document"]
