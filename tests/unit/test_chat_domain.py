"""Properties of the chat domain's rules: messages, chunks, endings, models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.chat import (
    MAX_CHUNK_LENGTH,
    MAX_MESSAGE_LENGTH,
    REPLY_ENDINGS,
    ChatSessionStatus,
    MessageStatus,
    check_model,
    validate_chunk,
    validate_ending,
    validate_message,
    validate_session_update,
)
from orchestrator.domain.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    PayloadTooLarge,
)
from orchestrator.domain.ids import MachineId, WorkerId
from orchestrator.domain.model import Worker, WorkerStatus

WHITESPACE = " \t\n\r\x0b\x0c\u00a0\u2003\u3000"


@given(st.text(alphabet=WHITESPACE, max_size=50))
def test_blank_messages_are_refused(content: str) -> None:
    """Any message made only of whitespace (or nothing) is refused as empty."""
    with pytest.raises(InvalidInput, match=r"^A message must not be empty\.$"):
        validate_message(content)


@given(st.text(min_size=1, max_size=200).filter(lambda s: s.strip() != ""))
def test_messages_with_content_are_kept_as_written(content: str) -> None:
    """A message with any non-blank character is accepted unchanged, spaces included."""
    assert validate_message(content) == content


@given(st.integers(min_value=1, max_value=1000))
def test_message_length_limit(extra: int) -> None:
    """Exactly the limit is accepted; anything longer is too large."""
    assert len(validate_message("x" * MAX_MESSAGE_LENGTH)) == MAX_MESSAGE_LENGTH
    with pytest.raises(PayloadTooLarge, match=str(MAX_MESSAGE_LENGTH)):
        validate_message("x" * (MAX_MESSAGE_LENGTH + extra))


def test_chunk_limits() -> None:
    """A chunk may be blank text but not empty, and not over its limit."""
    assert validate_chunk(" ") == " "
    with pytest.raises(InvalidInput):
        validate_chunk("")
    with pytest.raises(PayloadTooLarge):
        validate_chunk("x" * (MAX_CHUNK_LENGTH + 1))


@pytest.mark.parametrize("status", list(MessageStatus))
def test_only_reply_endings_are_accepted(status: MessageStatus) -> None:
    """validate_ending accepts exactly failed, interrupted and aborted."""
    if status in REPLY_ENDINGS:
        assert validate_ending(status, "why") == (status, "why")
    else:
        with pytest.raises(InvalidInput):
            validate_ending(status, "why")


def test_a_machine_cannot_terminate_a_session() -> None:
    """Termination is the owner's; titles are stripped."""
    with pytest.raises(InvalidTransition):
        validate_session_update(ChatSessionStatus.TERMINATED, None, None)
    assert validate_session_update(None, None, " T ") == (None, None, "T")


def _worker(status: WorkerStatus, models: tuple[str, ...]) -> Worker:
    when = datetime(2025, 1, 1, tzinfo=UTC)
    return Worker(WorkerId("wrk_1"), MachineId("mch_1"), "", status, when, models=models)


def test_check_model() -> None:
    """A session needs an approved worker offering the model; each refusal says what to do."""
    assert check_model(_worker(WorkerStatus.OFFLINE, ("a", "b")), "b") == "b"
    with pytest.raises(
        InvalidInput, match=r"^The worker does not offer model c\. Pick one of: a, b"
    ):
        check_model(_worker(WorkerStatus.READY, ("a", "b")), "c")
    with pytest.raises(InvalidInput, match=r"not known yet"):
        check_model(_worker(WorkerStatus.READY, ()), "a")
    with pytest.raises(Conflict, match=r"waiting for approval"):
        check_model(_worker(WorkerStatus.PENDING_AUTHORIZATION, ("a",)), "a")
