"""Watch folders of reports and ingest what changed, after a quiet period (files are often
written in several steps, or many at once)."""

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from .ingest import IngestResult, ingest
from .readers import SUPPORTED_SUFFIXES

log = logging.getLogger("govqa.watch")


def _relevant(change, path: str) -> bool:
    p = Path(path)
    return p.suffix.lower() in SUPPORTED_SUFFIXES + (".toml",) and not p.name.startswith(".")


def watch_and_ingest(index_dir: str | Path, folders: list[str | Path], embedder, *, quiet_seconds: float = 2.0,
                     stop: threading.Event | None = None, on_result: Callable[[IngestResult], None] | None = None,
                     ingest_with: Callable[..., IngestResult] = ingest, **ingest_kwargs) -> None:
    """Ingest `folders` now, then again each time their report files (or reports.toml) change and
    stay unchanged for `quiet_seconds`. Files deleted from the folders are pruned from the index.
    Runs until `stop` is set (or forever). `ingest_with`: ingest's signature, into another backend."""
    from watchfiles import watch

    def run() -> None:
        try:
            result = ingest_with(index_dir, folders, embedder, prune=True, **ingest_kwargs)
        except Exception as exc:  # a failed round never ends the watch; the index stays as it was
            log.error("ingest after a change failed: %s", exc)
            return
        if on_result:
            on_result(result)

    for folder in folders:
        Path(folder).mkdir(parents=True, exist_ok=True)
    run()
    quiet_ms = max(50, int(quiet_seconds * 1000))
    for changes in watch(*folders, watch_filter=_relevant, step=quiet_ms, debounce=max(quiet_ms * 10, 5000),
                         stop_event=stop, raise_interrupt=False):
        log.info("%d changed files under %s", len(changes), ", ".join(map(str, folders)))
        run()
