"""Answers as text for people (terminal); the HTTP and Telegram front ends have their own."""

from __future__ import annotations

from .answer import Answer, Citation


def marked(c: Citation, left: str = "【", right: str = "】") -> str:
    if not c.mark:
        return c.excerpt
    a, b = c.mark
    return c.excerpt[:a] + left + c.excerpt[a:b] + right + c.excerpt[b:]


def citation_line(c: Citation) -> str:
    section = f" · {c.section}" if c.section else ""
    return f"[{c.n}] {c.org} {c.year}年 · {c.title} · {c.source}{section}"


def answer_text(answer: Answer) -> str:
    lines = [answer.text]
    if answer.citations:
        lines.append("")
        lines.append("出处：")
        for c in answer.citations:
            lines.append(citation_line(c))
            lines.append(f"    {marked(c)}")
    if answer.related:
        lines.append("")
        lines.append("可能相关：")
        for c in answer.related:
            lines.append(citation_line(c))
            lines.append(f"    {c.excerpt}")
    return "\n".join(lines)
