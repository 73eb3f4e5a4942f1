"""Who may ask: API keys from the environment, a rate limit per caller, host and origin checks
without keys, and the body limits: all decided in ASGI middleware from the request line and
headers, before a byte of the body is read."""

import hashlib
import hmac
import math
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ..observability import CALLER_SCOPE_KEY, METRICS_PATH
from .problems import SAFE_METHODS, Problem, problem_response

READ_KEYS_ENV = "GOVQA_API_KEYS"
ADMIN_KEYS_ENV = "GOVQA_ADMIN_KEYS"


class BodyTooLarge(HTTPException):
    """Raised from receive() when a body streams in past its limit. An HTTPException, which FastAPI
    re-raises while reading a body (anything else there became a 400 "error parsing the body")."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")


class BodyLimit:
    """Rejects request bodies over the limit with 413, by Content-Length or while streaming in
    (chunked). Uploads (POST /v1/reports) get their own, larger limit."""

    def __init__(self, app: ASGIApp, max_body: int, max_upload: int):
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload if scope["path"].rstrip("/") == "/v1/reports" else self.max_body
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await problem_response(413, BodyTooLarge(limit).detail, headers={"Connection": "close"})(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if not started:
                await problem_response(413, exc.detail, headers={"Connection": "close"})(scope, receive, send)


@dataclass(frozen=True)
class Caller:
    identity: str
    admin: bool


class Keys:
    """API keys from the environment: GOVQA_API_KEYS (read) and GOVQA_ADMIN_KEYS (read and
    change the index), comma-separated. With none set, everyone is admin (loopback use)."""

    def __init__(self, read: list[str], admin: list[str]):
        self.read = [k.encode() for k in read]
        self.admin = [k.encode() for k in admin]

    @classmethod
    def from_environ(cls, environ=None) -> "Keys":
        environ = os.environ if environ is None else environ

        def split(name: str) -> list[str]:
            return [k.strip() for k in environ.get(name, "").split(",") if k.strip()]

        return cls(split(READ_KEYS_ENV), split(ADMIN_KEYS_ENV))

    @property
    def enabled(self) -> bool:
        return bool(self.read or self.admin)

    @staticmethod
    def _matches(key: bytes, keys: list[bytes]) -> bool:
        found = False
        for k in keys:  # every key compared, in constant time each: no early exit to time
            found |= hmac.compare_digest(key, k)
        return found

    def role(self, key: str) -> str | None:
        raw = key.encode()
        if self._matches(raw, self.admin):
            return "admin"
        if self._matches(raw, self.read):
            return "read"
        return None


def _presented_key(headers) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class RateLimiter:
    """A token bucket per caller: `rate` requests a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = float(rate), int(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, identity: str) -> float:
        """0 when allowed, else the seconds until a request would be."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(identity, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[identity] = (tokens - 1, now)
                return 0.0
            self._buckets[identity] = (tokens, now)
            return (1 - tokens) / self.rate


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _host_name(host: str) -> str:
    """A Host header's (or an Origin's authority's) name without the port, lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def needs_admin(method: str, path: str) -> bool:
    path = path.rstrip("/")
    return (method == "POST" and path in ("/v1/reports", "/v1/index/reload")) or (
        method == "DELETE" and path.startswith("/v1/reports/"))


class Guard:
    """Who may ask, decided from the request line and headers alone, before the app reads a byte of
    the body (an upload was read whole, 45 MB, before a wrong key got its 401).

    With keys: every /v1 request needs a valid key; a missing or wrong key costs the client address
    a token of its rate limit (so keys cannot be guessed at full speed), and a caller with a read
    key asking to change the index is refused at once. Without keys (loopback use): only requests
    whose Host is this machine (localhost, 127.0.0.1, [::1], any port, or `allowed_hosts`) are
    answered, which stops DNS rebinding, and a request that changes something must not come from
    another site's page (its Origin, when sent, names this server). Refusals close the connection
    when a body was announced, so that it is never read."""

    def __init__(self, app: ASGIApp, keys: Keys, limiter: RateLimiter, allowed_hosts=()):
        self.app, self.keys, self.limiter = app, keys, limiter
        self.hosts = set(LOOPBACK_HOSTS) | {_host_name(h) for h in allowed_hosts if str(h).strip()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            who = self.check(scope)
        except Problem as exc:
            headers = dict(exc.headers or {})
            given = dict(scope["headers"])
            if given.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in given:
                headers["Connection"] = "close"  # the body stays unread
            await problem_response(exc.status_code, str(exc.detail), headers=headers)(scope, receive, send)
            return
        if who is not None:
            scope[CALLER_SCOPE_KEY] = who
        await self.app(scope, receive, send)

    def _client(self, scope: Scope) -> str:
        client = scope.get("client")
        return client[0] if client else "unknown"

    def _limit(self, identity: str) -> None:
        wait = self.limiter.take(identity)
        if wait:
            raise Problem(429, f"rate limit of {self.limiter.rate:g} requests a second (bursts of {self.limiter.burst}) "
                               "exceeded", headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def check(self, scope: Scope) -> Caller | None:
        headers = Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        if not self.keys.enabled:
            host = headers.get("host")
            if host is not None and _host_name(host) not in self.hosts:
                raise Problem(421, "this server answers without API keys, so only for its own host names "
                                   "(localhost, 127.0.0.1, [::1] and api.allowed_hosts)")
            if method not in SAFE_METHODS:
                origin = headers.get("origin")
                if origin is not None and (origin == "null" or origin.partition("://")[2].lower() != (host or "").lower()):
                    raise Problem(403, "a request from another site's page may not change anything here")
                if headers.get("sec-fetch-site") == "cross-site":
                    raise Problem(403, "a request from another site's page may not change anything here")
        if not (path.startswith("/v1/") or path == METRICS_PATH):
            return None
        if not self.keys.enabled:
            who = Caller(f"ip:{self._client(scope)}", admin=True)
        else:
            key = _presented_key(headers)
            role = self.keys.role(key) if key else None
            if role is None:
                self._limit(f"ip:{self._client(scope)}")  # a wrong guess costs the guesser
                raise Problem(401, "an API key is required (X-API-Key or Authorization: Bearer)" if not key
                              else "the API key is not valid", headers={"WWW-Authenticate": "Bearer"})
            who = Caller("key:" + hashlib.sha256(key.encode()).hexdigest()[:16], admin=role == "admin")
        self._limit(who.identity)
        if needs_admin(method, path) and not who.admin:
            raise Problem(403, "this needs an admin key (GOVQA_ADMIN_KEYS)")
        return who


def forwarded_allow_ips(config: dict) -> list[str]:
    """`[api] forwarded_allow_ips`: the proxies whose X-Forwarded-For / X-Forwarded-Proto are
    believed (addresses or networks); empty by default, so a client's address is its peer's and one
    client cannot take many rate-limit identities by naming them."""
    return list(config["api"]["forwarded_allow_ips"])


def allowed_hosts(config: dict) -> list[str]:
    """`[api] allowed_hosts`: host names answered without API keys besides loopback's (the
    webhook's host is one when telegram.webhook_url is set)."""
    hosts = list(config["api"]["allowed_hosts"])
    webhook = config["telegram"]["webhook_url"]
    if webhook:
        hosts.append(urlsplit(webhook).netloc)
    return hosts
