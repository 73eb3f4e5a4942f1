import shutil

import numpy as np
import pytest

from embeddings import make_embedder
from retriever.index import GenerationInfo, Index, IndexBusyError, IndexDir
from retriever.ingest import ingest
from retriever.search import HybridSearcher
from retriever.store import IndexMismatchError
from retriever.types import Filters

from .conftest import REPORTS, SAMPLES, load_index, needs_shared

HEADLINE = "重点区域署2023年出具了多少份法律意见书"


@needs_shared()
def test_headline_passage_ranks_first(real_index, use_embedder):
    searcher = HybridSearcher(load_index(real_index, use_embedder), use_embedder)
    hits = searcher.search(HEADLINE, k=5).hits
    assert "出具法律意见书79件" in hits[0].passage.text
    assert hits[0].passage.source == "002_cdcfa3983a87bb7e.txt"


@needs_shared()
def test_round_trip_reload_gives_identical_results(real_index, use_embedder):
    a = HybridSearcher(load_index(real_index, use_embedder), use_embedder)
    b = HybridSearcher(load_index(real_index, use_embedder), use_embedder)
    for q in (HEADLINE, "海安高新区协商议事活动", "电子证照签发"):
        ha, hb = a.search(q, k=8).hits, b.search(q, k=8).hits
        assert [(h.passage.id, h.score) for h in ha] == [(h.passage.id, h.score) for h in hb]


@needs_shared()
def test_filters_by_year_and_unit(real_index, use_embedder):
    index = load_index(real_index, use_embedder)
    searcher = HybridSearcher(index, use_embedder)
    filters = searcher.catalog.resolve("珠海高新区党群工作部2022年提拔了几名干部")
    assert filters.years == (2022,)
    assert [index.report_by_id[r].source for r in filters.report_ids] == ["000_664a3152b5d6de2d.txt"]
    hits = searcher.search("提拔干部", k=10, filters=Filters(years=(2023,))).hits
    assert hits and all(h.passage.year == 2023 for h in hits)
    assert searcher.search(HEADLINE.replace("2023", "2021"), k=5).hits == []
    # a generic name (高新区) is not a unit filter
    assert searcher.catalog.resolve("高新区签发了多少张电子证照").report_ids == ()


@needs_shared()
def test_dense_exact_search_matches_brute_force(real_index, use_embedder):
    index = load_index(real_index, use_embedder)
    q = use_embedder.embed_query("网络安全攻防演练")
    _, found = index.segments[0].ann.search(q[None, :], 10)
    brute = np.argsort(-(np.asarray(index.segments[0].vectors) @ q), kind="stable")[:10]
    assert list(found[0]) == list(brute)


def test_bad_files_are_reported_and_never_break_the_index(tmp_path):
    emb = make_embedder("hashing", dim=64)
    root = tmp_path / "index"
    first = ingest(root, [SAMPLES], emb)
    assert not first.failed and first.reports == 5
    before = IndexDir(root).current()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "binary.txt").write_bytes(b"\x00\xff" * 500)
    (bad / "broken.docx").write_bytes(b"PK\x03\x04broken")
    (bad / "noyear.txt").write_text("区统计局坚持依法统计，全面推进法治建设。全年开展统计执法检查15次。", encoding="utf-8")
    shutil.copy(SAMPLES / "guoziwei_2023.txt", bad / "copy_of_guoziwei.txt")
    good = bad / "tongji_2023.txt"
    good.write_text("某区统计局2023年法治政府建设年度报告\n2023年，区统计局坚持依法统计。全年开展统计执法检查15次。\n", encoding="utf-8")
    result = ingest(root, [bad], emb)
    status = {f.path.split("/")[-1]: f.status for f in result.files}
    assert status == {"empty.txt": "failed", "binary.txt": "failed", "broken.docx": "failed", "noyear.txt": "added",
                      "copy_of_guoziwei.txt": "duplicate", "tongji_2023.txt": "added"}
    assert all(f.error for f in result.failed)
    # a report without a year is indexed with what is known, flagged for a person to check
    noyear = next(f for f in result.files if f.path.endswith("noyear.txt"))
    assert any("no year" in why for why in noyear.review) and noyear.year is None
    assert result.reports == 7
    assert IndexDir(root).current() != before
    index = load_index(root, emb)
    assert len(index.reports) == 7
    log = [row[2] for row in GenerationInfo.read(index.path, emb.name, emb.dim).log()]
    assert log.count("failed") == 3


