"""Hardening of ingest and index generations against a red-team report: served generations that
vanish under a reader, file names that are not UTF-8, zip bombs, orphaned embedding workers, no-op
ingests, vague errors, progress and empty folders. Real components throughout (embedders, FAISS,
SQLite); subprocesses where a crash, a kill or a memory bound is the point."""

from __future__ import annotations

import contextlib
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


# --- 4. zip bombs -----------------------------------------------------------------------------

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _docx(path: Path, body_chunks, chunk: str = "") -> Path:
    """A minimal, valid .docx whose document.xml is the paragraphs given, streamed (a bomb's
    expanded size never sits in this process's memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
                   'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override '
                   'PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                   'wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
        with z.open("word/document.xml", "w", force_zip64=True) as doc:
            doc.write(f'<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>'.encode())
            for text in body_chunks:
                doc.write(f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>".encode())
            doc.write(b"</w:body></w:document>")
    return path


INGEST_AND_MEASURE = textwrap.dedent("""
    import json, resource, sys
    from embeddings import make_embedder
    from retriever.ingest import ingest

    result = ingest(sys.argv[1], [sys.argv[2]], make_embedder("hashing", dim=64))
    print(json.dumps({f.path.rsplit("/", 1)[-1]: [f.status, f.error] for f in result.files}, ensure_ascii=False))
""")
# The ingest runs as the child of a small launcher, which reports its children's peak RSS: a process
# started from pytest itself would inherit pytest's peak (ru_maxrss survives fork and exec).
MEASURE = textwrap.dedent("""
    import json, resource, subprocess, sys
    done = subprocess.run([sys.executable, "-c", *sys.argv[1:]], capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    print(json.dumps({"returncode": done.returncode, "files": json.loads(done.stdout or "null"),
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, ensure_ascii=False))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_a_docx_zip_bomb_is_refused_before_it_is_read_and_memory_stays_bounded(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    shutil.copy(SAMPLES / "guoziwei_2023.txt", folder)
    line = "法治政府建设" * 1000  # 18 KB a paragraph, compressing about 1000 times
    bomb = _docx(folder / "bomb.docx", (line for _ in range(30_000)))  # 540 MB expanded
    assert bomb.stat().st_size < 2 * 1024 * 1024
    good = _docx(folder / "good.docx", ["青石县市场监督管理局2024年度法治政府建设工作报告", *NEW_REPORT.splitlines()[1:]])

    def run(target: Path) -> dict:
        r = subprocess.run([sys.executable, "-c", MEASURE, INGEST_AND_MEASURE, str(tmp_path / f"index-{target.name}"),
                            str(target)], capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=600)
        out = json.loads(r.stdout)
        assert r.returncode == 0 and out["returncode"] == 0, r.stderr[-3000:]
        return out

    out = run(folder)
    status, error = out["files"]["bomb.docx"]
    assert status == "failed" and "zip bomb" in error and "MiB" in error, error
    assert out["files"]["good.docx"][0] == "added" and out["files"]["guoziwei_2023.txt"][0] == "added"
    # the peak is the interpreter, numpy, FAISS and jieba, not the bomb (reading it took > 1 GB)
    assert out["maxrss_kb"] < 400 * 1024, out["maxrss_kb"]
    # the ratio alone: a member small enough in all, expanding far more than Word XML does
    from retriever.readers import ReportReadError, read_docx

    small = _docx(tmp_path / "ratio.docx", (line for _ in range(200)))  # 3.6 MB expanded, ratio > 100
    with pytest.raises(ReportReadError, match="expands .* times"):
        read_docx(small)
    assert "法治政府建设" in read_docx(small, max_ratio=10_000)
    assert good.exists()


# --- 5. embedding workers end with the ingest, however it ends ---------------------------------

EMBED_IN_WORKERS = textwrap.dedent("""
    import sys
    import embeddings.use as use
    from retriever.ingest import ingest

    use._CHUNK = 20  # several chunks: both workers busy
    emb = use.USEEmbedder(workers=2)
    emb.parallel_min = 10
    ingest(sys.argv[1], [sys.argv[2]], emb)
""")


def _children(pid: int) -> set[int]:
    """The live descendants of a process, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
def test_sigkill_of_an_ingest_leaves_no_embedding_worker_behind(tmp_path):
    marker = tmp_path / "workers-up"
    proc = subprocess.Popen([sys.executable, "-c", EMBED_IN_WORKERS, str(tmp_path / "index"), str(SAMPLES)],
                            env=_env() | {"GOVQA_FAULT_PAUSE": f"workers:{marker}"}, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: marker.exists() or proc.poll() is not None, 300, "the embedding workers to start")
        assert marker.exists(), proc.stderr.read().decode()[-3000:]
        workers = _children(proc.pid)
        assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not any(_alive(p) for p in workers), 30, "the workers to end")
    left = [p for p in workers if _alive(p)]
    assert not left, f"orphaned workers: {left}"


# --- 11. a no-op ingest writes nothing; clear per-file errors; no library noise ---------------

def test_an_ingest_that_changes_nothing_writes_no_generation(tmp_path):
    emb = make_embedder("hashing", dim=HASHING)
    root = IndexDir(tmp_path / "index")
    first = ingest(root.root, [SAMPLES], emb)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    shutil.copy(SAMPLES / "guoziwei_2023.txt", bad / "copy.txt")
    before = sorted(p.name for p in root.generations.iterdir())
    for paths in ([SAMPLES], [SAMPLES, bad], [bad]):  # unchanged, duplicate, failed
        result = ingest(root.root, paths, emb)
        assert result.generation == first.generation and result.reports == 5
        assert sorted(p.name for p in root.generations.iterdir()) == before
    # nothing indexable into an empty index: still nothing written
    nothing = ingest(tmp_path / "empty-index", [bad / "empty.txt"], emb)
    assert nothing.generation is None and IndexDir(tmp_path / "empty-index").current() is None
    # a real change still writes one
    assert ingest(root.root, [_report(tmp_path, "new.txt", "白沙县", 11)], emb).generation != first.generation


def test_an_empty_folder_says_no_report_files_found(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.md").write_text("not a report", encoding="utf-8")
    result = ingest(tmp_path / "index", [tmp_path / "empty", tmp_path / "notes"], make_embedder("hashing", dim=HASHING))
    assert [(Path(f.path).name, f.status) for f in result.files] == [("empty", "failed"), ("notes", "failed")]
    assert all("no report files found" in f.error and ".docx" in f.error for f in result.files)


def test_unreadable_files_get_errors_that_name_the_problem_and_stderr_stays_quiet(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    with zipfile.ZipFile(folder / "sheet.docx", "w") as z:  # an .xlsx renamed
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    (folder / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)  # a .doc renamed
    (folder / "truncated.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")
    (folder / "utf16.txt").write_bytes(NEW_REPORT.encode("utf-16-le"))  # no byte-order mark
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 8)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import json, sys
        from embeddings import make_embedder
        from retriever.ingest import ingest
        result = ingest(sys.argv[1], [sys.argv[2]], make_embedder("hashing", dim=64))
        print(json.dumps({f.path.rsplit("/", 1)[-1]: [f.status, f.error] for f in result.files}, ensure_ascii=False))
    """), str(tmp_path / "index"), str(folder)], capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout)
    assert files["utf16.txt"][0] == "added"
    assert "word/document.xml" in files["sheet.docx"][1] and ".xlsx" in files["sheet.docx"][1]
    assert "not a ZIP archive" in files["old.docx"][1]
    assert files["truncated.pdf"][0] == "failed" and files["truncated.pdf"][1].startswith("not a readable .pdf file: ")
    assert "binary" in files["binary.txt"][1]
    assert not any("KeyError" in error or "BadZipFile" in error for _, error in files.values())
    assert r.stderr == ""  # pypdf's "EOF marker not found" and the like stay off stderr


