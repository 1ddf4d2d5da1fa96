"""Progressive delivery of the flight-delay model on one machine: nginx, Prometheus, MLflow.

router (nginx config + process: weighted split, shadow mirror, tested reloads) -> prometheus
(config + process + HTTP API client) -> analysis (the PromQL queries shared with Argo Rollouts and
the promote/hold/rollback decision, checkpoint 2.6) -> controller (steps, liveness, timeline, the
champion alias) with processes (service processes), traffic (load through the router), faulty
(a deliberately broken challenger) and bench (the measured rollout). ADR 0006 explains the choices.

Submodules are imported explicitly (`from mlops_pipeline.rollout.router import Router`): the
package itself imports nothing heavy.
"""
