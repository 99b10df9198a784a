"""Web Push notifications: subscriptions, per-user settings, and what a notification says.

A browser that enables notifications hands the server a *push subscription*
(the push service's endpoint URL and two public keys). The server stores it
per user and, when the agent needs the user, sends an encrypted message to the
endpoint. The rules here are pure: every backend stores what they accept, and
the notifier builds its messages with them, so a rule is written once.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, time, timedelta
from enum import StrEnum
from ipaddress import ip_address
from typing import Final
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from orchestrator.domain.chat import ChatMessage, MessageRole, MessageStatus, PermissionRequest
from orchestrator.domain.errors import InvalidInput, PayloadTooLarge, PermissionDenied
from orchestrator.domain.ids import ChatSessionId, MachineId, MessageId, UserId, WorkerId
from orchestrator.domain.questions import WaitingQuestion

#: The largest subscription (as JSON) the server stores; real ones are ~400 bytes.
MAX_SUBSCRIPTION_BYTES: Final = 4096
MAX_ENDPOINT_LENGTH: Final = 1024
#: A user may enable this many browsers and phones.
MAX_SUBSCRIPTIONS_PER_USER: Final = 20
#: The short line of a notification is cut to this many characters.
MAX_LINE: Final = 80
#: The inbox lists at most this many finished replies (the newest).
MAX_FINISHED: Final = 50
#: Replies that end with these statuses are listed in the inbox until the user looked
#: (interrupted: its machine went away; a reply the user stopped is not news to them).
INBOX_ENDINGS: Final = frozenset(
    {MessageStatus.COMPLETED, MessageStatus.FAILED, MessageStatus.INTERRUPTED}
)

NO_SUBSCRIPTION: Final = "No such push subscription."
TOO_MANY_SUBSCRIPTIONS: Final = (
    f"You have {MAX_SUBSCRIPTIONS_PER_USER} devices with notifications already."
    " Turn them off on one first."
)
NOT_YOURS: Final = "You can only enable notifications for your own account."
SUBSCRIPTION_TOO_LARGE: Final = (
    f"The push subscription is larger than {MAX_SUBSCRIPTION_BYTES} bytes."
)
BAD_SUBSCRIPTION: Final = (
    "The push subscription must be an object with 'endpoint' and 'keys' {'p256dh', 'auth'}."
)
BAD_ENDPOINT: Final = "The push subscription's endpoint must be an https:// URL."
BAD_P256DH: Final = "The push subscription's key 'p256dh' must be a P-256 public key (base64url)."
BAD_AUTH: Final = "The push subscription's key 'auth' must be 16 bytes (base64url)."
BAD_EVENTS: Final = "The field 'events' must list some of: {}."
BAD_QUIET: Final = "Quiet hours must be two times like '22:00' and '07:00', or none."
BAD_TIME_ZONE: Final = "Unknown time zone '{}'. Use a name like 'Europe/Berlin' or 'UTC'."
BAD_SEEN_UNTIL: Final = (
    "The field 'until' must be a time with its zone, like '2026-01-01T12:00:00+00:00'."
)

_HH_MM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_LOOPBACK_NAMES = frozenset({"localhost"})


class PushEvent(StrEnum):
    """What a user can be notified about."""

    PERMISSION = "permission"
    LONG_REPLY = "long_reply"
    JOB_FAILED = "job_failed"
    MACHINE_OFFLINE = "machine_offline"


ALL_EVENTS: Final = frozenset(PushEvent)


@attrs.frozen
class PushSubscription:
    """Where to send a user's notifications: one browser or phone."""

    user_id: UserId
    endpoint: str
    #: The browser's P-256 public key and authentication secret, base64url (RFC 8291).
    p256dh: str
    auth: str
    created_at: datetime


@attrs.frozen
class SubscriptionDraft:
    """A push subscription that passed validation, before it is stored."""

    endpoint: str
    p256dh: str
    auth: str


@attrs.frozen
class NotificationSettings:
    """Which events a user is told about, and when not (quiet hours in their time zone)."""

    events: frozenset[PushEvent] = ALL_EVENTS
    #: ``HH:MM``; both None means no quiet hours. ``start > end`` spans midnight.
    quiet_start: str | None = None
    quiet_end: str | None = None
    time_zone: str = "UTC"


