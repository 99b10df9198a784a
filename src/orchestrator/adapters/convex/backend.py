"""The Convex backend: the ``Backend`` port as calls to the functions in ``backend_convex/convex``.

The rules (ownership, status transitions, validation, their sentences) live in
those TypeScript functions; this class only names the function, passes the
caller's credentials and converts records. Calls on a user's behalf carry the
deployment's server secret (``ORCHESTRATOR_SERVER_SECRET``); a machine's calls
carry its token, which the deployment checks against the hash it stores.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Any, Literal, TypeVar

from convex import ConvexError

from orchestrator.adapters.convex import _wire as wire
from orchestrator.adapters.convex._api_tokens import ConvexApiTokenSide
from orchestrator.adapters.convex._calls import machine_args
from orchestrator.adapters.convex._pages import PERMISSION_LIST as _PERMISSION_LIST
from orchestrator.adapters.convex._pages import ListShape as _ListShape
from orchestrator.adapters.convex._pages import after as _after
from orchestrator.adapters.convex._pages import every, follow_sequence
from orchestrator.adapters.convex._parts import PartCalls
from orchestrator.adapters.convex._push import ConvexPushSide
from orchestrator.adapters.convex._questions import ConvexQuestionSide
from orchestrator.adapters.convex._text import LongTextCalls
from orchestrator.adapters.convex._transport import (
    Args,
    ClientTransport,
    HttpTransport,
    Kind,
    Transport,
)
from orchestrator.adapters.port_methods import AddsWorkers, PagesMessages, Place
from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.chat import (
    ChatChunk,
    ChatMessage,
    ChatSession,
    MessageStatus,
    PermissionAnswer,
    PermissionRequest,
    SessionUpdate,
    SessionWork,
)
from orchestrator.domain.commands import (
    Command,
    CommandArguments,
    CommandKind,
    CommandOutcome,
)
from orchestrator.domain.ids import (
    ChatSessionId,
    CommandId,
    JobId,
    MachineId,
    MachineToken,
    MessageId,
    PermissionId,
    UserId,
    WorkerId,
    WorkerToken,
)
from orchestrator.domain.jobs import JOB_RUNS_LIMIT, Job, JobDraft, JobRun
from orchestrator.domain.lease import Lease
from orchestrator.domain.model import Machine, MachineSummary, User, Worker
from orchestrator.domain.paging import (
    JOBS,
    LIST_PAGE,
    MACHINE_PAGE,
    MACHINES,
    MAX_PAGE,
    MESSAGE_PAGE,
    SESSIONS,
    Page,
    decode_cursor,
    make_page,
    page_limit,
)
from orchestrator.domain.permissions import PermissionPolicy
from orchestrator.domain.replies import PermissionAsk

T = TypeVar("T")

TransportName = Literal["websocket", "http"]


def open_convex_backend(
    url: str,
    *,
    server_secret: str | None = None,
    transport: TransportName = "websocket",
    timeout: float = 30.0,
    poll_interval: float = 1.0,
) -> ConvexBackend:
    """A backend on the Convex deployment at ``url`` (``CONVEX_URL``); close it when done.

    The web server passes ``server_secret`` (the deployment's
    ``ORCHESTRATOR_SERVER_SECRET``); a machine process needs none. ``transport``
    is ``"websocket"`` (the official client, live subscriptions) or ``"http"``
    (plain HTTPS requests, subscriptions polled every ``poll_interval`` seconds).
    """
    chosen: Transport = (
        ClientTransport(url, timeout=timeout)
        if transport == "websocket"
        else HttpTransport(url, timeout=timeout, poll_interval=poll_interval)
    )
    return ConvexBackend(chosen, server_secret=server_secret)


def _maybe(**args: str | None) -> dict[str, str]:
    """The given arguments that are set: Convex's optional arguments take no null."""
    return {key: value for key, value in args.items() if value is not None}


