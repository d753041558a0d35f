"""One render at a time per endpoint, from any deployment or the CLI, even when a render dies holding it.

The slot is a Prefect global concurrency limit of 1, ``narrate-endpoint-<name>``: a render that finds
it taken waits (it is not lost). Prefect frees the slot of a process that died only when the slot's
lease expires *and* the server's repossessor service runs, and ephemeral servers (the CLI's default)
run no such service: a killed render would block every later one for good. So the holder also keeps a
heartbeat in a Prefect variable, and a waiter that finds the heartbeat stale frees the slot itself and
marks the dead run Crashed. Clocks of the machines sharing an endpoint are assumed NTP-synced.

A holder removes its heartbeat when it is done, but in the background: on the SQLite of a local
Prefect server that delete often meets a locked database at the end of a flow run and is answered
503, and the client's retry would add about 2 s to every render. So a beat may outlive its holder,
and a waiter frees the slot only when it finds the same stale beat at two looks in a row (a new
holder beats the moment it has the slot).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from narrate.log import run_logger

HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 30.0  # six missed heartbeats: the holder is gone
WAIT_STEP_SECONDS = 10.0  # how often a waiter looks at the holder's heartbeat
LEASE_SECONDS = 60  # Prefect's own lease, the shortest its server accepts


@dataclass
class SlotWatch:
    """What a waiter saw at its earlier looks at a taken slot."""

    holderless_since: float | None = None  # first look that found no heartbeat at all
    stale_beat: float | None = None  # ``renewed_at`` of a beat already found stale once


def slot_name(endpoint_name: str) -> str:
    return f"narrate-endpoint-{endpoint_name}"


def heartbeat_name(endpoint_name: str) -> str:
    return f"narrate_render_slot_{endpoint_name.lower().replace('-', '_')}"


@contextmanager
def render_slot(endpoint_name: str) -> Iterator[None]:
    """Hold the endpoint's render slot for the body; wait for it first if another render has it."""
    from prefect.concurrency.sync import concurrency

    name = slot_name(endpoint_name)
    ensure_limit(name)
    run_logger().info("waiting for the endpoint's render slot %s", name)
    watch = SlotWatch()
    while True:
        stack = ExitStack()
        try:  # acquire alone in the try: a TimeoutError from the render itself must not land here
            stack.enter_context(
                concurrency(
                    name,
                    occupy=1,
                    strict=True,
                    lease_duration=LEASE_SECONDS,
                    timeout_seconds=WAIT_STEP_SECONDS,
                    # strict would also cancel the render when the lease cannot be renewed (a Prefect
                    # server restarted mid-render forgets its leases): the heartbeat keeps the slot
                    raise_on_lease_renewal_failure=False,
                )
            )
        except TimeoutError:
            free_if_abandoned(endpoint_name, watch)
            continue
        with stack, _heartbeat(endpoint_name):
            yield
        return


def free_if_abandoned(endpoint_name: str, watch: SlotWatch) -> bool:
    """Free the slot when its holder stopped beating; True when it did. ``watch`` carries what this
    waiter saw at its earlier looks."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.variables import Variable

    name, now = slot_name(endpoint_name), time.time()
    with get_client(sync_client=True) as client:
        if client.read_global_concurrency_limit_by_name(name).active_slots == 0:
            return False
        beat: Any = Variable.get(heartbeat_name(endpoint_name))
        if isinstance(beat, dict):
            renewed_at = float(beat.get("renewed_at", 0))
            if now - renewed_at < STALE_AFTER_SECONDS:
                return False
            if watch.stale_beat != renewed_at:  # maybe a finished holder's, its successor about to beat
                watch.stale_beat = renewed_at
                return False
        else:  # a holder beats before its render starts: this one died first
            watch.holderless_since = watch.holderless_since or now
            beat = {"renewed_at": watch.holderless_since}
        silent = now - float(beat["renewed_at"])
        if silent < STALE_AFTER_SECONDS:
            return False
        run_logger().warning(
            "render slot %s: its holder (flow run %s, pid %s on %s) went silent %.0f s ago; freeing it",
            name, beat.get("flow_run_id"), beat.get("pid"), beat.get("host"), silent,
        )  # fmt: skip
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
        with suppress(Exception):
            Variable.unset(heartbeat_name(endpoint_name))
        if beat.get("flow_run_id"):
            _mark_crashed(client, str(beat["flow_run_id"]), silent)
    return True


def ensure_limit(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except Exception:  # missing: create it (a concurrent render may have just done so)
            with suppress(Exception):
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


@contextmanager
def _heartbeat(endpoint_name: str) -> Iterator[None]:
    from prefect.runtime import flow_run

    variable = heartbeat_name(endpoint_name)
    holder = {"flow_run_id": flow_run.get_id(), "pid": os.getpid(), "host": socket.gethostname()}
    stop = threading.Event()

    def beat() -> None:
        write_beat(variable, holder | {"renewed_at": time.time()})

    def keep_beating() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                beat()
            except Exception as exc:  # the next beat tries again; a waiter tolerates a few misses
                run_logger().warning("render slot heartbeat failed: %s", exc)

    beat()
    thread = threading.Thread(target=keep_beating, name="render-slot-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=0.2)  # a beat stuck in the client's retries (503s, backoff) finishes alone
        forget = threading.Thread(
            target=forget_beat, args=(variable, holder), name="render-slot-forget", daemon=True
        )
        forget.start()


BEAT_WRITE_ATTEMPTS = 3


def write_beat(variable: str, beat: dict[str, Any]) -> None:
    """Write the holder's beat. ``Variable.set`` reads the variable, then updates or creates it: the
    previous holder's background :func:`forget_beat` (or a waiter freeing the slot) can delete it in
    between (404 on the update) or another writer create it (409 on the create). Either way the next
    attempt sees the variable as it now is."""
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError
    from prefect.variables import Variable

    for attempt in range(1, BEAT_WRITE_ATTEMPTS + 1):
        try:
            Variable.set(variable, beat, overwrite=True)
            return
        except (ObjectNotFound, ObjectAlreadyExists):
            if attempt == BEAT_WRITE_ATTEMPTS:
                raise
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code not in (404, 409) or attempt == BEAT_WRITE_ATTEMPTS:
                raise


def forget_beat(variable: str, holder: dict[str, Any]) -> None:
    """Remove this holder's beat, unless the next holder's has replaced it (best effort: a beat left
    behind is handled by the waiters' second look)."""
    from prefect.variables import Variable

    with suppress(Exception):
        beat: Any = Variable.get(variable)
        if isinstance(beat, dict) and all(beat.get(key) == value for key, value in holder.items()):
            Variable.unset(variable)


def _mark_crashed(client: Any, flow_run_id: str, silent_seconds: float) -> None:
    """The dead render's run still says Running; say what happened to it."""
    from uuid import UUID

    from prefect.states import Crashed

    with suppress(Exception):
        run = client.read_flow_run(UUID(flow_run_id))
        if run.state is not None and not run.state.is_final():
            message = (
                f"the render process stopped ({silent_seconds:.0f} s without a heartbeat); "
                "a later render freed its endpoint slot"
            )
            client.set_flow_run_state(UUID(flow_run_id), Crashed(message=message), force=True)