@attrs.frozen
class WaitingPermission:
    """A permission request waiting for its user, with where it comes from."""

    user_id: UserId
    request: PermissionRequest
    machine_id: MachineId
    machine_name: str
    worker_id: WorkerId
    worker_label: str


@attrs.frozen
class OpenMessage:
    """An unfinished message as open turns list it: without its text, which may be megabytes."""

    message_id: MessageId
    chat_session_id: ChatSessionId
    role: MessageRole
    status: MessageStatus
    timestamp: datetime
    reply_to: MessageId | None = None

    @classmethod
    def of(cls, message: ChatMessage) -> OpenMessage:
        """The open-turn view of a stored message."""
        return cls(
            message.message_id,
            message.chat_session_id,
            message.role,
            message.status,
            message.timestamp,
            message.reply_to,
        )


@attrs.frozen
class OpenTurn:
    """A message that is not finished: a user's, waiting for its machine, or a reply."""

    user_id: UserId
    message: OpenMessage
    machine_id: MachineId
    machine_name: str
    machine_online: bool
    worker_id: WorkerId
    worker_label: str


@attrs.frozen
class FinishedReply:
    """A reply that completed or failed: the inbox lists those since the user last looked."""

    user_id: UserId
    message_id: MessageId
    chat_session_id: ChatSessionId
    status: MessageStatus
    #: The start of the reply's text (or why it failed), one short line.
    preview: str
    finished_at: datetime
    machine_id: MachineId
    machine_name: str
    worker_id: WorkerId
    worker_label: str


@attrs.frozen
class NotificationAction:
    """A button on a notification (the service worker answers with it)."""

    action: str
    title: str


@attrs.frozen
class Notification:
    """What a push message shows: a title, one short line, and where a tap goes."""

    title: str
    body: str
    url: str
    #: Notifications with the same tag replace each other on the device.
    tag: str
    event: PushEvent
    actions: tuple[NotificationAction, ...] = ()
    permission_id: str | None = None

    def payload(self) -> bytes:
        """The JSON the service worker reads (``webui/static/sw.js``)."""
        data: dict[str, object] = {
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "tag": self.tag,
            "event": self.event.value,
            "actions": [{"action": a.action, "title": a.title} for a in self.actions],
        }
        if self.permission_id is not None:
            data["permissionId"] = self.permission_id
        return json.dumps(data, separators=(",", ":")).encode()


class Delivery(StrEnum):
    """What to do after a push service answered."""

    SENT = "sent"
    #: 404/410: the browser unsubscribed or the subscription expired; forget it.
    GONE = "gone"
    #: 429, 5xx or no answer at all: try again later.
    RETRY = "retry"
    #: Any other refusal (a bad key, a payload too large): retrying would not help.
    REFUSED = "refused"


@attrs.frozen
class PushReply:
    """A push service's answer: its status (None if it could not be reached)."""

    status: int | None
    retry_after: str | None = None
    #: Set when nothing was sent because the message could not be made for this subscription.
    error: str | None = None

    def delivery(self) -> Delivery:
        """What the answer means for this subscription."""
        if self.error is not None:
            return Delivery.REFUSED
        if self.status is None or self.status == 429 or self.status >= 500:
            return Delivery.RETRY
        if 200 <= self.status < 300:
            return Delivery.SENT
        if self.status in (404, 410):
            return Delivery.GONE
        return Delivery.REFUSED

    def retry_delay(self, fallback: float, cap: float) -> float:
        """Seconds until a retry: ``Retry-After`` (seconds) if given, else ``fallback``."""
        if self.retry_after is not None and self.retry_after.strip().isdigit():
            return min(float(self.retry_after.strip()), cap)
        return fallback


