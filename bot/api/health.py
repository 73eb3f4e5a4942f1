"""Liveness and readiness, for load balancers and orchestrators."""

from typing import Any

from fastapi import APIRouter

from .deps import Ctx

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to answer: the index is loaded",
            responses={503: {"description": "not ready (no index yet, or still loading)"}})
async def readyz(ctx: Ctx) -> dict[str, Any]:
    s = ctx.service()
    return {"status": "ready", "generation": s.generation, "reports": len(s.index.reports), "passages": s.index.size}
