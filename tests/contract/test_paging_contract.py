"""The backend contract for long lists: paged by cursor, and no cap one backend has alone."""

from __future__ import annotations

import base64

import pytest

from orchestrator.domain.chat import ChatMessage, PermissionAnswer
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound
from orchestrator.domain.ids import ChatSessionId, UserId
from orchestrator.domain.jobs import JobDraft
from orchestrator.domain.model import MAX_WORKERS_PER_MACHINE, TOO_MANY_WORKERS
from orchestrator.domain.paging import (
    BAD_CURSOR,
    MACHINE_PAGE,
    MESSAGES,
    OTHER_LIST,
    PAGE_BYTES,
    bad_limit,
    encode_cursor,
    message_size,
)
from orchestrator.domain.ports import Backend
from orchestrator.domain.replies import PermissionAsk
from tests.contract.conftest import MODELS, Chat, MachineFactory, ask, claimed

pytestmark = pytest.mark.anyio

#: A reply this long is about 1 MB: twenty of them make 20 MB of history in few calls.
LONG_REPLY = 999_000


async def all_pages(
    backend: Backend, user: UserId, session_id: ChatSessionId, limit: int | None = None
) -> list[list[ChatMessage]]:
    """Every page of the session's history, reading each next page with the last cursor."""
    pages: list[list[ChatMessage]] = []
    cursor: str | None = None
    while True:
        page = await backend.list_messages_page(user, session_id, cursor, limit)
        pages.append(list(page.items))
        assert page.has_more == (page.cursor is not None)
        if page.cursor is None:
            return pages
        cursor = page.cursor
        assert len(pages) < 1000, "the pages never end"


async def answered(backend: Backend, user: UserId, chat: Chat, reply: str) -> list[ChatMessage]:
    """Ask, have the machine claim and complete the reply; both messages as stored."""
    asked = await ask(backend, user, chat, "go on")
    streaming = await backend.claim_message(chat.token, asked.message_id)
    done = await backend.complete_message(chat.token, streaming.message_id, reply)
    return [asked, done]


async def test_twenty_megabytes_of_history_load_page_by_page(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """20 MB of history comes in bounded pages, newest first, every message exactly once."""
    sent: list[ChatMessage] = []
    for n in range(20):
        sent += await answered(backend, alice, chat, chr(ord("a") + n) * LONG_REPLY)
    session_id = chat.session.chat_session_id
    pages = await all_pages(backend, alice, session_id)
    assert len(pages) >= 10
    for page in pages:
        assert page, "no page is empty"
        assert len(page) == 1 or sum(message_size(m) for m in page) <= PAGE_BYTES
    read = [m.message_id for page in pages for m in page]
    assert read == [m.message_id for m in reversed(sent)]
    replies = [m.content for page in pages for m in page if m.content != "go on"]
    assert [len(r) for r in replies] == [LONG_REPLY] * 20
    # The whole list (as export reads it) is every message too, oldest first.
    listed = await backend.list_messages(alice, session_id)
    assert [m.message_id for m in listed] == [m.message_id for m in sent]


async def test_pages_are_newest_first_with_the_asked_size(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Five messages in pages of two: [5, 4], [3, 2], [1], the last without a cursor."""
    sent = [await ask(backend, alice, chat, f"message {n}") for n in range(1, 6)]
    pages = await all_pages(backend, alice, chat.session.chat_session_id, limit=2)
    assert [[m.content for m in page] for page in pages] == [
        ["message 5", "message 4"],
        ["message 3", "message 2"],
        ["message 1"],
    ]
    assert pages[-1][-1] == sent[0]


async def test_a_message_added_meanwhile_never_shifts_the_next_page(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A message sent between two pages shows on the first page, not twice on the next."""
    for n in range(1, 5):
        await ask(backend, alice, chat, f"message {n}")
    session_id = chat.session.chat_session_id
    first = await backend.list_messages_page(alice, session_id, limit=2)
    await ask(backend, alice, chat, "later")
    second = await backend.list_messages_page(alice, session_id, first.cursor, limit=2)
    assert [m.content for m in second.items] == ["message 2", "message 1"]
    assert not second.has_more


async def test_an_empty_session_has_one_empty_page(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A session without messages has one empty page and no cursor."""
    page = await backend.list_messages_page(alice, chat.session.chat_session_id)
    assert (page.items, page.cursor, page.has_more) == ((), None, False)


async def test_a_cursor_past_the_end_gives_an_empty_last_page(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A cursor after the oldest message reads an empty page with nothing more."""
    first = await ask(backend, alice, chat, "only")
    session_id = chat.session.chat_session_id
    past = encode_cursor(MESSAGES, session_id, first.message_id)
    page = await backend.list_messages_page(alice, session_id, past)
    assert (page.items, page.has_more) == ((), False)


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"k": "messages"}').decode(),
        base64.urlsafe_b64encode(b'["messages", "x", "y"]').decode(),
        "x" * 5000,
    ],
)
async def test_a_malformed_cursor_is_one_sentence(
    backend: Backend, alice: UserId, chat: Chat, cursor: str
) -> None:
    """A cursor that cannot be read is refused with one sentence."""
    await ask(backend, alice, chat)
    with pytest.raises(InvalidInput) as refused:
        await backend.list_messages_page(alice, chat.session.chat_session_id, cursor)
    assert refused.value.message == BAD_CURSOR


