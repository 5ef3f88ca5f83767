"""Secrets never reach a log line."""

from __future__ import annotations

from ecs_deploy_many.observe.log import MASK, Redactor


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
