"""The model server: KServe's v1 and v2 (Open Inference Protocol) REST APIs over the trained model.

- validation.py turns request bodies into model inputs, checked against the column specs of
  data/columns.py (the same declaration the training schema is built from);
- model.py loads models/model.joblib after checking it against models/model.json;
- batching.py groups concurrent requests into one prediction call;
- app.py holds the HTTP endpoints, request logs and metrics; server.py runs them with uvicorn.

Everything here needs only the serving dependency set (no MLflow, DVC or test tools).
"""
