"""The prediction service: FastAPI over the pipelines' registered models (see app.py)."""