# --- 17. progress of the embedding stage --------------------------------------------------------

def test_embedding_progress_is_reported_to_a_callback(tmp_path, use_embedder):
    seen = []
    for name, emb in (("hashing", make_embedder("hashing", dim=HASHING)), ("use", use_embedder)):
        seen.clear()
        result = ingest(tmp_path / name, [SAMPLES], emb, embed_progress=lambda done, total: seen.append((done, total)))
        assert seen and seen[-1] == (result.embedded, result.embedded)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_terminal_shows_an_embedding_progress_bar(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    script = textwrap.dedent("""
        import sys
        import retriever.ingest as ri
        from embeddings import make_embedder
        ri.EMBED_BAR_MIN, ri.EMBED_BAR_DELAY = 1, 0
        ri.ingest(sys.argv[1], [sys.argv[2]], make_embedder("hashing", dim=64))
    """)
    outputs = {}
    for terminal in (True, False):
        main, side = pty.openpty() if terminal else os.pipe()
        if terminal:  # 24 rows of 80 columns (a terminal of no size shows no bar)
            fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"index-{terminal}"), str(SAMPLES)],
                                env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=side)
        os.close(side)
        chunks = []
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # the pty's other end closed
                break
            if not data:
                break
            chunks.append(data)
        os.close(main)
        assert proc.wait(timeout=300) == 0
        outputs[terminal] = b"".join(chunks).decode("utf-8", "replace")
    assert "embedding" in outputs[True] and "passage" in outputs[True]
    assert outputs[False] == ""


# --- 16. portability: cores and the index lock ----------------------------------------------------

def test_cores_are_counted_where_the_process_may_run_and_the_index_lock_excludes_other_processes(tmp_path):
    from embeddings.use import available_cores
    from retriever.index import IndexBusyError

    cores = available_cores()
    assert cores >= 1
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))
    root = IndexDir(tmp_path / "index")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from retriever.index import IndexDir
        with IndexDir(sys.argv[1]).lock():
            print("held", flush=True)
            sys.stdin.read()
    """), str(root.root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexBusyError):
            with root.lock(wait=False):
                pass
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with root.lock(wait=False):  # released with the process
        pass


def test_the_expanded_size_bound_is_a_setting(tmp_path):
    """[limits] max_expanded_mb bounds what a .docx may expand to, in the CLI as in uploads."""
    folder = tmp_path / "in"
    folder.mkdir()
    _docx(folder / "big.docx", [NEW_REPORT.replace("\n", "")] * 200)  # ~0.5 MB expanded, compresses well
    index = tmp_path / "index"
    tight = subprocess.run([sys.executable, "-m", "bot.cli", "ingest", "--index", str(index), str(folder)], cwd=tmp_path,
                           env={**_env(), "GOVQA_LIMITS__MAX_EXPANDED_MB": "0.1"}, capture_output=True, text=True, timeout=300)
    assert tight.returncode == 1 and "big.docx" in tight.stdout and "MiB" in tight.stdout, tight.stdout + tight.stderr
    default = subprocess.run([sys.executable, "-m", "bot.cli", "ingest", "--index", str(index), str(folder)], cwd=tmp_path,
                             env=_env(), capture_output=True, text=True, timeout=300)
    assert default.returncode == 0 and "added" in default.stdout, default.stdout + default.stderr
