"""The wire format shared by the server and its clients."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from cattrs.errors import ClassValidationError

from orchestrator.adapters.wire import (
    converter,
    error_body,
    error_from_body,
    status_for,
)
from orchestrator.domain import chat, errors, ids, model


def _tree(root: type[errors.OrchestratorError]) -> list[type[errors.OrchestratorError]]:
    return [root, *(cls for sub in root.__subclasses__() for cls in _tree(sub))]


#: Every error of the domain's tree (a test's own subclasses left out).
EVERY_ERROR = [cls for cls in _tree(errors.OrchestratorError) if cls.__module__ == errors.__name__]


def test_records_round_trip_as_plain_json() -> None:
    """Records become JSON with ISO-8601 timestamps and enum values, and come back equal."""
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    worker = model.Worker(
        ids.WorkerId("wrk_1"),
        ids.MachineId("mch_1"),
        "a/b",
        model.WorkerStatus.ONLINE,
        when,
        models=("m",),
    )
    data = converter.unstructure(worker)
    assert data["status"] == "online"
    assert type(data["status"]) is str
    assert data["created_at"] == "2025-01-02T03:04:05+00:00"
    assert data["models"] == ["m"]
    assert converter.structure(data, model.Worker) == worker
    summary = model.MachineSummary(
        model.Machine(
            ids.MachineId("mch_1"), ids.UserId("usr_1"), "n", model.MachineStatus.OFFLINE, when
        ),
        model.WorkerCounts(ready=2),
    )
    assert converter.structure(converter.unstructure(summary), model.MachineSummary) == summary


def test_chat_records_round_trip_with_enum_values() -> None:
    """A work item (session, messages, permission) becomes plain JSON and comes back equal."""
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    session = chat.ChatSession(
        ids.ChatSessionId("chs_1"),
        ids.WorkerId("wrk_1"),
        ids.UserId("usr_1"),
        "fake/a",
        chat.ChatSessionStatus.IDLE,
        when,
        when,
        agent_session_id="ses_1",
    )
    pending = chat.ChatMessage(
        ids.MessageId("msg_1"),
        session.chat_session_id,
        chat.MessageRole.USER,
        "hi",
        chat.MessageStatus.PENDING,
        when,
    )
    reply = chat.ChatMessage(
        ids.MessageId("msg_2"),
        session.chat_session_id,
        chat.MessageRole.ASSISTANT,
        "",
        chat.MessageStatus.STREAMING,
        when,
        reply_to=pending.message_id,
        abort_requested=True,
    )
    permission = chat.PermissionRequest(
        ids.PermissionId("prm_1"),
        session.chat_session_id,
        reply.message_id,
        "per_1",
        "bash",
        "ls",
        chat.PermissionStatus.ANSWERED,
        when,
        chat.PermissionAnswer.ALWAYS,
    )
    work = chat.SessionWork(session, (pending,), reply, (permission,))
    data = converter.unstructure(work)
    assert json.loads(json.dumps(data)) == data
    assert data["session"]["status"] == "idle"
    assert type(data["session"]["status"]) is str
    assert data["answered_permissions"][0]["answer"] == "always"
    assert converter.structure(data, chat.SessionWork) == work
    chunk = chat.ChatChunk(
        ids.ChunkId("chk_1"), reply.message_id, session.chat_session_id, "Hel", 7, when
    )
    assert converter.structure(converter.unstructure(chunk), chat.ChatChunk) == chunk


def test_a_message_carries_its_derived_completed_flag() -> None:
    """Messages say whether they are finished; the flag is ignored when read back."""
    when = datetime(2025, 1, 2, tzinfo=UTC)
    done = chat.ChatMessage(
        ids.MessageId("msg_1"),
        ids.ChatSessionId("chs_1"),
        chat.MessageRole.ASSISTANT,
        "ok",
        chat.MessageStatus.INTERRUPTED,
        when,
        error="The machine stopped.",
    )
    data = converter.unstructure(done)
    assert (data["status"], data["completed"]) == ("interrupted", True)
    assert converter.structure({**data, "completed": False}, chat.ChatMessage) == done
    pending = attrs.evolve(done, status=chat.MessageStatus.PENDING)
    assert converter.unstructure(pending)["completed"] is False


def test_naive_timestamps_are_refused() -> None:
    """A timestamp without a UTC offset cannot be read back."""
    data = {
        "user_id": "usr_1",
        "username": "a",
        "created_at": "2025-01-02T03:04:05",
    }
    with pytest.raises(ClassValidationError) as refused:
        converter.structure(data, model.User)
    assert "offset" in str(refused.value.exceptions[0])
    data["created_at"] = datetime(2025, 1, 2, tzinfo=timezone(timedelta(hours=2))).isoformat()
    assert converter.structure(data, model.User).created_at.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("cls", EVERY_ERROR)
def test_every_error_round_trips_with_class_and_message(
    cls: type[errors.OrchestratorError],
) -> None:
    """Each domain error survives the trip as the same class and the same sentence."""
    sent = cls("Exactly this sentence.")
    received = error_from_body(status_for(sent), error_body(sent))
    assert type(received) is cls
    assert received.message == "Exactly this sentence."


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, errors.InvalidInput),
        (401, errors.AuthenticationFailed),
        (404, errors.NotFound),
        (429, errors.RateLimited),
        (502, errors.BackendUnavailable),
        (500, errors.BackendUnavailable),
    ],
)
def test_unknown_bodies_map_by_status(status: int, expected: type[Exception]) -> None:
    """An answer without a known error type (a proxy page, say) maps by its status."""
    received = error_from_body(status, "<html>Bad Gateway</html>")
    assert type(received) is expected
    assert received.message == f"The server answered HTTP {status}."


def test_statuses_follow_the_error_tree() -> None:
    """Subclasses take their nearest mapped ancestor's status."""
    assert status_for(errors.InvalidTransition()) == 409
    assert status_for(errors.PathOutsideRoot()) == 400
    assert status_for(errors.PayloadTooLarge()) == 413
    assert status_for(errors.RateLimited()) == 429
