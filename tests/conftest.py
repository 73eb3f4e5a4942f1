from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REPORTS = SHARED / "reports"
DEV = SHARED / "eval" / "dev.jsonl"
SAMPLES = REPO / "samples" / "reports"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def needs_shared():
    return pytest.mark.skipif(not REPORTS.is_dir(), reason="../shared/reports is not beside the checkout")


@pytest.fixture(scope="session")
def use_embedder():
    from embeddings import make_embedder

    return make_embedder("use-multilingual")


@pytest.fixture(scope="session")
def config():
    from bot.config import load_config

    return load_config(REPO / "config.toml", environ={})


@pytest.fixture(scope="session")
def real_index(tmp_path_factory, use_embedder):
    """The five real reports, indexed once with the real default embedder."""
    if not REPORTS.is_dir():
        pytest.skip("../shared/reports is not beside the checkout")
    from retriever.ingest import ingest

    root = tmp_path_factory.mktemp("real-index")
    result = ingest(root, [REPORTS], use_embedder)
    assert not result.failed, result.failed
    return root


@pytest.fixture(scope="session")
def service(real_index, config, use_embedder):
    from bot.service import open_service

    return open_service(config, real_index, embedder=use_embedder)


@pytest.fixture(scope="session")
def dev_questions():
    if not DEV.is_file():
        pytest.skip("../shared/eval/dev.jsonl is not beside the checkout")
    return [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
