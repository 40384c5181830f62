"""The console's page and its settings: no tile layer (and no other origin) unless configured."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app

MakeSettings = Callable[..., Settings]


def test_the_console_loads_nothing_from_elsewhere_by_default(sqlite_url: str, make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(sqlite_url, workers=0))) as client:
        page = client.get("/console/")
        assert page.status_code == 200 and "console.js" in page.text
        assert "img-src 'self' data: blob:;" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        assert client.get("/console/config.json").json() == {"tiles_url": None, "tiles_attribution": None}
        assert client.get("/console", follow_redirects=False).headers["location"] == "/console/"
        leaflet = client.get("/static/vendor/leaflet/leaflet-src.esm.js")
        assert leaflet.status_code == 200 and "export" in leaflet.text  # the ES module the page imports
        assert client.get("/static/vendor/leaflet/leaflet.css").status_code == 200


def test_a_configured_tile_layer_is_allowed_and_announced(sqlite_url: str, make_settings: MakeSettings) -> None:
    tiles = "https://{s}.tiles.example.org/{z}/{x}/{y}.png"
    settings = make_settings(sqlite_url, workers=0, console_tiles_url=tiles)
    with TestClient(create_app(settings)) as client:
        csp = client.get("/console/").headers["content-security-policy"]
        assert "img-src 'self' data: blob: https://*.tiles.example.org;" in csp
        assert "script-src 'self';" in csp  # images only: no script from the tile server
        config = client.get("/console/config.json").json()
        assert config == {"tiles_url": tiles, "tiles_attribution": "© OpenStreetMap contributors"}
