"""The request and response bodies of the API, as its OpenAPI document shows them."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema, field_validator

from ..answer import MAX_QUESTION_CHARS, MISSING

MODEL_ID = "govqa"  # the one model /v1/models lists


_YEAR_COVERED = "the year the report covers; null when its text does not say (the report needs review)"


class CitationOut(BaseModel):
    n: int
    source: str
    title: str
    org: str
    year: int | None = Field(description=_YEAR_COVERED)
    section: str
    excerpt: str = Field(description="the exact report text")
    start: int = Field(description="offset of the excerpt in the report text")
    end: int
    score: float
    mark: list[int] | None = Field(None, description="the answering clause, as [start, end) within the excerpt")
    report_id: str = Field("", description="the report's id (as in /v1/reports)")
    url: str = Field("", description="where the report is published on the web; empty when not known")
    page: int | None = Field(None, description="the page of the file the excerpt starts on (pdf, ofd, scans); null "
                                               "for a file without pages")


class Searched(BaseModel):
    years: list[int]
    orgs: list[str]
    reports: int


# What the service calls text (str.strip() leaves something), as a JSON Schema pattern: one character
# that is not Python whitespace. (Not \S: ECMA and Python differ on \x1c-\x1f, \x85 and \ufeff.)
NOT_BLANK = "[^\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
MIN_YEAR, MAX_YEAR = 1949, 2100
# Query filters: at most 10 units of 50 characters and 10 years, so that the longest valid query
# string (a 500-character q and the filters, percent-encoded) stays under the 16 KB head limit
MAX_FILTERS, MAX_ORG_CHARS = 10, 50


def _whole_number(v):
    """JSON Schema's integer: 3 and 3.0, never true or "3"."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _whole(low: int, high: int):
    return Annotated[int, BeforeValidator(_whole_number), Field(strict=True, ge=low, le=high),
                     WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})]


Year = _whole(MIN_YEAR, MAX_YEAR)


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("the question is empty")
    return v


class AnswerRequest(BaseModel):
    model_config = {"strict": True}  # top_k: true or "3" is not a number

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=NOT_BLANK,
                          examples=["重点区域署2023年出具了多少份法律意见书？"])
    year: Year | list[Year] | None = Field(None, description="only reports covering this year (or these years)")
    org: str | list[str] | None = Field(None, description="only this unit (name or short name), or these")
    top_k: _whole(1, 20) | None = None

    _question = field_validator("question")(_not_blank)


class TableRowOut(BaseModel):
    unit: str = Field(description="the unit the figure is of")
    year: int | None = Field(description="the year it is of; null when the report does not say")
    value: str = Field(description=f"the figure as the report writes it (79件), or {MISSING!r} when the report of "
                                   "that unit and year gives none")
    measure: str = Field(description="its measure word (件, 人次, %); empty when not stated")
    citation: int | None = Field(description=f"the n of the citation it is read from; null for {MISSING}")
    wording: str = Field(description="what it counts as the report words it: predicate · object (出具 · 法律意见书)")
    number: float | None = Field(None, description=f"the figure normalised (3.2万人次 -> 32000); null for {MISSING}")


class AnswerOut(BaseModel):
    question: str
    answer: str
    found: bool
    citations: list[CitationOut]
    related: list[CitationOut] = Field(description="nearest excerpts when the reports do not state the answer")
    table: list[TableRowOut] = Field(description="a comparison's figures, one row per unit and year (several units "
                                                 "or years asked); empty for an answer of one figure")
    figures: list[list[int]] = Field(description="where the answer states a cited figure: [start, end) offsets in "
                                                 "`answer`, e.g. to show it in bold")
    searched: Searched
    generation: str = Field(description="the index generation that answered")
    took_ms: float


class HitOut(BaseModel):
    rank: int
    score: float
    passage_id: str
    report_id: str
    source: str
    org: str
    year: int | None = Field(description=_YEAR_COVERED)
    section: str
    text: str
    start: int
    end: int


class SearchOut(BaseModel):
    query: str
    years: list[int]
    orgs: list[str]
    reports_searched: int
    hits: list[HitOut]
    generation: str
    took_ms: float


class FactOut(BaseModel):
    org: str = Field(description="the unit of the report")
    year: int | None = Field(description=_YEAR_COVERED)
    value: str = Field(description="the figure as written (约5万余人次)")
    number: float = Field(description="the figure normalised (3.2万人次 -> 32000)")
    high: float | None = Field(description="a range's upper end")
    unit: str = Field(description="the measure word as written after the number (件, 万元, %)")
    measure: str = Field(description="the measure word without 万/亿 (元, 人次)")
    kind: str = Field(description="count, money, percent, ordinal, duration, size or ratio")
    qualifiers: list[str] = Field(description="what makes it not a plain figure of the year (余, 约, 累计, 同比 …)")
    predicate: str = Field(description="the verb of the clause (出具)")
    object: str = Field(description="what is counted (法律意见书)")
    clause: str = Field(description="the clause the figure is in, as the report writes it")
    section: str
    source: str
    title: str
    report_id: str
    start: int = Field(description="offset of the figure in the report text")
    end: int
    score: float = Field(description="how much of the query the figure's sentence and clause say (0-1)")


