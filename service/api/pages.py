"""The pages Doorstep serves itself: the crew's phone page (``/crew/``), the dispatcher's console
(``/console/``), and the static files and service worker they share (one folder, ``service/static``).

No CDN and no build step: the pages are plain ES modules and CSS shipped in the package, and
Leaflet comes from the ``XStatic-Leaflet`` wheel (``/static/vendor/leaflet/``), so a command
post's LAN without internet serves them as they are.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from service.api.deps import SettingsDep
from service.config import Settings

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


def leaflet_files() -> StaticFiles:
    """Leaflet's ``leaflet-src.esm.js``, ``leaflet.css`` and marker images, from its XStatic wheel."""
    import xstatic.pkg.leaflet as leaflet

    return StaticFiles(directory=leaflet.BASE_DIR)


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


# -- the dispatcher's console ----------------------------------------------------------------------------


def console_headers(settings: Settings) -> dict[str, str]:
    """The pages' headers; an online tile layer's origin may serve images when one is configured."""
    tiles = ""
    if settings.console_tiles_url:
        parts = urlsplit(settings.console_tiles_url)
        tiles = f" {parts.scheme}://{parts.netloc.replace('{s}.', '*.')}"
    csp = PAGE_HEADERS["Content-Security-Policy"].replace("img-src 'self' data:", f"img-src 'self' data: blob:{tiles}")
    return {**PAGE_HEADERS, "Content-Security-Policy": csp}


@router.get("/console")
def console_redirect() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/console/")
def console_page(settings: SettingsDep) -> FileResponse:
    return FileResponse(STATIC / "console" / "index.html", media_type="text/html; charset=utf-8",
                        headers=console_headers(settings))


@router.get("/console/config.json")
def console_config(settings: SettingsDep) -> dict[str, str | None]:
    """What the console needs before its key is known: the tile layer, if any (nothing secret)."""
    return {"tiles_url": settings.console_tiles_url,
            "tiles_attribution": settings.console_tiles_attribution if settings.console_tiles_url else None}
