"""The HTML report as Chromium draws it: painted bars, and not one network request.

Chromium's net log tells a page's requests from its own: a page opened from a file has
the opaque origin ``"null"`` as their initiator, Chromium's background calls (time,
updates, accounts) have none. Host resolution is mapped to nowhere as well, so nothing
leaves the machine whatever the page asks for. A control page that does reference the
network shows the log catches what it must.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import Counter
from pathlib import Path

import anyio
import pytest

from ecs_deploy_many.observe.html import write_html_report
from tests.integration.helpers import REGION
from tests.integration.test_html_report import run_with_timeline

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.anyio,
    pytest.mark.real_time,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: make test-browser"),
]

WIDTH, HEIGHT = 1400, 1000
SERVICES = (
    "gateway",
    "auth",
    "billing",
    "catalog",
    "search",
    "orders",
    "payments",
    "notifications",
    "reports",
    "ledger",
)
# Three waves with a bake; orders is rolled back, payments skipped after it, reports fails.
PLAN = """\
version: 1
defaults: {region: eu-west-1, cluster: prod, timeout: 300}
failure_budget: 5
waves:
  - {name: canary, targets: [prod/gateway], bake: 15}
  - {name: core, targets: [prod/auth, prod/billing, prod/catalog, prod/search]}
  - {name: rest, targets: ['*']}
targets:
  - {service: gateway, image: example/gateway:2}
  - {service: auth, image: example/auth:2}
  - {service: billing, image: example/billing:2}
  - {service: catalog, image: example/catalog:2}
  - {service: search, image: example/search:2}
  - {service: orders, image: example/orders:broken, timeout: 30, rollback: true}
  - {service: payments, image: example/payments:2, depends_on: [prod/orders]}
  - {service: notifications, image: example/notifications:2}
  - {service: reports, image: example/elsewhere:2, allow_failure: true}
  - {service: ledger, image: example/ledger:2}
"""
# Colours of the page's CSS that only its drawn parts have.
WAIT_BLUE, ROLLBACK_ORANGE, FAILED_RED, SUCCEEDED_GREEN = (
    (0x25, 0x63, 0xEB),
    (0xEA, 0x58, 0x0C),
    (0xDC, 0x26, 0x26),
    (0x16, 0xA3, 0x4A),
)


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


async def screenshot(page: Path, work: Path) -> tuple[Path, list[str]]:
    """Chromium's screenshot of ``page`` and the URLs the page asked the network for."""
    png, netlog = work / "screenshot.png", work / "netlog.json"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={work / 'profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--log-net-log={netlog}",
        "--hide-scrollbars",
        f"--screenshot={png}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.as_uri(),
    ]
    with anyio.fail_after(60):
        await anyio.run_process(command)
    return png, page_requests(json.loads(netlog.read_text(encoding="utf-8")))


def page_requests(netlog: dict[str, object]) -> list[str]:
    """URLs of every request a page initiated; Chromium's own say "not an origin"."""
    constants = netlog["constants"]
    assert isinstance(constants, dict)
    start_job = constants["logEventTypes"]["URL_REQUEST_START_JOB"]
    events = netlog["events"]
    assert isinstance(events, list)
    return [
        params["url"]
        for event in events
        if event["type"] == start_job
        and "url" in (params := event.get("params", {}))
        and params.get("initiator", "not an origin") != "not an origin"
    ]


def colours(png: bytes) -> tuple[int, int, Counter[tuple[int, ...]]]:
    """Width, height and how many pixels have each RGB colour, of an 8-bit PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, compressed, header = 8, bytearray(), b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0)
    bpp = {2: 3, 6: 4}[colour_type]  # RGB or RGBA
    raw, stride = zlib.decompress(bytes(compressed)), width * bpp
    counts: Counter[tuple[int, ...]] = Counter()
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, bpp)
        counts.update(tuple(line[x : x + 3]) for x in range(0, stride, bpp))
        previous = line
    return width, height, counts


def unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> bytearray:
    """Undo one scanline's PNG filter (none, sub, up, average, Paeth)."""
    if kind == 2:
        return bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
    for i in range(len(line) if kind else 0):
        left = line[i - bpp] if i >= bpp else 0
        up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 255
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 255
        else:
            guess = left + up - corner
            near = min(
                (abs(guess - left), 0, left),
                (abs(guess - up), 1, up),
                (abs(guess - corner), 2, corner),
            )
            line[i] = (line[i] + near[2]) & 255
    return line


async def test_the_report_is_drawn_and_fetches_nothing(tmp_path: Path) -> None:
    run, timeline, _ = await run_with_timeline(SERVICES, PLAN)
    statuses = Counter(str(result.status) for result in run.results.values())
    assert statuses == {"succeeded": 7, "rolled_back": 1, "skipped": 1, "failed": 1}
    page = tmp_path / "report.html"
    write_html_report(page, run, timeline, plan_path="deploy-plans/release.yaml")

    png, requests = await screenshot(page, tmp_path)

    assert requests == []
    width, height, counts = colours(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(counts) > 200  # text, badges and bars, not a blank or error page
    assert counts.most_common(1)[0][1] < 0.8 * width * height
    # every colour is a CSS fill of something only the report draws, in the top screen
    assert counts[WAIT_BLUE] > 5000  # ten rows of wait bars
    assert counts[ROLLBACK_ORANGE] > 300  # the striped rollback and its badge
    assert counts[FAILED_RED] > 300  # the verdict, the failed badge and its outline
    assert counts[SUCCEEDED_GREEN] > 1000  # seven badges and a count


async def test_the_net_log_catches_a_page_that_fetches(tmp_path: Path) -> None:
    page = tmp_path / "fetching.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://cdn.example.invalid/a.css">'
        '</head><body><img src="http://example.invalid/logo.png"></body></html>',
        encoding="utf-8",
    )
    _, requests = await screenshot(page, tmp_path)
    assert sorted(requests) == [
        "http://example.invalid/logo.png",
        "https://cdn.example.invalid/a.css",
    ]
