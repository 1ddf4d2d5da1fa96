"""The HTTP service: FastAPI routes over the answer pipeline, a supervised model server."""
