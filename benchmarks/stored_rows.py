"""Rows the embedded backend writes per 1,000 streamed characters, through the live relay.

The server's live relay (application/live.py) shows each delta at once and stores
what it accepted in batches (2 s or 8,000 characters). This replays 10,000
characters of 9-character deltas, every 10 ms as benchmarks/relay.py's fake model
sends them, through the real relay into a real SQLite file, and counts the rows:
``chat_chunks`` rows, and every row SQLite changed (``total_changes``, which counts
each insert, update and delete, part upserts and session updates included).

Run from the repository root: ``python benchmarks/stored_rows.py`` (a few seconds).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.adapters.embedded import open_backend
from orchestrator.adapters.system import SystemClock
from orchestrator.application.live import LiveRelay
from orchestrator.domain.live import LiveText
from orchestrator.domain.parts import PartId, TextKind
from orchestrator.testing import PlainHasher, SequentialIds

DELTA = "w0000042 "
TOTAL = 10_000


def _chunk_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM chat_chunks").fetchone()[0])


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orchestrator.sqlite3"
        backend = await open_backend(
            path, clock=SystemClock(), ids=SequentialIds(), hasher=PlainHasher()
        )
        try:
            alice = (await backend.create_user("alice", "hash")).user_id
            machine, token = await backend.create_machine(alice, "laptop")
            await backend.go_online(token, tmp)
            worker = await backend.add_worker(alice, machine.machine_id, ".", None)
            await backend.update_worker_models(token, worker.worker_id, ["fake/small"])
            session = await backend.start_session(alice, worker.worker_id, "fake/small")
            message = await backend.send_message(alice, session.chat_session_id, "hello")
            reply = await backend.claim_message(token, message.message_id)
            # SQLite's own count of rows inserted, updated or deleted on the backend's connection.
            connection = backend._store.db
            before = connection.total_changes
            relay = LiveRelay(backend, SystemClock())
            async with anyio.create_task_group() as tasks:
                await tasks.start(relay.run)
                sent = 0
                while sent < TOTAL:
                    event = LiveText(
                        session.chat_session_id, reply.message_id, PartId("prt_1"),
                        TextKind.TEXT, sent, DELTA,
                    )  # fmt: skip
                    await relay.receive(token, event)
                    sent += len(DELTA)
                    await anyio.sleep(0.01)
                await relay.settle(reply.message_id)
                tasks.cancel_scope.cancel()
            rows = connection.total_changes - before
            chunks = _chunk_rows(path)
            print(f"Embedded backend, {sent:,} characters in 9-character deltas every 10 ms:")
            print(f"  {relay.writes} durable writes (transactions)")
            print(f"  {chunks} chat_chunks rows ({chunks * 1000 / sent:.1f} per 1,000 characters)")
            print(f"  {rows} rows written in all ({rows * 1000 / sent:.1f} per 1,000 characters)")
        finally:
            await backend.close()


if __name__ == "__main__":
    anyio.run(main)
