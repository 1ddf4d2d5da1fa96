"""sysdesign: the Phase 0 systems-design lab for ML services.

Four small modules, one per question an architect is asked before anything is built:

- :mod:`sysdesign.latency`  - how slow is it, really? Percentiles from raw samples and from
  Prometheus-style histogram buckets (checkpoints 0.1 and 0.2).
- :mod:`sysdesign.capacity` - how much hardware does the load need? Little's law, replica
  counts and the Erlang C queueing model (checkpoint 0.3).
- :mod:`sysdesign.slo`      - how unreliable may it be? Error budgets, burn rates and
  multi-window burn-rate alerts (checkpoints 0.4 and 0.5).
- :mod:`sysdesign.cost`     - what does a request cost? Cost per 1,000 requests on CPU and GPU
  and the load where the GPU starts to pay off (checkpoint 0.6).

This file deliberately imports none of them. Importing ``sysdesign.latency`` runs this file
first, so an eager import here would let a syntax error in ``slo.py`` break the latency
checkpoints too. Import the module you need: ``from sysdesign import latency``.
"""

__all__ = ["capacity", "cost", "latency", "slo"]
