"""The answer API (FastAPI): the same answers as the CLI over HTTP, report upload and removal, an
OpenAI-compatible chat endpoint, health and readiness. Errors are application/problem+json."""


import functools
import hashlib
import hmac
import json
import logging
import math
import os
import re
import threading
import time
import unicodedata
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi import Path as FastAPIPath
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema, field_validator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from retriever.ingest import ingest
from retriever.readers import SUPPORTED_SUFFIXES
from retriever.store import report_dict

from .answer import MAX_QUESTION_CHARS, MISSING, Answer
from .facts import DEFAULT_LIMIT, MAX_LIMIT
from .live import LiveService, NotReadyError
from .observability import CALLER_SCOPE_KEY, METRICS_PATH, instrument
from .render import chat_text
from .service import ingest_options

log = logging.getLogger("govqa.api")

PROBLEM = "application/problem+json"
READ_KEYS_ENV = "GOVQA_API_KEYS"
ADMIN_KEYS_ENV = "GOVQA_ADMIN_KEYS"
MODEL_ID = "govqa"
UPLOADS = "uploads"  # inside the index directory


# ---------------------------------------------------------------- errors


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


# ---------------------------------------------------------------- access


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
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _host_name(host: str) -> str:
    """A Host header's (or an Origin's authority's) name without the port, lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _needs_admin(method: str, path: str) -> bool:
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
        if _needs_admin(method, path) and not who.admin:
            raise Problem(403, "this needs an admin key (GOVQA_ADMIN_KEYS)")
        return who


# ---------------------------------------------------------------- models


_YEAR_COVERED = "the year the report covers; null when its text does not say (the report needs review)"


class CitationOut(BaseModel):
    n: int
    source: str
    title: str
    org: str
    year: int | None = Field(description=_YEAR_COVERED)
    section: str
    excerpt: str = Field(description="the exact report text")
    start: int = Field(description="offset of the excerpt in the report text")
    end: int
    score: float
    mark: list[int] | None = Field(None, description="the answering clause, as [start, end) within the excerpt")
    report_id: str = Field("", description="the report's id (as in /v1/reports)")
    url: str = Field("", description="where the report is published on the web; empty when not known")


class Searched(BaseModel):
    years: list[int]
    orgs: list[str]
    reports: int


# What the service calls text (str.strip() leaves something), as a JSON Schema pattern: one character
# that is not Python whitespace. (Not \S: ECMA and Python differ on \x1c-\x1f, \x85 and \ufeff.)
NOT_BLANK = "[^\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
MIN_YEAR, MAX_YEAR = 1949, 2100
# Query filters: at most 10 units of 50 characters and 10 years, so that the longest valid query
# string (a 500-character q and the filters, percent-encoded) stays under the 16 KB head limit
MAX_FILTERS, MAX_ORG_CHARS = 10, 50


def _whole_number(v):
    """JSON Schema's integer: 3 and 3.0, never true or "3"."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _whole(low: int, high: int):
    return Annotated[int, BeforeValidator(_whole_number), Field(strict=True, ge=low, le=high),
                     WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})]


Year = _whole(MIN_YEAR, MAX_YEAR)


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("the question is empty")
    return v


class AnswerRequest(BaseModel):
    model_config = {"strict": True}  # top_k: true or "3" is not a number

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=NOT_BLANK,
                          examples=["重点区域署2023年出具了多少份法律意见书？"])
    year: Year | list[Year] | None = Field(None, description="only reports covering this year (or these years)")
    org: str | list[str] | None = Field(None, description="only this unit (name or short name), or these")
    top_k: _whole(1, 20) | None = None

    _question = field_validator("question")(_not_blank)


class TableRowOut(BaseModel):
    unit: str = Field(description="the unit the figure is of")
    year: int | None = Field(description="the year it is of; null when the report does not say")
    value: str = Field(description=f"the figure as the report writes it (79件), or {MISSING!r} when the report of "
                                   "that unit and year gives none")
    measure: str = Field(description="its measure word (件, 人次, %); empty when not stated")
    citation: int | None = Field(description=f"the n of the citation it is read from; null for {MISSING}")
    wording: str = Field(description="what it counts as the report words it: predicate · object (出具 · 法律意见书)")


