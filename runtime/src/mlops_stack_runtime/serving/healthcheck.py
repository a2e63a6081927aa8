"""``python -m <package>.serving.healthcheck``: exit 0 when the local server is ready, else 1.

The container's HEALTHCHECK: slim images have no curl, and this needs only the standard library.
It asks the model's port (PORT) for readiness, which needs no bearer token (AUTH_TOKEN_FILE).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("PORT", "8080")
    url = f"http://127.0.0.1:{port}/v2/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except (OSError, urllib.error.URLError) as error:
        print(f"not ready: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
