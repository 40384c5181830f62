"""The pages Doorstep serves itself: the crew's phone page (``/crew/``), and the static files and
service worker it shares with the pages to come (one folder, ``service/static``).

No CDN and no build step: the pages are plain ES modules and CSS shipped in the package, so a
command post's LAN without internet serves them as they are.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
SHARED = "shared"

# The crew key arrives in the page URL's fragment and is kept on the phone: nothing the page
# loads or links to may learn the page's address, and the page runs only its own scripts.
PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


def _files(app: str) -> list[Path]:
    """What a page needs offline: the shared files and its own (not its service worker)."""
    found = [p for folder in (SHARED, app) for p in sorted((STATIC / folder).rglob("*")) if p.is_file()]
    return [p for p in found if p.name != "sw.js" and p.suffix not in (".py", ".pyc")]


@lru_cache
def service_worker(app: str) -> str:
    """The shared service worker for ``app``: its cache is named after a digest of every file it
    keeps, so a changed file installs a new worker and drops the old cache."""
    files = _files(app)
    digest = hashlib.sha256()
    for path in [*files, STATIC / SHARED / "sw.js"]:
        digest.update(path.relative_to(STATIC).as_posix().encode())
        digest.update(path.read_bytes())
    shell = [f"/{app}/"] + [f"/static/{p.relative_to(STATIC).as_posix()}" for p in files if p.name != "index.html"]
    template = (STATIC / SHARED / "sw.js").read_text(encoding="utf-8")
    return (template.replace("__APP__", app).replace("__VERSION__", digest.hexdigest()[:16])
            .replace("__SHELL__", json.dumps(shell)))


@router.get("/crew")
def crew_redirect() -> RedirectResponse:
    # A browser keeps the link's fragment (the key) across the redirect; the server never sees it.
    return RedirectResponse("/crew/", status_code=308)


@router.get("/crew/")
def crew_page() -> FileResponse:
    return FileResponse(STATIC / "crew" / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/crew/sw.js")
def crew_service_worker() -> Response:
    return Response(service_worker("crew"), media_type="text/javascript; charset=utf-8", headers=PAGE_HEADERS)
