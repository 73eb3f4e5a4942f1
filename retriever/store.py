"""One index generation on disk: SQLite (reports, passages, ingest log), vectors, BM25, FAISS and a
manifest of what built it. A generation is written once and never changed."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from .facts import Fact
from .types import Passage, Report

PARSER_VERSION = "3"  # 2: header fields kept in the text, titles over lines, units from more places; 3: short names from departments written out
FORMAT_VERSION = 9  # 6: reports.year nullable, reports.spans; 7: the facts table; 8: reports.url; 9: reports.pages (citations give the page)
WORD_SEP = "\x1f"  # joins a passage's jieba words in the passages.words column

_SCHEMA = """
CREATE TABLE reports (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, path TEXT NOT NULL, title TEXT NOT NULL, org TEXT NOT NULL,
    aliases TEXT NOT NULL, region TEXT NOT NULL, year INTEGER, published TEXT, text TEXT NOT NULL,
    passages INTEGER NOT NULL, review TEXT NOT NULL, spans TEXT NOT NULL, url TEXT NOT NULL, pages TEXT NOT NULL
);
CREATE TABLE passages (
    row INTEGER PRIMARY KEY, id TEXT NOT NULL, report_id TEXT NOT NULL REFERENCES reports(id),
    section TEXT NOT NULL, text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    vec_key TEXT NOT NULL, words TEXT NOT NULL
);
CREATE INDEX passages_report ON passages(report_id);
CREATE INDEX passages_vec_key ON passages(vec_key);
CREATE TABLE ingest_log (time REAL NOT NULL, path TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE vocab (token TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE facts (
    row INTEGER NOT NULL, report_id TEXT NOT NULL, value REAL NOT NULL, high REAL, text TEXT NOT NULL,
    unit TEXT NOT NULL, measure TEXT NOT NULL, kind TEXT NOT NULL, qualifiers TEXT NOT NULL, predicate TEXT NOT NULL,
    object TEXT NOT NULL, clause TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    clause_start INTEGER NOT NULL, clause_end INTEGER NOT NULL, sentence_start INTEGER NOT NULL, sentence_end INTEGER NOT NULL
);
CREATE INDEX facts_row ON facts(row);
"""
_FACT_COLUMNS = ('report_id, row, value, high, text, unit, measure, kind, qualifiers, predicate, object, clause, start, "end", '
                 "clause_start, clause_end, sentence_start, sentence_end")


class IndexMismatchError(RuntimeError):
    """The index on disk was built by another embedder, tokenizer or format than asked for."""


def write_store(path: Path, reports: list[Report], passages: list[Passage], vec_keys: list[str],
                words: list[str], log: list[tuple[float, str, str, str]], vocab: Iterable[tuple[str, int]] = (),
                facts: Iterable[Fact] = ()) -> None:
    """`words`: each passage's jieba words, joined by WORD_SEP; `vocab`: each BM25 token with the
    number of these passages it is in (a later segment's statistics add them up); `facts`: the
    passages' figures (facts.py), by passage row."""
    con = sqlite3.connect(path)
    try:
        con.executescript(_SCHEMA)
        counts: dict[str, int] = {}
        for p in passages:
            counts[p.report_id] = counts.get(p.report_id, 0) + 1
        con.executemany(
            "INSERT INTO reports VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(r.id, r.source, r.path, r.title, r.org, json.dumps(list(r.aliases), ensure_ascii=False), r.region,
              r.year, r.published, r.text, counts.get(r.id, 0), json.dumps(list(r.review), ensure_ascii=False),
              json.dumps([list(s) for s in r.spans]), r.url, json.dumps(list(r.pages)))
             for r in reports],
        )
        con.executemany(
            "INSERT INTO passages VALUES (?,?,?,?,?,?,?,?,?)",
            [(i, p.id, p.report_id, p.section, p.text, p.start, p.end, k, w)
             for i, (p, k, w) in enumerate(zip(passages, vec_keys, words, strict=True))],
        )
        con.executemany("INSERT INTO ingest_log VALUES (?,?,?,?)", log)
        con.executemany("INSERT INTO vocab VALUES (?,?)", vocab)
        con.executemany(f"INSERT INTO facts ({_FACT_COLUMNS}) VALUES ({','.join('?' * 18)})",
                        [_fact_row(f) for f in facts])
        con.commit()
    finally:
        con.close()


def read_reports(con: sqlite3.Connection, text: bool = True) -> list[Report]:
    """The reports, ordered by source; without their texts (empty) if text is False."""
    column = "text" if text else "''"
    rows = con.execute(
        f"SELECT id, source, title, org, aliases, region, year, published, {column}, path, review, spans, url, pages FROM reports "
        "ORDER BY source, id"
    ).fetchall()
    return [Report(id=r[0], source=r[1], title=r[2], org=r[3], aliases=tuple(json.loads(r[4])), region=r[5],
                   year=r[6], published=r[7], text=r[8], path=r[9], review=tuple(json.loads(r[10])),
                   spans=tuple(tuple(s) for s in json.loads(r[11])), url=r[12],
                   pages=tuple(json.loads(r[13]))) for r in rows]


_QUALIFIERS_AT = [f.name for f in fields(Fact)].index("qualifiers")


def _fact_row(fact: Fact) -> tuple:
    """A fact as its table row (its fields in order, qualifiers joined); dataclasses.astuple costs
    29 µs a fact, a tenth of a 100k-passage ingest."""
    values = list(vars(fact).values())
    values[_QUALIFIERS_AT] = WORD_SEP.join(fact.qualifiers)
    return tuple(values)


def read_facts(con: sqlite3.Connection, rows: list[int], offset: int = 0) -> list[Fact]:
    """The facts of these passage rows (this store's rows), by row and position in the text, their
    rows numbered from `offset` (the segment's first row in a generation)."""
    found = select_in(con, f"SELECT {_FACT_COLUMNS} FROM facts WHERE row IN", sorted(set(rows)))
    q = _QUALIFIERS_AT
    facts = [Fact(r[0], r[1] + offset, *r[2:q], tuple(r[q].split(WORD_SEP)) if r[q] else (), *r[q + 1 :]) for r in found]
    return sorted(facts, key=lambda f: (f.row, f.start))


def read_log(con: sqlite3.Connection) -> list[tuple[float, str, str, str]]:
    return con.execute("SELECT time, path, status, detail FROM ingest_log ORDER BY rowid").fetchall()


def select_in(con: sqlite3.Connection, sql: str, values: list) -> list[tuple]:
    """The rows of `sql` (ending in "IN") for all these values, asked 900 at a time (SQLite caps
    the parameters of one statement)."""
    out = []
    for i in range(0, len(values), 900):
        chunk = values[i : i + 900]
        out += con.execute(f"{sql} ({','.join('?' * len(chunk))})", chunk).fetchall()
    return out


def read_df(con: sqlite3.Connection, tokens: list[str]) -> np.ndarray:
    """Each token's document frequency in this store's segment (0 where it does not occur)."""
    found = dict(select_in(con, "SELECT token, df FROM vocab WHERE token IN", tokens))
    return np.fromiter((found.get(t, 0) for t in tokens), dtype=np.int64, count=len(tokens))


def connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def read_words(con: sqlite3.Connection, skip_reports: set[str] = frozenset()) -> dict[str, list[str]]:
    """Passage id -> its stored jieba words, for the passages of reports not in `skip_reports`."""
    return {pid: words.split(WORD_SEP) if words else []
            for pid, rid, words in con.execute("SELECT id, report_id, words FROM passages") if rid not in skip_reports}


def read_passages(con: sqlite3.Connection, reports: dict[str, Report], rows: list[int] | None = None) -> list[Passage]:
    sql = 'SELECT row, id, report_id, section, text, start, "end" FROM passages'
    if rows is None:
        records = con.execute(sql + " ORDER BY row").fetchall()
    else:
        records = select_in(con, sql + " WHERE row IN", sorted(set(int(r) for r in rows)))
        order = {r: n for n, r in enumerate(rows)}
        records.sort(key=lambda rec: order[rec[0]])
    out = []
    for _, pid, rid, section, text, start, end in records:
        r = reports[rid]
        out.append(Passage(id=pid, report_id=rid, section=section, text=text, start=start, end=end,
                           org=r.org, year=r.year, source=r.source))
    return out


def write_manifest(path: Path, **fields) -> None:
    fields = {"format": FORMAT_VERSION, "parser_version": PARSER_VERSION, "created": time.time(), **fields}
    path.write_text(json.dumps(fields, ensure_ascii=False, indent=2), encoding="utf-8")


def read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(f"{path} is missing or unreadable: not a govqa index generation") from exc


def check_manifest(manifest: dict, embedder_name: str, dim: int, dictionary: str) -> None:
    problems = []
    if manifest.get("format") != FORMAT_VERSION:
        problems.append(f"index format {manifest.get('format')} (this govqa reads {FORMAT_VERSION})")
    if manifest.get("embedder") != embedder_name or manifest.get("dim") != dim:
        problems.append(f"embedder {manifest.get('embedder')} ({manifest.get('dim')}-d), configured {embedder_name} ({dim}-d)")
    if manifest.get("dictionary") != dictionary:
        problems.append("a different tokenizer dictionary")
    if manifest.get("parser_version") != PARSER_VERSION:
        problems.append(f"parser version {manifest.get('parser_version')} (now {PARSER_VERSION})")
    if problems:
        raise IndexMismatchError(
            "the index was built with " + "; ".join(problems) + ". Rebuild it: govqa ingest --rebuild PATH..."
        )


def save_vectors(path: Path, vectors: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(vectors, dtype=np.float32))


def report_dict(report: Report) -> dict:
    d = asdict(report)
    d.pop("text")
    d["aliases"] = list(report.aliases)
    d["review"] = list(report.review)
    d["spans"] = [list(s) for s in report.spans]
    d["pages"] = len(report.pages)  # how many pages the file has (0: not a paged file), not their offsets
    return d
