"""The whole chat path with real parts: server, machine process, opencode, fake model.

A client uses only the user API: it adds a worker, starts a session, sends
messages and reads the reply through the session's SSE stream.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration.chat_stage import (
    machine_online,
    open_session,
    replies_finished,
    stage,
    worker_ready,
)
from tests.integration.harness import NEEDS_OPENCODE, stop

pytestmark = [pytest.mark.slow, pytest.mark.anyio, NEEDS_OPENCODE]

REPLY = "Hello from the fake model: this reply arrives in many small pieces."


async def test_messages_stream_live_keep_history_and_resume_after_reconnect(
    tmp_path: Path,
) -> None:
    """Chunks arrive in order and add up to the reply; history carries over; resume has no gap."""
    async with worker_ready(tmp_path, reply=REPLY, delta_delay=0.01) as ready:
        session_id = await ready.open_session()

        await ready.api.send(session_id, "first question")
        chunks, messages = await ready.api.stream(session_id, replies_finished(1))
        reply = next(m for m in messages if m["role"] == "assistant")
        assert reply["status"] == "completed"
        assert reply["content"] == REPLY
        sequences = [c["sequence"] for c in chunks]
        assert sequences == sorted(set(sequences))
        assert "".join(c["chunk"] for c in chunks) == REPLY

        await ready.api.send(session_id, "second question")
        _, messages = await ready.api.stream(session_id, replies_finished(2))
        assert [m["status"] for m in messages if m["role"] == "assistant"] == [
            "completed",
            "completed",
        ]
        # opencode sent the whole conversation: the model saw the first question again.
        assert "first question" in ready.stage.model.chat_requests[-1].user_texts
        assert "second question" in ready.stage.model.chat_requests[-1].user_texts

        # A client that saw the first reply's text gets exactly the rest, no gap, no dup
        # (stored text comes back as one chunk per batch: at least one per reply).
        everything, _ = await ready.api.stream(session_id, replies_finished(2), last_event_id=0)
        assert len(everything) >= 2
        resumed, _ = await ready.api.stream(
            session_id, replies_finished(2), last_event_id=everything[0]["sequence"]
        )
        assert resumed == everything[1:]
    assert ready.machine.returncode == 0, "".join(ready.lines)


async def test_a_machine_killed_mid_reply_marks_it_interrupted_and_carries_on(
    tmp_path: Path,
) -> None:
    """SIGKILL mid-reply: no opencode left behind; on restart the reply is interrupted, not lost."""
    with stage(tmp_path, reply="slow " * 200, delta_delay=0.05) as s:
        async with machine_online(s) as first:
            api = first.api
            session_id = await open_session(api, s.token)
            await api.send(session_id, "go slowly")

            await api.stream(session_id, lambda _: False, chunks_wanted=3)
            first.machine.send_signal(signal.SIGKILL)
            first.machine.wait(timeout=10)
            await s.machine_gone(timeout=15)

            s.model.reply = "Back again."
            s.model.delta_delay = 0.0
            second = s.worker()
            try:
                _, messages = await api.stream(session_id, replies_finished(1))
                interrupted = next(m for m in messages if m["role"] == "assistant")
                assert interrupted["status"] == "interrupted"
                assert interrupted["content"].startswith("slow")
                assert interrupted["error"]

                await api.send(session_id, "again")
                _, messages = await api.stream(session_id, replies_finished(2))
                replies = [m for m in messages if m["role"] == "assistant"]
                assert [r["status"] for r in replies] == ["interrupted", "completed"]
                assert replies[1]["content"] == "Back again."
            finally:
                stop(second)
