"""Rebuilding without stopping: real `govqa` processes on 127.0.0.1 — a watched folder feeding a
running server under load, and ingests killed with SIGKILL at each stage."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from bot.service import open_service
from retriever.index import FAULT_ENV, IndexDir

from .conftest import HEADLINE, NEW_QUESTION, NEW_REPORT, REPO, needs_shared, wait_for

pytestmark = needs_shared()
GOVQA = [sys.executable, "-m", "bot.cli"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVQA_")}
    env["PYTHONPATH"] = str(REPO)
    return env | extra


def _copy(real_index, tmp_path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(real_index, target)
    return target


@pytest.mark.parametrize("processes", [1, 2])
def test_a_report_dropped_in_the_watched_folder_becomes_answerable_under_load(real_index, tmp_path, processes):
    index, inbox = _copy(real_index, tmp_path), tmp_path / "inbox"
    inbox.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = _env(GOVQA_API__RATE_PER_SECOND="0", GOVQA_API__RELOAD_SECONDS="0.5", GOVQA_INDEX__WATCH_QUIET_SECONDS="0.5")
    server = subprocess.Popen(GOVQA + ["serve", "--config", str(REPO / "config.toml"), "--index", str(index),
                                       "--port", str(port), "--watch", str(inbox), "--workers", str(processes)],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / "server.log").open("wb"))  # a pipe nobody reads fills with access logs
    stop, seen = threading.Event(), []

    def hammer():
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                r = client.post("/v1/answer", json={"question": HEADLINE})
                seen.append((r.status_code, r.status_code == 200 and "79件" in r.json()["answer"], r.json().get("generation")))

    try:
        def ready():
            try:
                return httpx.get(url + "/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return server.poll() is not None  # ends the wait; asserted below

        wait_for(ready, 60, "the server to be ready")
        assert server.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-2000:]
        before = httpx.get(url + "/readyz").json()["generation"]
        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for w in workers:
            w.start()
        wait_for(lambda: len(seen) > 20, 30, "the clients to get going")
        dropped = time.monotonic()
        (inbox / "青石县2024年报告.txt").write_text(NEW_REPORT, encoding="utf-8")

        def answered():
            r = httpx.post(url + "/v1/answer", json={"question": NEW_QUESTION}, timeout=30).json()
            return r["found"] and "146件" in r["answer"]

        wait_for(answered, 60, "the new report to be answerable")
        took = time.monotonic() - dropped
        time.sleep(0.5)
        stop.set()
        for w in workers:
            w.join(timeout=30)
        assert httpx.get(url + "/readyz").json()["generation"] != before
        assert seen and all(status == 200 and ok for status, ok, _ in seen), [s for s in seen if s[0] != 200 or not s[1]][:5]
        assert len({g for *_, g in seen}) >= 2, "the clients saw the swap"
        assert took < 30
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)


STAGES = ["parsed", "embedded", "staged", "renamed", "published"]


def _answers(index: Path, config, embedder) -> tuple[str, bool, str]:
    service = open_service(config, index, embedder=embedder)
    headline = service.composer.answer(HEADLINE)
    return service.generation, "79件" in headline.text and headline.found, service.composer.answer(NEW_QUESTION).found


@pytest.mark.parametrize("delta", [False, True], ids=["full-build", "delta-segment"])
def test_sigkill_at_every_stage_of_an_ingest_leaves_the_served_index_intact(real_index, tmp_path, config, use_embedder,
                                                                             delta):
    # GOVQA_INDEX__DELTA_SHARE=1: the new report goes into a delta segment (on five reports, a
    # 30-passage report is otherwise more than delta_share of the index, and everything is rebuilt)
    share = {"GOVQA_INDEX__DELTA_SHARE": "1.0" if delta else "0.0"}
    index, inbox = _copy(real_index, tmp_path), tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "青石县2024年报告.txt").write_text(NEW_REPORT, encoding="utf-8")
    before = _answers(index, config, use_embedder)
    assert before[1] and not before[2]
    for stage in STAGES:
        marker = tmp_path / f"reached-{stage}"
        proc = subprocess.Popen(GOVQA + ["ingest", "--index", str(index), str(inbox)], cwd=tmp_path,
                                env=_env(**share, **{FAULT_ENV: f"{stage}:{marker}"}),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(lambda m=marker, p=proc: m.exists() or p.poll() is not None, 60, f"the ingest to reach {stage}")
            assert marker.exists(), proc.stderr.read().decode()[-2000:]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        after = _answers(index, config, use_embedder)
        if stage == "published":  # the pointer had switched: the new generation is whole and served
            assert after[0] != before[0] and after[1] and after[2]
        else:
            assert after == before, f"killed at {stage}"
    # the next ingest completes and clears what the killed ones left
    done = subprocess.run(GOVQA + ["ingest", "--index", str(index), str(inbox)], cwd=tmp_path, env=_env(**share),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    root = IndexDir(index)
    names = sorted(p.name for p in root.generations.iterdir())
    assert not [n for n in names if n.startswith(".tmp-")] and max(names) == root.current()
    final = _answers(index, config, use_embedder)
    assert final[1] and final[2]
    segments = json.loads((root.current_path() / "manifest.json").read_text(encoding="utf-8"))["segments"]
    assert len(segments) == (2 if delta else 1)


def test_watch_mode_ingests_changes_and_prunes_deleted_files(tmp_path, use_embedder):
    from retriever.watch import watch_and_ingest

    inbox, index = tmp_path / "inbox", tmp_path / "index"
    inbox.mkdir()
    results, stop = [], threading.Event()
    worker = threading.Thread(target=watch_and_ingest, args=(index, [inbox], use_embedder),
                              kwargs={"quiet_seconds": 0.3, "stop": stop, "on_result": results.append}, daemon=True)
    worker.start()
    try:
        wait_for(lambda: results, 30, "the first round")
        report = inbox / "青石县2024年报告.txt"
        report.write_text(NEW_REPORT, encoding="utf-8")
        (inbox / "notes.md").write_text("not a report", encoding="utf-8")  # ignored: not a report type
        wait_for(lambda: any(f.status == "added" for r in results for f in r.files), 30, "the new report")
        report.unlink()
        wait_for(lambda: any(f.status == "removed" for r in results for f in r.files), 30, "the removal")
        assert results[-1].reports == 0
    finally:
        stop.set()
        worker.join(timeout=30)
