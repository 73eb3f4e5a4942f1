"""Metrics, logs and the query log of `govqa serve`, all hooked in by one call: `instrument(app, config, live)`
in create_app.

- /metrics (Prometheus text format): requests by route and status, request latency by route,
  answers found and refused, ingest durations (uploads and removals through the API), and the index
  served (generation, reports, passages). With API keys configured it needs a read key, like the
  other endpoints; in no-key mode it is open.
- Logs: `logging_config(json)` is one logging setup for govqa's loggers and uvicorn's (its error
  and access logs), as text lines or as JSON lines (`govqa serve --log-json`, observability.log_json).
- The query log (observability.query_log, off by default): one JSON line per answered question
  (time, client, question, found, latency, generation) in a file a day, files older than
  observability.query_log_days removed.

The metrics are those of one process: with `govqa serve --workers N` each scrape is answered by
one worker. Ingests by another process (`govqa ingest --watch`) show as the generation served."""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
import re
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("govqa.observability")

METRICS_PATH = "/metrics"
ANSWER_ROUTES = ("/v1/answer", "/v1/chat/completions")
INGEST_ROUTES = ("/v1/reports", "/v1/reports/{report_id}")
MAX_CAPTURED = 4 * 1024 * 1024  # answer bodies read for the counters and the query log; larger are not
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INGEST_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


# ---------------------------------------------------------------- logs


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message; uvicorn's access lines also
    with client, method, path and status as fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            out |= {"client": client, "method": method, "path": path, "http": version, "status": status}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def logging_config(json_logs: bool = False, level: str = "INFO") -> dict:
    """A logging.config.dictConfig for govqa and uvicorn alike (pass it to uvicorn.run as
    log_config): one handler on the root logger, which uvicorn's loggers propagate to."""
    formatter = {"()": f"{__name__}.JsonFormatter"} if json_logs else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"govqa": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "govqa", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            "httpx": {"level": "WARNING"},  # Telegram calls: a line each, with the bot token in it
        },
        "root": {"handlers": ["default"], "level": level},
    }


def setup_logging(json_logs: bool = False, level: str = "INFO") -> dict:
    """Configure logging now; returns the config for uvicorn.run(log_config=...)."""
    config = logging_config(json_logs, level)
    logging.config.dictConfig(config)
    return config


# ---------------------------------------------------------------- query log


class QueryLog:
    """JSON lines in `folder`, one file a UTC day (queries-YYYY-MM-DD.jsonl); files of days more
    than `keep_days` ago are removed when a day's first line is written (and at start)."""

    PATTERN = re.compile(r"queries-(\d{4}-\d{2}-\d{2})\.jsonl")

    def __init__(self, folder: str | Path, keep_days: int = 30):
        self.folder = Path(folder)
        self.keep_days = int(keep_days)
        self._lock = threading.Lock()
        self._day: dt.date | None = None
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prune(dt.datetime.now(dt.UTC).date())

    def path_for(self, day: dt.date) -> Path:
        return self.folder / f"queries-{day.isoformat()}.jsonl"

    def prune(self, today: dt.date) -> list[Path]:
        oldest = today - dt.timedelta(days=self.keep_days)
        removed = []
        for path in self.folder.glob("queries-*.jsonl"):
            m = self.PATTERN.fullmatch(path.name)
            if not m:
                continue
            try:
                day = dt.date.fromisoformat(m.group(1))
            except ValueError:
                continue
            if day < oldest:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def write(self, entry: dict) -> None:
        now = dt.datetime.now(dt.UTC)
        line = json.dumps({"time": now.isoformat(timespec="milliseconds")} | entry, ensure_ascii=False) + "\n"
        try:
            with self._lock:
                if self._day != now.date():
                    self._day = now.date()
                    self.prune(self._day)
                with open(self.path_for(now.date()), "a", encoding="utf-8") as f:
                    f.write(line)
        except OSError as exc:  # the audit log failing never fails an answer
            log.error("could not write the query log in %s: %s", self.folder, exc)


# ---------------------------------------------------------------- metrics


class _IndexCollector:
    """The index served, read at each scrape."""

    def __init__(self, live):
        self.live = live

    def collect(self):
        try:
            service = self.live.get()
        except Exception:
            service = None
        ready = GaugeMetricFamily("govqa_index_ready", "1 when an index generation is loaded and answering")
        ready.add_metric([], 1.0 if service else 0.0)
        yield ready
        if service is None:
            return
        generation = service.generation
        info = InfoMetricFamily("govqa_index_generation", "the index generation served")
        info.add_metric([], {"generation": generation})
        yield info
        number = GaugeMetricFamily("govqa_index_generation_number", "the number of the generation served (g000012: 12)")
        number.add_metric([], float(int(generation[1:])) if generation[1:].isdigit() else 0.0)
        yield number
        reports = GaugeMetricFamily("govqa_index_reports", "reports in the index served")
        reports.add_metric([], float(len(service.index.reports)))
        yield reports
        passages = GaugeMetricFamily("govqa_index_passages", "passages in the index served")
        passages.add_metric([], float(service.index.size))
        yield passages


