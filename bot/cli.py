"""The `govqa` command."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from pathlib import Path

import click

from retriever.backend import BackendUnavailable
from retriever.fetch import is_url
from retriever.index import IndexBusyError, NoIndexError
from retriever.ingest import IngestResult, collect_files
from retriever.store import IndexMismatchError, report_dict

from .answer import year_label
from .config import ConfigError, load_config
from .facts import DEFAULT_LIMIT, MAX_LIMIT
from .render import answer_text, facts_text
from .service import Source, build_embedder, open_service, run_ingest


def _echo_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def with_config(func):
    """--config FILE on every command; known failures become one clear line and exit code 2."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                  help="settings file (default: ./config.toml); GOVQA_<SECTION>__<KEY> overrides")
    @functools.wraps(func)
    def wrapper(config_path, **kwargs):
        try:
            config = load_config(config_path)
            return func(config=config, **kwargs)
        except (ConfigError, NoIndexError, IndexMismatchError, IndexBusyError, BackendUnavailable, ValueError) as exc:
            click.echo(f"govqa: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group()
@click.version_option(package_name="govqa")
def main() -> None:
    """Ask questions of Chinese government annual reports; answers cite the report text."""


def _needs_review(reasons) -> str:
    return f"needs review: {'; '.join(reasons)}"


def _review_files(result: IngestResult) -> list:
    return [f for f in result.files if f.review and f.status not in ("failed", "removed")]


def print_ingest(result: IngestResult) -> None:
    # names, errors and metadata come from files: control characters (escape sequences, line
    # breaks) and bytes that are not UTF-8 are printed escaped
    from retriever.ingest import printable

    for f in result.files:
        if f.status == "failed":
            click.echo(f"  FAILED     {printable(f.path)}: {printable(f.error)}")
        else:
            detail = f" ({printable(f.error)})" if f.error else ""
            name = f.path if is_url(f.path) else Path(f.path).name
            click.echo(f"  {f.status:<10} {printable(name)}: {printable(f.org) or '单位不明'} · "
                       f"{year_label(f.year)} · {f.passages} passages{detail}")
            if f.review and f.status != "removed":
                click.echo(f"             {printable(_needs_review(f.review))}")
            for warning in f.warnings:
                click.echo(f"             warning: {printable(warning)}")
    click.echo(f"index {result.generation or '(none: nothing indexed)'}: {result.reports} reports, "
               f"{result.passages} passages ({result.embedded} embedded now), {result.seconds:.1f}s; "
               f"{len(result.failed)} failed; {len(_review_files(result))} need review")


def _ingest_into(config: dict, index_dir, paths, embedder, **kwargs) -> IngestResult:
    """An ingest into the configured backend, with ingest's signature (for the watcher)."""
    return run_ingest(config, paths, embedder, index_dir, **kwargs)


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@click.option("--index", "index_dir", default=None, help="index directory (default: index.dir from config)")
@click.option("--prune", is_flag=True, help="remove reports whose files are gone")
@click.option("--rebuild", is_flag=True, help="build from scratch, ignoring the current index")
@click.option("--no-wait", is_flag=True, help="fail at once if another ingest is running")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.option("--watch", is_flag=True, help="keep running: ingest again whenever files under PATHS change "
              "(after index.watch_quiet_seconds of quiet); deleted files are pruned")
@with_config
def ingest_cmd(config, paths, index_dir, prune, rebuild, no_wait, as_json, watch):
    """Add report files, folders or URLs to the index (new, changed and, with --prune, removed ones).
    A URL (http:// or https://) is fetched: a report's web page, its attached file, or the file
    itself; it is the report's source in citations. Reports are .txt, .docx, .pdf (scans by OCR),
    .html, .ofd, .doc/.wps (with LibreOffice installed) and images (.png, .jpg, .tif, by OCR)."""
    embedder = build_embedder(config)
    if watch:
        from retriever.watch import watch_and_ingest

        click.echo(f"watching {', '.join(paths)} (Ctrl-C stops)", err=True)
        watch_and_ingest(index_dir or config["index"]["dir"], list(paths), embedder,
                         quiet_seconds=float(config["index"]["watch_quiet_seconds"]), on_result=print_ingest,
                         ingest_with=functools.partial(_ingest_into, config))
        return
    files, _ = collect_files([p for p in paths if not is_url(p)])
    bar = None
    if not as_json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(files) + sum(map(is_url, paths)), unit="file", file=sys.stderr)
    result = run_ingest(config, paths, embedder, index_dir, prune=prune, rebuild=rebuild, wait=not no_wait,
                        progress=(lambda _: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    if as_json:
        _echo_json({"generation": result.generation, "reports": result.reports, "passages": result.passages,
                    "embedded": result.embedded, "seconds": round(result.seconds, 3),
                    "failed": len(result.failed), "need_review": len(_review_files(result)),
                    "files": [vars(f) | {"review": list(f.review), "warnings": list(f.warnings)} for f in result.files]})
    else:
        print_ingest(result)
    sys.exit(1 if result.failed else 0)


REPORTS_EXAMPLES = """\b
Examples:
  govqa reports                       # id, year, unit, passages, date, file of each report
  govqa reports --index ./index-2023  # the reports of another index
  govqa reports --json | jq '.[] | select(.review != [])'   # the reports that need review
"""


@main.command("reports", epilog=REPORTS_EXAMPLES)
@click.option("--index", "index_dir", default=None, metavar="DIR",
              help="index directory to list (default: index.dir from config), e.g. --index ./index")
@click.option("--json", "as_json", is_flag=True,
              help="print a JSON list, one object per report (id, source, title, org, aliases, year, published, "
                   "review, passages)")
@with_config
def reports_cmd(config, index_dir, as_json):
    """List the indexed reports: id, year covered, unit (with short names), passages, publication
    date and source file; reports whose unit or year had to be guessed are marked for review."""
    service = open_service(config, index_dir)
    counts = service.index.passage_counts()
    rows = [report_dict(r) | {"passages": int(counts[i])} for i, r in enumerate(service.index.reports)]
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']}  {year_label(r['year'])}  {r['org'] or '单位不明'}  ({'、'.join(r['aliases'][-3:])})  {r['passages']} passages  "
                   f"{r['published'] or '-'}  {r['source']}")
        if r["review"]:
            click.echo(f"    {_needs_review(r['review'])}")
    review = sum(1 for r in rows if r["review"])
    if review:
        click.echo(f"{review} of {len(rows)} reports need review")


@main.command("search")
@click.argument("question")
@click.option("-k", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--year", type=int, multiple=True, help="only reports covering this year (repeatable)")
@click.option("--org", multiple=True, help="only this unit (name or short name; repeatable)")
@click.option("--mode", type=click.Choice(["hybrid", "lexical", "dense"]), default="hybrid", show_default=True)
@click.option("--index", "index_dir", default=None)
@click.option("--json", "as_json", is_flag=True)
@with_config
def search_cmd(config, question, k, year, org, mode, index_dir, as_json):
    """Ranked passages for a question, with source, unit, year and section."""
    service = open_service(config, index_dir)
    filters = service.searcher.catalog.resolve(question, years=year, orgs=org)
    result = service.searcher.search(question, k=k, filters=filters, mode=mode)
    rows = [{"rank": i + 1, "score": h.score, "ranks": h.ranks, "source": h.passage.source, "org": h.passage.org,
             "year": h.passage.year, "section": h.passage.section, "text": h.passage.text,
             "start": h.passage.start, "end": h.passage.end, "passage_id": h.passage.id} for i, h in enumerate(result.hits)]
    if as_json:
        _echo_json({"query": question, "filters": {"years": list(filters.years), "orgs": list(filters.orgs)},
                    "reports_searched": len(result.reports), "hits": rows})
        return
    if not rows:
        click.echo(f"no passages (searched {len(result.reports)} reports; filters: years {list(filters.years)}, units {list(filters.orgs)})")
    for r in rows:
        click.echo(f"{r['rank']}. [{r['score']:.3f}] {r['org']} {r['year']}年 · {r['source']} · {r['section']}")
        click.echo(f"   {r['text']}")


ASK_EXAMPLES = """\b
Examples:
  govqa ask "重点区域署2023年出具了多少份法律意见书？"
  govqa ask "出具了多少份法律意见书？" --org 重点区域署 --year 2023
  govqa ask "党政办2023年召开了多少次区党工委会议？" --json   # answer, citations, searched: JSON
  govqa ask "国资委2023年开展了多少次法治培训？" --index ./index
"""


@main.command("ask", epilog=ASK_EXAMPLES)
@click.argument("question")
@click.option("--year", type=int, multiple=True, metavar="YEAR",
              help="only reports covering this year, as if the question named it (repeatable: --year 2022 --year 2023)")
@click.option("--org", multiple=True, metavar="UNIT",
              help="only this unit, full or short name as `govqa reports` lists them (repeatable: --org 国资委)")
@click.option("--index", "index_dir", default=None, metavar="DIR",
              help="index directory to answer from (default: index.dir from config)")
@click.option("--json", "as_json", is_flag=True,
              help="print the answer as JSON: answer, found, citations (source, unit, year, section, excerpt, "
                   "offsets), related excerpts, table and what was searched")
@with_config
def ask_cmd(config, question, year, org, index_dir, as_json):
    """Answer QUESTION with the report sentence it comes from, cited as unit · year · section.
    When no report of the asked unit and year says it, the answer says so (未找到) and shows
    the related excerpts instead of guessing."""
    service = open_service(config, index_dir)
    answer = service.composer.answer(question, years=year, orgs=org)
    if as_json:
        _echo_json(answer.to_dict())
    else:
        click.echo(answer_text(answer))


@main.command("facts")
@click.argument("query")
@click.option("--year", type=int, multiple=True, help="only reports covering this year (repeatable)")
@click.option("--org", multiple=True, help="only this unit (name or short name; repeatable)")
@click.option("--limit", default=DEFAULT_LIMIT, show_default=True, type=click.IntRange(1, MAX_LIMIT),
              help="at most this many figures, best first")
@click.option("--index", "index_dir", default=None)
@click.option("--json", "as_json", is_flag=True, help="print {\"facts\": [...], ...} as JSON")
@click.option("--csv", "as_csv", is_flag=True, help="print the facts as CSV (a header row), for spreadsheets")
@with_config
def facts_cmd(config, query, year, org, limit, index_dir, as_json, as_csv):
    """The figures the reports give for QUERY (法律意见书, "2023年行政复议案件"): unit, year, figure,
    what it counts (predicate · object) and the report it is in."""
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive: choose one")
    if not query.strip():
        raise ValueError("the facts query is empty")
    service = open_service(config, index_dir)
    result = service.composer.facts.find(query, years=year, orgs=org, limit=limit)
    if as_json:
        _echo_json(result.to_dict())
    elif as_csv:
        click.echo(result.to_csv(), nl=False)
    else:
        click.echo(facts_text(result))


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _start_watcher(config: dict, live, watch_dirs, reload: bool = True) -> None:
    """--watch: ingest the folders whenever their files change, and (with `reload`) serve the
    result at once."""
    if not watch_dirs:
        return
    import threading

    from retriever.watch import watch_and_ingest

    def watcher():
        watch_and_ingest(live.root.root, list(watch_dirs), live.embedder,
                         quiet_seconds=float(config["index"]["watch_quiet_seconds"]),
                         on_result=lambda result: (print_ingest(result), reload and live.reload()),
                         ingest_with=functools.partial(_ingest_into, config))

    threading.Thread(target=watcher, name="govqa-watch", daemon=True).start()


_WATCH = click.option("--watch", "watch_dirs", multiple=True, type=click.Path(file_okay=False),
                      help="also ingest this folder whenever its files change (repeatable)")


@main.command("serve")
@click.option("--host", default=None, help="address to listen on (default: api.host from config)")
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="port (default: api.port from config)")
@click.option("--index", "index_dir", default=None)
@click.option("--allow-no-auth", is_flag=True, help="listen beyond loopback even though no API keys are set")
@click.option("--workers", default=1, type=click.IntRange(1, 64),
              help="server processes (each loads the index; use one per core for throughput)")
@click.option("--log-json", is_flag=True, help="log JSON lines (govqa's and uvicorn's); observability.log_json")
@_WATCH
@with_config
def serve_cmd(config, host, port, index_dir, allow_no_auth, workers, watch_dirs, log_json):
    """Serve the answer API over HTTP (docs at /docs)."""
    import uvicorn

    from .api import ADMIN_KEYS_ENV, READ_KEYS_ENV, SERVE_CONFIG_ENV, Keys, create_app
    from .api.protocol import GovqaHttpProtocol
    from .live import LiveService
    from .observability import setup_logging

    log_config = setup_logging(log_json or config["observability"]["log_json"])
    host = host or config["api"]["host"]
    port = int(config["api"]["port"] if port is None else port)
    keys = Keys.from_environ()
    if not keys.enabled:
        if host not in _LOOPBACK and not allow_no_auth:
            raise click.UsageError(f"no API keys are set ({READ_KEYS_ENV}, {ADMIN_KEYS_ENV}): refusing to listen on "
                                   f"{host}; set keys, listen on 127.0.0.1, or pass --allow-no-auth")
        click.echo(f"govqa: no API keys set ({READ_KEYS_ENV}, {ADMIN_KEYS_ENV}): every caller that can reach "
                   f"{host}:{port} may read and change the index", err=True)
    # httptools with a limit on request heads (bot/api/protocol.py); forwarded headers are read by the
    # app, from [api] forwarded_allow_ips only (uvicorn's own default believes any loopback peer)
    serving = {"http": GovqaHttpProtocol, "proxy_headers": False}
    if workers > 1:
        if config["telegram"]["webhook_url"]:
            raise click.UsageError("the Telegram webhook runs in one process: drop --workers or telegram.webhook_url")
        # each worker builds its app from the settings resolved here (bot.api.app_from_environ), and
        # computes on its share of the cores: native thread pools of one thread each, so that the
        # processes do not fight over the cores (with default pools, two workers served 40 requests/s
        # at concurrency 16 instead of 268, at 100k passages)
        config = {**config, "index": {**config["index"], "dir": str(Path(index_dir or config["index"]["dir"]).resolve())}}
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ[SERVE_CONFIG_ENV] = json.dumps({"config": config, "compute_threads": share})
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        _start_watcher(config, LiveService(config), watch_dirs, reload=False)  # workers follow the pointer
        uvicorn.run("bot.api:app_from_environ", factory=True, workers=workers, host=host, port=port, log_level="info",
                    log_config=log_config, **serving)
        return
    live = LiveService(config, index_dir, poll_seconds=float(config["api"]["reload_seconds"]))
    telegram = None
    if config["telegram"]["webhook_url"]:
        from .telegram import TelegramWebhook, bot_token, webhook_secret

        try:
            telegram = TelegramWebhook(config, live, bot_token(), webhook_secret())
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from exc
    _start_watcher(config, live, watch_dirs)
    uvicorn.run(create_app(config, live, keys, telegram), host=host, port=port, log_level="info", log_config=log_config,
                **serving)


@main.command("telegram")
@click.option("--index", "index_dir", default=None)
@_WATCH
@with_config
def telegram_cmd(config, index_dir, watch_dirs):
    """Answer in Telegram chats (long polling; the token from TELEGRAM_BOT_TOKEN)."""
    from telegram import Update

    from .live import LiveService
    from .observability import setup_logging
    from .telegram import allowed_chats, bot_token, build_application

    setup_logging(config["observability"]["log_json"])
    if config["telegram"]["webhook_url"]:
        raise click.UsageError("telegram.webhook_url is set, so the bot runs inside `govqa serve` (polling here "
                               "would delete the webhook); unset it to use long polling")
    try:
        token = bot_token()
        allowed = allowed_chats(config)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    if not allowed:
        click.echo("govqa: telegram.allowed_chats is empty: the bot answers in every chat it is added to", err=True)
    live = LiveService(config, index_dir, poll_seconds=float(config["api"]["reload_seconds"]))
    if live.reload() is None:  # load before polling, so that the first questions wait for answers
        click.echo(f"govqa: {live.problem}; the bot answers once an index appears", err=True)
    live.start()
    _start_watcher(config, live, watch_dirs)
    try:
        build_application(config, live, token).run_polling(allowed_updates=Update.ALL_TYPES)
    finally:
        live.stop()


def _eval_index_dir(config: dict, reports: Path) -> Path:
    """A cached index per report folder and embedder, reused while the files are the same."""
    files, _ = collect_files([reports])
    from retriever.store import FORMAT_VERSION, PARSER_VERSION
    from retriever.tokenize import dictionary_hash

    built_by = [config["embedder"]["name"], config["embedder"].get("model", ""), str(FORMAT_VERSION), PARSER_VERSION,
                dictionary_hash()]  # a new format or tokenizer gets a new cache, never a refusal
    digest = hashlib.sha256("\0".join(built_by).encode())
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return Path(".govqa-cache") / f"eval-{digest.hexdigest()[:16]}"


@main.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--reports", "reports_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--index", "index_dir", default=None, help="use (or build) this index instead of a cached one")
@click.option("--json", "as_json", is_flag=True)
@with_config
def eval_cmd(config, file, reports_dir, index_dir, as_json):
    """Retrieval and answer figures on a question file."""
    from .evaluate import evaluate, format_figures, load_questions

    questions = load_questions(file)
    embedder = build_embedder(config)
    target = Path(index_dir) if index_dir else _eval_index_dir(config, Path(reports_dir))
    # the files that fail are in the new generation's ingest log, which the figures report first
    # (also when this index is reused); with the Milvus backend, the alias's generation is used
    # when there is one (--index is not read)
    if not Source(config, target).current():
        run_ingest(config, [reports_dir], embedder, target)
    service = open_service(config, target, embedder=embedder)
    figures = evaluate(service, questions)
    if as_json:
        _echo_json(figures)
    else:
        click.echo(format_figures(figures))


if __name__ == "__main__":
    main()
