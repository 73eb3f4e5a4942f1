"""The indexed reports: list, read one, upload, delete, switch generations (changes need an admin key)."""

import hashlib
import os
import re
import unicodedata
import uuid
from pathlib import Path, PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as FastAPIPath
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from retriever.readers import CONTENT_TYPES, SUPPORTED_SUFFIXES, sniff_suffix
from retriever.store import report_dict

from .. import service
from .deps import Admin, ApiContext, Ctx, Reader
from .problems import Problem
from .schemas import IngestOut, ReportsOut, ReportTextOut, UrlsIn

router = APIRouter(prefix="/v1", tags=["reports"])

UPLOADS = "uploads"  # inside the index directory
# a report's id as /v1/reports lists it: 16 hex digits of its text's hash, e.g. 6065964b3fad7889
REPORT_ID = re.compile(r"[0-9a-f]{16}")
ReportId = Annotated[str, FastAPIPath(description="as GET /v1/reports lists it (16 hex digits)")]


def safe_name(name: str | None) -> str:
    """An uploaded file's name for display only: the last path part, printable, at most 120 chars."""
    base = PurePath((name or "").replace("\\", "/")).name
    base = "".join(c for c in unicodedata.normalize("NFC", base) if c.isprintable()).strip()
    return base[-120:] or "upload"


def upload_name(f: UploadFile) -> str:
    """The name an uploaded file is shown by, its suffix its type. A name without a suffix takes
    its Content-Type's (curl -F 'files=@report;type=application/pdf'), else its first bytes' (%PDF,
    PNG, JPEG, an OLE2 file is doc, a zip is docx, <html), else it is read as text."""
    name = safe_name(f.filename)
    if PurePath(name).suffix:
        return name
    suffix = CONTENT_TYPES.get((f.content_type or "").split(";")[0].strip().lower())
    if suffix is None:
        head = f.file.read(512)
        f.file.seek(0)
        suffix = sniff_suffix(head) or ".txt"
    return name + suffix


def uploads_folder(ctx: ApiContext) -> Path:
    return (ctx.index_root / UPLOADS).resolve()


def unlink_upload(ctx: ApiContext, path: str) -> None:
    """Delete an uploaded file, and only that: a path outside the uploads folder (a report
    ingested from elsewhere) is left alone. Both sides resolved: the index path may be relative
    (the default data/index), the paths ingest reports absolute."""
    target = Path(path).resolve()
    if target.parent == uploads_folder(ctx):
        target.unlink(missing_ok=True)


def ingest_out(result, shown: dict[str, str]) -> dict:
    files = [{"file": shown.get(f.path, Path(f.path).name), "status": f.status, "report_id": f.report_id or None,
              "org": f.org, "year": f.year, "passages": f.passages, "error": f.error,
              "warnings": list(f.warnings)} for f in result.files]
    return {"generation": result.generation, "reports": result.reports, "passages": result.passages,
            "files": files, "seconds": round(result.seconds, 3)}


def run_ingest(ctx: ApiContext, paths, **kwargs):
    """An ingest into the configured backend (the index directory, or Milvus), then serve it."""
    result = service.run_ingest(ctx.config, paths, ctx.live.embedder, ctx.index_root, **kwargs)
    ctx.live.reload()
    return result


def _report_out(report, passages: int) -> dict:
    d = report_dict(report)
    d.pop("path", None)  # server paths stay on the server
    return d | {"passages": passages}


@router.get("/reports", response_model=ReportsOut, summary="The indexed reports")
def reports(who: Reader, ctx: Ctx) -> dict:
    s = ctx.service()
    counts = s.index.passage_counts()
    return {"generation": s.generation,
            "reports": [_report_out(r, int(counts[i])) for i, r in enumerate(s.index.reports)]}


@router.get("/reports/{report_id}", response_model=ReportTextOut, summary="One report: its description and its text",
            description="Citations' start and end are offsets in this text.",
            responses={404: {"description": "no such report"}})
def report(who: Reader, ctx: Ctx, report_id: ReportId) -> dict:
    s = ctx.service()
    found = s.index.report_by_id.get(report_id) if REPORT_ID.fullmatch(report_id) else None
    if found is None:
        raise Problem(404, f"no indexed report has the id {report_id[:40]!r}")
    return _report_out(found, len(s.index.rows_of([found.id]))) | {"text": found.text, "generation": s.generation}


_FILES_SCHEMA = {"type": "object", "required": ["files"],
                 "properties": {"files": {"type": "array", "minItems": 1, "description": "one or more report files",
                                          "items": {"type": "string", "format": "binary"}}}}


@router.post("/reports", response_model=IngestOut,
             summary="Add reports: upload files, or give the URLs of their pages (admin)",
             description=f"Files as multipart/form-data (`files`): at most {{max_files}}, {{max_upload_bytes}} bytes "
                         f"together. A file's type is its name's suffix ({', '.join(SUPPORTED_SUFFIXES)}; another suffix "
                         f"is 415); for a name without one, its Content-Type ({', '.join(CONTENT_TYPES)}), else its first "
                         "bytes (%PDF, PNG, JPEG, a zip is docx, <html), else text. Or JSON `{{\"urls\": [...]}}`: each "
                         "page (or the attachment it wraps) is fetched and indexed, its URL kept as the report's source. "
                         "422 when no report could be read (each line says why).",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": _FILES_SCHEMA},
                 "application/json": {"schema": UrlsIn.model_json_schema()}}}},
             responses={200: {"description": "a line per file or URL, the indexed ones first",
                              "links": {"DeleteReport": {"operationId": "delete_report",
                                                         "parameters": {"report_id": "$response.body#/files/0/report_id"}}}},
                        413: {"description": "upload too large"}, 415: {"description": "not a report file type"},
                        422: {"description": "no report could be read"}})
