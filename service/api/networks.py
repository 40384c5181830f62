"""``GET /v1/networks``: the road networks this server routes on."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.api.deps import NetworksDep, get_principal
from service.schemas import NetworkList, NetworkOut

router = APIRouter(prefix="/v1", tags=["networks"], dependencies=[Depends(get_principal)])


@router.get("/networks", operation_id="list_networks", summary="Loaded road networks", response_model=NetworkList)
def list_networks(networks: NetworksDep) -> NetworkList:
    """Each configured network with its profiles, bounds (`[west, south, east, north]`), area
    (GeoJSON polygon) and size. A network that failed to load lists no profiles."""
    data = [NetworkOut.model_validate(networks.describe(name)) for name in networks.names]
    return NetworkList(data=data, count=len(data))
