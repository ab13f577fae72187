"""Following a Job step's pod log live (`GET /api/runs/NS/NAME/logs?follow=1`).

The answer is the log as the API server streams it (`pods/NAME/log?follow=true`), passed on
chunk by chunk as plain text until the pod ends or the page stops reading. The stream uses a
`Kube` of its own that outlives the request handler (in token mode, one made with the caller's
token), given back when the stream ends however it ends.

A refusal must keep its status (a 403, a 404, a node that serves no logs), but a running pod
that writes nothing yet must not hold the answer back: the first chunk is awaited for
FIRST_CHUNK_SECONDS; an error in that time is raised (and answered with its own status), and
after it the stream starts with whatever comes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.responses import StreamingResponse

FIRST_CHUNK_SECONDS = 2.0


async def follow_log(
    chunks: AsyncIterator[bytes],
    release: Callable[[], Awaitable[None]],
    pod: str,
    first_chunk_seconds: float = FIRST_CHUNK_SECONDS,
) -> StreamingResponse:
    """The streaming answer for `chunks` (the pod log followed); `release` gives back what
    reading it holds. Raises what the first read raises within `first_chunk_seconds`."""
    first: asyncio.Task[bytes] = asyncio.ensure_future(anext(chunks, b""))
    try:
        await asyncio.wait([first], timeout=first_chunk_seconds)
        if first.done():
            first.result()  # a refusal is raised here, with its status
    except BaseException:
        first.cancel()
        await _close(chunks, release)
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            head = await first
            if head:
                yield head
            async for chunk in chunks:
                yield chunk
        finally:
            if not first.done():
                first.cancel()
            await _close(chunks, release)

    return StreamingResponse(
        body(),
        media_type="text/plain; charset=utf-8",
        headers={"X-Pod": pod, "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _close(chunks: AsyncIterator[bytes], release: Callable[[], Awaitable[None]]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await aclose()
    await release()