class FactsOut(BaseModel):
    query: str
    facts: list[FactOut]
    searched: Searched
    why: str = Field(description="why nothing was listed, when nothing was")


class ReportOut(BaseModel):
    id: str
    source: str
    title: str
    org: str
    aliases: list[str]
    region: str
    year: int | None = Field(description=_YEAR_COVERED)
    published: str | None
    url: str = Field("", description="where the report is published on the web; empty when not known")
    review: list[str] = Field(description="why a person should check the report's unit or year (needs review), "
                                          "or its OCR; empty when nothing needs checking")
    pages: int = Field(0, description="how many pages the file has (pdf, ofd, scans); 0 for a file without pages")
    passages: int


class ReportTextOut(ReportOut):
    text: str = Field(description="the report's cleaned text: citations' start and end are offsets in it")
    generation: str


class ReportsOut(BaseModel):
    generation: str
    reports: list[ReportOut]


class FileOut(BaseModel):
    file: str
    status: str = Field(description="added, updated, unchanged, duplicate, removed or failed")
    report_id: str | None = Field(description="null when the file failed")
    org: str
    year: int | None
    passages: int
    error: str
    warnings: list[str] = Field(default_factory=list,
                                description="e.g. another indexed report of the same unit and year (answers show both)")


class UrlsIn(BaseModel):
    """Reports to fetch: the address of each report's page, or of its file."""

    model_config = {"strict": True, "extra": "forbid", "title": "UrlsIn"}
    # e.g. https://www.example.gov.cn/zwgk/2024/report.html
    urls: list[Annotated[str, Field(max_length=2000, pattern=r"^\s*https?://[^\s/?#]+\S*\s*$")]] = Field(
        min_length=1, examples=[["https://www.example.gov.cn/zwgk/2024/report.html"]])


class IngestOut(BaseModel):
    generation: str | None
    reports: int
    passages: int
    files: list[FileOut]
    seconds: float


class TextPart(BaseModel):
    model_config = {"strict": True, "extra": "allow"}
    type: Literal["text"]
    text: str = Field(max_length=MAX_QUESTION_CHARS)


class UserMessage(BaseModel):
    """A question (or a follow-up): text of at most MAX_QUESTION_CHARS characters, as a string or
    as one text part."""

    model_config = {"strict": True, "extra": "allow"}
    role: Literal["user"]
    content: Annotated[str, Field(max_length=MAX_QUESTION_CHARS)] | Annotated[list[TextPart], Field(max_length=1)]


class OtherMessage(BaseModel):
    """System prompts and earlier replies: accepted and not read."""

    model_config = {"strict": True, "extra": "allow"}
    role: Literal["system", "developer", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


ChatMessage = Annotated[UserMessage | OtherMessage, Field(discriminator="role")]

# a user message with text, as JSON Schema: the question is the last of these
_ASKS = {"type": "object", "required": ["role", "content"],
         "properties": {"role": {"const": "user"},
                        "content": {"anyOf": [{"type": "string", "pattern": NOT_BLANK},
                                              {"type": "array", "minItems": 1,
                                               "items": {"type": "object", "required": ["text"],
                                                         "properties": {"text": {"type": "string",
                                                                                 "pattern": NOT_BLANK}}}}]}}}


class ChatRequest(BaseModel):
    model_config = {"strict": True, "extra": "allow"}  # temperature, max_tokens … are accepted and ignored
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, json_schema_extra={"contains": _ASKS},
                                        description="the last user message with text is the question, read as a "
                                                    "follow-up of the user messages before it")
    stream: bool = False
    # govqa's own, beside OpenAI's fields (extra_body in OpenAI's clients)
    year: Year | list[Year] | None = Field(None, description="govqa: only reports covering this year (or these years)")
    org: str | list[str] | None = Field(None, description="govqa: only this unit (name or short name), or these")

    @field_validator("messages")
    @classmethod
    def _asks(cls, v: list) -> list:
        if not any(isinstance(m, UserMessage) and text_of(m.content).strip() for m in v):
            raise ValueError("there is no user message with text")
        return v


class ChatChoice(BaseModel):
    index: int
    message: dict[str, str]
    finish_reason: str


class ChatOut(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: dict[str, int]
    citations: list[CitationOut] = Field(description="the structured citations behind the [n] markers")
    govqa: AnswerOut


class ModelOut(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelsOut(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]



def text_of(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(part.text if isinstance(part, TextPart) else part.get("text", "")) for part in content
                   if isinstance(part, TextPart) or (isinstance(part, dict) and part.get("type") == "text"))
