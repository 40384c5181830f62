"""Doorstep's routing library: problem model, road networks and matrices, solvers, evaluator.

No web code here: usable from a notebook, a worker process or the service alike.
"""