def test_incremental_equals_from_scratch(tmp_path):
    emb = make_embedder("hashing", dim=64)
    files = sorted(SAMPLES.iterdir())
    inc = tmp_path / "inc"
    ingest(inc, files[:2], emb)
    ingest(inc, files[2:], emb)
    second = ingest(inc, files, emb)
    assert second.embedded == 0  # nothing new: every vector reused
    scratch = tmp_path / "scratch"
    ingest(scratch, files, emb)
    a, b = load_index(inc, emb), load_index(scratch, emb)
    assert [p.id for p in a.all_passages()] == [p.id for p in b.all_passages()]
    assert np.array_equal(np.asarray(a.segments[0].vectors), np.asarray(b.segments[0].vectors))
    sa, sb = HybridSearcher(a, emb), HybridSearcher(b, emb)
    for q in ("出具法律意见书", "协商议事活动", "电子证照"):
        assert [(h.passage.id, h.score) for h in sa.search(q, k=5).hits] == [(h.passage.id, h.score) for h in sb.search(q, k=5).hits]


def test_changed_and_pruned_reports(tmp_path):
    emb = make_embedder("hashing", dim=64)
    folder = tmp_path / "reports"
    shutil.copytree(SAMPLES, folder)
    root = tmp_path / "index"
    ingest(root, [folder], emb)
    target = folder / "guoziwei_2023.txt"
    target.write_text(target.read_text(encoding="utf-8").replace("40余次", "50余次"), encoding="utf-8")
    (folder / "dangqun_2022.txt").unlink()
    result = ingest(root, [folder], emb, prune=True)
    status = {f.path.split("/")[-1]: f.status for f in result.files}
    assert status["guoziwei_2023.txt"] == "updated" and status["dangqun_2022.txt"] == "removed"
    assert 0 < result.embedded < result.passages
    index = load_index(root, emb)
    assert len(index.reports) == 4
    assert any("50余次" in p.text for p in index.all_passages())
    assert not any("40余次" in p.text for p in index.all_passages())


def test_loading_with_another_embedder_fails_clearly(tmp_path):
    root = tmp_path / "index"
    ingest(root, [SAMPLES], make_embedder("hashing", dim=64))
    other = make_embedder("hashing", dim=32)
    with pytest.raises(IndexMismatchError, match="hashing-64"):
        load_index(root, other)


def test_a_second_ingest_waits_or_fails_with_no_wait(tmp_path):
    root = IndexDir(tmp_path / "index")
    with root.lock():
        with pytest.raises(IndexBusyError, match="another ingest"):
            ingest(root.root, [SAMPLES], make_embedder("hashing", dim=64), wait=False)


def test_leftovers_of_a_killed_build_are_cleaned_and_old_generations_pruned(tmp_path):
    emb = make_embedder("hashing", dim=64)
    root = IndexDir(tmp_path / "index")
    files = sorted(SAMPLES.iterdir())
    for i in range(1, len(files) + 1):
        ingest(root.root, files[:i], emb, keep_generations=2)
    stale = root.generations / ".tmp-g999999"
    stale.mkdir()
    (stale / "store.sqlite").write_bytes(b"half written")
    ingest(root.root, files, emb, rebuild=True, keep_generations=2)
    names = sorted(p.name for p in root.generations.iterdir())
    assert names == [f"g{len(files):06d}", f"g{len(files) + 1:06d}"]
    assert root.current() == f"g{len(files) + 1:06d}"


