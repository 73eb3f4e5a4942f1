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

    emb = make_embedder("hashing", dim=DIM)
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
""").replace("DIM", str(HASHING))


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


# --- 3. a file name that is not UTF-8; control characters in names ----------------------------

def test_a_file_name_that_is_not_utf8_is_one_failure_among_others_and_printed_escaped(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    shutil.copy(SAMPLES / "guoziwei_2023.txt", folder)
    text = (SAMPLES / "guoziwei_2023.txt").read_text(encoding="utf-8")
    bad = os.path.join(os.fsencode(folder), b"bad_\xff.txt")
    with open(bad, "wb") as handle:
        handle.write(text.replace("国资委", "统计局").encode("utf-8"))
    (folder / "ctl_\x1b[31mred\n.txt").write_text(text.replace("国资委", "审计局"), encoding="utf-8")
    env = _env() | {"GOVQA_EMBEDDER__NAME": "hashing", "GOVQA_EMBEDDER__DIM": str(HASHING)}
    index = tmp_path / "index"
    r = subprocess.run([sys.executable, "-m", "bot.cli", "ingest", "--index", str(index), str(folder)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, errors="surrogateescape")
    assert r.returncode == 1, r.stderr  # one file failed; the others are indexed
    assert "bad_\\xff.txt: the file name is not valid UTF-8" in r.stdout
    assert "ctl_\\x1b[31mred\\n.txt" in r.stdout and "\x1b" not in r.stdout
    assert "2 reports" in r.stdout
    # in the library: its own failure, with a name that can be stored and shown
    result = ingest(tmp_path / "index2", [folder], make_embedder("hashing", dim=HASHING))
    failed = {Path(f.path).name: f.error for f in result.failed}
    assert list(failed) == ["bad_\\xff.txt"] and "UTF-8" in failed["bad_\\xff.txt"]
    assert result.reports == 2 and result.generation
