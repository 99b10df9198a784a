"""On Convex every call is billed: heartbeats, streaming writes and job ticks are sized for it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from orchestrator.entrypoints.cli import server_settings
from orchestrator.entrypoints.settings import (
    CONVEX_COALESCE_WINDOW,
    CONVEX_HEARTBEAT,
    CONVEX_SCHEDULER_TICK,
    MachineSettings,
    ServerSettings,
)

URL = "https://happy-otter-123.convex.cloud"


def test_a_machine_on_convex_beats_every_45_seconds_and_streams_every_250_ms() -> None:
    """The Convex sizes apply only when the machine talks to a Convex deployment."""
    on_convex = MachineSettings.sized_for(URL)
    assert (on_convex.heartbeat_interval, on_convex.coalesce_window) == (
        CONVEX_HEARTBEAT,
        CONVEX_COALESCE_WINDOW,
    )
    assert timedelta(seconds=45) == CONVEX_HEARTBEAT
    embedded = MachineSettings.sized_for(None)
    assert (embedded.heartbeat_interval, embedded.coalesce_window) == (
        MachineSettings().heartbeat_interval,
        MachineSettings().coalesce_window,
    )


def test_an_explicit_heartbeat_wins_over_the_convex_size() -> None:
    """``--heartbeat 20`` on Convex means 20 s."""
    chosen = MachineSettings.sized_for(URL, heartbeat_interval=timedelta(seconds=20))
    assert chosen.heartbeat_interval == timedelta(seconds=20)


def test_a_server_on_convex_looks_for_due_jobs_every_minute(tmp_path: Path) -> None:
    """The web server's job scheduler ticks every minute on Convex, as before elsewhere."""
    assert server_settings(tmp_path, convex_url=URL).scheduler_tick == CONVEX_SCHEDULER_TICK
    assert server_settings(tmp_path).scheduler_tick == ServerSettings().scheduler_tick