def _b64url(value: object, length: int | None, message: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise InvalidInput(message)
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(message) from exc
    if length is not None and len(raw) != length:
        raise InvalidInput(message)
    return value.rstrip("=")


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def validate_endpoint(endpoint: object, *, allow_loopback_http: bool = False) -> str:
    """An https:// push endpoint (``http://`` on loopback only when allowed, for tests)."""
    if not isinstance(endpoint, str) or len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise InvalidInput(BAD_ENDPOINT)
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
    except ValueError as exc:
        raise InvalidInput(BAD_ENDPOINT) from exc
    if not host or parts.username is not None or parts.password is not None:
        raise InvalidInput(BAD_ENDPOINT)
    if parts.scheme == "https":
        return endpoint
    if parts.scheme == "http" and allow_loopback_http and _is_loopback(host):
        return endpoint
    raise InvalidInput(BAD_ENDPOINT)


def parse_subscription(raw: object, *, allow_loopback_http: bool = False) -> SubscriptionDraft:
    """A subscription from the browser's ``PushSubscription.toJSON()``, or one sentence why not."""
    if len(json.dumps(raw)) > MAX_SUBSCRIPTION_BYTES:
        raise PayloadTooLarge(SUBSCRIPTION_TOO_LARGE)
    if not isinstance(raw, dict) or not isinstance(raw.get("keys"), dict):
        raise InvalidInput(BAD_SUBSCRIPTION)
    keys = raw["keys"]
    p256dh = _b64url(keys.get("p256dh"), 65, BAD_P256DH)
    if base64.urlsafe_b64decode(p256dh + "=" * (-len(p256dh) % 4))[0] != 4:
        raise InvalidInput(BAD_P256DH)  # an uncompressed point starts with 0x04
    return SubscriptionDraft(
        endpoint=validate_endpoint(raw.get("endpoint"), allow_loopback_http=allow_loopback_http),
        p256dh=p256dh,
        auth=_b64url(keys.get("auth"), 16, BAD_AUTH),
    )


def check_owner(signed_in: UserId, claimed: object) -> None:
    """Refuse a subscription that names another user than the one signed in."""
    if claimed is not None and claimed != signed_in:
        raise PermissionDenied(NOT_YOURS)


def _quiet_time(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _HH_MM.fullmatch(value):
        raise InvalidInput(BAD_QUIET)
    return value


def validate_settings(
    events: object, quiet_start: object, quiet_end: object, time_zone: object
) -> NotificationSettings:
    """Settings from user input, or one sentence about the first wrong field."""
    names = sorted(e.value for e in PushEvent)
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise InvalidInput(BAD_EVENTS.format(", ".join(names)))
    if set(events) - set(names):
        raise InvalidInput(BAD_EVENTS.format(", ".join(names)))
    start, end = _quiet_time(quiet_start), _quiet_time(quiet_end)
    if (start is None) != (end is None) or (start is not None and start == end):
        raise InvalidInput(BAD_QUIET)
    zone = time_zone if time_zone not in (None, "") else "UTC"
    if not isinstance(zone, str) or len(zone) > 64:
        raise InvalidInput(BAD_TIME_ZONE.format(zone))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(BAD_TIME_ZONE.format(zone)) from exc
    return NotificationSettings(
        events=frozenset(PushEvent(e) for e in events),
        quiet_start=start,
        quiet_end=end,
        time_zone=zone,
    )


def _clock_time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def is_quiet(settings: NotificationSettings, now: datetime) -> bool:
    """Whether ``now`` falls in the user's quiet hours (start inclusive, end exclusive)."""
    if settings.quiet_start is None or settings.quiet_end is None:
        return False
    local = now.astimezone(ZoneInfo(settings.time_zone)).time().replace(second=0, microsecond=0)
    start, end = _clock_time(settings.quiet_start), _clock_time(settings.quiet_end)
    if start < end:
        return start <= local < end
    return local >= start or local < end


def wants(settings: NotificationSettings, event: PushEvent, now: datetime) -> bool:
    """Whether the user wants to hear about ``event`` right now."""
    return event in settings.events and not is_quiet(settings, now)


def short_line(text: str) -> str:
    """One line of at most :data:`MAX_LINE` characters."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1].rstrip() + "…"


def reply_preview(content: str, error: str | None) -> str:
    """What the inbox shows of a finished reply: its first line, or why it failed."""
    return short_line(content or error or "")


def parse_seen_until(value: object) -> datetime:
    """The time the user looked up to (a finished reply's ``finished_at``), or one sentence."""
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInput(BAD_SEEN_UNTIL)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(BAD_SEEN_UNTIL) from exc
    if parsed.tzinfo is None:
        raise InvalidInput(BAD_SEEN_UNTIL)
    return parsed


def seen_until(previous: datetime | None, until: datetime, now: datetime) -> datetime:
    """The new "last looked" mark: it only moves forward, and never past ``now``."""
    mark = min(until, now)
    return mark if previous is None or mark > previous else previous


def worker_label(name: str | None, directory: str) -> str:
    """How a notification names a worker: its name, else its folder."""
    return name or directory or "(root folder)"


def session_url(machine_id: MachineId, worker_id: WorkerId, session_id: ChatSessionId) -> str:
    """The chat page opened on one session."""
    query = urlencode({"machine": machine_id, "worker": worker_id, "session": session_id})
    return f"/chat?{query}"


def permission_notification(waiting: WaitingPermission) -> Notification:
    """A permission request as a notification with Allow and Deny.

    It names the tool and the worker only: the request's description may hold a
    command or a path with secrets in it, so it stays in the app.
    """
    request = waiting.request
    asks = _asks(
        waiting,
        f"Permission needed on {waiting.machine_name}",
        f"The agent in {waiting.worker_label} wants to use {request.tool}.",
        f"permission-{request.permission_id}",
    )
    actions = (NotificationAction("allow", "Allow"), NotificationAction("deny", "Deny"))
    return attrs.evolve(asks, actions=actions, permission_id=request.permission_id)


def question_notification(waiting: WaitingQuestion) -> Notification:
    """A question from the agent as a notification that opens its session.

    Sent with the permission events (both mean "the agent waits for you"); it
    names the worker only, the question itself may quote code and stays in the app.
    """
    return _asks(
        waiting,
        f"A question on {waiting.machine_name}",
        f"The agent in {waiting.worker_label} asks you something.",
        f"question-{waiting.request.question_id}",
    )


def _asks(
    waiting: WaitingPermission | WaitingQuestion, title: str, body: str, tag: str
) -> Notification:
    """The agent waits for the user (a permission event): it opens the session it waits in."""
    session_id = waiting.request.chat_session_id
    return _opening(waiting, session_id, PushEvent.PERMISSION, title, body, tag)


def _duration(elapsed: timedelta) -> str:
    minutes = int(elapsed.total_seconds() // 60)
    if minutes < 1:
        return f"{int(elapsed.total_seconds())} s"
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def reply_notification(turn: OpenTurn, succeeded: bool, elapsed: timedelta) -> Notification:
    """A long reply that finished (or failed), opening its session."""
    reply = turn.message
    title = (
        f"Reply ready in {turn.worker_label}"
        if succeeded
        else f"Reply failed in {turn.worker_label}"
    )
    verb = "finished" if succeeded else "stopped"
    return _about_turn(
        turn,
        PushEvent.LONG_REPLY,
        title,
        f"The agent on {turn.machine_name} {verb} after {_duration(elapsed)}.",
        f"reply-{reply.message_id}",
    )


def job_failed_notification(turn: OpenTurn, job_name: str) -> Notification:
    """A scheduled job's run whose reply failed."""
    return _about_turn(
        turn,
        PushEvent.JOB_FAILED,
        f"Job failed: {job_name}",
        f"The run in {turn.worker_label} on {turn.machine_name} did not finish.",
        f"job-{turn.message.message_id}",
    )


def machine_offline_notification(turns: list[OpenTurn]) -> Notification:
    """A machine that went offline while messages of ``turns`` (one user's) wait for it."""
    first = turns[0]
    waiting = len({t.message.chat_session_id for t in turns})
    sessions = "1 session is" if waiting == 1 else f"{waiting} sessions are"
    return _about_turn(
        first,
        PushEvent.MACHINE_OFFLINE,
        f"{first.machine_name} went offline",
        f"{sessions} waiting for it. Start the machine again to carry on.",
        f"offline-{first.machine_id}",
    )


def _about_turn(turn: OpenTurn, event: PushEvent, title: str, body: str, tag: str) -> Notification:
    """A notification about an open turn: it opens the session the turn is in."""
    return _opening(turn, turn.message.chat_session_id, event, title, body, tag)


def _opening(
    where: WaitingPermission | WaitingQuestion | OpenTurn,
    session_id: ChatSessionId,
    event: PushEvent,
    title: str,
    body: str,
    tag: str,
) -> Notification:
    """A notification of one line each that opens ``session_id`` on ``where``'s worker."""
    return Notification(
        title=short_line(title),
        body=short_line(body),
        url=session_url(where.machine_id, where.worker_id, session_id),
        tag=tag,
        event=event,
    )
