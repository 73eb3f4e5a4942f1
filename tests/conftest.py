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


def load_index(root, embedder, reuse=None):
    """The current generation of the index at `root`."""
    from retriever.index import Index, IndexDir

    return Index(IndexDir(root).current_path(), embedder.name, embedder.dim, reuse=reuse)


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


# A report written for the tests: a unit and a year none of the five real reports has.
NEW_REPORT = """青石县市场监督管理局2024年度法治政府建设工作报告

2024年，青石县市场监督管理局在县委、县政府的坚强领导下，深入学习贯彻习近平法治思想，扎实推进法治政府建设各项工作，现将有关情况报告如下。

一、主要工作成效
（一）规范行政执法行为。全面落实行政执法公示、执法全过程记录、重大执法决定法制审核三项制度，全年办理市场监管行政处罚案件146件，罚没款合计83.5万元，重大执法决定法制审核率达到100%。
（二）强化执法监督。组织开展行政执法案卷评查2次，评查案卷60卷，发现并整改问题17个。
（三）开展普法宣传。围绕食品安全、知识产权保护等主题开展普法宣传活动32场，发放宣传资料1.2万份。

二、存在的不足
执法人员专业能力仍需提升，基层执法力量相对薄弱。

青石县市场监督管理局
2025年1月20日
"""
NEW_QUESTION = "青石县市场监管局2024年办理了多少件行政处罚案件？"
HEADLINE = "重点区域署2023年出具了多少份法律意见书？"


def wait_for(check, seconds: float = 30.0, what: str = "the condition", interval: float = 0.05):
    """Poll `check` until it returns something true (which is returned), or fail after `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


class ServerThread:
    """A real uvicorn server for an app, in a thread, on a loopback port the OS picked; entered once
    `ready_path` answers 200. `served_as_govqa`: with `govqa serve`'s protocol and no proxy headers."""

    def __init__(self, app, ready_path: str = "/readyz", served_as_govqa: bool = False):
        import socket

        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.ready_path = ready_path
        serving = {}
        if served_as_govqa:
            from bot.api.protocol import GovqaHttpProtocol

            serving = {"http": GovqaHttpProtocol, "proxy_headers": False}
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **serving))

    def __enter__(self):
        import threading
        import time

        import httpx

        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the test server did not answer {self.ready_path} in 60 s")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
