"""What the routes get from the app: settings, store, job runner, networks (set in the lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.jobs import JobRunner
from service.networks import NetworkRegistry
from service.store import Store


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.runner
    return runner


def get_networks(request: Request) -> NetworkRegistry:
    networks: NetworkRegistry = request.app.state.networks
    return networks


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
NetworksDep = Annotated[NetworkRegistry, Depends(get_networks)]
