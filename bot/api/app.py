"""The app: its middleware (who may ask, body limits, CORS, metrics), its routers, its OpenAPI
document, and the factory `govqa serve --workers N` starts in each worker."""

import json
import os
import time
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ..live import LiveService
from ..observability import instrument
from . import answers, chat, health, reports, web
from .auth import BodyLimit, Guard, Keys, RateLimiter, allowed_hosts, forwarded_allow_ips
from .deps import ApiContext
from .openapi import document_errors
from .problems import install_handlers

SERVE_CONFIG_ENV = "GOVQA_SERVE_CONFIG"  # the settings `govqa serve --workers N` hands to its workers


def app_from_environ() -> FastAPI:
    """The app of one worker process of `govqa serve --workers N` (a uvicorn factory): the settings
    the parent resolved, and its share of the cores."""
    given = json.loads(os.environ[SERVE_CONFIG_ENV])
    config = given["config"]
    live = LiveService(config, poll_seconds=float(config["api"]["reload_seconds"]))
    return create_app(config, live, load_first=True, compute_threads=int(given["compute_threads"]))


def create_app(config: dict, live: LiveService, keys: Keys | None = None, telegram=None,
               load_first: bool = False, compute_threads: int | None = None) -> FastAPI:
    """The API over `live`, and the web page at /; with `telegram` (a bot.telegram.TelegramWebhook)
    the Telegram bot too, fed by webhook calls at its path. With `load_first` the index is loaded
    before the server takes requests (a worker beside others, which answer meanwhile); else /readyz
    says 503 until it is loaded. `compute_threads` bounds the requests computing at once (default:
    the cores)."""
    api = config["api"]
    ctx = ApiContext(config=config, live=live, keys=keys or Keys.from_environ(), started_at=int(time.time()),
                     telegram=telegram)

    @asynccontextmanager
    async def lifespan(_app):
        ctx.compute = anyio.CapacityLimiter(compute_threads or os.cpu_count() or 2)
        if load_first:
            await anyio.to_thread.run_sync(live.reload)
        live.start()
        try:
            if telegram is not None:
                await telegram.start()
            yield
        finally:
            if telegram is not None:
                await telegram.stop()
            live.stop()

    app = FastAPIOffline(
        title="govqa", version=_version(), lifespan=lifespan,
        description="Answers from Chinese government annual reports (法治政府建设年度报告), each with the report "
                    "sentence it comes from. Send an API key as `X-API-Key` or `Authorization: Bearer` when the "
                    "server has keys configured (Authorize, above).",
    )
    app.state.govqa = ctx
    # outermost last: forwarded addresses (from configured proxies only), then CORS (a browser's
    # preflight carries no key), then who may ask (before any body is read), then the body limits
    app.add_middleware(BodyLimit, max_body=int(api["max_body_bytes"]), max_upload=int(api["max_upload_bytes"]))
    app.add_middleware(Guard, keys=ctx.keys, limiter=RateLimiter(float(api["rate_per_second"]), int(api["burst"])),
                       allowed_hosts=allowed_hosts(config))
    if api["cors_origins"]:
        app.add_middleware(CORSMiddleware, allow_origins=list(api["cors_origins"]), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type"], max_age=600)
    proxies = forwarded_allow_ips(config)
    if proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    instrument(app, config, live)  # outermost: refused requests are counted too

    install_handlers(app)
    for module in (health, answers, reports, chat, web):
        app.include_router(module.router)
    app.mount(web.ASSETS, web.assets(), name="assets")
    if telegram is not None:
        from . import webhook

        app.include_router(webhook.router)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = reports.document_limits(document_errors(schema, ctx.keys.enabled), api)
        return app.openapi_schema

    app.openapi = openapi
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("govqa")
    except PackageNotFoundError:
        return "0"
