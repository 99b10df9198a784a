"""The backend contract for permission requests: asked by the agent, answered by the owner."""

from __future__ import annotations

from functools import partial

import pytest

from orchestrator.domain.chat import MessageStatus, PermissionAnswer, PermissionStatus
from orchestrator.domain.diffs import MAX_DIFF_BYTES
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from orchestrator.domain.ids import PermissionId, UserId
from orchestrator.domain.ports import Backend
from orchestrator.domain.replies import PermissionAsk
from tests.contract.conftest import Chat, ask, claimed, work_now

pytestmark = pytest.mark.anyio


async def test_permission_request_round_trip(backend: Backend, alice: UserId, chat: Chat) -> None:
    """Pending → answered by the owner → resolved by the machine, each step once."""
    session_id = chat.session.chat_session_id
    reply = await claimed(backend, alice, chat)
    request = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("per_1", "bash", "rm -rf build")
    )
    assert (request.status, request.answer, request.message_id) == (
        PermissionStatus.PENDING,
        None,
        reply.message_id,
    )
    assert (request.agent_request_id, request.tool, request.chat_session_id) == (
        "per_1",
        "bash",
        session_id,
    )
    assert await backend.list_permissions(alice, session_id) == [request]
    with pytest.raises(Conflict, match=r"^This permission request has no answer to pass on\.$"):
        await backend.resolve_permission(chat.token, request.permission_id)
    answered = await backend.answer_permission(alice, request.permission_id, PermissionAnswer.ONCE)
    assert (answered.status, answered.answer) == (PermissionStatus.ANSWERED, "once")
    assert await backend.list_permissions(alice, session_id) == []
    assert await backend.list_permissions(alice, session_id, include_answered=True) == [answered]
    [work] = await work_now(backend, chat.token)
    assert work.answered_permissions == (answered,)
    with pytest.raises(Conflict, match=r"^This permission request is no longer waiting for an"):
        await backend.answer_permission(alice, request.permission_id, PermissionAnswer.REJECT)
    resolved = await backend.resolve_permission(chat.token, request.permission_id)
    assert (resolved.status, resolved.answer) == (PermissionStatus.RESOLVED, "once")
    [work] = await work_now(backend, chat.token)
    assert work.answered_permissions == ()
    with pytest.raises(Conflict):
        await backend.resolve_permission(chat.token, request.permission_id)