_MESSAGE_LIST = _ListShape("messages", lambda m: m["messageId"], "afterMessageId", MAX_PAGE)
_MACHINE_LIST = _ListShape(
    "machines", lambda s: s["machine"]["machineId"], "afterMachineId", MACHINE_PAGE
)
_SESSION_LIST = _ListShape("sessions", lambda s: s["chatSessionId"], "afterSessionId", MAX_PAGE)
_PENDING_LIST = _ListShape("workers", lambda w: w["workerId"], "afterWorkerId", LIST_PAGE)
_USER_LIST = _ListShape("users", lambda u: u["userId"], "afterUserId", MAX_PAGE)
_JOB_LIST = _ListShape("jobs", lambda j: j["jobId"], "afterJobId", MAX_PAGE)


def _lease(lease: Lease | None) -> dict[str, object]:
    if lease is None:
        return {}
    return {"instance": lease.instance, "leaseMs": int(lease.duration.total_seconds() * 1000)}


class ConvexBackend(
    AddsWorkers,
    PagesMessages,
    PartCalls,
    LongTextCalls,
    ConvexPushSide,
    ConvexQuestionSide,
    ConvexApiTokenSide,
):
    """Implements :class:`orchestrator.domain.ports.Backend` on a Convex deployment."""

    def __init__(self, transport: Transport, *, server_secret: str | None = None) -> None:
        self._transport = transport
        self._server_secret = server_secret or ""

    async def close(self) -> None:
        await self._transport.close()

    async def restore(self, kind: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Store exported records under their own IDs (``orchestrator import``); IDs stored."""
        batch = {"kind": kind, "records": [dict(r) for r in records]}
        stored = await self._call("mutation", "transfer:restore", self._server(batch=batch))
        return [str(i) for i in stored]

    # --- plumbing -------------------------------------------------------------------

    async def _every(
        self, shape: _ListShape, path: str, args: Args, first: Any = None
    ) -> list[Any]:
        """Every item of a paged list (after the page ``first``, if given), a page per call."""
        return await every(self._query, path, shape, args, first)

    async def _query(self, path: str, args: Args) -> Any:
        return await self._call("query", path, args)

    async def _watch_every(
        self, shape: _ListShape, path: str, args: Args, decode: Callable[[Any], T]
    ) -> AsyncGenerator[list[T], None]:
        """A paged list, whole, after every change of its first page (the rest read by calls)."""
        first_page = {**args, "limit": shape.limit}
        async with aclosing(self._watch(path, first_page, lambda page: page)) as pages:
            async for page in pages:
                yield [decode(item) for item in await self._every(shape, path, args, page)]

    async def _page(
        self, shape: _ListShape, path: str, args: Args, after: str | None, limit: int
    ) -> tuple[list[Any], bool]:
        """One page of a paged list, after the item ``after``."""
        page_args = {**args, "limit": limit, **_after(after, shape.after_field)}
        page = await self._call("query", path, page_args)
        return list(page[shape.key]), bool(page["hasMore"])

    async def _call(self, kind: Kind, path: str, args: Args) -> Any:
        try:
            return await self._transport.call(kind, path, args)
        except ConvexError as exc:
            raise wire.error_from_data(exc.data, str(exc)) from exc

    def _server(self, **args: Any) -> dict[str, Any]:
        return {"serverSecret": self._server_secret, **args}

    async def _watch(
        self, path: str, args: Args, decode: Callable[[Any], T]
    ) -> AsyncGenerator[T, None]:
        try:
            async with aclosing(self._transport.watch(path, args)) as values:
                async for value in values:
                    yield decode(value)
        except ConvexError as exc:
            raise wire.error_from_data(exc.data, str(exc)) from exc

    # --- accounts -------------------------------------------------------------------

    async def create_user(self, username: str, password_hash: str) -> User:
        args = self._server(username=username, passwordHash=password_hash)
        return wire.user(await self._call("mutation", "accounts:create", args))

    async def find_user(self, username: str) -> tuple[User, str] | None:
        found = await self._call("query", "accounts:find", self._server(username=username))
        return None if found is None else (wire.user(found["user"]), found["passwordHash"])

    async def get_user(self, user_id: UserId) -> User:
        return wire.user(await self._call("query", "accounts:get", self._server(userId=user_id)))

    async def count_users(self) -> int:
        return int(await self._call("query", "accounts:count", self._server()))

    async def list_users(self) -> list[User]:
        found = await self._every(_USER_LIST, "accounts:listPage", self._server())
        return [wire.user(u) for u in found]

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None:
        args = self._server(userId=user_id, passwordHash=password_hash)
        await self._call("mutation", "accounts:setPasswordHash", args)

    async def add_sign_in(self, user_id: UserId, sign_in_id: str) -> None:
        args = self._server(userId=user_id, signInId=sign_in_id)
        await self._call("mutation", "signIns:add", args)

    async def has_sign_in(self, user_id: UserId, sign_in_id: str) -> bool:
        args = self._server(userId=user_id, signInId=sign_in_id)
        return bool(await self._call("query", "signIns:has", args))

    async def end_sign_in(self, user_id: UserId, sign_in_id: str) -> None:
        args = self._server(userId=user_id, signInId=sign_in_id)
        await self._call("mutation", "signIns:end", args)

    async def end_other_sign_ins(self, user_id: UserId, keep: str | None) -> int:
        args = self._server(userId=user_id, keep=keep)
        return int(await self._call("mutation", "signIns:endOthers", args))

    # --- machines, as their owner ------------------------------------------------------

    async def create_machine(self, user: UserId, name: str) -> tuple[Machine, MachineToken]:
        created = await self._call(
            "action", "machines:create", self._server(userId=user, name=name)
        )
        machine = wire.machine(created["machine"])
        return machine, MachineToken(machine.machine_id, created["machineSecret"])

    async def list_machines(self, user: UserId) -> list[MachineSummary]:
        found = await self._every(_MACHINE_LIST, "machines:listPage", self._server(userId=user))
        return [wire.machine_summary(s) for s in found]

    async def list_machines_page(
        self, user: UserId, cursor: str | None = None, limit: int | None = None
    ) -> Page[MachineSummary]:
        count = page_limit(limit, MACHINE_PAGE, MACHINE_PAGE)
        after = decode_cursor(cursor, MACHINES, user)
        args = self._server(userId=user)
        found, more = await self._page(_MACHINE_LIST, "machines:listPage", args, after, count)
        items = [wire.machine_summary(s) for s in found]
        return make_page(items, more, MACHINES, user, lambda s: s.machine.machine_id)

    async def get_machine(self, user: UserId, machine_id: MachineId) -> Machine:
        args = self._server(userId=user, machineId=machine_id)
        return wire.machine(await self._call("query", "machines:get", args))

    async def delete_machine(self, user: UserId, machine_id: MachineId) -> None:
        await self._call(
            "mutation", "machines:remove", self._server(userId=user, machineId=machine_id)
        )

    async def _add_worker(
        self, user: UserId, machine_id: MachineId, place: Place, policy: PermissionPolicy
    ) -> Worker:
        args = self._server(
            userId=user,
            machineId=machine_id,
            directory=place[0],
            name=place[1],
            permissionPolicy=wire.permission_policy_args(policy),
        )
        return wire.worker(await self._call("mutation", "workers:add", args))

    async def set_worker_permission_policy(
        self, user: UserId, worker_id: WorkerId, permission_policy: PermissionPolicy
    ) -> Worker:
        args = self._server(
            userId=user,
            workerId=worker_id,
            permissionPolicy=wire.permission_policy_args(permission_policy),
        )
        return wire.worker(await self._call("mutation", "workers:setPermissionPolicy", args))

    async def issue_worker_token(self, user: UserId, machine_id: MachineId) -> WorkerToken:
        args = self._server(userId=user, machineId=machine_id)
        issued = await self._call("mutation", "workers:issueToken", args)
        return WorkerToken(MachineId(issued["machineId"]), WorkerId(issued["workerId"]))

    async def approve_worker(self, user: UserId, worker_id: WorkerId) -> Worker:
        args = self._server(userId=user, workerId=worker_id)
        return wire.worker(await self._call("mutation", "workers:approve", args))

    async def reject_worker(self, user: UserId, worker_id: WorkerId) -> None:
        await self._call(
            "mutation", "workers:reject", self._server(userId=user, workerId=worker_id)
        )

    async def remove_worker(self, user: UserId, worker_id: WorkerId) -> None:
        await self._call(
            "mutation", "workers:remove", self._server(userId=user, workerId=worker_id)
        )

    async def get_worker(self, user: UserId, worker_id: WorkerId) -> Worker:
        args = self._server(userId=user, workerId=worker_id)
        return wire.worker(await self._call("query", "workers:get", args))

    async def list_workers(self, user: UserId, machine_id: MachineId) -> list[Worker]:
        args = self._server(userId=user, machineId=machine_id)
        return [wire.worker(w) for w in await self._call("query", "workers:list", args)]

    async def list_pending_workers(self, user: UserId) -> list[Worker]:
        args = self._server(userId=user)
        found = await self._every(_PENDING_LIST, "workers:listPendingPage", args)
        return [wire.worker(w) for w in found]

    def watch_machines(self, user: UserId) -> AsyncGenerator[list[MachineSummary], None]:
        return self._watch_every(
            _MACHINE_LIST, "machines:listPage", self._server(userId=user), wire.machine_summary
        )

    def watch_workers(
        self, user: UserId, machine_id: MachineId
    ) -> AsyncGenerator[list[Worker], None]:
        return self._watch(
            "workers:list",
            self._server(userId=user, machineId=machine_id),
            lambda found: [wire.worker(w) for w in found],
        )

    # --- maintenance ------------------------------------------------------------------

    async def mark_stale_machines_offline(self, last_seen_before: datetime) -> list[MachineId]:
        args = self._server(lastSeenBefore=wire.to_ms(last_seen_before))
        return [
            MachineId(m) for m in await self._call("mutation", "machines:markStaleOffline", args)
        ]

    # --- the machine's side -------------------------------------------------------------

    async def authenticate(self, token: MachineToken) -> Machine:
        return wire.machine(await self._call("query", "machines:authenticate", machine_args(token)))

    async def go_online(
        self, token: MachineToken, root_directory: str, lease: Lease | None = None
    ) -> Machine:
        args = {**machine_args(token), "rootDirectory": root_directory, **_lease(lease)}
        return wire.machine(await self._call("mutation", "machines:goOnline", args))

    async def heartbeat(self, token: MachineToken, lease: Lease | None = None) -> Machine:
        args = {**machine_args(token), **_lease(lease)}
        return wire.machine(await self._call("mutation", "machines:heartbeat", args))

    async def go_offline(self, token: MachineToken, lease: Lease | None = None) -> None:
        await self._call("mutation", "machines:goOffline", {**machine_args(token), **_lease(lease)})

    async def list_own_workers(self, token: MachineToken) -> list[Worker]:
        return [
            wire.worker(w)
            for w in await self._call("query", "workers:listOwn", machine_args(token))
        ]

    async def register_worker(
        self, token: MachineToken, worker_token: WorkerToken, directory: str, name: str | None
    ) -> Worker:
        args = {
            **machine_args(token),
            "tokenMachineId": worker_token.machine_id,
            "workerId": worker_token.worker_id,
            "directory": directory,
            "name": name,
        }
        return wire.worker(await self._call("mutation", "workers:register", args))

    async def worker_heartbeat(self, token: MachineToken, worker_id: WorkerId) -> Worker:
        args = {**machine_args(token), "workerId": worker_id}
        return wire.worker(await self._call("mutation", "workers:heartbeat", args))

    async def worker_offline(
        self, token: MachineToken, worker_id: WorkerId, problem: str | None = None
    ) -> Worker:
        args = {**machine_args(token), "workerId": worker_id}
        if problem is not None:
            args["problem"] = problem
        return wire.worker(await self._call("mutation", "workers:offline", args))

    async def update_worker_models(
        self, token: MachineToken, worker_id: WorkerId, models: Sequence[str]
    ) -> Worker:
        args = {**machine_args(token), "workerId": worker_id, "models": list(models)}
        return wire.worker(await self._call("mutation", "workers:updateModels", args))

    async def update_worker_agents(
        self, token: MachineToken, worker_id: WorkerId, catalog: AgentCatalog
    ) -> Worker:
        args = {
            **machine_args(token),
            "workerId": worker_id,
            "agents": list(catalog.agents),
            "commands": list(catalog.commands),
        }
        return wire.worker(await self._call("mutation", "workers:updateAgents", args))

    def watch_own_workers(self, token: MachineToken) -> AsyncGenerator[list[Worker], None]:
        return self._watch(
            "workers:listOwn", machine_args(token), lambda found: [wire.worker(w) for w in found]
        )

    # --- chat, as the owner sees it ------------------------------------------------------

    def _session(self, user: UserId, session_id: ChatSessionId, **args: Any) -> dict[str, Any]:
        return self._server(userId=user, chatSessionId=session_id, **args)

    async def _session_call(
        self, kind: Kind, path: str, user: UserId, session_id: ChatSessionId, **args: Any
    ) -> ChatSession:
        """Call ``path`` on the owner's session; the session it returns."""
        found = await self._call(kind, path, self._session(user, session_id, **args))
        return wire.chat_session(found)

    async def start_session(
        self, user: UserId, worker_id: WorkerId, model: str, agent: str | None = None
    ) -> ChatSession:
        args = self._server(userId=user, workerId=worker_id, model=model, **_maybe(agent=agent))
        return wire.chat_session(await self._call("mutation", "chat:startSession", args))

    async def end_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        return await self._session_call("mutation", "chat:endSession", user, session_id)

    async def restore_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        return await self._session_call("mutation", "chat:restoreSession", user, session_id)

    async def rename_session(
        self, user: UserId, session_id: ChatSessionId, title: str
    ) -> ChatSession:
        return await self._session_call(
            "mutation", "chat:renameSession", user, session_id, title=title
        )

    async def undo_turn(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId
    ) -> ChatSession:
        return await self._session_call(
            "mutation", "chat:undoTurn", user, session_id, messageId=message_id
        )

    async def redo_turns(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        return await self._session_call("mutation", "chat:redoTurns", user, session_id)

    async def get_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        return await self._session_call("query", "chat:getSession", user, session_id)

    async def list_sessions(self, user: UserId, worker_id: WorkerId) -> list[ChatSession]:
        args = self._server(userId=user, workerId=worker_id)
        found = await self._every(_SESSION_LIST, "chat:listSessionsPage", args)
        return [wire.chat_session(s) for s in found]

    async def list_sessions_page(
        self, user: UserId, worker_id: WorkerId, cursor: str | None = None, limit: int | None = None
    ) -> Page[ChatSession]:
        count = page_limit(limit, LIST_PAGE)
        after = decode_cursor(cursor, SESSIONS, worker_id)
        args = self._server(userId=user, workerId=worker_id)
        found, more = await self._page(_SESSION_LIST, "chat:listSessionsPage", args, after, count)
        items = [wire.chat_session(s) for s in found]
        return make_page(items, more, SESSIONS, worker_id, lambda s: s.chat_session_id)

    async def send_message(
        self, user: UserId, session_id: ChatSessionId, content: str, agent: str | None = None
    ) -> ChatMessage:
        args = self._session(user, session_id, content=content, **_maybe(agent=agent))
        return wire.chat_message(await self._call("mutation", "chat:sendMessage", args))

    async def edit_message(self, user: UserId, message_id: MessageId, content: str) -> ChatMessage:
        args = self._server(userId=user, messageId=message_id, content=content)
        return wire.chat_message(await self._call("mutation", "chat:editMessage", args))

    async def cancel_message(self, user: UserId, message_id: MessageId) -> None:
        args = self._server(userId=user, messageId=message_id)
        await self._call("mutation", "chat:cancelMessage", args)

    async def list_messages(self, user: UserId, session_id: ChatSessionId) -> list[ChatMessage]:
        args = self._session(user, session_id)
        found = await self._every_message("chat:listMessagesPage", args)
        return await self._owners_messages(user, session_id, reversed(found))

    async def _messages_page(
        self, user: UserId, session_id: ChatSessionId, after: str | None, count: int
    ) -> tuple[list[ChatMessage], bool]:
        args = self._session(user, session_id, limit=count, **_after(after))
        page = await self._call("query", "chat:listMessagesPage", args)
        items = await self._owners_messages(user, session_id, page["messages"])
        return items, page["hasMore"]

    async def _every_message(self, path: str, args: Args) -> list[Any]:
        """Every message of a session, newest first, a bounded page per call."""
        return await self._every(_MESSAGE_LIST, path, args)

    async def request_abort(self, user: UserId, session_id: ChatSessionId) -> ChatMessage | None:
        flagged = await self._call("mutation", "chat:requestAbort", self._session(user, session_id))
        return None if flagged is None else wire.chat_message(flagged)

    async def list_permissions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[PermissionRequest]:
        args = {**self._session(user, session_id), "all": include_answered}
        found = await self._every(_PERMISSION_LIST, "chat:listPermissionsPage", args)
        return [wire.permission(p) for p in found]

    async def answer_permission(
        self, user: UserId, permission_id: PermissionId, answer: PermissionAnswer
    ) -> PermissionRequest:
        args = self._server(userId=user, permissionId=permission_id, answer=str(answer))
        return wire.permission(await self._call("mutation", "chat:answerPermission", args))

    def watch_sessions(
        self, user: UserId, worker_id: WorkerId
    ) -> AsyncGenerator[list[ChatSession], None]:
        args = self._server(userId=user, workerId=worker_id)
        return self._watch_every(_SESSION_LIST, "chat:listSessionsPage", args, wire.chat_session)

    async def watch_messages(
        self, user: UserId, session_id: ChatSessionId
    ) -> AsyncGenerator[list[ChatMessage], None]:
        args = self._session(user, session_id, limit=MESSAGE_PAGE)
        pages = self._watch("chat:listMessagesPage", args, lambda page: page["messages"])
        async with aclosing(pages):
            async for found in pages:
                yield await self._owners_messages(user, session_id, reversed(found))

    def watch_chunks(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncGenerator[list[ChatChunk], None]:
        def after(last: int) -> AsyncGenerator[list[ChatChunk], None]:
            return self._watch(
                "chat:chunksAfter",
                self._session(user, session_id, afterSequence=last),
                lambda found: [wire.chat_chunk(c) for c in found],
            )

        return follow_sequence(after, after_sequence)

    # --- chat, as the machine sees it ----------------------------------------------------

    def watch_work(self, token: MachineToken) -> AsyncGenerator[list[SessionWork], None]:
        return self._watch(
            "chatMachine:work",
            machine_args(token),
            lambda found: [wire.session_work(w) for w in found],
        )

    async def list_session_messages(
        self, token: MachineToken, session_id: ChatSessionId
    ) -> list[ChatMessage]:
        args = {**machine_args(token), "chatSessionId": session_id}
        found = await self._every_message("chatMachine:listSessionMessagesPage", args)
        return await self._machines_messages(token, reversed(found))

    async def claim_message(self, token: MachineToken, message_id: MessageId) -> ChatMessage:
        args = {**machine_args(token), "messageId": message_id}
        return wire.chat_message(await self._call("mutation", "chatMachine:claimMessage", args))

    async def append_chunk(
        self, token: MachineToken, message_id: MessageId, text: str
    ) -> ChatChunk:
        args = {**machine_args(token), "messageId": message_id, "text": text}
        return wire.chat_chunk(await self._call("mutation", "chatMachine:appendChunk", args))

    async def complete_message(
        self, token: MachineToken, message_id: MessageId, content: str
    ) -> ChatMessage:
        args = {**machine_args(token), "messageId": message_id, "content": content}
        done = await self._call("mutation", "chatMachine:completeMessage", args)
        return (await self._machines_messages(token, [done]))[0]

    async def end_reply(
        self, token: MachineToken, message_id: MessageId, status: MessageStatus, reason: str
    ) -> ChatMessage:
        args = {
            **machine_args(token),
            "messageId": message_id,
            "status": str(status),
            "reason": reason,
        }
        ended = await self._call("mutation", "chatMachine:endReply", args)
        return (await self._machines_messages(token, [ended]))[0]

    async def update_session(
        self, token: MachineToken, session_id: ChatSessionId, update: SessionUpdate
    ) -> ChatSession:
        args = {
            **machine_args(token),
            "chatSessionId": session_id,
            "status": None if update.status is None else str(update.status),
            "agentSessionId": update.agent_session_id,
            "title": update.title,
        }
        return wire.chat_session(await self._call("mutation", "chatMachine:updateSession", args))

    async def report_undo(
        self, token: MachineToken, session_id: ChatSessionId, applied: int, error: str | None
    ) -> ChatSession:
        args = {
            **machine_args(token),
            "chatSessionId": session_id,
            "applied": float(applied),
            "error": error,
        }
        return wire.chat_session(await self._call("mutation", "chatMachine:reportUndo", args))

    async def record_permission(
        self, token: MachineToken, message_id: MessageId, ask: PermissionAsk
    ) -> PermissionRequest:
        args = {
            **machine_args(token),
            "messageId": message_id,
            "agentRequestId": ask.agent_request_id,
            "tool": ask.tool,
            "description": ask.description,
            **(
                {"file": ask.file, "diff": ask.diff, "diffSize": ask.diff_size}
                if ask.file or ask.diff or ask.diff_size
                else {}
            ),
        }
        return wire.permission(await self._call("mutation", "chatMachine:recordPermission", args))

    async def resolve_permission(
        self, token: MachineToken, permission_id: PermissionId
    ) -> PermissionRequest:
        args = {**machine_args(token), "permissionId": permission_id}
        return wire.permission(await self._call("mutation", "chatMachine:resolvePermission", args))

    # --- directory commands ---------------------------------------------------------------

    async def create_command(
        self, user: UserId, machine_id: MachineId, kind: CommandKind, arguments: CommandArguments
    ) -> Command:
        args = self._server(
            userId=user,
            machineId=machine_id,
            kind=str(kind),
            arguments=wire.arguments_out(arguments),
        )
        return wire.command(await self._call("mutation", "commands:create", args))

    async def get_command(self, user: UserId, command_id: CommandId) -> Command:
        args = self._server(userId=user, commandId=command_id)
        return wire.command(await self._call("query", "commands:get", args))

    async def list_commands(self, user: UserId, machine_id: MachineId) -> list[Command]:
        args = self._server(userId=user, machineId=machine_id)
        return [wire.command(c) for c in await self._call("query", "commands:list", args)]

    async def cancel_command(self, user: UserId, command_id: CommandId) -> Command:
        args = self._server(userId=user, commandId=command_id)
        return wire.command(await self._call("mutation", "commands:cancel", args))

    def watch_command(self, user: UserId, command_id: CommandId) -> AsyncGenerator[Command, None]:
        return self._watch(
            "commands:get", self._server(userId=user, commandId=command_id), wire.command
        )

    def watch_commands(self, token: MachineToken) -> AsyncGenerator[list[Command], None]:
        return self._watch(
            "commands:listOpen", machine_args(token), lambda found: [wire.command(c) for c in found]
        )

    async def claim_command(self, token: MachineToken, command_id: CommandId) -> Command:
        args = {**machine_args(token), "commandId": command_id}
        return wire.command(await self._call("mutation", "commands:claimCommand", args))

    async def report_progress(
        self, token: MachineToken, command_id: CommandId, progress: int, line: str
    ) -> Command:
        args = {**machine_args(token), "commandId": command_id, "progress": progress, "line": line}
        return wire.command(await self._call("mutation", "commands:reportProgress", args))

    async def finish_command(
        self, token: MachineToken, command_id: CommandId, outcome: CommandOutcome
    ) -> Command:
        args = {
            **machine_args(token),
            "commandId": command_id,
            "result": None if outcome.result is None else wire.result_out(outcome.result),
            "error": outcome.error,
        }
        return wire.command(await self._call("mutation", "commands:finishCommand", args))

    # --- scheduled jobs, as their owner sees them --------------------------------------------

    def _job(self, user: UserId, job_id: JobId, **args: Any) -> dict[str, Any]:
        return self._server(userId=user, jobId=job_id, **args)

    async def create_job(self, user: UserId, draft: JobDraft, next_run_at: datetime | None) -> Job:
        args = self._server(
            userId=user, draft=wire.draft_out(draft), nextRunAt=wire.maybe_ms(next_run_at)
        )
        return wire.job(await self._call("mutation", "jobs:create", args))

    async def update_job(
        self, user: UserId, job_id: JobId, draft: JobDraft, next_run_at: datetime | None
    ) -> Job:
        args = self._job(
            user, job_id, draft=wire.draft_out(draft), nextRunAt=wire.maybe_ms(next_run_at)
        )
        return wire.job(await self._call("mutation", "jobs:update", args))

    async def set_job_enabled(
        self, user: UserId, job_id: JobId, enabled: bool, next_run_at: datetime | None
    ) -> Job:
        args = self._job(user, job_id, enabled=enabled, nextRunAt=wire.maybe_ms(next_run_at))
        return wire.job(await self._call("mutation", "jobs:setEnabled", args))

    async def delete_job(self, user: UserId, job_id: JobId) -> None:
        await self._call("mutation", "jobs:remove", self._job(user, job_id))

    async def get_job(self, user: UserId, job_id: JobId) -> Job:
        return wire.job(await self._call("query", "jobs:get", self._job(user, job_id)))

    async def list_jobs(self, user: UserId) -> list[Job]:
        found = await self._every(_JOB_LIST, "jobs:listPage", self._server(userId=user))
        return [wire.job(j) for j in found]

    async def list_jobs_page(
        self, user: UserId, cursor: str | None = None, limit: int | None = None
    ) -> Page[Job]:
        count = page_limit(limit, LIST_PAGE)
        after = decode_cursor(cursor, JOBS, user)
        args = self._server(userId=user)
        found, more = await self._page(_JOB_LIST, "jobs:listPage", args, after, count)
        items = [wire.job(j) for j in found]
        return make_page(items, more, JOBS, user, lambda j: j.job_id)

    async def list_job_runs(
        self, user: UserId, job_id: JobId, limit: int = JOB_RUNS_LIMIT
    ) -> list[JobRun]:
        args = self._job(user, job_id, limit=limit)
        return [wire.job_run(r) for r in await self._call("query", "jobs:listRuns", args)]

    async def run_job_now(self, user: UserId, job_id: JobId) -> JobRun:
        return wire.job_run(await self._call("mutation", "jobs:runNow", self._job(user, job_id)))

    def watch_jobs(self, user: UserId) -> AsyncGenerator[list[Job], None]:
        return self._watch_every(_JOB_LIST, "jobs:listPage", self._server(userId=user), wire.job)

    # --- scheduled jobs, as the web server's scheduler sees them --------------------------------

    async def list_due_jobs(self, now: datetime, limit: int = 100) -> list[Job]:
        args = self._server(now=wire.to_ms(now), limit=limit)
        return [wire.job(j) for j in await self._call("query", "jobsScheduler:listDue", args)]

    async def start_job_run(
        self, job_id: JobId, scheduled_for: datetime, next_run_at: datetime | None
    ) -> JobRun | None:
        args = self._server(
            jobId=job_id,
            scheduledFor=wire.to_ms(scheduled_for),
            nextRunAt=wire.maybe_ms(next_run_at),
        )
        started = await self._call("mutation", "jobsScheduler:startRunAt", args)
        return None if started is None else wire.job_run(started)
