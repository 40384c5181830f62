"""``GET /v1/networks``: the road networks this server routes on, and their streets (for maps)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse

from service.api.deps import AUTH, NetworksDep, require
from service.auth import Role
from service.networks import streets_geojson
from service.schemas import NetworkList, NetworkOut

router = APIRouter(prefix="/v1", tags=["networks"], responses=AUTH, dependencies=[Depends(require(*Role))])


@router.get("/networks", operation_id="list_networks", summary="Loaded road networks", response_model=NetworkList)
def list_networks(networks: NetworksDep) -> NetworkList:
    """Each configured network with its profiles, bounds (`[west, south, east, north]`), area
    (GeoJSON polygon) and size. A network that failed to load lists no profiles."""
    data = [NetworkOut.model_validate(networks.describe(name)) for name in networks.names]
    return NetworkList(data=data, count=len(data))


def _bad_bbox(msg: str) -> HTTPException:
    detail = [{"loc": ["query", "bbox"], "msg": msg, "type": "value_error"}]
    return HTTPException(422, detail)


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        west, south, east, north = (float(x) for x in value.split(","))
    except ValueError:
        raise _bad_bbox(f'bbox "{value}" must be four numbers: west,south,east,north (degrees)') from None
    if not (west <= east and south <= north):
        raise _bad_bbox(f'bbox "{value}": west must not exceed east, nor south north')
    return west, south, east, north


@router.get(
    "/networks/{name}/streets",
    operation_id="get_network_streets",
    summary="A network's streets as GeoJSON (for a map that needs no internet)",
    response_class=JSONResponse,
    responses={200: {"content": {"application/geo+json": {"example": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"network": "helsinki", "profile": "walk", "segments": 1},
         "geometry": {"type": "MultiLineString", "coordinates": [[[24.94, 60.17], [24.95, 60.17]]]}}]}}}},
        404: {"description": "No such network, or not loaded for this profile."},
        422: {"description": "A bad `bbox`."}},
)
def get_streets(
    name: str,
    networks: NetworksDep,
    profile: Annotated[str, Query(description="The profile whose streets to draw.")] = "walk",
    bbox: Annotated[str | None, Query(description="Only streets touching `west,south,east,north` (degrees).")] = None,
) -> JSONResponse:
    """Every street of the network once (both directions as one line), simplified, as a single
    MultiLineString feature; limit it to the plan's area with `bbox`."""
    box = _bbox(bbox)
    loaded = networks.loaded(name) if name in networks.names else {}
    if profile not in loaded:
        if name in networks.names:
            known = ", ".join(sorted(loaded)) or "none"
            detail = f'network "{name}" has no loaded profile "{profile}" (loaded: {known})'
        else:
            detail = f'no network "{name}" (networks: {", ".join(networks.names) or "none"})'
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail)
    return JSONResponse(streets_geojson(loaded[profile], box), media_type="application/geo+json",
                        headers={"Cache-Control": "private, max-age=3600"})
