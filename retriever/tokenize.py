"""Lexical tokens for Chinese report text: jieba words (with a user dictionary of government terms
kept in the repo) plus character bigrams, which survive the word splits jieba gets wrong, plus
single characters, which match the paraphrases neither catches (measured on XQuAD-R: +0.014 MRR)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from importlib import resources

import numpy as np

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
# A word counted at least this often in jieba's dictionary is everyday language (see is_general):
# the paraphrase words of questions (给出 954, 上门 500, 撤掉 53) are above it, terms of art from
# the user dictionary (3) below
GENERAL_WORD_FREQ = 20
# BM25 parameters, measured on XQuAD-R sentences: a short passage is not penalised much for length.
BM25_K1 = 0.9
BM25_B = 0.4


def userdict_path():
    return resources.files("retriever").joinpath("userdict.txt")


def _dictionary(segmenter) -> dict[str, int]:
    """Load jieba's dictionary and the user dictionary into a jieba-rs segmenter, so that it cuts
    exactly as jieba does (the tests hold it to jieba): jieba adds a word's frequency to the total
    even when the word was already in, and jieba-rs takes the old one out first; an entry no text
    can contain carries the difference."""
    seen: dict[str, int] = {}
    added = 0
    for source in (resources.files("jieba").joinpath("dict.txt"), userdict_path()):
        for line in source.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if not parts:
                continue
            word, freq = parts[0], int(parts[1])
            segmenter.add_word(word, freq, parts[2] if len(parts) > 2 else None)
            seen[word] = freq
            added += freq
    if added > sum(seen.values()):
        segmenter.add_word("\ue000", added - sum(seen.values()), None)
    return seen


def normalize(text: str) -> str:
    """What is segmented and cut into n-grams: NFKC (full-width digits and letters become ASCII), lower case."""
    return unicodedata.normalize("NFKC", text).lower()


class Tokenizer:
    """jieba's segmentation (no HMM), by jieba-rs: the same dictionary, algorithm and cuts,
    faster than jieba's Python (13x, bench/segment.py)."""

    def __init__(self) -> None:
        import rjieba

        self._segmenter = rjieba.Jieba.empty()
        self._frequency = _dictionary(self._segmenter)  # word -> its count in jieba's general corpus
        self._indexed: dict[str, bool] = {}  # word -> whether index_words keeps it

    def words(self, text: str) -> list[str]:
        return [w for w in self._segmenter.cut(normalize(text), False) if _WORD_OK.search(w) and w.strip()]

    def cut(self, text: str) -> list[str]:
        """jieba's cut of already normalised text, every piece kept (their lengths add up to the text's)."""
        return self._segmenter.cut(text, False)

    def tag(self, text: str) -> list[tuple[str, str]]:
        """jieba's part-of-speech tags (no HMM) of the normalised text's words: 出具法律意见书 ->
        [('出具', 'v'), ('法律意见书', 'n')]."""
        return self._segmenter.tag(normalize(text), False)

    def is_general(self, word: str) -> bool:
        """Whether a word is everyday language rather than a term of art: its frequency in jieba's
        dictionary (counts from a general corpus) is at least GENERAL_WORD_FREQ; a word jieba does
        not know (拿了, 全国奖) is as general as its least common dictionary part. 给出 954, 书面 673,
        上门 500 are general; 简易程序 3, 行政处罚 3 (the user dictionary's terms) are not."""
        freq = self._frequency.get(word)
        if freq is None:
            parts = self._segmenter.cut(word, False)
            if len(parts) < 2:
                return False
            freq = min(self._frequency.get(p, 0) for p in parts)
        return freq >= GENERAL_WORD_FREQ

    def tokens(self, text: str) -> list[str]:
        """BM25 tokens: jieba words, then character bigrams and single characters."""
        return self.index_words(text) + self.ngrams(text)

    def index_words(self, text: str) -> list[str]:
        return self.index_words_normalized(normalize(text))

    def index_words_normalized(self, text: str) -> list[str]:
        indexed = self._indexed
        out = []
        for w in self._segmenter.cut(text, False):
            keep = indexed.get(w)
            if keep is None:
                keep = indexed[w] = w not in STOPWORDS and bool(_WORD_OK.search(w)) and bool(w.strip())
            if keep:
                out.append(w)
        return out

    @staticmethod
    def ngrams(text: str) -> list[str]:
        out = []
        for run in _CJK_RUN.findall(normalize(text)):
            out.extend(BIGRAM_MARK + run[i : i + 2] for i in range(len(run) - 1))
            out.extend(CHAR_MARK + c for c in run if c not in _STOP_CHARS)
        return out


@lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    return Tokenizer()


_CJK_FIRST = 0x4E00  # the characters _CJK_RUN matches, as code points
_CJK_COUNT = 0x9FFF - _CJK_FIRST + 1
_STOP_CODES = np.zeros(_CJK_COUNT, dtype=bool)
_STOP_CODES[[ord(c) - _CJK_FIRST for c in _STOP_CHARS]] = True


class Vocabulary:
    """BM25 token ids for an index: each distinct token gets the next id when first seen (`ids`).
    Passages are encoded a window at a time, to the same tokens as Tokenizer.tokens (the tests hold
    them equal): the jieba words one by one, as jieba-rs gives them; the character bigrams and
    single characters, most of the tokens, as code-point numbers with numpy, made into strings
    once per distinct one."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self._grams: dict[int, int] = {}  # n-gram number (below _CJK_COUNT a character, above a bigram) -> id

    def _gram_id(self, key: int) -> int:
        found = self._grams.get(key)
        if found is None:
            if key < _CJK_COUNT:
                token = CHAR_MARK + chr(_CJK_FIRST + key)
            else:
                first, second = divmod(key - _CJK_COUNT, _CJK_COUNT)
                token = BIGRAM_MARK + chr(_CJK_FIRST + first) + chr(_CJK_FIRST + second)
            found = self._grams[key] = self.ids.setdefault(token, len(self.ids))
        return found

    def encode(self, texts: list[str], known: list[list[str] | None]) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
        """Each text's index words (`known` gives them where not None: not segmented again), and
        the token ids of all texts with the text (0-based, in this window) each belongs to."""
        tokenizer = get_tokenizer()
        ids = self.ids
        texts = [normalize(t) for t in texts]
        words = [w if w is not None else tokenizer.index_words_normalized(t) for t, w in zip(texts, known, strict=True)]
        flat = [w for ws in words for w in ws]
        for w in dict.fromkeys(flat):
            if w not in ids:
                ids[w] = len(ids)
        word_ids = np.fromiter(map(ids.__getitem__, flat), dtype=np.int32, count=len(flat))
        word_of = np.repeat(np.arange(len(texts), dtype=np.int32), [len(ws) for ws in words])
        # "\n" between texts is not a CJK character: no bigram spans two texts
        codes = np.frombuffer("\n".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
        text_of = np.repeat(np.arange(len(texts), dtype=np.int32), [len(t) + 1 for t in texts])[: codes.size]
        codes -= _CJK_FIRST
        cjk = (codes >= 0) & (codes < _CJK_COUNT)
        pairs = np.flatnonzero(cjk[:-1] & cjk[1:])
        chars = np.flatnonzero(cjk)
        chars = chars[~_STOP_CODES[codes[chars]]]
        keys = np.concatenate([_CJK_COUNT + codes[pairs] * _CJK_COUNT + codes[pairs + 1], codes[chars]])
        distinct, where = np.unique(keys, return_inverse=True)
        lookup = np.fromiter(map(self._gram_id, distinct.tolist()), dtype=np.int32, count=distinct.size)
        tokens = np.concatenate([word_ids, lookup[where]])
        return words, tokens, np.concatenate([word_of, text_of[pairs], text_of[chars]])


def dictionary_hash() -> str:
    """Identifies the tokenizer's behaviour: the user dictionary, jieba's version (its dictionary)
    and jieba-rs's."""
    from importlib.metadata import version

    digest = hashlib.sha256(userdict_path().read_bytes())
    digest.update(f"{version('jieba')} {version('rjieba')}".encode())
    digest.update(f"v2-words+bigrams+chars-bm25-{BM25_K1}-{BM25_B}".encode())
    return digest.hexdigest()[:16]
