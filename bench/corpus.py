"""A synthetic corpus at any size, made from the real reports: sentences recombined into new
reports of invented units and years, with every figure changed. Clearly synthetic (the units do
not exist), deterministic for a seed.

    python bench/corpus.py OUT_DIR --passages 100000 [--seed 7] [--reports ../shared/reports]
"""

import argparse
import random
import re
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retriever.clean import clean_text  # noqa: E402
from retriever.readers import read_file  # noqa: E402

REPORTS = Path(__file__).resolve().parents[2] / "shared" / "reports"  # the five real reports
PLACES = ("青石", "白沙", "云溪", "临川", "安平", "东湖", "西岭", "南浦", "北塘", "长宁", "松阳", "柳河", "金川", "石门",
          "桃源", "清水", "龙泉", "凤岗", "梅林", "枫桥")
LEVELS = ("县", "区", "市")
UNITS = ("市场监督管理局", "司法局", "财政局", "生态环境局", "自然资源局", "住房和城乡建设局", "交通运输局", "水务局",
         "卫生健康委员会", "教育局", "应急管理局", "人力资源和社会保障局", "统计局", "文化广电旅游体育局", "农业农村局",
         "民政局", "审计局", "退役军人事务局", "医疗保障局", "城市管理和综合执法局")
HEADINGS = ("一、主要工作成效", "二、存在的不足和原因", "三、党政主要负责人履行推进法治建设第一责任人职责情况",
            "四、下一步工作安排")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SENTENCE = re.compile(r"[^。！？；\n]+[。！？；]")


def sentence_pool(reports_dir: Path) -> list[str]:
    pool = []
    for path in sorted(reports_dir.iterdir()):
        if path.is_file():
            text = clean_text(read_file(path)).text
            pool += [s.strip() for s in _SENTENCE.findall(text) if 15 <= len(s.strip()) <= 160]
    return pool


def synthetic_report(rng: random.Random, pool: list[str], passages: int) -> tuple[str, str, int]:
    """(file name, text, year) of one report of about `passages` passages (of ~250 chars)."""
    unit = rng.choice(PLACES) + rng.choice(LEVELS) + rng.choice(UNITS)
    year = rng.randint(2019, 2025)
    lines = [f"{unit}{year}年法治政府建设年度报告", "",
             f"{year}年，{unit}坚持以习近平新时代中国特色社会主义思想为指导，扎实推进法治政府建设，现将有关情况报告如下。", ""]
    per_heading = max(1, passages // len(HEADINGS))
    for h in HEADINGS:
        lines.append(h)
        for i in range(per_heading):
            body = "".join(_NUMBER.sub(lambda _: str(rng.randint(1, 500)), rng.choice(pool)) for _ in range(rng.randint(2, 3)))
            lines.append(f"（{'一二三四五六七八九十'[i % 10]}）{body}")
        lines.append("")
    lines += [unit, f"{year + 1}年1月{rng.randint(1, 28)}日"]
    return f"synthetic-{rng.getrandbits(48):012x}.txt", "\n".join(lines), year


def write_corpus(out: Path, n_passages: int, seed: int, reports_dir: Path, per_report: int = 30) -> list[Path]:
    rng = random.Random(seed)
    pool = sentence_pool(reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for _ in range(max(1, n_passages // per_report)):
        name, text, _ = synthetic_report(rng, pool, per_report)
        path = out / name
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files


class RandomVectors:
    """Stands in for the default embedder where embedding N passages would take too long: a
    random unit vector per text (the same text, the same vector), under the default's name."""

    def __init__(self, like):
        self.name, self.dim = like.name, like.dim
        self.symmetric = True  # embed_query is embed_documents of one text

    def embed_documents(self, texts):
        out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim, dtype=np.float32)
                        for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_query(self, text):
        return self.embed_documents([text])[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--passages", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--reports", default=str(REPORTS))
    args = ap.parse_args()
    files = write_corpus(Path(args.out), args.passages, args.seed, Path(args.reports))
    print(f"{len(files)} synthetic reports in {args.out}")


if __name__ == "__main__":
    main()