async def add_reports(request: Request, who: Admin, ctx: Ctx) -> dict:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            urls = UrlsIn.model_validate_json(await request.body()).urls
        except ValidationError as exc:
            raise RequestValidationError([e | {"loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
        max_files = int(ctx.config["api"]["max_files"])
        if len(urls) > max_files:
            raise Problem(413, f"at most {max_files} URLs per request")
        return await run_in_threadpool(_add_urls, ctx, [u.strip() for u in urls])
    if kind == "multipart/form-data":
        async with request.form() as form:
            files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
            if not files:
                raise Problem(422, "files: at least one report file is required")
            return await run_in_threadpool(_add_files, ctx, files)
    raise Problem(415, 'send report files as multipart/form-data (files=@report.pdf) or URLs as JSON {"urls": [...]}')


def _checked(ctx: ApiContext, result, shown: dict[str, str], stored: bool) -> dict:
    """The ingest's lines, a report without passages failed too; 422 when nothing could be read.
    `stored`: the paths are uploads, kept only while indexed."""
    out = ingest_out(result, shown)
    failed = []
    for f, line in zip(result.files, out["files"], strict=True):
        if f.status in ("added", "updated") and not f.passages:
            # counted by ingest, but a text without passages is no report: not listed, not searchable
            line.update(status="failed", report_id=None, error="no passage could be cut from its text")
        if stored and line["status"] in ("failed", "duplicate"):
            unlink_upload(ctx, f.path)
        if line["status"] == "failed":
            failed.append(line)
    if failed and len(failed) == len(out["files"]):
        raise Problem(422, "; ".join(f"{line['file']}: {line['error']}" for line in failed), files=out["files"])
    # the ones indexed first (the first line names a report, which DELETE /v1/reports/{id} can remove)
    out["files"].sort(key=lambda line: line["status"] == "failed")
    return out


def _add_urls(ctx: ApiContext, urls: list[str]) -> dict:
    return _checked(ctx, run_ingest(ctx, urls), {u: u for u in urls}, stored=False)


def _add_files(ctx: ApiContext, files: list[UploadFile]) -> dict:
    max_files = int(ctx.config["api"]["max_files"])
    if len(files) > max_files:
        raise Problem(413, f"at most {max_files} files per upload")
    names = [upload_name(f) for f in files]
    bad = [name for name in names if PurePath(name).suffix.lower() not in SUPPORTED_SUFFIXES]
    if bad:
        raise Problem(415, f"{', '.join(bad)}: not a report file type (accepted: {', '.join(SUPPORTED_SUFFIXES)})")
    folder = uploads_folder(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    stored, shown, manifest = [], {}, {}
    for f, name in zip(files, names, strict=True):
        data = f.file.read()
        # the stored name is the content hash: the client's file name never becomes a path
        target = folder / (hashlib.sha256(data).hexdigest()[:24] + PurePath(name).suffix.lower())
        if not target.exists():
            tmp = folder / f".{uuid.uuid4().hex}.part"
            tmp.write_bytes(data)
            os.replace(tmp, target)
        if target in stored:  # the same file twice in one upload
            continue
        stored.append(target)
        shown[str(target)] = name
        manifest[target.name] = {"source": name}
    return _checked(ctx, run_ingest(ctx, stored, manifest=manifest), shown, stored=True)


def document_limits(schema: dict, api: dict) -> dict:
    """The upload's limits in the OpenAPI document as this server's settings have them."""
    upload = schema["paths"]["/v1/reports"]["post"]
    upload["description"] = upload["description"].format(max_files=int(api["max_files"]),
                                                          max_upload_bytes=int(api["max_upload_bytes"]))
    content = upload["requestBody"]["content"]
    content["multipart/form-data"]["schema"]["properties"]["files"]["maxItems"] = int(api["max_files"])
    content["application/json"]["schema"]["properties"]["urls"]["maxItems"] = int(api["max_files"])
    return schema


@router.delete("/reports/{report_id}", response_model=IngestOut, operation_id="delete_report",
               summary="Remove one report from the index (admin)", responses={404: {"description": "no such report"}})
def delete_report(who: Admin, ctx: Ctx, report_id: ReportId) -> dict:
    if not REPORT_ID.fullmatch(report_id):  # 404, not 422: any other id names no report
        raise Problem(404, f"no indexed report has the id {report_id[:40]!r}")
    try:
        result = run_ingest(ctx, [], remove=[report_id])
    except KeyError as exc:
        raise Problem(404, str(exc.args[0])) from exc
    for f in result.files:
        if f.status == "removed":
            unlink_upload(ctx, f.path)
    return ingest_out(result, {})


@router.delete("/reports/", include_in_schema=False)
def delete_nothing(who: Admin) -> dict:  # an empty id (a failed file's) is no report, not another method
    raise Problem(404, "no report id given")


@router.post("/index/reload", summary="Switch to the newest index generation now (admin)")
def reload(who: Admin, ctx: Ctx) -> dict[str, Any]:
    generation = ctx.live.reload()
    if generation is None:
        raise ctx.not_ready(ctx.live.problem)
    return {"generation": generation}
