"""``/console``: a browser console over the public API, served by the gateway.

Three static files shipped in the package (``static/``: HTML, one script, one stylesheet),
no build step, nothing fetched from elsewhere: it works offline and behind a strict Content
Security Policy (no inline script or style, connections to this origin only). The page holds
no data of its own: it calls ``/api/v1/*`` with the API key the user signs in with, kept in
``sessionStorage`` (gone when the tab closes), so it can do exactly what that key can.

The files are served from a fixed list, so no request path reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from common.errors import NotFound

STATIC = Path(__file__).parent / "static"
FILES = {"console.js": "text/javascript", "console.css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # A new release's files are taken at once; the files are small.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console() -> FileResponse:
    """The console's page."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=HEADERS)


@router.get("/console/static/{name}")
async def static(name: str) -> FileResponse:
    """The console's script and stylesheet."""
    if name not in FILES:
        raise NotFound(f"no console file {name!r}")
    return FileResponse(STATIC / name, media_type=FILES[name], headers=HEADERS)
