"""Region names and endpoint URLs, checked before any client is built.

botocore accepts a region such as ``eu west 1`` until the first call builds its URL, and
then raises from deep inside the client; a run would have changed other targets by then.
Both front doors (plan targets and ``ecs-deploy`` flags) check here first.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["endpoint_url_problem", "region_problem"]

# Every AWS partition's regions: two letters, words, a number (us-east-1, us-gov-west-1,
# cn-north-1, eu-isoe-west-1).
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def region_problem(region: str) -> str | None:
    """Why ``region`` is not an AWS region name, or None when it is one."""
    if _REGION.fullmatch(region):
        return None
    return f"{region!r} is not an AWS region name (like eu-west-1)"


def endpoint_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an endpoint (http or https, a host, a valid port), or None."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return f"{url!r} is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        return f"{url!r} is not an http(s) URL with a host (like http://127.0.0.1:4566)"
    return None
