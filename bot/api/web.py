"""The web page at `/`: plain HTML, CSS and JavaScript shipped in the package (bot/web), no build
step and no CDN. It calls the same /v1 API as any client, with the key a person types in."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ASSETS = "/assets"

# No inline script or style, nothing from another origin, no framing: a report's text that slips
# past the page's text-only rendering still cannot run (the page never sets innerHTML).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
async def page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


class Assets(StaticFiles):
    """The page's scripts and styles, with the page's headers (nosniff: a script is only run as one)."""

    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def assets() -> Assets:
    return Assets(directory=WEB_DIR / "assets")
