"""Load on the answer API: starts `govqa serve` on 127.0.0.1 over an index of the given reports,
sends a fixed number of POST /v1/answer requests at each concurrency, prints p50/p99 latency and
requests/s, and stops the server. Loopback only, bounded by the request count and a deadline.

    python bench/load.py [--reports ../shared/reports] [--requests 400] [--concurrency 1 16 64] [--json OUT]
                         [--reload-mid REPORT]

With --reload-mid, halfway through each level REPORT is ingested into the served index and the
server told to reload (POST /v1/index/reload): the errors column then counts any request the
switch broke.
"""

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = [  # a mix: numeric, fact, refusal (no such year), unit not indexed
    "重点区域署2023年出具了多少份法律意见书？",
    "重点区域署2021年出具了多少份法律意见书？",
    "海安高新区2023年开展了哪些普法活动？",
    "区国资委2023年审核了多少份合同？",
    "财政局2023年收到多少件行政复议申请？",
    "珠海高新区党群工作部2022年提拔了几名干部？",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def govqa() -> list[str]:
    exe = Path(sys.executable).with_name("govqa")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "bot.cli"]


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, one connection a worker: the load
    client runs on the same cores as the server, and httpx takes ~1.5 ms of CPU a request, which
    the server then does not have. Sends a POST, reads the status line, the headers and
    Content-Length bytes of body."""

    def __init__(self, url: str):
        host_port = url.removeprefix("http://")
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 80)
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, payload: dict) -> int:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
            self.streams[1].get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader, writer = self.streams
        body = json.dumps(payload, ensure_ascii=False).encode()
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        await reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return int(head[0].split()[1])

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def run_level(url: str, concurrency: int, total: int, deadline: float, questions: list[str],
                    client: str = "raw", midway=None) -> dict:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(total))
    switched = None

    async def worker(post):
        nonlocal errors, switched
        for i in queue:
            if time.monotonic() > deadline:
                return
            if midway is not None and i == total // 2:  # a new generation while the others keep asking
                switched = asyncio.ensure_future(asyncio.to_thread(midway))
            t = time.perf_counter()
            status = await post("/v1/answer", {"question": questions[i % len(questions)]})
            latencies.append(time.perf_counter() - t)
            errors += status != 200

    async with contextlib.AsyncExitStack() as stack:
        if client == "httpx":
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            shared = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60, limits=limits))

            async def post(path, payload):
                return (await shared.post(path, json=payload)).status_code

            posts = [post] * concurrency
        else:
            raw = [RawClient(url) for _ in range(concurrency)]
            for c in raw:
                stack.push_async_callback(c.close)
            posts = [c.post for c in raw]
        for post in posts:  # warm, and open every connection before the clock starts
            await post("/v1/answer", {"question": questions[0]})
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(post) for post in posts))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if switched is not None:
            await switched
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "client": client, "requests": len(latencies), "errors": errors,
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "rps": round(len(latencies) / elapsed, 1),
            # the client shares the machine's cores with the server: what it takes of them
            "client_cpu_ms_per_request": round(cpu / max(len(latencies), 1) * 1000, 2)}


def load_server(index: Path, questions: list[str], concurrency: list[int], requests: int, seconds: float,
                workers: int = 1, client: str = "raw", reload_mid: str | None = None) -> list[dict]:
    """Start `govqa serve` on loopback over `index`, run each concurrency level, stop the server.
    `reload_mid`: a report ingested halfway through each level, and the server reloaded."""
    env = {**os.environ, "GOVQA_INDEX__DIR": str(index), "GOVQA_API__RATE_PER_SECOND": "0"}
    env.pop("GOVQA_API_KEYS", None)
    env.pop("GOVQA_ADMIN_KEYS", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(govqa() + ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                              env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not become ready")
            time.sleep(0.2)
        def midway():
            subprocess.run(govqa() + ["ingest", reload_mid], env=env, check=True, capture_output=True, cwd=REPO)
            httpx.post(url + "/v1/index/reload", timeout=60).raise_for_status()

        return [asyncio.run(run_level(url, c, requests, time.monotonic() + seconds, questions, client,
                                      midway if reload_mid else None))
                for c in concurrency]
    finally:
        server.terminate()
        server.wait(timeout=30)


def print_rows(rows: list[dict]) -> None:
    print(f"{'concurrency':>12}{'requests':>10}{'errors':>8}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}{'client CPU ms/req':>19}")
    for r in rows:
        print(f"{r['concurrency']:>12}{r['requests']:>10}{r['errors']:>8}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['rps']:>10.1f}"
              f"{r['client_cpu_ms_per_request']:>19.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", default=str(REPO.parent / "shared" / "reports"))
    ap.add_argument("--requests", type=int, default=400, help="per concurrency level")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--seconds", type=float, default=120, help="deadline per level")
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="raw: a minimal keep-alive client (little CPU); httpx: the usual Python client")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--reload-mid", default=None, help="a report to ingest halfway through each level, then reload")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        env = {**os.environ, "GOVQA_INDEX__DIR": str(index)}
        subprocess.run(govqa() + ["ingest", args.reports], env=env, check=True, capture_output=True, cwd=REPO)
        rows = load_server(index, QUESTIONS, args.concurrency, args.requests, args.seconds, args.workers, args.client,
                           args.reload_mid)
    print(f"POST /v1/answer, {len(QUESTIONS)} questions in turn, {os.cpu_count()} cores, {args.workers} server process(es), "
          f"{args.client} client")
    print_rows(rows)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
