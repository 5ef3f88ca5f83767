"""moto's server as a real endpoint for the AWS services besides ECS (S3, DynamoDB, STS).

Clients reach it as they reach AWS, through the SDK's standard endpoint settings
(``AWS_ENDPOINT_URL_<SERVICE>``); nothing is mocked in the client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aioboto3
from moto.server import ThreadedMotoServer


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free port of 127.0.0.1 while the block runs; its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


async def create_pk_table(name: str, region: str | None = None) -> None:
    """A DynamoDB table keyed by the string ``pk``: the kind the run lock and the run
    record (``--run-table``) use."""
    async with aioboto3.Session().client("dynamodb", region_name=region) as client:
        await client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
