"""`python -m mlops_pipeline.serving`: run the prediction service under uvicorn."""

from mlops_pipeline.serving.main import main

if __name__ == "__main__":
    raise SystemExit(main())
