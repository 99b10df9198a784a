"""The backend contract for lists of large records: whole on every backend, read in bounded calls.

Waiting permission requests carry edit diffs of up to ``MAX_DIFF_BYTES``, questions
up to tens of kilobytes and tool parts ``MAX_TOOL_OUTPUT_BYTES`` of output, so a
count alone does not bound a read. Here each list holds more than
``READ_LIMIT``, and each Convex deployment refuses a call that reads more than
that (Convex itself: 16 MiB): every item is still listed, once, in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.adapters.convex import ClientTransport, ConvexBackend, HttpTransport
from orchestrator.adapters.convex._transport import Transport
from orchestrator.application.jobs import run_due_jobs
from orchestrator.domain.chat import (
    MAX_MESSAGE_LENGTH,
    ChatMessage,
    PermissionAnswer,
    PermissionRequest,
)
from orchestrator.domain.diffs import MAX_DIFF_BYTES
from orchestrator.domain.ids import JobId, UserId
from orchestrator.domain.jobs import WORKER_REMOVED, JobDraft, RunStatus
from orchestrator.domain.paging import MAX_PAGE, PAGE_BYTES
from orchestrator.domain.parts import (
    MAX_TOOL_OUTPUT_BYTES,
    ToolPart,
    ToolState,
    ToolStatus,
)
from orchestrator.domain.ports import Backend
from orchestrator.domain.questions import Question, QuestionOption, QuestionRequest
from orchestrator.domain.replies import PermissionAsk, QuestionAsk
from orchestrator.testing import FakeClock
from tests.contract.conftest import (
    FACTORIES,
    MODELS,
    Chat,
    MachineFactory,
    _started_harness,
    claimed,
    work_now,
)
from tests.contract.convex_stand_in_client import FACTORY as STAND_IN_CLIENT

pytestmark = pytest.mark.anyio

#: The most a Convex call here may read: a page and a little more, far under Convex's 16 MiB.
READ_LIMIT = PAGE_BYTES + PAGE_BYTES // 2

DIFF = "+" * (MAX_DIFF_BYTES - 1000)
#: A job's prompt at its longest, 3 bytes a character: 60 of them pass even Convex's 16 MiB.
LONG_PROMPT = "€" * MAX_MESSAGE_LENGTH
JOBS_DUE_AT = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
LONG_QUESTION = Question("€" * 9000, "Pick", (QuestionOption("A", "a"),))


def _transport(kind: str) -> Transport:
    url = _started_harness().new_deployment(
        transaction_limits={"bytesRead": READ_LIMIT}, sync=kind == "convex-sync"
    )
    if kind == "convex":
        return HttpTransport(url, timeout=10, poll_interval=0.02)
    if kind == "convex-client":
        return ClientTransport(url, timeout=10, client_factory=STAND_IN_CLIENT)
    return ClientTransport(url, timeout=10)


@pytest.fixture(params=sorted(FACTORIES))
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[Backend]:
    """Every backend; a Convex one refuses a call that reads more than READ_LIMIT."""
    kind = str(request.param)
    if kind.startswith("convex"):
        created: Backend = ConvexBackend(
            _transport(kind), server_secret=_started_harness().server_secret
        )
    else:
        created = await FACTORIES[kind](tmp_path)
    try:
        yield created
    finally:
        await created.close()


async def _replies_on_two_machines(
    backend: Backend, alice: UserId, chat: Chat, new_machine: MachineFactory
) -> tuple[ChatMessage, Chat, ChatMessage]:
    """A streaming reply in ``chat``, and a second machine's session with one of its own."""
    machine, token = await new_machine("desktop", online=True)
    worker = await backend.add_worker(alice, machine.machine_id, "repo2", None)
    worker = await backend.update_worker_models(token, worker.worker_id, MODELS)
    session = await backend.start_session(alice, worker.worker_id, MODELS[0])
    other = Chat(machine, token, worker, session)
    return await claimed(backend, alice, chat), other, await claimed(backend, alice, other)


def _long_edit(n: int) -> PermissionAsk:
    """The ``n``-th edit whose diff is nearly as long as one may be."""
    return PermissionAsk(
        f"p{n}", "edit", "edit a.txt", file="a.txt", diff=DIFF, diff_size=len(DIFF)
    )