def test_a_passage_whose_neighbours_match_the_question_ranks_higher(tmp_path):
    from retriever.index import IndexSettings, build_generation
    from retriever.types import Passage, Report

    texts = ["机关党建工作扎实推进。", "本年度组织开展专项培训。", "食堂卫生检查情况良好。",  # report a
             "本年度组织开展专项培训。", "培训覆盖全体执法人员。", "无关的财务报销说明。"]  # report b
    reports = [Report(id=r, source=f"{r}.txt", title=r, org=r, aliases=(), region="", year=2023, published=None,
                      text="\n".join(texts[i * 3:i * 3 + 3])) for i, r in enumerate("ab")]
    passages, offset = [], {"a": 0, "b": 0}
    for i, t in enumerate(texts):
        rid = "ab"[i // 3]
        passages.append(Passage(id=f"p{i}", report_id=rid, section="", text=t, start=offset[rid],
                                end=offset[rid] + len(t), org=rid, year=2023, source=f"{rid}.txt"))
        offset[rid] += len(t) + 1
    embedder = make_embedder("hashing", dim=64)
    build_generation(tmp_path, reports, passages, embedder.embed_documents(texts), [p.id for p in passages], [],
                     embedder.name, embedder.dim, IndexSettings())
    index = Index(tmp_path, embedder.name, embedder.dim)
    query = "执法人员专项培训"

    def top(context, mode="hybrid"):
        hits = HybridSearcher(index, embedder, context=context).search(query, k=6, filters=Filters(), mode=mode).hits
        return [(h.passage.id, h.score) for h in hits]

    # two identical sentences tie (the earlier row first) until context counts; then the one next
    # to "培训覆盖全体执法人员" wins
    without, with_context = [pid for pid, _ in top(0.0)], [pid for pid, _ in top(0.3)]
    assert without.index("p1") < without.index("p3")
    assert with_context.index("p3") < with_context.index("p1")
    # single-retriever modes stay pure: context does not change them
    assert top(0.0, "lexical") == top(0.3, "lexical")
    with pytest.raises(ValueError, match="context"):
        HybridSearcher(index, embedder, context=1.5)


@needs_shared()
@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_above_the_exact_threshold_finds_what_exact_search_finds(tmp_path, use_embedder, kind):
    """The approximate index against the brute-force oracle, on the real reports and embedder (on so
    few passages IVF searches all its lists; the test below makes it approximate)."""
    from retriever.index import IndexSettings

    exact_root, approx_root = tmp_path / "exact", tmp_path / kind
    ingest(exact_root, [REPORTS], use_embedder)
    ingest(approx_root, [REPORTS], use_embedder, settings=IndexSettings(exact_max=10, ann=kind, ivf_lists=4))
    exact, approx = load_index(exact_root, use_embedder), load_index(approx_root, use_embedder)
    assert exact.manifest["segments"][0]["faiss"] == "flat" and approx.manifest["segments"][0]["faiss"] == kind
    if kind == "ivf":
        # at least 39 passages a list: 4 lists asked, as many as the passages allow, all searched
        assert approx.segments[0].ann.nlist == approx.segments[0].ann.nprobe == min(4, approx.size // 39) > 1
    queries = [p.text[:40] for p in exact.all_passages()[::7]] + [HEADLINE, "行政复议案件", "普法宣传活动"]
    vectors = np.stack([use_embedder.embed_query(q) for q in queries]).astype(np.float32)
    ex_scores, _ = exact.segments[0].ann.search(vectors, 10)
    _, found = approx.segments[0].ann.search(vectors, 10)
    # a result counts when its exact score reaches the 10th best (ties are common in reports)
    got = [np.asarray(exact.segments[0].vectors)[f[f >= 0]] @ q for f, q in zip(found, vectors, strict=True)]
    recall = np.mean([np.sum(g >= e[-1] - 1e-5) / 10 for e, g in zip(ex_scores, got, strict=True)])
    assert recall >= 0.95
    for q in (HEADLINE, "海安高新区协商议事活动"):
        a = HybridSearcher(exact, use_embedder).search(q, k=5).hits
        b = HybridSearcher(approx, use_embedder).search(q, k=5).hits
        assert [h.passage.id for h in a] == [h.passage.id for h in b]


def test_ivf_searching_a_share_of_its_lists_keeps_recall():
    """IVF as built for a large segment (2 * sqrt(N) lists, the default probe), on vectors in
    clusters as embeddings are: recall@10 against exact search while it reads a part of the lists."""
    from retriever.index import IndexSettings, configure_search, vector_index

    rng = np.random.default_rng(5)
    centres = rng.standard_normal((60, 64))
    vectors = centres[rng.integers(0, 60, 8000)] + 0.6 * rng.standard_normal((8000, 64))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    queries = vectors[rng.choice(8000, 100, replace=False)] + 0.05 * rng.standard_normal((100, 64)).astype(np.float32)
    settings = IndexSettings(exact_max=1000)
    ivf, kind = vector_index(vectors, 64, settings)
    flat, _ = vector_index(vectors, 64, IndexSettings(exact_max=10_000))
    assert kind == "ivf" and ivf.nlist == round(2 * 8000**0.5)
    configure_search(ivf, settings)
    assert ivf.nprobe == settings.ivf_probe < ivf.nlist
    exact, _ = flat.search(queries, 10)
    _, found = ivf.search(queries, 10)
    got = [vectors[f[f >= 0]] @ q for f, q in zip(found, queries, strict=True)]
    recall = np.mean([np.sum(g >= e[-1] - 1e-5) / 10 for e, g in zip(exact, got, strict=True)])
    assert recall >= 0.95


@needs_shared()
def test_fast_paths_equal_their_brute_force_oracles(real_index, use_embedder):
    """Unit matching by dictionary lookups against the scan of every alias; BM25 scoring of a few
    reports' rows against scoring every passage; report ranges against a scan of the rows."""
    from retriever.catalog import UnitMatcher, match_units
    from retriever.search import bm25_rows

    index = load_index(real_index, use_embedder)
    matcher = UnitMatcher(index.reports)
    questions = [HEADLINE, "珠海高新区党群工作部2022年提拔了几名干部", "区国资委和海安高新区2023年各审核了多少合同",
                 "高新区管委会的报告", "党政办和党群工作部", "重点区域署重点区域署", "ＡＢＣ党政办"]
    questions += [f"{a}与{b}" for r in index.reports for a in r.aliases[:3] for b in index.reports[0].aliases[:2]]
    for q in questions:
        assert matcher.match(q) == match_units(q, index.reports), q
    searcher = HybridSearcher(index, use_embedder)
    rng = np.random.default_rng(0)
    for q in (HEADLINE, "行政复议案件办理情况", "普法宣传活动"):
        ids = index.segments[0].bm25.get_tokens_ids(searcher.tokenizer.tokens(q))
        full = index.segments[0].bm25.get_scores_from_ids(ids)
        for report in index.reports:
            rows = index.rows_of([report.id])
            assert np.array_equal(rows, np.flatnonzero(index.row_report == index.reports.index(report)))
            np.testing.assert_allclose(bm25_rows(index.segments[0].bm25, ids, rows), full[rows], rtol=1e-5, atol=1e-6)
        rows = index.rows_of([index.reports[0].id, index.reports[2].id, index.reports[-1].id])  # runs of rows
        np.testing.assert_allclose(bm25_rows(index.segments[0].bm25, ids, rows), full[rows], rtol=1e-5, atol=1e-6)
        rows = np.sort(rng.choice(index.size, 40, replace=False))
        np.testing.assert_allclose(bm25_rows(index.segments[0].bm25, ids, rows), full[rows], rtol=1e-5, atol=1e-6)


@needs_shared()
def test_bm25_matrix_scores_as_bm25s_indexing_does(real_index, use_embedder):
    """Our vectorised BM25 build against bm25s's own indexing of the same tokens (the oracle)."""
    import bm25s

    from retriever.index import BM25Builder
    from retriever.tokenize import BM25_B, BM25_K1, get_tokenizer

    tokenizer = get_tokenizer()
    corpus = [tokenizer.tokens(p.text) for p in load_index(real_index, use_embedder).all_passages()]
    reference = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    reference.index(corpus, show_progress=False)
    vocab: dict[str, int] = {}
    ids = [np.array([vocab.setdefault(t, len(vocab)) for t in doc], dtype=np.int32) for doc in corpus]
    for window in (7, 20_000):  # passages come in windows: across window borders as within
        builder = BM25Builder()
        for start in range(0, len(ids), window):
            part = ids[start : start + window]
            builder.add(np.concatenate(part), np.repeat(np.arange(len(part)), [d.size for d in part]), len(part))
        data, indices, indptr, df, _ = builder.build(len(vocab), BM25_K1, BM25_B)
        assert df.sum() == sum(len(set(doc)) for doc in corpus)
        ours = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        ours.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": len(corpus)}
        ours.vocab_dict, ours.nonoccurrence_array = vocab, None
        for q in (HEADLINE, "行政复议案件办理情况", "普法宣传活动", "海安高新区协商议事活动"):
            tokens = tokenizer.tokens(q)
            np.testing.assert_allclose(ours.get_scores_from_ids(ours.get_tokens_ids(tokens)),
                                       reference.get_scores_from_ids(reference.get_tokens_ids(tokens)),
                                       rtol=1e-5, atol=1e-6)


def _report_texts() -> list[str]:
    from retriever.ingest import parse_report

    files = sorted(SAMPLES.iterdir()) + (sorted(REPORTS.iterdir()) if REPORTS.is_dir() else [])
    return [parse_report(f).text for f in files if f.suffix in (".txt", ".html")]


def test_segmentation_cuts_as_jieba_does():
    """jieba-rs with jieba's dictionary and ours cuts exactly as jieba does: on the reports' text
    and on random strings of their characters with digits, Latin letters, spaces and emoji mixed in."""
    import logging
    import random
    from importlib import resources

    import jieba

    from retriever.tokenize import get_tokenizer, normalize, userdict_path

    jieba.setLogLevel(logging.WARNING)
    reference = jieba.Tokenizer()
    with resources.as_file(userdict_path()) as path:
        reference.load_userdict(str(path))
    ours = get_tokenizer()._segmenter
    texts = [normalize(t) for t in _report_texts()]
    rng = random.Random(3)
    alphabet = sorted(set("".join(texts))) + list("abcXYZ019 .%#+&-_\t\r\n😀ｱ가é")
    lines = [line for t in texts for line in t.splitlines()]
    texts += ["".join(c if rng.random() > 0.1 else rng.choice(alphabet) for c in line) for line in lines]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(5000)]
    texts.append("传活生丽")  # a near tie (found by fuzzing) that needs the two dictionary totals equal
    differ = [t for t in texts if ours.cut(t, False) != reference.lcut(t, HMM=False)]
    assert not differ, differ[:3]


def test_vocabulary_encodes_the_tokens_the_tokenizer_gives():
    """The windowed encoder (numbers for n-grams; words given, or segmented) against
    Tokenizer.tokens, text by text and token by token, with ids kept across windows."""
    from collections import Counter

    from retriever.tokenize import Vocabulary, get_tokenizer

    tokenizer = get_tokenizer()
    texts = [t[i : i + 300] for t in _report_texts() for i in range(0, len(t), 300)]
    texts += ["", "abc 123", "ＡＢＣ１２３全角", "的了和", "😀重点区域\r\n署"]
    known = [tokenizer.index_words(t) if i % 3 == 0 else None for i, t in enumerate(texts)]
    vocab = Vocabulary()
    for start in range(0, len(texts), 50):
        words, tokens, owner = vocab.encode(texts[start : start + 50], known[start : start + 50])
        names = {i: t for t, i in vocab.ids.items()}
        assert len(names) == len(vocab.ids)
        for j, text in enumerate(texts[start : start + 50]):
            assert words[j] == tokenizer.index_words(text)
            assert Counter(names[int(i)] for i in tokens[owner == j]) == Counter(tokenizer.tokens(text)), text


def test_unit_matching_by_lookup_equals_the_scan_with_many_reports_sharing_names():
    """Many reports of one unit (its years) and many units under one short name, as in a province's
    corpus: the dictionary lookup still equals the scan of every alias."""
    from retriever.catalog import UnitMatcher, match_units
    from retriever.metadata import alias_set
    from retriever.types import Report

    reports = []
    for place in ("青石县", "东湖区", "青石市", "云溪区"):  # known 区s: their bureaus also go by the bureau alone
        for bureau in ("市场监督管理局", "司法局", "财政局"):
            for year in (2021, 2022, 2023):
                org = place + bureau
                reports.append(Report(id=f"{org}{year}", source=f"{org}{year}.txt", title=f"{org}{year}年法治政府建设年度报告",
                                      org=org, aliases=alias_set([org], place), region=place, year=year, published=None,
                                      text=""))
    # short names shared by several units, each with several reports
    assert len({r.org for r in reports if "市场监督管理局" in r.aliases}) == 2
    matcher = UnitMatcher(reports)
    questions = ["青石县市场监督管理局2023年办理了多少件行政复议？", "市场监督管理局有多少", "青石县司法局和东湖区财政局",
                 "云溪区市场监督管理局与市场监督管理局", "东湖区司法局与司法局", "青石市司法局青石县司法局", "司法局",
                 "东湖区"]
    for q in questions:
        assert matcher.match(q) == match_units(q, reports), q
