"""The benchmarks' view of the embedded AWS's endpoint: when its instances come up and go away, and the
wait for zero between ways."""

from __future__ import annotations

import threading
import time


class InstanceWatcher:
    """Polls the endpoint and notes when its instance comes up and when it goes away again; on exit
    it waits up to ``release_timeout`` seconds for the release."""

    def __init__(self, endpoint_name: str, release_timeout: float = 30.0) -> None:
        import boto3

        self.client = boto3.client("sagemaker")
        self.name = endpoint_name
        self.release_timeout = release_timeout
        self.up_at: float | None = None
        self.down_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> InstanceWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        deadline = time.monotonic() + self.release_timeout
        while self.down_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            variant = self.client.describe_endpoint(EndpointName=self.name)["ProductionVariants"][0]
            count = variant.get("CurrentInstanceCount") or 0
            now = time.time()
            if count >= 1 and self.up_at is None:
                self.up_at = now
            if count == 0 and self.up_at is not None and self.down_at is None:
                self.down_at = now
            time.sleep(0.05)


def wait_for_zero(endpoint_name: str) -> None:
    import boto3

    client = boto3.client("sagemaker")
    if not client.list_endpoints(NameContains=endpoint_name)["Endpoints"]:
        return  # not made yet: no instance
    for _ in range(600):
        variant = client.describe_endpoint(EndpointName=endpoint_name)["ProductionVariants"][0]
        if not variant.get("CurrentInstanceCount"):
            return
        time.sleep(0.05)
    raise RuntimeError("the endpoint did not go back to zero")
