"""Imported by the engines' forkserver only (a preload, see :mod:`routing.solver.portfolio`).

The forkserver is started by the process that solves (a service worker); should that process be
killed outright, the forkserver must die too, so that the engines it forked, which die with
their parent, stop searching. Importing this module asks the kernel for exactly that.

Linux ties the signal to the *thread* that started the forkserver: if a short-lived thread
started it, the forkserver goes when that thread ends, and multiprocessing starts a new one for
the next solve (``forkserver.ensure_running``). Service workers and the CLI start it from their
main thread (``warm_up``).
"""

from routing.solver.portfolio import _die_with_parent

_die_with_parent()
