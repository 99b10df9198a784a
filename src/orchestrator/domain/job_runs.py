"""Starting a job's run: the session it writes to and the prompt it queues.

A pure transition like those of :mod:`orchestrator.domain.replies`: the SQLite
backend and the in-memory fake load the job, its worker and its last session,
call :func:`start_run_session` and save what it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from orchestrator.domain.chat import (
    ChatMessage,
    ChatSession,
    ChatSessionStatus,
    MessageRole,
    MessageStatus,
    check_model,
    check_runnable,
    job_session_title,
)
from orchestrator.domain.ids import ChatSessionId, MessageId
from orchestrator.domain.jobs import Job, SessionMode
from orchestrator.domain.model import Worker


@attrs.frozen
class RunSession:
    """What starting a run writes."""

    #: The session the run writes to, active from now.
    session: ChatSession
    #: True if the run opened it (False: a same-session job appends to its open one).
    opened: bool
    #: The job's prompt, queued in the session.
    message: ChatMessage
    #: The job, keeping a session it opened for its next runs if it is a same-session job.
    job: Job


def start_run_session(
    job: Job,
    worker: Worker,
    last: ChatSession | None,
    new_session_id: Callable[[], ChatSessionId],
    message_id: Callable[[], MessageId],
    now: datetime,
) -> RunSession:
    """Queue the job's prompt on its worker: in its open session (``last``) or a new one."""
    check_model(worker, job.model)
    check_runnable(worker)
    same = job.session_mode is SessionMode.SAME_SESSION
    if (
        same
        and last is not None
        and last.chat_session_id == job.chat_session_id
        and last.worker_id == worker.worker_id
        and last.status is not ChatSessionStatus.TERMINATED
    ):
        session, opened = last, False
    else:
        session_id = new_session_id()
        session = ChatSession(
            session_id,
            worker.worker_id,
            job.user_id,
            job.model,
            ChatSessionStatus.ACTIVE,
            now,
            now,
            title=job_session_title(job.name),
        )
        opened = True
        if same:
            job = attrs.evolve(job, chat_session_id=session_id)
    session = attrs.evolve(session, status=ChatSessionStatus.ACTIVE, last_activity=now)
    message = ChatMessage(
        message_id(),
        session.chat_session_id,
        MessageRole.USER,
        job.prompt,
        MessageStatus.PENDING,
        now,
    )
    return RunSession(session, opened, message, job)
