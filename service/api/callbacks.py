"""Callbacks, the integrator's side: the delivery log of a plan's callbacks, and the
organisation's signing secret (:mod:`service.callbacks`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.api.deps import AUTH, DispatcherDep, ReaderDep, StoreDep, plan_of
from service.callbacks import SIGNATURE_HEADER, deliveries, organisation_secret, rotate_secret

router = APIRouter(prefix="/v1", tags=["callbacks"])


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None = Field(description="The receiver's answer; null when none came (timeout, refused).")
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: str = Field(description="Sent as `X-Doorstep-Delivery` and `delivery_id`: receivers de-duplicate by it.")
    plan_id: str
    url: str
    state: str = Field(description="waiting (the solve runs), pending (to deliver or retry), delivered, failed.")
    event: str | None
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
    count: int


class SecretOut(BaseModel):
    secret: str
    header: str = SIGNATURE_HEADER
    scheme: str = ("t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' with the secret>; "
                   "refuse a signature more than 5 minutes old")


@router.get("/plans/{plan_id}/callbacks", operation_id="list_callbacks",
            summary="The delivery log of a plan's callbacks", response_model=DeliveryList,
            responses={**AUTH, 404: {"description": "No plan with this id (in your organisation)."}})
def list_callbacks(plan_id: str, store: StoreDep, principal: ReaderDep) -> DeliveryList:
    row = plan_of(store, plan_id, principal)
    found = deliveries(store, row.id)
    return DeliveryList(data=[DeliveryOut.model_validate(d, from_attributes=True) for d in found], count=len(found))


@router.get("/callbacks/secret", operation_id="get_callback_secret",
            summary="The organisation's secret that signs its callbacks", response_model=SecretOut, responses=AUTH)
def get_callback_secret(store: StoreDep, principal: ReaderDep) -> SecretOut:
    return SecretOut(secret=organisation_secret(store, principal.organisation))


@router.post("/callbacks/secret/rotate", operation_id="rotate_callback_secret",
             summary="Replace the organisation's callback secret", response_model=SecretOut, responses=AUTH)
def rotate_callback_secret(store: StoreDep, principal: DispatcherDep) -> SecretOut:
    return SecretOut(secret=rotate_secret(store, principal.organisation))
