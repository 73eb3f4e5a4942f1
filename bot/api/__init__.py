"""The answer API (FastAPI) and the web page: the same answers as the CLI over HTTP, report upload
and removal, an OpenAI-compatible chat endpoint, health and readiness. Errors are
application/problem+json.

Modules by concern: `protocol` (the HTTP parser, with a limit on request heads), `auth` (keys,
rate limits, the Guard and body limits, as ASGI middleware), `deps` (what routes depend on),
`problems` and `openapi` (errors and the document), `schemas`, a router per resource (`health`,
`answers`, `reports`, `chat`, `webhook`, `web`), and `app`."""

from .app import SERVE_CONFIG_ENV, app_from_environ, create_app
from .auth import ADMIN_KEYS_ENV, READ_KEYS_ENV, Keys

__all__ = ["ADMIN_KEYS_ENV", "READ_KEYS_ENV", "SERVE_CONFIG_ENV", "Keys", "app_from_environ", "create_app"]
