"""``python -m <package>.serving``: start the model server (the container's command).

Same as the CLI's ``serve``, without the CLI's own imports. Options default to the environment
(HOST, PORT, MODEL_DIR, WEB_CONCURRENCY, MAX_BODY_BYTES, LOG_LEVEL, LOG_FEATURES, METRICS_PORT),
so a container or a Kubernetes manifest can set them as variables; the other settings
(serving/settings.py: AUTH_TOKEN_FILE, the request limits, ...) are variables only.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import exit_codes
from ..errors import PipelineError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--model-dir", default=os.environ.get("MODEL_DIR", "models"))
    parser.add_argument("--workers", type=int, default=None, help="default: $WEB_CONCURRENCY")
    parser.add_argument(
        "--max-body-bytes", type=int, default=None, help="default: $MAX_BODY_BYTES or 1 MiB"
    )
    parser.add_argument("--log-level", default=None, help="default: $LOG_LEVEL or info")
    parser.add_argument(
        "--log-features",
        action="store_true",
        default=None,
        help="log each prediction's inputs and answers, for drift monitoring "
        "(default: $LOG_FEATURES)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="port of GET /metrics, on the same host (default: $METRICS_PORT or 8082)",
    )
    args = parser.parse_args(argv)

    from .server import run_server  # after argument parsing: --help stays instant

    try:
        run_server(
            args.host,
            args.port,
            args.model_dir,
            workers=args.workers,
            max_body_bytes=args.max_body_bytes,
            log_level=args.log_level,
            log_features=args.log_features,
            metrics_port=args.metrics_port,
        )
    except (PipelineError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.FAILED
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
