"""Autoscaling: the Horizontal Pod Autoscaler's rule, load traces, and replays through it.

`hpa` is the controller's algorithm (tolerance, stabilisation windows, scaling policies,
missing and not-ready pods); `trace` builds the load from the 2013 schedule or reads one
measured from the service; `replay` runs a trace through the control loop with metric lag and
pod start-up, and summarises cost and overload.
"""