class AnswerOut(BaseModel):
    question: str
    answer: str
    found: bool
    citations: list[CitationOut]
    related: list[CitationOut] = Field(description="nearest excerpts when the reports do not state the answer")
    table: list[TableRowOut] = Field(description="a comparison's figures, one row per unit and year (several units "
                                                 "or years asked); empty for an answer of one figure")
    searched: Searched
    generation: str = Field(description="the index generation that answered")
    took_ms: float


class HitOut(BaseModel):
    rank: int
    score: float
    passage_id: str
    report_id: str
    source: str
    org: str
    year: int | None = Field(description=_YEAR_COVERED)
    section: str
    text: str
    start: int
    end: int


class SearchOut(BaseModel):
    query: str
    years: list[int]
    orgs: list[str]
    reports_searched: int
    hits: list[HitOut]
    generation: str
    took_ms: float


class FactOut(BaseModel):
    org: str = Field(description="the unit of the report")
    year: int | None = Field(description=_YEAR_COVERED)
    value: str = Field(description="the figure as written (约5万余人次)")
    number: float = Field(description="the figure normalised (3.2万人次 -> 32000)")
    high: float | None = Field(description="a range's upper end")
    unit: str = Field(description="the measure word as written after the number (件, 万元, %)")
    measure: str = Field(description="the measure word without 万/亿 (元, 人次)")
    kind: str = Field(description="count, money, percent, ordinal, duration, size or ratio")
    qualifiers: list[str] = Field(description="what makes it not a plain figure of the year (余, 约, 累计, 同比 …)")
    predicate: str = Field(description="the verb of the clause (出具)")
    object: str = Field(description="what is counted (法律意见书)")
    clause: str = Field(description="the clause the figure is in, as the report writes it")
    section: str
    source: str
    title: str
    report_id: str
    start: int = Field(description="offset of the figure in the report text")
    end: int
    score: float = Field(description="how much of the query the figure's sentence and clause say (0-1)")


class FactsOut(BaseModel):
    query: str
    facts: list[FactOut]
    searched: Searched
    why: str = Field(description="why nothing was listed, when nothing was")


class ReportOut(BaseModel):
    id: str
    source: str
    title: str
    org: str
    aliases: list[str]
    region: str
    year: int | None = Field(description=_YEAR_COVERED)
    published: str | None
    url: str = Field("", description="where the report is published on the web; empty when not known")
    passages: int


class ReportsOut(BaseModel):
    generation: str
    reports: list[ReportOut]


class FileOut(BaseModel):
    file: str
    status: str = Field(description="added, updated, unchanged, duplicate, removed or failed")
    report_id: str | None = Field(description="null when the file failed")
    org: str
    year: int | None
    passages: int
    error: str
    warnings: list[str] = Field(default_factory=list,
                                description="e.g. another indexed report of the same unit and year (answers show both)")


class IngestOut(BaseModel):
    generation: str | None
    reports: int
    passages: int
    files: list[FileOut]
    seconds: float


class TextPart(BaseModel):
    model_config = {"strict": True, "extra": "allow"}
    type: Literal["text"]
    text: str = Field(max_length=MAX_QUESTION_CHARS)


class UserMessage(BaseModel):
    """A question (or a follow-up): text of at most MAX_QUESTION_CHARS characters, as a string or
    as one text part."""

    model_config = {"strict": True, "extra": "allow"}
    role: Literal["user"]
    content: Annotated[str, Field(max_length=MAX_QUESTION_CHARS)] | Annotated[list[TextPart], Field(max_length=1)]


class OtherMessage(BaseModel):
    """System prompts and earlier replies: accepted and not read."""

    model_config = {"strict": True, "extra": "allow"}
    role: Literal["system", "developer", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


ChatMessage = Annotated[UserMessage | OtherMessage, Field(discriminator="role")]

# a user message with text, as JSON Schema: the question is the last of these
_ASKS = {"type": "object", "required": ["role", "content"],
         "properties": {"role": {"const": "user"},
                        "content": {"anyOf": [{"type": "string", "pattern": NOT_BLANK},
                                              {"type": "array", "minItems": 1,
                                               "items": {"type": "object", "required": ["text"],
                                                         "properties": {"text": {"type": "string",
                                                                                 "pattern": NOT_BLANK}}}}]}}}


class ChatRequest(BaseModel):
    model_config = {"strict": True, "extra": "allow"}  # temperature, max_tokens … are accepted and ignored
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, json_schema_extra={"contains": _ASKS},
                                        description="the last user message with text is the question, read as a "
                                                    "follow-up of the user messages before it")
    stream: bool = False

    @field_validator("messages")
    @classmethod
    def _asks(cls, v: list) -> list:
        if not any(isinstance(m, UserMessage) and _text_of(m.content).strip() for m in v):
            raise ValueError("there is no user message with text")
        return v


