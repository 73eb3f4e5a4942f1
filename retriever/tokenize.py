"""Lexical tokens for Chinese report text: jieba words (with a user dictionary of government terms
kept in the repo) plus character bigrams, which survive the word splits jieba gets wrong, plus
single characters, which match the paraphrases neither catches (measured on XQuAD-R: +0.014 MRR)."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import threading
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from importlib import resources

# Words that carry no evidence: function words and the question words people type.
STOPWORDS = frozenset(
    "的 了 和 与 及 以及 或 等 在 是 为 对 把 被 将 于 从 向 由 其 之 这 那 此 该 并 而 也 都 又 还 就 "
    "多少 几 几个 几次 几名 几项 哪个 哪些 哪 什么 怎么 怎样 如何 是否 有没有 吗 呢 吧 啊 请问 请 "
    "一下 共 有 个 了解 知道 告诉 我".split()
)
_STOP_CHARS = frozenset("的了和与及或在是为对把被将于从向由其之这那此该并而也都又还就吗呢吧啊")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_WORD_OK = re.compile(r"[\w\u4e00-\u9fff]")
BIGRAM_MARK = "\u00b7"  # bigram tokens live in their own namespace: '·重点' is not the word '重点'
CHAR_MARK = "\u2218"  # and so do single characters
# BM25 parameters, measured on XQuAD-R sentences: a short passage is not penalised much for length.
BM25_K1 = 0.9
BM25_B = 0.4


def userdict_path():
    return resources.files("retriever").joinpath("userdict.txt")


class Tokenizer:
    def __init__(self) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        with resources.as_file(userdict_path()) as path:
            self._jieba.load_userdict(str(path))
        self._jieba.initialize()
        self._lock = threading.Lock()  # jieba's lazy structures are not safe to build concurrently

    def words(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).lower()
        return [w for w in self._jieba.lcut(text, HMM=False) if _WORD_OK.search(w) and w.strip()]

    def tokens(self, text: str) -> list[str]:
        """BM25 tokens: jieba words (the costly part), then character bigrams and single characters."""
        return self.index_words(text) + self.ngrams(text)

    def index_words(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).lower()
        return [w for w in self._jieba.lcut(text, HMM=False) if w not in STOPWORDS and _WORD_OK.search(w) and w.strip()]

    @staticmethod
    def ngrams(text: str) -> list[str]:
        out = []
        for run in _CJK_RUN.findall(unicodedata.normalize("NFKC", text).lower()):
            out.extend(BIGRAM_MARK + run[i : i + 2] for i in range(len(run) - 1))
            out.extend(CHAR_MARK + c for c in run if c not in _STOP_CHARS)
        return out


@lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    return Tokenizer()


PARALLEL_MIN = 4000  # below this many texts to segment, worker processes cost more than they save


def _index_words_chunk(texts: list[str]) -> list[list[str]]:
    tokenizer = get_tokenizer()
    return [tokenizer.index_words(t) for t in texts]


def index_words_many(texts: Iterable[str], wanted: Iterable[bool], workers: int | None = None,
                     parallel_min: int = PARALLEL_MIN, window: int = 2000) -> Iterator[tuple[str, list[str] | None]]:
    """(text, its index_words) for each text, in order; None instead of the words where `wanted`
    says no. jieba is one core's work: with many texts to segment (and more than one core), worker
    processes segment them, `window` texts a task, a few tasks ahead of the caller, which meanwhile
    works on the windows already done."""
    wanted = list(wanted)
    todo = [i for i, want in enumerate(wanted) if want]
    workers = workers or len(os.sched_getaffinity(0))
    if workers < 2 or len(todo) < parallel_min:
        tokenizer = get_tokenizer()
        for text, want in zip(texts, wanted, strict=True):
            yield text, tokenizer.index_words(text) if want else None
        return
    texts = list(texts)
    tokenizer = get_tokenizer()
    # spawned, not forked: an ingest may run in a thread of a multi-threaded server
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=get_tokenizer) as pool:
        windows = [todo[i : i + window] for i in range(0, len(todo), window)]
        pending: deque = deque()
        found: dict[int, list[str]] = {}
        next_window = 0
        broken = False
        for i, text in enumerate(texts):
            while not broken and next_window < len(windows) and len(pending) < 2 * workers:
                ahead = windows[next_window]
                pending.append((ahead, pool.submit(_index_words_chunk, [texts[j] for j in ahead])))
                next_window += 1
            if wanted[i] and i not in found and not broken:
                done, future = pending.popleft()
                try:
                    found.update(zip(done, future.result(), strict=True))
                except BrokenProcessPool as exc:  # workers that cannot start (say, __main__ is not a file)
                    logging.getLogger("govqa.tokenize").warning("segmenting in one process: %s", exc)
                    broken = True
            if not wanted[i]:
                yield text, None
            else:
                yield text, found.pop(i) if i in found else tokenizer.index_words(text)


def dictionary_hash() -> str:
    """Identifies the tokenizer's behaviour: the user dictionary and jieba's version."""
    import jieba

    digest = hashlib.sha256(userdict_path().read_bytes())
    digest.update(jieba.__version__.encode())
    digest.update(f"v2-words+bigrams+chars-bm25-{BM25_K1}-{BM25_B}".encode())
    return digest.hexdigest()[:16]
