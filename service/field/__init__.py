"""Field operations over a plan's versions and ledger, one concern a module:

- ``chain``: a plan's versions, first to last, and its ledger (:mod:`service.ledger`), read lazily;
- ``progress``: the day as it happens, per vehicle and per resident;
- ``replan``: the next version from the current one, the ledger and the dispatcher's ask;
- ``versions``: what changed between two versions;
- ``carry``: what was not sampled today, as tomorrow's request;
- ``schemas``: their wire models.

The *current* version is the newest one that has routes. Routes (``service.api.field``) are thin
over these.
"""

from service.field.carry import carry_over
from service.field.chain import Chain, load_chain, planned_vehicle, route_steps
from service.field.progress import progress
from service.field.replan import VersionConflict, replan, rest_of_day_for, routes_on_network
from service.field.versions import compare

__all__ = [
    "Chain",
    "VersionConflict",
    "carry_over",
    "compare",
    "load_chain",
    "planned_vehicle",
    "progress",
    "replan",
    "rest_of_day_for",
    "route_steps",
    "routes_on_network",
]
