"""Load on the answer API: starts `govqa serve` on 127.0.0.1 over an index of the given reports,
sends a fixed number of POST /v1/answer requests at each concurrency, prints p50/p99 latency and
requests/s, and stops the server. Loopback only, bounded by the request count and a deadline.

    python bench/load.py [--reports ../shared/reports] [--requests 400] [--concurrency 1 16 64] [--json OUT]
"""

import argparse
import asyncio
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


async def run_level(url: str, concurrency: int, total: int, deadline: float, questions: list[str]) -> dict:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(total))

    async def worker(client: httpx.AsyncClient):
        nonlocal errors
        for i in queue:
            if time.monotonic() > deadline:
                return
            t = time.perf_counter()
            r = await client.post("/v1/answer", json={"question": questions[i % len(questions)]})
            latencies.append(time.perf_counter() - t)
            errors += r.status_code != 200

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await client.post("/v1/answer", json={"question": questions[0]})  # warm
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(latencies), "errors": errors,
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "rps": round(len(latencies) / elapsed, 1)}


def load_server(index: Path, questions: list[str], concurrency: list[int], requests: int, seconds: float,
                workers: int = 1) -> list[dict]:
    """Start `govqa serve` on loopback over `index`, run each concurrency level, stop the server."""
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
        return [asyncio.run(run_level(url, c, requests, time.monotonic() + seconds, questions)) for c in concurrency]
    finally:
        server.terminate()
        server.wait(timeout=30)


def print_rows(rows: list[dict]) -> None:
    print(f"{'concurrency':>12}{'requests':>10}{'errors':>8}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}")
    for r in rows:
        print(f"{r['concurrency']:>12}{r['requests']:>10}{r['errors']:>8}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['rps']:>10.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", default=str(REPO.parent / "shared" / "reports"))
    ap.add_argument("--requests", type=int, default=400, help="per concurrency level")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--seconds", type=float, default=120, help="deadline per level")
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        env = {**os.environ, "GOVQA_INDEX__DIR": str(index)}
        subprocess.run(govqa() + ["ingest", args.reports], env=env, check=True, capture_output=True, cwd=REPO)
        rows = load_server(index, QUESTIONS, args.concurrency, args.requests, args.seconds, args.workers)
    print(f"POST /v1/answer, {len(QUESTIONS)} questions in turn, {os.cpu_count()} cores, {args.workers} server process(es)")
    print_rows(rows)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
