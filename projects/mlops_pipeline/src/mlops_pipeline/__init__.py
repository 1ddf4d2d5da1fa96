"""Flight-delay MLOps pipeline: CDC from PostgreSQL to a feature store and a gated registry."""
