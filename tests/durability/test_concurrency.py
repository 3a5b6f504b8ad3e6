"""Many clients at once, over HTTP on the local host: every answer is the documented one.

Listings sent while starts are running all answer 200: each waits for its own flush of the
group commit, and none is released by another's.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from devhost.testing import DurableTestHost

WEBHOOKS = "/runtime/webhooks/durabletask"


async def test_listings_during_starts_all_answer() -> None:
    async with DurableTestHost(".") as host:
        client = await host.http()

        async def start(n: int) -> int:
            route = (
                "/api/orchestrators/hello_sequence"
                if n % 2
                else f"{WEBHOOKS}/orchestrators/hello_sequence"
            )
            response = await client.post(route, json={"cities": [f"City{n}"]})
            return response.status

        async def listing(n: int) -> int:
            route = "/api/instances" if n % 2 else f"{WEBHOOKS}/instances"
            response = await client.get(route, params={"top": "10"})
            await response.read()
            return response.status

        answers = await asyncio.wait_for(
            asyncio.gather(*(start(n) for n in range(50)), *(listing(n) for n in range(50))),
            timeout=60,
        )

    assert Counter(answers[:50]) == {202: 50}
    assert Counter(answers[50:]) == {200: 50}
