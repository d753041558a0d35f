"""Local mode: an embedded AWS on 127.0.0.1 that behaves like the real one where narrate depends on it.

A moto server provides S3, the SageMaker control plane, Application Auto Scaling, CloudWatch, SNS,
SQS and Polly (whose SynthesizeSpeech :mod:`narrate.aws.local.polly_emulator` answers with the dev
voice, marked emulated). moto runs nothing behind ``invoke_endpoint_async`` and applies capacity
changes instantly, so :mod:`narrate.aws.local.emulator` takes over the async endpoints: it queues
requests, runs the real ``model_server`` handler on simulated instances with a cold start, and
applies the registered autoscaling rules — including the trap that target tracking alone never wakes
an endpoint at zero.

Production code reaches it only through boto3's standard configuration (``AWS_ENDPOINT_URL`` and
dummy credentials from :meth:`LocalAws.environment`): it has no code path of its own.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from narrate.aws.local.emulator import AsyncEndpointEmulator, EmulatorOptions
from narrate.aws.local.polly_emulator import PollyEmulator

__all__ = ["AsyncEndpointEmulator", "EmulatorOptions", "LocalAws", "local_aws"]

REGION = "us-east-1"


class LocalAws:
    """moto server + async endpoint emulator, started and stopped together."""

    running: LocalAws | None = None  # moto's state is per process: one embedded AWS at a time

    def __init__(self, options: EmulatorOptions | None = None) -> None:
        self.options = options or EmulatorOptions()
        self._server: Any = None
        self.emulator: AsyncEndpointEmulator | None = None
        self.polly = PollyEmulator()
        self.url = ""
        self._port = 0  # any free port, unless reserve() chose one
        self._session: Any = None  # boto3's default session, while start_on_first_call waits on it

    def reserve(self) -> LocalAws:
        """Choose the address and be the running AWS, without starting it: :meth:`start_on_first_call`
        starts it when boto3 first calls it. A render with nothing to synthesise never does (the
        server's imports and start are a second of a command that otherwise takes a few)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self._port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self._port}"
        LocalAws.running = self
        return self

    def start_on_first_call(self) -> None:
        """Start this reserved AWS before the first call any client of boto3's default session makes."""
        import boto3

        lock = threading.Lock()

        def before_call(**_: Any) -> None:
            with lock:
                if self._server is None and LocalAws.running is self:
                    self.start()

        self._session = boto3._get_default_session()
        self._session.events.register("before-call", before_call, unique_id=f"narrate-local-aws-{id(self)}")

    def start(self) -> LocalAws:
        from moto.server import ThreadedMotoServer

        from narrate.aws.local import moto_patches

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.emulator = AsyncEndpointEmulator(self.url, REGION, self.options)
        moto_patches.install(self.emulator, self.polly)
        self.emulator.start()
        LocalAws.running = self
        return self

    def environment(self) -> dict[str, str]:
        """What boto3 needs to talk to this AWS: standard variables only, dummy credentials."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def stop(self) -> None:
        from narrate.aws.local import moto_patches

        if self._session is not None:
            self._session.events.unregister("before-call", unique_id=f"narrate-local-aws-{id(self)}")
            self._session = None
        if self.emulator is not None:
            self.emulator.stop()
            moto_patches.uninstall(self.emulator, self.polly)
        self.polly.close()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if LocalAws.running is self:
            LocalAws.running = None


@contextmanager
def local_aws(options: EmulatorOptions | None = None, lazy: bool = False) -> Iterator[LocalAws]:
    """Start the embedded AWS (or join the one already running here) and point boto3 at it; with
    ``lazy``, it starts at boto3's first call, if any comes."""
    if LocalAws.running is not None:
        yield LocalAws.running
        return
    aws = LocalAws(options)
    if lazy:
        aws.reserve().start_on_first_call()
    else:
        aws.start()
    saved = {key: os.environ.get(key) for key in aws.environment()}
    os.environ.update(aws.environment())
    try:
        yield aws
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.stop()
