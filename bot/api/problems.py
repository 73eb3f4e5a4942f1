"""Errors as RFC 9457 problem documents (application/problem+json), and the OpenAPI document saying
so for every status an operation can answer."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from retriever.backend import BackendUnavailable

from ..observability import flat_routes

log = logging.getLogger("govqa.api")

PROBLEM = "application/problem+json"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Problem(HTTPException):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.extra = extra


_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           409: "Conflict", 413: "Content too large", 415: "Unsupported media type", 421: "Misdirected request", 422: "Unprocessable content",
           429: "Too many requests", 431: "Request header fields too large", 500: "Internal server error", 503: "Service unavailable"}


def problem_body(status: int, detail: str, **extra: Any) -> dict:
    return {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}


def problem_response(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(problem_body(status, detail, **extra), status_code=status, headers=headers, media_type=PROBLEM)


def install_handlers(app: FastAPI) -> None:
    """Every error the app raises, or FastAPI's validation finds, answered as a problem document."""

    @app.exception_handler(HTTPException)
    async def _http_problem(request: Request, exc: HTTPException):
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's (GET /v1/reports)
            allowed = set()
            for route in flat_routes(app.router.routes):
                match, _ = route.matches(request.scope)
                if match != Match.NONE and getattr(route, "methods", None):
                    allowed |= route.methods
            if allowed:
                headers["Allow"] = ", ".join(sorted(allowed))
        return problem_response(exc.status_code, str(exc.detail), headers=headers or None,
                                **getattr(exc, "extra", {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0] if e['loc'] else 'body'}: {e['msg']}" for e in errors)
        return problem_response(422, detail or "invalid request", errors=errors)

    @app.exception_handler(BackendUnavailable)
    async def _backend_unavailable(request: Request, exc: BackendUnavailable):
        ctx = request.app.state.govqa
        ctx.live.unavailable(exc)  # /readyz says 503 until a poll finds the backend back
        problem = ctx.not_ready(str(exc))  # the same 503 as when the poll found it first
        return problem_response(problem.status_code, problem.detail, headers=problem.headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal error; the server log has the details")