@pytest.mark.parametrize("limit", [0, -1, 201])
async def test_a_page_size_out_of_range_is_one_sentence(
    backend: Backend, alice: UserId, chat: Chat, limit: int
) -> None:
    """A page of no items, or of more than the most a page holds, is refused."""
    with pytest.raises(InvalidInput) as refused:
        await backend.list_messages_page(alice, chat.session.chat_session_id, None, limit)
    assert refused.value.message == bad_limit()


async def test_a_cursor_of_another_session_is_refused(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A cursor of one session does not page another one, nor does a forged message ID."""
    other = await backend.start_session(alice, chat.worker.worker_id, MODELS[0])
    mine = await ask(backend, alice, chat)
    theirs = await backend.send_message(alice, other.chat_session_id, "elsewhere")
    cursor = encode_cursor(MESSAGES, chat.session.chat_session_id, mine.message_id)
    forged = encode_cursor(MESSAGES, chat.session.chat_session_id, theirs.message_id)
    unknown = encode_cursor(MESSAGES, chat.session.chat_session_id, "msg_nope")
    for wrong, session_id in (
        (cursor, other.chat_session_id),
        (forged, chat.session.chat_session_id),
        (unknown, chat.session.chat_session_id),
        (encode_cursor("jobs", other.chat_session_id, mine.message_id), other.chat_session_id),
    ):
        with pytest.raises(InvalidInput) as refused:
            await backend.list_messages_page(alice, session_id, wrong)
        assert refused.value.message == OTHER_LIST


async def test_another_users_session_or_cursor_is_refused(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """Bob cannot page alice's session, with or without her cursor, nor his own with it."""
    for n in range(3):
        await ask(backend, alice, chat, f"secret {n}")
    session_id = chat.session.chat_session_id
    cursor = (await backend.list_messages_page(alice, session_id, limit=1)).cursor
    assert cursor is not None
    for attempt in (None, cursor):
        with pytest.raises(NotFound):
            await backend.list_messages_page(bob, session_id, attempt)
    machine, token = await new_machine("bob's", user=bob, online=True)
    worker = await backend.add_worker(bob, machine.machine_id, "repo", None)
    await backend.update_worker_models(token, worker.worker_id, MODELS)
    own = await backend.start_session(bob, worker.worker_id, MODELS[0])
    with pytest.raises(InvalidInput) as refused:
        await backend.list_messages_page(bob, own.chat_session_id, cursor)
    assert refused.value.message == OTHER_LIST


async def test_the_machine_reads_a_long_history_whole(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """The machine's history read returns every message of a long session, oldest first."""
    sent: list[ChatMessage] = []
    for n in range(3):
        sent += await answered(backend, alice, chat, str(n) * LONG_REPLY)
    sent += [await ask(backend, alice, chat, f"short {n}") for n in range(250)]
    found = await backend.list_session_messages(chat.token, chat.session.chat_session_id)
    assert [m.message_id for m in found] == [m.message_id for m in sent]


# --- machines and jobs: no cap that one backend has alone ---------------------------------


async def test_the_101st_machine_is_listed_and_paged(
    backend: Backend, alice: UserId, bob: UserId, new_machine: MachineFactory
) -> None:
    """101 machines are all listed, oldest first, and page by page in pages of at most 20."""
    made = [(await new_machine(f"m{n}"))[0].machine_id for n in range(101)]
    await new_machine("bob's", user=bob)
    assert [s.machine.machine_id for s in await backend.list_machines(alice)] == made
    read: list[str] = []
    cursor: str | None = None
    while True:
        page = await backend.list_machines_page(alice, cursor)
        assert 0 < len(page.items) <= MACHINE_PAGE
        read += [s.machine.machine_id for s in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert read == made
    with pytest.raises(NotFound):
        await backend.get_machine(bob, made[100])
    with pytest.raises(InvalidInput) as refused:
        await backend.list_machines_page(bob, cursor)
    assert refused.value.message == OTHER_LIST
    with pytest.raises(InvalidInput) as refused:
        await backend.list_machines_page(alice, None, MACHINE_PAGE + 1)
    assert refused.value.message == bad_limit(MACHINE_PAGE)


async def test_the_201st_job_is_created_listed_and_paged(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """201 jobs: the last one is created like the first, and all are listed and paged."""
    draft = JobDraft(
        worker_id=chat.worker.worker_id,
        name="nightly",
        model=MODELS[0],
        prompt="Summarise the repo.",
        cron="0 * * * *",
        timezone="UTC",
    )
    made = [(await backend.create_job(alice, draft, None)).job_id for _ in range(201)]
    assert [j.job_id for j in await backend.list_jobs(alice)] == made
    first = await backend.list_jobs_page(alice, limit=150)
    assert first.cursor is not None
    second = await backend.list_jobs_page(alice, first.cursor, 150)
    assert [j.job_id for j in first.items + second.items] == made
    assert not second.has_more
    assert (await backend.list_jobs_page(bob)).items == ()
    with pytest.raises(InvalidInput) as refused:
        await backend.list_jobs_page(bob, first.cursor)
    assert refused.value.message == OTHER_LIST
    with pytest.raises(InvalidInput) as refused:
        await backend.list_jobs_page(alice, encode_cursor(MESSAGES, alice, made[0]))
    assert refused.value.message == OTHER_LIST


async def test_a_machine_holds_at_most_100_workers_on_every_backend(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """The 101st worker is refused with one sentence, added or registered; all 100 are listed."""
    machine, token = await new_machine(online=True)
    made = [
        (await backend.add_worker(alice, machine.machine_id, f"repo{n}", None)).worker_id
        for n in range(MAX_WORKERS_PER_MACHINE - 1)
    ]
    worker_token = await backend.issue_worker_token(alice, machine.machine_id)
    made.append((await backend.register_worker(token, worker_token, "last", None)).worker_id)
    with pytest.raises(Conflict) as refused:
        await backend.add_worker(alice, machine.machine_id, "one-more", None)
    assert refused.value.message == TOO_MANY_WORKERS
    late = await backend.issue_worker_token(alice, machine.machine_id)
    with pytest.raises(Conflict) as refused:
        await backend.register_worker(token, late, "one-more", None)
    assert refused.value.message == TOO_MANY_WORKERS
    assert [w.worker_id for w in await backend.list_workers(alice, machine.machine_id)] == made
    assert len(await backend.list_own_workers(token)) == MAX_WORKERS_PER_MACHINE
    [summary] = await backend.list_machines(alice)
    assert summary.workers.ready + summary.workers.pending_authorization == len(made)
    await backend.remove_worker(alice, made[0])
    await backend.add_worker(alice, machine.machine_id, "room-again", None)


async def test_a_workers_sessions_page_in_list_order(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """Open sessions, then ended ones, newest activity first: pages read the list in order."""
    worker_id = chat.worker.worker_id
    made = [chat.session] + [
        await backend.start_session(alice, worker_id, MODELS[0]) for _ in range(11)
    ]
    for session in made[2:6]:
        await backend.end_session(alice, session.chat_session_id)
    await backend.send_message(alice, made[1].chat_session_id, "wake up")
    listed = [s.chat_session_id for s in await backend.list_sessions(alice, worker_id)]
    assert listed[0] == made[1].chat_session_id
    read: list[str] = []
    cursor: str | None = None
    while True:
        page = await backend.list_sessions_page(alice, worker_id, cursor, 5)
        read += [s.chat_session_id for s in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert read == listed
    with pytest.raises(NotFound):
        await backend.list_sessions_page(bob, worker_id)
    other = await backend.add_worker(alice, chat.machine.machine_id, "other", None)
    first = await backend.list_sessions_page(alice, worker_id, None, 1)
    with pytest.raises(InvalidInput) as refused:
        await backend.list_sessions_page(alice, other.worker_id, first.cursor)
    assert refused.value.message == OTHER_LIST


async def test_the_501st_session_is_listed(backend: Backend, alice: UserId, chat: Chat) -> None:
    """A worker with 501 sessions lists them all, on every backend."""
    worker_id = chat.worker.worker_id
    for _ in range(500):
        await backend.start_session(alice, worker_id, MODELS[0])
    assert len(await backend.list_sessions(alice, worker_id)) == 501


async def test_the_201st_pending_worker_is_listed(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """210 workers waiting for approval across three machines are all listed, oldest first."""
    registered: list[str] = []
    for m in range(3):
        machine, token = await new_machine(f"m{m}", online=True)
        for n in range(70):
            issued = await backend.issue_worker_token(alice, machine.machine_id)
            worker = await backend.register_worker(token, issued, f"repo{n}", None)
            registered.append(worker.worker_id)
    listed = await backend.list_pending_workers(alice)
    assert [w.worker_id for w in listed] == registered


async def test_the_201st_permission_request_is_listed(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A reply that asked 201 times lists every request, oldest first, pending or all."""
    reply = await claimed(backend, alice, chat)
    made = [
        await backend.record_permission(
            chat.token, reply.message_id, PermissionAsk(f"req{n}", "bash", "ls")
        )
        for n in range(201)
    ]
    await backend.answer_permission(alice, made[0].permission_id, PermissionAnswer.ONCE)
    session_id = chat.session.chat_session_id
    every = await backend.list_permissions(alice, session_id, include_answered=True)
    assert [p.permission_id for p in every] == [p.permission_id for p in made]
    waiting = await backend.list_permissions(alice, session_id)
    assert [p.permission_id for p in waiting] == [p.permission_id for p in made[1:]]


async def test_the_1001st_account_is_listed(backend: Backend, alice: UserId) -> None:
    """Every account is listed, oldest first, however many there are."""
    made = [alice] + [(await backend.create_user(f"user{n}", "hash")).user_id for n in range(1000)]
    assert [u.user_id for u in await backend.list_users()] == made