class ChatChoice(BaseModel):
    index: int
    message: dict[str, str]
    finish_reason: str


class ChatOut(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: dict[str, int]
    citations: list[CitationOut] = Field(description="the structured citations behind the [n] markers")
    govqa: AnswerOut


class ModelOut(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelsOut(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]


# ---------------------------------------------------------------- app


def _as_tuple(v) -> tuple:
    if v is None:
        return ()
    return tuple(v) if isinstance(v, list) else (v,)


def _answer_out(answer: Answer, generation: str, took: float) -> dict:
    d = answer.to_dict()
    d.pop("why", None)
    return d | {"generation": generation, "took_ms": round(took * 1000, 2)}


def safe_name(name: str | None) -> str:
    """An uploaded file's name for display only: the last path part, printable, at most 120 chars."""
    base = PurePath((name or "").replace("\\", "/")).name
    base = "".join(c for c in unicodedata.normalize("NFC", base) if c.isprintable()).strip()
    return base[-120:] or "upload"


UPLOAD_TYPES = {"text/plain": ".txt", "text/html": ".html", "application/pdf": ".pdf",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx"}


def _upload_name(f: UploadFile) -> str:
    """The name an uploaded file is shown by, its suffix its type. A name without a suffix takes
    its Content-Type's (curl -F 'files=@report;type=application/pdf'), else its first bytes' (%PDF,
    a zip is docx, <html), else it is read as text."""
    name = safe_name(f.filename)
    if PurePath(name).suffix:
        return name
    suffix = UPLOAD_TYPES.get((f.content_type or "").split(";")[0].strip().lower())
    if suffix is None:
        head = f.file.read(512)
        f.file.seek(0)
        lowered = head.lstrip().lower()
        suffix = (".pdf" if head.startswith(b"%PDF") else ".docx" if head.startswith(b"PK\x03\x04")
                  else ".html" if lowered.startswith((b"<!doctype html", b"<html")) else ".txt")
    return name + suffix


SERVE_CONFIG_ENV = "GOVQA_SERVE_CONFIG"  # the settings `govqa serve --workers N` hands to its workers


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


_PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "description": "an RFC 9457 problem document",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"},
                   "errors": {"type": "array", "description": "422: each invalid field",
                              "items": {"type": "object", "properties": {"loc": {"type": "array", "items": {"type": "string"}},
                                                                         "msg": {"type": "string"}}}},
                   "files": {"type": "array", "description": "422 of an upload: each file's line",
                             "items": {"$ref": "#/components/schemas/FileOut"}}},
}
_ERRORS = {400: "the request could not be read (not HTTP/1.1, or a body that is not the JSON or form declared)",
           401: "no API key, or not a valid one", 403: "not allowed", 404: "not found",
           413: "the body is larger than the server's limit", 415: "not a report file type",
           421: "without API keys, only this machine's host names (localhost, 127.0.0.1, [::1], api.allowed_hosts) "
                "are answered",
           422: "a valid request the server cannot take (the errors say which field and why)",
           429: "rate limit exceeded (Retry-After says when to try again)",
           431: "the request line and headers are larger than 16 KB",
           503: "the index is not ready (Retry-After)"}


def document_errors(schema: dict, keys_enabled: bool) -> dict:
    """The OpenAPI document as the server behaves: every error an application/problem+json
    document, and each status an operation can answer listed (FastAPI's default lists 422 as
    application/json and nothing else); the API key as a security scheme when keys are set."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    if keys_enabled:
        # Authorization: Bearer KEY is taken too; one scheme is documented, as the API takes either
        components["securitySchemes"] = {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                                    "description": "or the same key as Authorization: Bearer KEY"}}
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            codes = {400, 431} | ({421} if not keys_enabled else set())
            changes = method.upper() not in SAFE_METHODS
            if path.startswith("/v1/"):
                codes |= {422, 429, 503}
                if keys_enabled:
                    codes.add(401)
                    op["security"] = [{"apiKey": []}]
                if (keys_enabled and _needs_admin(method.upper(), path.replace("{report_id}", "x"))) or (
                        changes and not keys_enabled):
                    codes.add(403)
                if changes:
                    codes.add(413)
            if path == "/readyz":
                codes.add(503)
            responses = op.setdefault("responses", {})
            codes |= {int(c) for c in responses if c.isdigit() and int(c) >= 400}
            for code in sorted(codes):
                given = responses.get(str(code), {})
                description = given.get("description")
                if not description or description == "Validation Error":
                    description = _ERRORS.get(code, "error")
                responses[str(code)] = {"description": description,
                                        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return schema


def app_from_environ() -> FastAPI:
    """The app of one worker process of `govqa serve --workers N` (a uvicorn factory): the settings
    the parent resolved, and its share of the cores."""
    given = json.loads(os.environ[SERVE_CONFIG_ENV])
    config = given["config"]
    live = LiveService(config, poll_seconds=float(config["api"]["reload_seconds"]))
    return create_app(config, live, load_first=True, compute_threads=int(given["compute_threads"]))


def create_app(config: dict, live: LiveService, keys: Keys | None = None, telegram=None,
               load_first: bool = False, compute_threads: int | None = None) -> FastAPI:
    """The API over `live`; with `telegram` (a bot.telegram.TelegramWebhook) the Telegram bot too,
    fed by webhook calls at its path. With `load_first` the index is loaded before the server
    takes requests (a worker beside others, which answer meanwhile); else /readyz says 503 until
    it is loaded. `compute_threads` bounds the requests computing at once (default: the cores)."""
    api = config["api"]
    keys = keys or Keys.from_environ()
    limiter = RateLimiter(float(api["rate_per_second"]), int(api["burst"]))
    index_root = live.root.root
    started_at = int(time.time())

    # Retrieval is CPU work under the GIL: as many threads as cores do it, the others queue. (The
    # default pool of 40 threads lost a quarter of the throughput to contention at 16 clients.)
    compute: dict[str, anyio.CapacityLimiter] = {}

    @asynccontextmanager
    async def lifespan(_app):
        compute["limiter"] = anyio.CapacityLimiter(compute_threads or os.cpu_count() or 2)
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

    async def off_loop(fn, *args, **kwargs):
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=compute["limiter"])

    app = FastAPIOffline(
        title="govqa", version=_version(), lifespan=lifespan,
        description="Answers from Chinese government annual reports (法治政府建设年度报告), each with the report "
                    "sentence it comes from. Send an API key as `X-API-Key` or `Authorization: Bearer` when the "
                    "server has keys configured.",
    )
    # outermost last: forwarded addresses (from configured proxies only), then who may ask (before
    # any body is read), then the body limits
    app.add_middleware(BodyLimit, max_body=int(api["max_body_bytes"]), max_upload=int(api["max_upload_bytes"]))
    app.add_middleware(Guard, keys=keys, limiter=limiter, allowed_hosts=allowed_hosts(config))
    proxies = forwarded_allow_ips(config)
    if proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    instrument(app, config, live)  # outermost: refused requests are counted too

    if telegram is not None:
        from .telegram import WEBHOOK_PATH

        @app.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> dict:
            given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
            if not hmac.compare_digest(given.encode(), telegram.secret.encode()):
                raise Problem(403, "the Telegram secret token header is missing or wrong")
            try:
                data = await request.json()
            except ValueError as exc:
                raise Problem(400, "the body is not JSON") from exc
            await telegram.feed(data)
            return {"ok": True}

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(
                get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes),
                keys.enabled)
        return app.openapi_schema

    app.openapi = openapi

    @app.exception_handler(HTTPException)
    async def _http_problem(request: Request, exc: HTTPException):
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's (GET /v1/reports)
            allowed = set()
            for route in app.router.routes:
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

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal error; the server log has the details")

    async def caller(request: Request) -> Caller:
        who = request.scope.get(CALLER_SCOPE_KEY)  # the Guard authenticated and rate limited it
        if who is None:
            raise Problem(401, "an API key is required (X-API-Key or Authorization: Bearer)",
                          headers={"WWW-Authenticate": "Bearer"})
        return who

    async def admin(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if not who.admin:
            raise Problem(403, "this needs an admin key (GOVQA_ADMIN_KEYS)")
        return who

    def not_ready(problem: str) -> Problem:
        # the reason without the server's paths (no index in /srv/…): those are for its log and admins
        shown = problem
        for path in {str(Path(index_root).resolve()), str(index_root)}:
            shown = shown.replace(path, "the index directory")
        shown = re.sub(r"(?:[A-Za-z]:)?[\\/][^\s:'\"]+", "…", shown)
        return Problem(503, f"the index is not ready: {shown}", headers={"Retry-After": "2"})

    def service():
        try:
            return live.get()
        except NotReadyError as exc:
            raise not_ready(str(exc)) from exc

    Reader = Annotated[Caller, Depends(caller)]
    Admin = Annotated[Caller, Depends(admin)]

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Ready to answer: the index is loaded",
             responses={503: {"description": "not ready (no index yet, or still loading)"}})
    async def readyz() -> dict[str, Any]:
        s = service()
        return {"status": "ready", "generation": s.generation, "reports": len(s.index.reports), "passages": s.index.size}

    @app.post("/v1/answer", response_model=AnswerOut, tags=["answers"],
              summary="Answer a question with the report sentences it comes from")
    async def answer(body: AnswerRequest, who: Reader) -> dict:
        t = time.perf_counter()
        s = service()
        try:
            a = await off_loop(s.composer.answer, body.question, years=_as_tuple(body.year), orgs=_as_tuple(body.org),
                               top_k=body.top_k)
        except ValueError as exc:
            raise Problem(422, str(exc)) from exc
        return _answer_out(a, s.generation, time.perf_counter() - t)

    @app.get("/v1/search", response_model=SearchOut, tags=["answers"], summary="Ranked passages for a query")
    async def search(who: Reader, q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=NOT_BLANK)],
               k: Annotated[int, Query(ge=1, le=100)] = 10,
               year: Annotated[list[Annotated[int, Query(ge=MIN_YEAR, le=MAX_YEAR)]], Query(max_length=MAX_FILTERS, description="repeatable")] = [],  # noqa: B006
               org: Annotated[list[Annotated[str, Query(max_length=MAX_ORG_CHARS)]], Query(max_length=MAX_FILTERS, description="repeatable")] = [],  # noqa: B006
               mode: Literal["hybrid", "lexical", "dense"] = "hybrid") -> dict:
        t = time.perf_counter()
        if not q.strip():
            raise Problem(422, "q: the query is empty")
        s = service()
        filters = s.searcher.catalog.resolve(q, years=year, orgs=org)
        result = await off_loop(s.searcher.search, q, k=k, filters=filters, mode=mode)
        hits = [{"rank": i + 1, "score": h.score, "passage_id": h.passage.id, "report_id": h.passage.report_id,
                 "source": h.passage.source, "org": h.passage.org, "year": h.passage.year, "section": h.passage.section,
                 "text": h.passage.text, "start": h.passage.start, "end": h.passage.end} for i, h in enumerate(result.hits)]
        return {"query": q, "years": list(filters.years), "orgs": list(filters.orgs), "reports_searched": len(result.reports),
                "hits": hits, "generation": s.generation, "took_ms": round((time.perf_counter() - t) * 1000, 2)}

    @app.get("/v1/facts", response_model=FactsOut, tags=["answers"],
             summary="The figures the reports give for a query (79件 出具 · 法律意见书), as JSON or CSV",
             responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                              "description": "with format=csv: the same facts as a CSV attachment (facts.csv)"}})
    async def facts(who: Reader, q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=NOT_BLANK,
                                                             description="what the figures count: 法律意见书, 2023年行政复议案件")],
                    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
                    year: Annotated[list[Annotated[int, Query(ge=MIN_YEAR, le=MAX_YEAR)]], Query(max_length=MAX_FILTERS, description="repeatable")] = [],  # noqa: B006
                    org: Annotated[list[Annotated[str, Query(max_length=MAX_ORG_CHARS)]], Query(max_length=MAX_FILTERS, description="repeatable")] = [],  # noqa: B006
                    format: Literal["json", "csv"] = "json"):
        if not q.strip():
            raise Problem(422, "q: the query is empty")
        s = service()
        try:
            result = await off_loop(s.composer.facts.find, q, years=year, orgs=org, limit=limit)
        except ValueError as exc:
            raise Problem(422, str(exc)) from exc
        if format == "csv":
            return Response(result.to_csv(), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="facts.csv"'})
        return result.to_dict()

    @app.get("/v1/reports", response_model=ReportsOut, tags=["reports"], summary="The indexed reports")
    def reports(who: Reader) -> dict:
        s = service()
        counts = s.index.passage_counts()
        rows = []
        for i, r in enumerate(s.index.reports):
            d = report_dict(r)
            d.pop("path", None)  # server paths stay on the server
            rows.append(d | {"passages": int(counts[i])})
        return {"generation": s.generation, "reports": rows}

    def uploads_folder() -> Path:
        return (Path(index_root) / UPLOADS).resolve()

    def unlink_upload(path: str) -> None:
        """Delete an uploaded file, and only that: a path outside the uploads folder (a report
        ingested from elsewhere) is left alone. Both sides resolved: the index path may be relative
        (the default data/index), the paths ingest reports absolute."""
        target = Path(path).resolve()
        if target.parent == uploads_folder():
            target.unlink(missing_ok=True)

    def _ingest_out(result, shown: dict[str, str]) -> dict:
        files = [{"file": shown.get(f.path, Path(f.path).name), "status": f.status, "report_id": f.report_id or None,
                  "org": f.org, "year": f.year, "passages": f.passages, "error": f.error,
                  "warnings": list(f.warnings)} for f in result.files]
        return {"generation": result.generation, "reports": result.reports, "passages": result.passages,
                "files": files, "seconds": round(result.seconds, 3)}

    def _run_ingest(**kwargs):
        result = ingest(index_root, embedder=live.embedder, **ingest_options(config), **kwargs)
        live.reload()
        return result

    max_files = int(api["max_files"])

    @app.post("/v1/reports", response_model=IngestOut, tags=["reports"],
              summary="Upload report files (txt, docx, pdf, html) and index them (admin)",
              description=f"At most {max_files} files, {int(api['max_upload_bytes'])} bytes together. A file's type is "
                          f"its name's suffix ({', '.join(SUPPORTED_SUFFIXES)}; another suffix is 415); for a name "
                          f"without one, its Content-Type ({', '.join(UPLOAD_TYPES)}), else its first bytes (%PDF, "
                          "a zip is docx, <html), else text. 422 when no file could be read (each file's line says why).",
              responses={200: {"description": "a line per file, the indexed ones first",
                               "links": {"DeleteReport": {"operationId": "delete_report",
                                                          "parameters": {"report_id": "$response.body#/files/0/report_id"}}}},
                         413: {"description": "upload too large"}, 415: {"description": "not a report file type"},
                         422: {"description": "no file could be read"}})
    def upload(who: Admin, files: Annotated[list[UploadFile], File(min_length=1, max_length=max_files,
                                                                   description="one or more report files")]) -> dict:
        if len(files) > max_files:
            raise Problem(413, f"at most {max_files} files per upload")
        names = [_upload_name(f) for f in files]
        bad = [name for name in names if PurePath(name).suffix.lower() not in SUPPORTED_SUFFIXES]
        if bad:
            raise Problem(415, f"{', '.join(bad)}: not a report file type (accepted: {', '.join(SUPPORTED_SUFFIXES)})")
        folder = uploads_folder()
        folder.mkdir(parents=True, exist_ok=True)
        stored, shown, manifest = [], {}, {}
        for f, name in zip(files, names, strict=True):
            data = f.file.read()
            # the stored name is the content hash: the client's file name never becomes a path
            target = folder / (hashlib.sha256(data).hexdigest()[:24] + PurePath(name).suffix.lower())
            if not target.exists():
                tmp = folder / f".{uuid.uuid4().hex}.part"
                tmp.write_bytes(data)
                os.replace(tmp, target)
            if target in stored:  # the same file twice in one upload
                continue
            stored.append(target)
            shown[str(target)] = name
            manifest[target.name] = {"source": name}
        result = _run_ingest(paths=stored, manifest=manifest)
        out = _ingest_out(result, shown)
        failed = []
        for f, line in zip(result.files, out["files"], strict=True):
            if f.status in ("added", "updated") and not f.passages:
                # counted by ingest, but a text without passages is no report: not listed, not searchable
                line.update(status="failed", report_id=None, error="no passage could be cut from its text")
            if line["status"] in ("failed", "duplicate"):  # an upload is kept only while it is indexed
                unlink_upload(f.path)
            if line["status"] == "failed":
                failed.append(line)
        if failed and len(failed) == len(out["files"]):
            raise Problem(422, "; ".join(f"{line['file']}: {line['error']}" for line in failed), files=out["files"])
        # the files indexed first (the first line names a report, which DELETE /v1/reports/{id} can remove)
        out["files"].sort(key=lambda line: line["status"] == "failed")
        return out

    @app.delete("/v1/reports/{report_id}", response_model=IngestOut, tags=["reports"], operation_id="delete_report",
                summary="Remove one report from the index (admin)", responses={404: {"description": "no such report"}})
    def delete_report(who: Admin, report_id: Annotated[str, FastAPIPath(description="as GET /v1/reports lists it "
                                                                                     "(16 hex digits)")]) -> dict:
        if not re.fullmatch(r"[0-9a-f]{16}", report_id):  # 404, not 422: any other id names no report
            raise Problem(404, f"no indexed report has the id {report_id[:40]!r}")
        try:
            result = _run_ingest(paths=[], remove=[report_id])
        except KeyError as exc:
            raise Problem(404, str(exc.args[0])) from exc
        for f in result.files:
            if f.status == "removed":
                unlink_upload(f.path)
        return _ingest_out(result, {})

    @app.delete("/v1/reports/", include_in_schema=False)
    def delete_nothing(who: Admin) -> dict:  # an empty id (a failed file's) is no report, not another method
        raise Problem(404, "no report id given")

    @app.post("/v1/index/reload", tags=["reports"], summary="Switch to the newest index generation now (admin)")
    def reload(who: Admin) -> dict[str, Any]:
        generation = live.reload()
        if generation is None:
            raise not_ready(live.problem)
        return {"generation": generation}

    @app.get("/v1/models", response_model=ModelsOut, tags=["openai"], summary="OpenAI-compatible model list")
    async def models(who: Reader) -> dict:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": started_at, "owned_by": "govqa"}]}

    @app.post("/v1/chat/completions", response_model=ChatOut, tags=["openai"],
              summary="OpenAI-compatible chat: the last user message is the question, read as a follow-up "
                      "of the user messages before it",
              responses={200: {"content": {"text/event-stream": {}}, "description": "with stream: true, server-sent events"}})
    async def chat(body: ChatRequest, who: Reader):
        asked = _user_texts(body.messages)
        t = time.perf_counter()
        s = service()

        def compose():
            question = asked[0]
            for text in asked[1:]:  # "那2022年呢？" after a question is that question for 2022
                question = s.composer.follow_up(question, text)
            return s.composer.answer(question)

        try:
            a = await off_loop(compose)
        except ValueError as exc:
            raise Problem(422, str(exc)) from exc
        content = chat_text(a)
        out = _answer_out(a, s.generation, time.perf_counter() - t)
        cid, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
        if not body.stream:
            prompt_tokens = sum(len(_text_of(m.content)) for m in body.messages)
            return {"id": cid, "object": "chat.completion", "created": created, "model": MODEL_ID,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content),
                              "total_tokens": prompt_tokens + len(content)},
                    "citations": out["citations"], "govqa": out}

        def events():
            def chunk(delta: dict, finish: str | None = None, **extra) -> str:
                data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
                return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

            yield chunk({"role": "assistant", "content": ""})
            for piece in re.split(r"(?<=\n)", content):
                if piece:
                    yield chunk({"content": piece})
            yield chunk({}, "stop", citations=out["citations"], govqa=out)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _text_of(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(part.text if isinstance(part, TextPart) else part.get("text", "")) for part in content
                   if isinstance(part, TextPart) or (isinstance(part, dict) and part.get("type") == "text"))


def _user_texts(messages: list, keep: int = 5) -> list[str]:
    """The last `keep` user messages with text, oldest first (the schema bounds their length)."""
    texts = [t for m in messages if m.role == "user" and (t := _text_of(m.content).strip())]
    if not texts:
        raise Problem(422, "messages: there is no user message with text")
    return texts[-keep:]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("govqa")
    except PackageNotFoundError:
        return "0"
