"""For operators: ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from feedsvc.errors import StorageBusyError
from feedsvc.http.common import ServiceDep, responses
from feedsvc.http.guards import guards, security
from feedsvc.http.observe import CONTENT_TYPE, Metrics
from feedsvc.model import METRICS_READ


@get("/healthz", summary="The process is up", tags=["operations"], responses=responses())
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


READY_WITHIN_SECONDS = 0.6
"""How long ``/readyz`` waits for the database: an orchestrator probing every second learns
of an outage from the very next probe, not once a query's own deadline has passed."""


@get("/readyz", summary="The database answers and its schema is current", tags=["operations"], responses=responses(503))
async def readyz(service: ServiceDep) -> Response[dict[str, Any]]:
    try:
        async with asyncio.timeout(READY_WITHIN_SECONDS):
            have, want = await service.store.schema_status()
    except (TimeoutError, StorageBusyError):
        return Response(
            content={"status": "database unreachable"}, status_code=503, headers={"Retry-After": "1"}
        )
    ok = have == want
    return Response(
        content={"status": "ok" if ok else "migrations pending", "schema": have, "expected": want},
        status_code=200 if ok else 503,
    )


@get(
    "/metrics", summary="Prometheus metrics of this server process (a token with the metrics:read scope)",
    tags=["operations"], media_type=CONTENT_TYPE, guards=guards(METRICS_READ), security=security(METRICS_READ),
    responses=responses(401, 403),
)
async def metrics_handler(request: Request[Any, Any, Any]) -> Response[bytes]:
    metrics: Metrics = request.app.state.metrics
    return Response(await metrics.scrape(), media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


HANDLERS = [
    healthz,
    readyz,
    metrics_handler,
]
