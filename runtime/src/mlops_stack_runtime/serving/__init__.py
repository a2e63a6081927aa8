"""The model server: KServe's v1 and v2 (Open Inference Protocol) REST APIs over the trained model.

- validation.py turns request bodies into model inputs, checked against the column specs of
  data/columns.py (the same declaration the training schema is built from);
- model.py loads the model after checking it against models/model.json: models/model.onnx with
  ONNX Runtime (onnx_model.py) when training accepted it, else models/model.joblib;
- batching.py groups concurrent requests into one prediction call;
- app.py holds the HTTP endpoints, request logs and metrics; auth.py the optional bearer token
  in front of them; server.py runs them with uvicorn, and the metrics on a port of their own
  (metrics.py).

Everything here needs only the serving dependency set (no MLflow, DVC or test tools); the ONNX
path needs neither scikit-learn nor pandas, which the image installs only for a model that
scikit-learn serves (Dockerfile, INFERENCE_RUNTIME).
"""