class Metrics:
    """The Prometheus metrics of one app, in their own registry."""

    def __init__(self, live=None):
        self.registry = CollectorRegistry()
        self.requests = Counter("govqa_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("govqa_http_request_duration_seconds", "HTTP request time by route, to the last byte",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.answers = Counter("govqa_answers", "questions answered (found) or refused (the reports do not state it)",
                               ["route", "result"], registry=self.registry)
        self.ingest = Histogram("govqa_ingest_duration_seconds", "ingests through the API (uploads, removals)",
                                ["route"], buckets=INGEST_BUCKETS, registry=self.registry)
        for route in ANSWER_ROUTES:  # the series exist from the start, at 0
            for result in ("found", "refused"):
                self.answers.labels(route, result)
        if live is not None:
            self.registry.register(_IndexCollector(live))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


CALLER_SCOPE_KEY = "govqa.caller"  # where bot.api.auth's Guard leaves the caller it authenticated


def _route_of(scope: Scope, routes=()) -> str:
    """The route template a request went to; for one refused before routing (a wrong key, a
    foreign Host), the route it asked for."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    for route in flat_routes(routes):
        if route.matches(scope)[0] == Match.FULL:
            return route.path
    return "unmatched"


def flat_routes(routes):
    """The routes one by one: FastAPI (0.16x) keeps an included router as one entry of the app's
    routes, holding the router's own (whose paths carry its prefix)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from flat_routes(inner.routes) if inner is not None else (route,)


def _answer_of(route: str, content_type: str, body: bytes) -> dict | None:
    """The AnswerOut of an answer response (plain JSON, a chat completion or its event stream)."""
    try:
        if content_type.startswith("text/event-stream"):
            for line in reversed(body.decode("utf-8").splitlines()):
                if line.startswith("data: {") and '"govqa"' in line:
                    return json.loads(line[6:]).get("govqa")
            return None
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data.get("govqa") if route == "/v1/chat/completions" else data


def _key_id(scope: Scope) -> str:
    """The caller's key as the API's Guard identified it (key:<sha256 prefix>); empty without one."""
    caller = scope.get(CALLER_SCOPE_KEY)
    identity = getattr(caller, "identity", "")
    return identity if identity.startswith("key:") else ""


class _Observe:
    """ASGI middleware: counts and times every request, reads answer and ingest responses for
    their outcome, and writes the query log."""

    def __init__(self, app: ASGIApp, metrics: Metrics, query_log: QueryLog | None, routes=()):
        self.app, self.metrics, self.query_log, self.routes = app, metrics, query_log, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        content_type = ""
        chunks: list[bytes] = []
        size = 0
        wanted = False  # an answer's or an ingest's response, read for its outcome

        async def observed_send(message: Message) -> None:
            nonlocal status, content_type, size, wanted
            if message["type"] == "http.response.start":
                status = int(message["status"])
                route = _route_of(scope, self.routes)  # routed by now
                wanted = (route in ANSWER_ROUTES and scope["method"] == "POST") or \
                    (route in INGEST_ROUTES and scope["method"] in ("POST", "DELETE"))
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-type":
                        content_type = v.decode("latin-1")
            elif message["type"] == "http.response.body" and wanted and status == 200 and size <= MAX_CAPTURED:
                body = message.get("body", b"")
                size += len(body)
                chunks.append(body)
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            took = time.perf_counter() - started
            route = _route_of(scope, self.routes)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(took)
            if wanted and status == 200 and size <= MAX_CAPTURED:
                self._outcome(scope, route, content_type, b"".join(chunks), took)

    def _outcome(self, scope: Scope, route: str, content_type: str, body: bytes, took: float) -> None:
        if route in INGEST_ROUTES:
            try:
                seconds = float(json.loads(body)["seconds"])
            except (ValueError, KeyError, TypeError):
                seconds = took
            self.metrics.ingest.labels(route).observe(seconds)
            return
        answer = _answer_of(route, content_type, body)
        if not isinstance(answer, dict) or "found" not in answer:
            return
        found = bool(answer["found"])
        self.metrics.answers.labels(route, "found" if found else "refused").inc()
        if self.query_log is not None:
            client = scope.get("client")
            self.query_log.write({
                "client": client[0] if client else "", "key": _key_id(scope), "route": route,
                "question": answer.get("question", ""), "found": found,
                "latency_ms": round(took * 1000, 2), "generation": answer.get("generation", "")})


# ---------------------------------------------------------------- the entry point


def instrument(app, config: dict, live=None) -> Metrics:
    """Metrics, the /metrics endpoint and the query log on `app` (a FastAPI app, before it starts).
    With keys configured, /metrics needs a read or admin key like /v1 (bot.api.auth.Guard checks it)."""
    section = config.get("observability", {})
    folder = section.get("query_log") or ""
    query_log = QueryLog(folder, int(section.get("query_log_days", 30))) if folder else None
    metrics = Metrics(live)
    app.add_middleware(_Observe, metrics=metrics, query_log=query_log, routes=app.router.routes)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(METRICS_PATH, metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.state.metrics = metrics
    app.state.query_log = query_log
    return metrics
