"""Delta segments: an ingest into an index writes what changed beside the existing segments."""

import shutil

import numpy as np

from embeddings import make_embedder
from retriever.index import IndexDir, IndexSettings
from retriever.ingest import ingest
from retriever.search import HybridSearcher, lexical_scores
from retriever.tokenize import get_tokenizer

from .conftest import HEADLINE, REPORTS, SAMPLES, load_index, needs_shared

DELTAS = IndexSettings(delta_share=1.0)  # always a delta, whatever its size next to the base


def test_a_delta_segment_scores_its_passages_as_one_build_of_everything_would(tmp_path):
    """The oracle: a full build of all the files. BM25 statistics of a delta are those of the whole
    index, so its passages score exactly as in the full build; their vectors are the same."""
    emb = make_embedder("hashing", dim=64)
    files = sorted(SAMPLES.iterdir())
    ingest(tmp_path / "delta", files[:3], emb, settings=DELTAS)
    added = ingest(tmp_path / "delta", files[3:], emb, settings=DELTAS)
    ingest(tmp_path / "full", files, emb)
    delta, full = load_index(tmp_path / "delta", emb), load_index(tmp_path / "full", emb)
    assert [e["passages"] for e in delta.manifest["segments"]][1] == added.embedded > 0
    assert len(delta.segments) == 2 and len(full.segments) == 1
    assert sorted(r.id for r in delta.reports) == sorted(r.id for r in full.reports)
    new_rows = np.arange(delta.offsets[1], delta.size)
    ids = [p.id for p in delta.passages(new_rows.tolist())]
    where = {p.id: i for i, p in enumerate(full.all_passages())}
    full_rows = np.array([where[i] for i in ids])
    np.testing.assert_array_equal(delta.vectors_at(new_rows), full.vectors_at(full_rows))
    tokenizer = get_tokenizer()
    for q in ("出具法律意见书", "协商议事活动", "电子证照签发", "行政复议案件", "国有资产监督管理"):
        tokens = tokenizer.tokens(q)
        ours, theirs = lexical_scores(delta, tokens, None)[new_rows], lexical_scores(full, tokens, None)[full_rows]
        assert theirs.max() > 0
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        # and scoring only some rows (the filtered path) gives the same numbers
        np.testing.assert_allclose(lexical_scores(delta, tokens, new_rows[::3]), ours[::3], rtol=1e-5)
    assert delta.idf("法律意见书") == full.idf("法律意见书")


@needs_shared()
def test_a_report_added_as_a_delta_is_answered(tmp_path, use_embedder, config):
    from bot.service import open_service

    files = sorted(REPORTS.iterdir())
    target = next(f for f in files if f.name.startswith("002_"))  # the 重点区域署 report
    root = tmp_path / "index"
    ingest(root, [f for f in files if f != target], use_embedder, settings=DELTAS)
    result = ingest(root, [REPORTS], use_embedder, settings=DELTAS)
    assert {f.path.split("/")[-1]: f.status for f in result.files if f.status != "unchanged"} == {target.name: "added"}
    assert result.embedded == result.files[[f.status for f in result.files].index("added")].passages
    service = open_service(config, root, embedder=use_embedder)
    assert len(service.index.index.segments) == 2
    answer = service.composer.answer(HEADLINE)
    assert "79件" in answer.text and answer.citations[0].source == target.name
    hits = service.searcher.search("出具法律意见书", k=5, mode="lexical").hits  # unfiltered, both segments
    assert any(h.passage.source == target.name for h in hits)


def test_replaced_and_removed_reports_are_deleted_from_their_segment(tmp_path):
    emb = make_embedder("hashing", dim=64)
    folder = tmp_path / "reports"
    shutil.copytree(SAMPLES, folder)
    root = tmp_path / "index"
    ingest(root, [folder], emb, settings=DELTAS)
    before = load_index(root, emb)
    old = {r.source: r for r in before.reports}
    target = folder / "guoziwei_2023.txt"
    target.write_text(target.read_text(encoding="utf-8").replace("40余次", "50余次"), encoding="utf-8")
    (folder / "dangqun_2022.txt").unlink()
    (folder / "reports.toml").write_text('["haian_2023.html"]\norg = "海安高新区管委会"\n', encoding="utf-8")
    result = ingest(root, [folder], emb, prune=True, settings=DELTAS)
    status = {f.path.split("/")[-1]: f.status for f in result.files}
    assert (status["guoziwei_2023.txt"], status["dangqun_2022.txt"], status["haian_2023.html"]) == ("updated", "removed", "updated")
    index = load_index(root, emb, reuse=before)
    assert index.segments[0] is before.segments[0]  # the base is shared, not loaded again
    assert sorted(index.manifest["segments"][0]["deleted"]) == sorted(
        old[name].id for name in ("guoziwei_2023.txt", "dangqun_2022.txt", "haian_2023.html"))
    assert len(index.reports) == 4 == len({r.id for r in index.reports})
    assert {r.source: r.org for r in index.reports}["haian_2023.html"] == "海安高新区管委会"
    texts = [p.text for p in index.all_passages()]
    assert any("50余次" in t for t in texts) and not any("40余次" in t for t in texts)
    assert all(p.report_id in index.report_by_id for p in index.all_passages())
    assert index.passage_counts().sum() == result.passages == len(texts)
    searcher = HybridSearcher(index, emb)
    for q in ("国资委开展了40余次", "党群工作部提拔干部", "海安高新区协商议事活动"):
        for mode in ("hybrid", "lexical", "dense"):
            hits = searcher.search(q, k=20, mode=mode).hits
            assert hits and all(h.passage.report_id in index.report_by_id for h in hits)
            assert all(h.passage.org == index.report_by_id[h.passage.report_id].org for h in hits)


def test_deltas_merge_past_max_deltas_and_everything_is_rebuilt_past_delta_share(tmp_path):
    emb = make_embedder("hashing", dim=64)
    files = sorted(SAMPLES.iterdir())
    root = IndexDir(tmp_path / "index")
    sizes = []
    for i in range(1, len(files) + 1):
        ingest(root.root, files[:i], emb, settings=IndexSettings(delta_share=1.0, max_deltas=2), keep_generations=1)
        sizes.append(len(load_index(root.root, emb).segments))
    assert sizes == [1, 2, 3, 2, 3]  # the third delta took the two before it in
    index = load_index(root.root, emb)
    ingest(tmp_path / "scratch", files, emb)
    scratch = load_index(tmp_path / "scratch", emb)
    assert sorted(p.id for p in index.all_passages()) == sorted(p.id for p in scratch.all_passages())
    # keep_generations=1 removed every older generation whose segment is no longer used
    used = {e["name"] for e in index.manifest["segments"]} | {root.current()}
    assert {p.name for p in root.generations.iterdir()} == used
    # deltas holding more than delta_share of the passages: one segment again (the Index loaded above
    # released first: a generation a live reader holds is never removed)
    del index
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "tongji_2023.txt").write_text(
        "某区统计局2023年法治政府建设年度报告\n2023年，区统计局坚持依法统计。全年开展统计执法检查15次。\n", encoding="utf-8")
    ingest(root.root, [*files, tmp_path / "extra"], emb, settings=IndexSettings(delta_share=0.01), keep_generations=1)
    index = load_index(root.root, emb)
    assert len(index.segments) == 1 and index.manifest["segments"][0]["name"] == root.current()
    assert len(index.reports) == 6 and sorted(p.name for p in root.generations.iterdir()) == [root.current()]
