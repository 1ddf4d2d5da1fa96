"""Documents and their chunks: the corpora the service retrieves from."""
