"""Answers as text for people (terminal); the HTTP and Telegram front ends have their own."""

from __future__ import annotations

from .answer import Answer, Citation, year_label


def marked(c: Citation, left: str = "【", right: str = "】") -> str:
    if not c.mark:
        return c.excerpt
    a, b = c.mark
    return c.excerpt[:a] + left + c.excerpt[a:b] + right + c.excerpt[b:]


def citation_line(c: Citation) -> str:
    section = f" · {c.section}" if c.section else ""
    return f"[{c.n}] {c.org} {year_label(c.year)} · {c.title} · {c.source}{section}"


def answer_text(answer: Answer) -> str:
    lines = [answer.text]
    for heading, citations in (("出处：", answer.citations), ("可能相关：", answer.related)):
        if citations:
            lines += ["", heading]
            for c in citations:  # related excerpts carry no mark, so they print as they are
                lines += [citation_line(c), f"    {marked(c)}"]
    return "\n".join(lines)


def chat_text(answer: Answer) -> str:
    """For chat clients (the OpenAI-compatible endpoint): the lead with [n] markers, then the sources."""
    markers = "".join(f"[{c.n}]" for c in answer.citations)
    lines = [f"{answer.text} {markers}".rstrip()]
    for heading, citations in (("来源：", answer.citations), ("可能相关：", answer.related)):
        if citations:
            lines += ["", heading]
            for c in citations:
                lines += [citation_line(c), f"> {marked(c)}"]
    return "\n".join(lines)
