"""The endpoint's render slot: a dead holder's slot is freed, a finished holder's leftover beat never
frees its successor's, and a holder's exit does not wait on the server."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.variables import Variable

from narrate.endpoints.render_slot import (
    STALE_AFTER_SECONDS,
    SlotWatch,
    ensure_limit,
    forget_beat,
    free_if_abandoned,
    heartbeat_name,
    render_slot,
    slot_name,
    write_beat,
)
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("prefect_server")


def active_slots(endpoint: str) -> int:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(slot_name(endpoint)).active_slots


@contextmanager
def taken(endpoint: str) -> Iterator[None]:
    """The slot held the way a render holds it, by a holder that does not beat."""
    ensure_limit(slot_name(endpoint))
    with concurrency(slot_name(endpoint), occupy=1, strict=True, lease_duration=60):
        yield


def beat(endpoint: str, seconds_ago: float, run: str) -> None:
    holder = {"flow_run_id": run, "pid": 1, "host": "elsewhere", "renewed_at": time.time() - seconds_ago}
    Variable.set(heartbeat_name(endpoint), holder, overwrite=True)


def test_a_holder_silent_at_two_looks_is_freed() -> None:
    endpoint, watch = "slot-dead-holder", SlotWatch()
    with taken(endpoint):
        beat(endpoint, STALE_AFTER_SECONDS + 5, run="dead")
        assert not free_if_abandoned(endpoint, watch)  # first look: maybe a finished holder's beat
        assert active_slots(endpoint) == 1
        assert free_if_abandoned(endpoint, watch)  # the same beat again: its holder is gone
        assert active_slots(endpoint) == 0
        assert Variable.get(heartbeat_name(endpoint)) is None


def test_a_finished_holders_beat_never_frees_the_next_holder() -> None:
    endpoint, watch = "slot-successor", SlotWatch()
    with taken(endpoint):
        beat(endpoint, STALE_AFTER_SECONDS + 60, run="finished")  # left behind by the previous holder
        assert not free_if_abandoned(endpoint, watch)
        beat(endpoint, 0, run="next")  # the new holder's first beat
        assert not free_if_abandoned(endpoint, watch)
        assert not free_if_abandoned(endpoint, watch)
        assert active_slots(endpoint) == 1


def test_a_fresh_beat_is_never_freed() -> None:
    endpoint = "slot-alive"
    with taken(endpoint):
        beat(endpoint, 1, run="alive")
        watch = SlotWatch()
        assert not any(free_if_abandoned(endpoint, watch) for _ in range(3))
        assert active_slots(endpoint) == 1


def test_leaving_frees_the_slot_at_once_and_removes_the_beat_soon_after() -> None:
    endpoint = "slot-leaving"
    with render_slot(endpoint):
        mine: Any = Variable.get(heartbeat_name(endpoint))
        assert mine["pid"] == os.getpid() and active_slots(endpoint) == 1
    assert active_slots(endpoint) == 0
    assert wait_for(lambda: Variable.get(heartbeat_name(endpoint)) is None, 15)


def test_a_late_removal_spares_the_next_holders_beat() -> None:
    endpoint = "slot-late-removal"
    previous = {"flow_run_id": None, "pid": os.getpid(), "host": socket.gethostname()}
    beat(endpoint, 0, run="next")
    forget_beat(heartbeat_name(endpoint), previous)
    assert Variable.get(heartbeat_name(endpoint))["flow_run_id"] == "next"


def test_a_beat_survives_the_previous_holders_removal_between_read_and_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race CI met: ``Variable.set`` found the old beat, the previous holder's background removal
    deleted it, and the update got 404 from the server, failing the new render before it started."""
    from prefect.client.orchestration._variables.client import VariableClient

    endpoint = "slot-removed-mid-write"
    beat(endpoint, 0, run="previous")
    update = VariableClient.update_variable
    removals: list[str] = []

    def removed_first(self: VariableClient, variable: Any) -> None:
        if not removals:
            removals.append(variable.name)
            self.delete_variable_by_name(variable.name)  # the previous holder's forget_beat, just now
        return update(self, variable)

    monkeypatch.setattr(VariableClient, "update_variable", removed_first)
    write_beat(heartbeat_name(endpoint), {"flow_run_id": "next", "renewed_at": time.time()})
    assert removals == [heartbeat_name(endpoint)]
    assert Variable.get(heartbeat_name(endpoint))["flow_run_id"] == "next"


def test_a_lease_the_server_forgot_does_not_cancel_the_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI failure: a Prefect server restarted mid-render forgets its leases, the renewal fails, and
    a strict slot had Prefect inject CancelledError into the render's thread. The heartbeat keeps the
    slot instead, and the render goes on."""
    from prefect.client.orchestration import SyncPrefectClient

    def forgotten(self: SyncPrefectClient, lease_id: Any, lease_duration: float) -> None:
        raise RuntimeError(f"lease {lease_id} not found")

    monkeypatch.setattr(SyncPrefectClient, "renew_concurrency_lease", forgotten)
    monkeypatch.setattr("prefect.concurrency._leases._RENEWAL_MAX_ATTEMPTS", 1)
    endpoint, finished = "slot-lease-forgotten", []
    with render_slot(endpoint):
        for _ in range(30):  # the renewal thread renews at once: a cancellation arrives within 3 s
            time.sleep(0.1)
        finished.append(True)
    assert finished == [True]
