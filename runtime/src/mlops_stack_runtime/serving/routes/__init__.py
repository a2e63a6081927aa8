"""The server's routes, one module per protocol.

- v1.py: KServe's v1 protocol (`:predict`, the model list);
- v2.py: the Open Inference Protocol (`/infer`, server and model metadata, health);
- operations.py: what operators call (liveness at `/`; the metrics have a port of their own);
- common.py: the server's settings every handler takes, and how a handler becomes a route.
"""
