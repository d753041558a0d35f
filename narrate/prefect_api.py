"""Whether a Prefect API answers (the CLI before it starts or reuses a server; ``narrate doctor``)."""

from __future__ import annotations

import urllib.request


def healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
