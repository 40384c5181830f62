"""Imported by the engines' forkserver only (a preload, see :mod:`routing.solver.portfolio`).

The forkserver is started by the process that solves (a service worker); should that process be
killed outright, the forkserver must die too, so that the engines it forked, which die with
their parent, stop searching. Importing this module asks the kernel for exactly that.
"""

from routing.solver.portfolio import _die_with_parent

_die_with_parent()