async def test_permission_requests_expire_when_the_reply_ends(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Pending and answered requests of a reply expire when it ends; answers come too late."""
    reply = await claimed(backend, alice, chat)
    waiting = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("p1", "bash", "ls")
    )
    answered = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("p2", "edit", "a.py")
    )
    await backend.answer_permission(alice, answered.permission_id, PermissionAnswer.ALWAYS)
    await backend.end_reply(chat.token, reply.message_id, MessageStatus.INTERRUPTED, "Restarted")
    with pytest.raises(Conflict, match=r"no longer waiting for an answer"):
        await backend.answer_permission(alice, waiting.permission_id, PermissionAnswer.ONCE)
    with pytest.raises(Conflict, match=r"no answer to pass on"):
        await backend.resolve_permission(chat.token, answered.permission_id)
    assert await backend.list_permissions(alice, chat.session.chat_session_id) == []
    [work] = await work_now(backend, chat.token)
    assert work.answered_permissions == ()


async def test_record_permission_refusals(backend: Backend, alice: UserId, chat: Chat) -> None:
    """Requests need a streaming reply and non-blank fields; unknown IDs are NotFound."""
    message = await ask(backend, alice, chat)
    reply = await backend.claim_message(chat.token, message.message_id)
    with pytest.raises(Conflict, match=r"^That message is not a reply\.$"):
        await backend.record_permission(
            chat.token, message.message_id, PermissionAsk("p", "bash", "ls")
        )
    with pytest.raises(InvalidInput, match=r"^The tool name must not be empty\.$"):
        await backend.record_permission(chat.token, reply.message_id, PermissionAsk("p", " ", "ls"))
    await backend.complete_message(chat.token, reply.message_id, "done")
    with pytest.raises(Conflict, match=r"^This reply has already ended\.$"):
        await backend.record_permission(
            chat.token, reply.message_id, PermissionAsk("p", "bash", "ls")
        )
    with pytest.raises(NotFound, match=r"^No such permission request\.$"):
        await backend.resolve_permission(chat.token, PermissionId("prm_missing"))
    assert await backend.list_permissions(alice, chat.session.chat_session_id) == []


_DIFF = "--- a/<b>x</b>.py\n+++ b/<b>x</b>.py\n@@ -1 +1 @@\n-old\n+<script>alert(1)</script> é\n"


async def test_an_edit_request_keeps_its_file_and_diff(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """An edit's file, diff and full diff size come back on every read; a bash request has none."""
    session_id = chat.session.chat_session_id
    reply = await claimed(backend, alice, chat)
    size = len(_DIFF.encode()) + 70_000  # the machine kept only the start of a longer diff
    edit = await backend.record_permission(
        chat.token,
        reply.message_id,
        PermissionAsk(
            "per_edit",
            "edit",
            "src/<b>x</b>.py",
            file="/work/src/<b>x</b>.py",
            diff=_DIFF,
            diff_size=size,
        ),
    )
    bash = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("per_sh", "bash", "ls")
    )
    assert (edit.file, edit.diff, edit.diff_size) == ("/work/src/<b>x</b>.py", _DIFF, size)
    assert (bash.file, bash.diff, bash.diff_size) == ("", "", 0)
    assert await backend.list_permissions(alice, session_id) == [edit, bash]
    [waiting, _] = await backend.list_waiting_permissions(alice)
    assert waiting.request == edit
    answered = await backend.answer_permission(alice, edit.permission_id, PermissionAnswer.ONCE)
    assert (answered.file, answered.diff, answered.diff_size) == (edit.file, _DIFF, size)
    [work] = await work_now(backend, chat.token)
    assert work.answered_permissions == (answered,)
    resolved = await backend.resolve_permission(chat.token, edit.permission_id)
    assert (resolved.file, resolved.diff, resolved.diff_size) == (edit.file, _DIFF, size)


async def test_an_edit_request_with_a_diff_too_large_is_refused(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A diff over the bound, a size below the diff or a huge path: one sentence, nothing stored."""
    reply = await claimed(backend, alice, chat)
    record = partial(PermissionAsk, "p", "edit", "a.py")
    asked = partial(backend.record_permission, chat.token, reply.message_id)
    too_long = "é" * (MAX_DIFF_BYTES // 2 + 1)  # fits in characters, not in UTF-8 bytes
    with pytest.raises(PayloadTooLarge, match=r"^The diff must be at most 60000 bytes; send its"):
        await asked(record(file="a.py", diff=too_long, diff_size=len(too_long.encode())))
    with pytest.raises(InvalidInput, match=r"^The diff size must count the bytes of the whole"):
        await asked(record(file="a.py", diff="+x\n", diff_size=1))
    with pytest.raises(InvalidInput, match=r"^The diff size must count the bytes of the whole"):
        await asked(record(file="a.py", diff="", diff_size=-1))
    with pytest.raises(
        PayloadTooLarge, match=r"^The file path must be at most 10000 characters\.$"
    ):
        await asked(record(file="a" * 10_001, diff="", diff_size=0))
    assert await backend.list_permissions(alice, chat.session.chat_session_id) == []


async def test_many_edit_requests_with_full_diffs_are_all_listed(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """40 edits with diffs at the bound (more than one read's budget) list whole, in order."""
    reply = await claimed(backend, alice, chat)
    diff = "+" * MAX_DIFF_BYTES
    asked = [
        await backend.record_permission(
            chat.token,
            reply.message_id,
            PermissionAsk(
                f"p{i}", "edit", f"f{i}", file=f"f{i}", diff=diff, diff_size=MAX_DIFF_BYTES
            ),
        )
        for i in range(40)
    ]
    listed = await backend.list_permissions(alice, chat.session.chat_session_id)
    assert [p.permission_id for p in listed] == [p.permission_id for p in asked]
    assert all(p.diff == diff for p in listed)