async def test_waiting_edits_past_the_read_limit_are_listed_whole_oldest_first(
    backend: Backend, alice: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """Edits with long diffs waiting on two machines: every one listed once, oldest first."""
    first, other, second = await _replies_on_two_machines(backend, alice, chat, new_machine)
    made = []
    for n in range(60):
        at, reply = (chat, first) if n % 2 else (other, second)
        request = await backend.record_permission(at.token, reply.message_id, _long_edit(n))
        made.append(request.permission_id)
    assert len(made) * len(DIFF) > READ_LIMIT

    for user in (alice, None):
        listed = await backend.list_waiting_permissions(user)
        assert [w.request.permission_id for w in listed] == made
    watched = backend.watch_waiting_permissions(alice)
    try:
        assert [w.request.permission_id for w in await anext(watched)] == made
        # A request that lands on the last page changes the watched list too.
        late = await backend.record_permission(
            other.token, second.message_id, PermissionAsk("late", "bash", "ls")
        )
        with anyio.fail_after(60):  # a guard against a hang, not a measurement
            while len(now := [w.request.permission_id for w in await anext(watched)]) == 60:
                pass
        assert now == [*made, late.permission_id]
    finally:
        await watched.aclose()  # type: ignore[attr-defined]
    session = await backend.list_permissions(alice, chat.session.chat_session_id)
    assert [p.permission_id for p in session] == made[1::2]


async def test_waiting_questions_past_a_page_and_the_read_limit_are_listed_whole(
    backend: Backend, alice: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """More than a page of questions, long ones among them, on two machines: each listed once."""
    first, other, second = await _replies_on_two_machines(backend, alice, chat, new_machine)
    made = []
    for n in range(MAX_PAGE + 30):
        at, reply = (chat, first) if n % 3 else (other, second)
        long = n < 30
        asked = [LONG_QUESTION] * 4 if long else [Question("Which?", "Pick", ())]
        request = await backend.record_question(
            at.token, reply.message_id, QuestionAsk(f"q{n}", asked)
        )
        made.append(request.question_id)

    for user in (alice, None):
        listed = await backend.list_waiting_questions(user)
        assert [w.request.question_id for w in listed] == made
    own = await backend.list_questions(alice, chat.session.chat_session_id, True)
    assert [q.question_id for q in own] == [q for n, q in enumerate(made) if n % 3]


async def _ask_edit_and_questions(
    backend: Backend, chat: Chat, reply: ChatMessage, n: int
) -> tuple[PermissionRequest, QuestionRequest]:
    """The reply's ``n``-th pair of requests: an edit with a long diff and four long questions."""
    permission = await backend.record_permission(chat.token, reply.message_id, _long_edit(n))
    questions = QuestionAsk(f"q{n}", [LONG_QUESTION] * 4)
    return permission, await backend.record_question(chat.token, reply.message_id, questions)


async def test_a_sessions_requests_past_the_read_limit_are_watched_whole(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A session's edits and long questions, more than a call may read: the watch has all."""
    reply = await claimed(backend, alice, chat)
    permissions, questions = [], []
    for n in range(40):
        permission, question = await _ask_edit_and_questions(backend, chat, reply, n)
        permissions.append(permission.permission_id)
        questions.append(question.question_id)

    watched = backend.watch_requests(alice, chat.session.chat_session_id)
    try:
        listed_permissions, listed_questions = await anext(watched)
        assert [p.permission_id for p in listed_permissions] == permissions
        assert [q.question_id for q in listed_questions] == questions
        # A question that lands on the last page changes the watched lists too.
        late = await backend.record_question(
            chat.token, reply.message_id, QuestionAsk("late", [LONG_QUESTION])
        )
        with anyio.fail_after(60):  # a guard against a hang, not a measurement
            while len((now := await anext(watched))[1]) == len(questions):
                pass
    finally:
        await watched.aclose()  # type: ignore[attr-defined]
    assert [q.question_id for q in now[1]] == [*questions, late.question_id]
    assert [p.permission_id for p in now[0]] == permissions


async def test_tool_parts_past_the_read_limit_are_listed_whole_in_order(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Tool parts with the longest outputs kept, more than a call may read: all, in order."""
    reply = await claimed(backend, alice, chat)
    output = "o" * MAX_TOOL_OUTPUT_BYTES
    count = READ_LIMIT // MAX_TOOL_OUTPUT_BYTES + 10
    for n in range(count):
        state = ToolState(ToolStatus.COMPLETED, output=output, output_size=len(output))
        await backend.save_part(
            chat.token, reply.message_id, f"prt_{n}", ToolPart("bash", f"c{n}", state)
        )

    session_id = chat.session.chat_session_id
    for message_id in (None, reply.message_id):
        parts = await backend.list_parts(alice, session_id, message_id)
        assert [p.part_id for p in parts] == [f"prt_{n}" for n in range(count)]
        assert all(p.body.state.output == output for p in parts)  # type: ignore[union-attr]


async def test_answered_edits_and_questions_past_the_read_limit_all_reach_the_machine(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Answers with long diffs and questions, more than a call may read: each passed on once."""
    reply = await claimed(backend, alice, chat)
    permissions, questions = set(), set()
    for n in range(40):
        permission, question = await _ask_edit_and_questions(backend, chat, reply, n)
        await backend.answer_permission(alice, permission.permission_id, PermissionAnswer.ONCE)
        await backend.answer_question(alice, question.question_id, (("A",),) * 4)
        permissions.add(permission.permission_id)
        questions.add(question.question_id)

    passed_permissions: list[str] = []
    passed_questions: list[str] = []
    while True:
        [work] = await work_now(backend, chat.token)
        if not work.answered_permissions and not work.answered_questions:
            break
        for answered in work.answered_permissions:
            await backend.resolve_permission(chat.token, answered.permission_id)
            passed_permissions.append(answered.permission_id)
        for asked in work.answered_questions:
            await backend.resolve_question(chat.token, asked.question_id)
            passed_questions.append(asked.question_id)
    assert sorted(passed_permissions) == sorted(permissions)
    assert sorted(passed_questions) == sorted(questions)


async def _long_prompt_jobs(backend: Backend, alice: UserId, chat: Chat, count: int) -> list[JobId]:
    draft = JobDraft(
        worker_id=chat.worker.worker_id,
        name="nightly",
        model=MODELS[0],
        prompt=LONG_PROMPT,
        cron="0 * * * *",
        timezone="UTC",
    )
    jobs = [(await backend.create_job(alice, draft, JOBS_DUE_AT)).job_id for _ in range(count)]
    assert count * len(LONG_PROMPT.encode()) > READ_LIMIT
    return jobs


async def test_due_jobs_with_long_prompts_past_the_read_limit_each_run_once(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """60 due jobs with the longest prompts: the scheduler's looks start every one exactly once."""
    jobs = await _long_prompt_jobs(backend, alice, chat, 60)
    clock = FakeClock(JOBS_DUE_AT + timedelta(seconds=30))
    started: list[JobId] = []
    for _ in range(60):  # a bound against a loop that never ends; each look starts at least one
        if not (runs := await run_due_jobs(backend, clock)):
            break
        started.extend(run.job_id for run in runs)
    assert sorted(started) == sorted(jobs)
    for job_id in jobs:
        [run] = await backend.list_job_runs(alice, job_id)
        assert run.scheduled_for == JOBS_DUE_AT


async def test_removing_a_worker_with_long_prompt_jobs_past_the_read_limit_pauses_every_one(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A removed worker's 60 long-prompt jobs all end paused, their runs frozen as they were."""
    jobs = await _long_prompt_jobs(backend, alice, chat, 60)
    ran = {job_id: await backend.run_job_now(alice, job_id) for job_id in jobs[:20]}
    await backend.remove_worker(alice, chat.worker.worker_id)
    # Convex pauses what fits at once, the rest in background batches (each call lets them run).
    with anyio.fail_after(120):  # a guard against a hang, not a measurement
        while [j for j in jobs if (await backend.get_job(alice, j)).worker_id is not None]:
            pass
    for job_id in jobs:
        job = await backend.get_job(alice, job_id)
        assert (job.enabled, job.next_run_at, job.paused_reason) == (False, None, WORKER_REMOVED)
        runs = await backend.list_job_runs(alice, job_id)
        expected = [(ran[job_id].run_id, RunStatus.PENDING)] if job_id in ran else []
        assert [(r.run_id, r.status) for r in runs] == expected
