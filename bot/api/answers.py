"""Answers, ranked passages and figures: what readers ask."""

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ..answer import MAX_QUESTION_CHARS, Answer
from ..facts import DEFAULT_LIMIT, MAX_LIMIT
from .deps import Ctx, Reader
from .problems import Problem
from .schemas import (
    MAX_FILTERS,
    MAX_ORG_CHARS,
    MAX_YEAR,
    MIN_YEAR,
    NOT_BLANK,
    AnswerOut,
    AnswerRequest,
    FactsOut,
    SearchOut,
)

router = APIRouter(prefix="/v1", tags=["answers"])

Query_ = Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=NOT_BLANK)]
Years = Annotated[list[Annotated[int, Query(ge=MIN_YEAR, le=MAX_YEAR)]], Query(max_length=MAX_FILTERS, description="repeatable")]
Orgs = Annotated[list[Annotated[str, Query(max_length=MAX_ORG_CHARS)]], Query(max_length=MAX_FILTERS, description="repeatable")]


def as_tuple(v) -> tuple:
    if v is None:
        return ()
    return tuple(v) if isinstance(v, list) else (v,)


def answer_out(answer: Answer, generation: str, took: float) -> dict:
    d = answer.to_dict()
    d.pop("why", None)
    return d | {"generation": generation, "took_ms": round(took * 1000, 2)}


@router.post("/answer", response_model=AnswerOut, summary="Answer a question with the report sentences it comes from")
async def answer(body: AnswerRequest, who: Reader, ctx: Ctx) -> dict:
    t = time.perf_counter()
    s = ctx.service()
    try:
        a = await ctx.off_loop(s.composer.answer, body.question, years=as_tuple(body.year), orgs=as_tuple(body.org),
                               top_k=body.top_k)
    except ValueError as exc:
        raise Problem(422, str(exc)) from exc
    return answer_out(a, s.generation, time.perf_counter() - t)


@router.get("/search", response_model=SearchOut, summary="Ranked passages for a query")
async def search(who: Reader, ctx: Ctx, q: Query_, k: Annotated[int, Query(ge=1, le=100)] = 10,
                 year: Years = [], org: Orgs = [],  # noqa: B006
                 mode: Literal["hybrid", "lexical", "dense"] = "hybrid") -> dict:
    t = time.perf_counter()
    if not q.strip():
        raise Problem(422, "q: the query is empty")
    s = ctx.service()
    filters = s.searcher.catalog.resolve(q, years=year, orgs=org)
    result = await ctx.off_loop(s.searcher.search, q, k=k, filters=filters, mode=mode)
    hits = [{"rank": i + 1, "score": h.score, "passage_id": h.passage.id, "report_id": h.passage.report_id,
             "source": h.passage.source, "org": h.passage.org, "year": h.passage.year, "section": h.passage.section,
             "text": h.passage.text, "start": h.passage.start, "end": h.passage.end} for i, h in enumerate(result.hits)]
    return {"query": q, "years": list(filters.years), "orgs": list(filters.orgs), "reports_searched": len(result.reports),
            "hits": hits, "generation": s.generation, "took_ms": round((time.perf_counter() - t) * 1000, 2)}


@router.get("/facts", response_model=FactsOut,
            summary="The figures the reports give for a query (79件 出具 · 法律意见书), as JSON or CSV",
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "with format=csv: the same facts as a CSV attachment (facts.csv)"}})
async def facts(who: Reader, ctx: Ctx,
                q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=NOT_BLANK,
                                        description="what the figures count: 法律意见书, 2023年行政复议案件")],
                limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
                year: Years = [], org: Orgs = [],  # noqa: B006
                format: Literal["json", "csv"] = "json"):
    if not q.strip():
        raise Problem(422, "q: the query is empty")
    s = ctx.service()
    try:
        result = await ctx.off_loop(s.composer.facts.find, q, years=year, orgs=org, limit=limit)
    except ValueError as exc:
        raise Problem(422, str(exc)) from exc
    if format == "csv":
        return Response(result.to_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="facts.csv"'})
    return result.to_dict()
