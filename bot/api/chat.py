"""The OpenAI-compatible endpoints: any chat client (or OpenAI's own) asks govqa as a model."""

import json
import re
import time
import uuid

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ..render import chat_text
from .answers import answer_out, as_tuple
from .deps import Ctx, Reader
from .problems import Problem
from .schemas import MODEL_ID, ChatOut, ChatRequest, ModelsOut, text_of

router = APIRouter(prefix="/v1", tags=["openai"])

FOLLOW_UPS = 5  # the user messages read: the question and the four before it


def user_texts(messages: list, keep: int = FOLLOW_UPS) -> list[str]:
    """The last `keep` user messages with text, oldest first (the schema bounds their length)."""
    texts = [t for m in messages if m.role == "user" and (t := text_of(m.content).strip())]
    if not texts:
        raise Problem(422, "messages: there is no user message with text")
    return texts[-keep:]


@router.get("/models", response_model=ModelsOut, summary="OpenAI-compatible model list")
async def models(who: Reader, ctx: Ctx) -> dict:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": ctx.started_at, "owned_by": "govqa"}]}


@router.post("/chat/completions", response_model=ChatOut,
             summary="OpenAI-compatible chat: the last user message is the question, read as a follow-up "
                     "of the user messages before it",
             responses={200: {"content": {"text/event-stream": {}}, "description": "with stream: true, server-sent events"}})
async def chat(body: ChatRequest, who: Reader, ctx: Ctx):
    asked = user_texts(body.messages)
    t = time.perf_counter()
    s = ctx.service()

    def compose():
        question = asked[0]
        for text in asked[1:]:  # "那2022年呢？" after a question is that question for 2022
            question = s.composer.follow_up(question, text)
        return s.composer.answer(question, years=as_tuple(body.year), orgs=as_tuple(body.org))

    try:
        a = await ctx.off_loop(compose)
    except ValueError as exc:
        raise Problem(422, str(exc)) from exc
    content = chat_text(a)
    out = answer_out(a, s.generation, time.perf_counter() - t)
    cid, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
    if not body.stream:
        prompt_tokens = sum(len(text_of(m.content)) for m in body.messages)
        return {"id": cid, "object": "chat.completion", "created": created, "model": MODEL_ID,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content),
                          "total_tokens": prompt_tokens + len(content)},
                "citations": out["citations"], "govqa": out}

    def events():
        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        for piece in re.split(r"(?<=\n)", content):
            if piece:
                yield chunk({"content": piece})
        yield chunk({}, "stop", citations=out["citations"], govqa=out)
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
