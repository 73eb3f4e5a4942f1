"""What every route depends on: the app's context (settings, the live index, the compute threads)
and the caller the Guard authenticated, declared to OpenAPI as its security schemes."""

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from ..live import LiveService, NotReadyError
from ..observability import CALLER_SCOPE_KEY
from .auth import Caller, Keys
from .problems import Problem


@dataclass
class ApiContext:
    config: dict
    live: LiveService
    keys: Keys
    started_at: int
    telegram: object | None = None  # a bot.telegram.TelegramWebhook fed by the webhook route
    # Retrieval is CPU work under the GIL: as many threads as cores do it, the others queue (the
    # default pool of 40 threads lost a quarter of the throughput to contention at 16 clients). Set
    # when the app starts, in its event loop.
    compute: anyio.CapacityLimiter | None = field(default=None, repr=False)

    @property
    def index_root(self) -> Path:
        return Path(self.live.root.root)

    def not_ready(self, problem: str) -> Problem:
        # the reason without the server's paths (no index in /srv/…): those are for its log and admins
        shown = problem
        for path in {str(self.index_root.resolve()), str(self.index_root)}:
            shown = shown.replace(path, "the index directory")
        shown = re.sub(r"(?:[A-Za-z]:)?[\\/][^\s:'\"]+", "…", shown)
        return Problem(503, f"the index is not ready: {shown}", headers={"Retry-After": "2"})

    def service(self):
        """The service of the generation served now; a request keeps the one it got throughout."""
        try:
            return self.live.get()
        except NotReadyError as exc:
            raise self.not_ready(str(exc)) from exc

    async def off_loop(self, fn, *args, **kwargs):
        """Run CPU work on one of the compute threads."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self.compute)


def context(request: Request) -> ApiContext:
    return request.app.state.govqa


# Declared for OpenAPI (the Authorize button of /docs); the Guard middleware has already checked the
# key before the route runs, so these never refuse by themselves.
_api_key = APIKeyHeader(name="X-API-Key", scheme_name="apiKey", auto_error=False)
_bearer = HTTPBearer(scheme_name="bearer", auto_error=False)


async def caller(request: Request, _key: Annotated[str | None, Depends(_api_key)] = None,
                 _token: Annotated[object, Depends(_bearer)] = None) -> Caller:
    who = request.scope.get(CALLER_SCOPE_KEY)  # the Guard authenticated and rate limited it
    if who is None:
        raise Problem(401, "an API key is required (X-API-Key or Authorization: Bearer)",
                      headers={"WWW-Authenticate": "Bearer"})
    return who


async def admin(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if not who.admin:
        raise Problem(403, "this needs an admin key (GOVQA_ADMIN_KEYS)")
    return who


Ctx = Annotated[ApiContext, Depends(context)]
Reader = Annotated[Caller, Depends(caller)]
Admin = Annotated[Caller, Depends(admin)]
