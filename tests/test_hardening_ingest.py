"""Hardening of ingest and index generations against a red-team report: served generations that
vanish under a reader, file names that are not UTF-8, zip bombs, orphaned embedding workers, no-op
ingests, vague errors, progress and empty folders. Real components throughout (embedders, FAISS,
SQLite); subprocesses where a crash, a kill or a memory bound is the point."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from embeddings import make_embedder
from retriever.index import IndexDir
from retriever.ingest import ingest

from .conftest import NEW_REPORT, REPO, SAMPLES, load_index, wait_for

HASHING = 64


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVQA_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _report(tmp_path: Path, name: str, unit: str, cases: int) -> Path:
    path = tmp_path / name
    path.write_text(NEW_REPORT.replace("青石县", unit).replace("146件", f"{cases}件"), encoding="utf-8")
    return path


# --- 2. a generation a live reader answers from is never removed ------------------------------

READER = textwrap.dedent("""
    import json, sys, threading
    from embeddings import make_embedder
    from retriever.index import Index, IndexDir
    from retriever.search import HybridSearcher

    emb = make_embedder("hashing", dim=%d)
    index = Index(IndexDir(sys.argv[1]).current_path(), emb.name, emb.dim)
    searcher = HybridSearcher(index, emb)
    print(json.dumps({"generation": index.generation}), flush=True)
    for line in sys.stdin:
        out = {}
        def ask():  # a new thread each time: a new SQLite connection, opened now
            try:
                hits = searcher.search(line.strip(), k=3).hits
                out["answer"] = [h.passage.text[:40] for h in hits]
                out["passages"] = len(index.all_passages())
            except Exception as exc:
                out["error"] = f"{exc.__class__.__name__}: {exc}"
        t = threading.Thread(target=ask)
        t.start()
        t.join()
        print(json.dumps(out, ensure_ascii=False), flush=True)
""" % HASHING)


def test_a_reader_keeps_answering_across_later_ingests_that_clean_up(tmp_path):
    emb = make_embedder("hashing", dim=HASHING)
    root = IndexDir(tmp_path / "index")
    files = sorted(SAMPLES.iterdir())
    ingest(root.root, files[:2], emb, keep_generations=1)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(root.root)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    try:
        served = json.loads(reader.stdout.readline())["generation"]

        def ask(question: str) -> dict:
            reader.stdin.write(question + "\n")
            reader.stdin.flush()
            return json.loads(reader.stdout.readline())

        first = ask("法治政府建设")
        assert "error" not in first and first["answer"]
        for i, more in enumerate([files[:3], files[:4], files], start=1):  # three later ingests, keep 1
            result = ingest(root.root, more, emb, keep_generations=1, rebuild=(i == 2))
            assert result.generation != served and not result.failed
            assert ask("法治政府建设") == first, f"after ingest {i}"
            assert (root.generations / served).is_dir()
        # in-process too: a loaded Index holds its generation; released, the next cleanup takes it
        held = load_index(root.root, emb)
        ingest(root.root, [_report(tmp_path, "a.txt", "白沙县", 11)], emb, keep_generations=1)
        assert (held.path / "store.sqlite").exists() and len(held.all_passages()) > 0
        reader.stdin.close()
        reader.wait(timeout=60)
        del held
        ingest(root.root, [_report(tmp_path, "b.txt", "黑水县", 12)], emb, keep_generations=1)
        needed = {root.current()} | {s["name"] for s in json.loads((root.current_path() / "manifest.json").read_text())["segments"]}
        assert {p.name for p in root.generations.iterdir()} == needed
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
