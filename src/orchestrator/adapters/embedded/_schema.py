"""The SQLite schema as an ordered list of migrations, and opening a connection.

``PRAGMA user_version`` holds how many migrations a database has had. To change
the schema, append a step to :data:`MIGRATIONS`; never edit a released one.
Timestamps are integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import os
from pathlib import Path

import aiosqlite

from orchestrator.domain.errors import BackendUnavailable

#: One tuple of SQL statements per schema version, applied in order.
MIGRATIONS: list[tuple[str, ...]] = [
    # 1: accounts, machines, workers and issued worker tokens.
    (
        """
        CREATE TABLE users (
            user_id TEXT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL
        ) STRICT
        """,
        """
        CREATE TABLE machines (
            machine_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('online', 'offline')),
            created_at INTEGER NOT NULL,
            last_heartbeat INTEGER,
            root_directory TEXT
        ) STRICT
        """,
        "CREATE INDEX machines_by_user_id_and_created_at ON machines (user_id, created_at)",
        "CREATE INDEX machines_by_status_and_last_heartbeat ON machines (status, last_heartbeat)",
        """
        CREATE TABLE workers (
            worker_id TEXT PRIMARY KEY,
            machine_id TEXT NOT NULL REFERENCES machines (machine_id) ON DELETE CASCADE,
            name TEXT,
            directory TEXT NOT NULL,
            status TEXT NOT NULL CHECK (
                status IN ('pending_authorization', 'ready', 'online', 'offline')
            ),
            created_at INTEGER NOT NULL,
            approved_at INTEGER,
            approved_by TEXT REFERENCES users (user_id) ON DELETE SET NULL,
            last_heartbeat INTEGER,
            models TEXT NOT NULL DEFAULT '[]'
        ) STRICT
        """,
        "CREATE INDEX workers_by_machine_id_and_created_at ON workers (machine_id, created_at)",
        "CREATE INDEX workers_by_status ON workers (status)",
        """
        CREATE TABLE worker_tokens (
            worker_id TEXT PRIMARY KEY,
            machine_id TEXT NOT NULL REFERENCES machines (machine_id) ON DELETE CASCADE,
            created_at INTEGER NOT NULL,
            used_at INTEGER
        ) STRICT
        """,
        "CREATE INDEX worker_tokens_by_machine_id ON worker_tokens (machine_id)",
    ),
    # 2: chat sessions, their messages, the chunks replies stream in, permission requests.
    (
        """
        CREATE TABLE chat_sessions (
            chat_session_id TEXT PRIMARY KEY,
            worker_id TEXT NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('active', 'idle', 'terminated')),
            created_at INTEGER NOT NULL,
            last_activity INTEGER NOT NULL,
            agent_session_id TEXT,
            title TEXT,
            -- The sequence of the session's last chunk: chunks are numbered 1, 2, ...
            last_sequence INTEGER NOT NULL DEFAULT 0
        ) STRICT
        """,
        "CREATE INDEX chat_sessions_by_worker_id_and_last_activity"
        " ON chat_sessions (worker_id, last_activity)",
        """
        CREATE TABLE chat_messages (
            message_id TEXT PRIMARY KEY,
            chat_session_id TEXT NOT NULL
                REFERENCES chat_sessions (chat_session_id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN (
                'pending', 'processing', 'streaming', 'completed', 'failed', 'interrupted',
                'aborted'
            )),
            timestamp INTEGER NOT NULL,
            reply_to TEXT REFERENCES chat_messages (message_id) ON DELETE CASCADE,
            error TEXT,
            abort_requested INTEGER NOT NULL DEFAULT 0 CHECK (abort_requested IN (0, 1))
        ) STRICT
        """,
        "CREATE INDEX chat_messages_by_session_and_timestamp"
        " ON chat_messages (chat_session_id, timestamp)",
        "CREATE INDEX chat_messages_by_session_and_status"
        " ON chat_messages (chat_session_id, status, timestamp)",
        "CREATE INDEX chat_messages_by_reply_to ON chat_messages (reply_to)",
        # At most one reply of a session streams at a time.
        "CREATE UNIQUE INDEX chat_messages_one_streaming_by_session"
        " ON chat_messages (chat_session_id) WHERE status = 'streaming'",
        """
        CREATE TABLE chat_chunks (
            chunk_id TEXT PRIMARY KEY,
            message_id TEXT NOT NULL REFERENCES chat_messages (message_id) ON DELETE CASCADE,
            chat_session_id TEXT NOT NULL
                REFERENCES chat_sessions (chat_session_id) ON DELETE CASCADE,
            chunk TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            timestamp INTEGER NOT NULL
        ) STRICT
        """,
        "CREATE UNIQUE INDEX chat_chunks_by_session_and_sequence"
        " ON chat_chunks (chat_session_id, sequence)",
        "CREATE INDEX chat_chunks_by_message_and_sequence ON chat_chunks (message_id, sequence)",
        """
        CREATE TABLE permission_requests (
            permission_id TEXT PRIMARY KEY,
            chat_session_id TEXT NOT NULL
                REFERENCES chat_sessions (chat_session_id) ON DELETE CASCADE,
            message_id TEXT NOT NULL REFERENCES chat_messages (message_id) ON DELETE CASCADE,
            agent_request_id TEXT NOT NULL,
            tool TEXT NOT NULL,
            description TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'answered', 'resolved', 'expired')),
            created_at INTEGER NOT NULL,
            answer TEXT CHECK (answer IS NULL OR answer IN ('once', 'always', 'reject'))
        ) STRICT
        """,
        "CREATE INDEX permission_requests_by_session_and_status"
        " ON permission_requests (chat_session_id, status, created_at)",
        "CREATE INDEX permission_requests_by_message_and_status"
        " ON permission_requests (message_id, status)",
    ),
    # 3: directory commands a user sends to a machine (list_dir, mkdir, git_clone).
    (
        """
        CREATE TABLE commands (
            command_id TEXT PRIMARY KEY,
            machine_id TEXT NOT NULL REFERENCES machines (machine_id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('list_dir', 'mkdir', 'git_clone')),
            -- JSON: {"path", "parents", "url", "cursor"}
            arguments TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
            progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
            progress_line TEXT,
            -- JSON: {"path", "entries", "total", "next_cursor"} once done
            result TEXT,
            error TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
            created_at INTEGER NOT NULL,
            started_at INTEGER,
            finished_at INTEGER
        ) STRICT
        """,
        "CREATE INDEX commands_by_machine_id_and_created_at ON commands (machine_id, created_at)",
        "CREATE INDEX commands_by_machine_id_and_status_and_created_at"
        " ON commands (machine_id, status, created_at)",
    ),
    # 4: scheduled jobs and their runs (a run's outcome is its chat reply's).
    (
        """
        CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            -- NULL once the worker was removed (the job is then paused with a reason).
            worker_id TEXT REFERENCES workers (worker_id) ON DELETE SET NULL,
            name TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt TEXT NOT NULL,
            cron TEXT NOT NULL,
            timezone TEXT NOT NULL,
            enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
            session_mode TEXT NOT NULL CHECK (session_mode IN ('new_session', 'same_session')),
            created_at INTEGER NOT NULL,
            next_run_at INTEGER,
            -- The session same_session runs append to (no foreign key: sessions go with
            -- their worker, the job stays).
            chat_session_id TEXT,
            paused_reason TEXT
        ) STRICT
        """,
        "CREATE INDEX jobs_by_user_id_and_created_at ON jobs (user_id, created_at)",
        "CREATE INDEX jobs_by_enabled_and_next_run_at ON jobs (enabled, next_run_at)",
        "CREATE INDEX jobs_by_worker_id ON jobs (worker_id)",
        """
        CREATE TABLE job_runs (
            run_id TEXT PRIMARY KEY,
            job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
            scheduled_for INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            chat_session_id TEXT,
            message_id TEXT,
            -- NULL while the run's status follows its messages; set when it failed to
            -- start, or frozen when its worker (and so its messages) went away.
            status TEXT CHECK (
                status IS NULL OR status IN ('pending', 'running', 'done', 'failed')
            ),
            finished_at INTEGER,
            error TEXT,
            -- A slot runs at most once.
            UNIQUE (job_id, scheduled_for)
        ) STRICT
        """,
        "CREATE INDEX job_runs_by_job_id_and_created_at ON job_runs (job_id, created_at)",
    ),
    # 5: each worker's permission policy (JSON); NULL is the safe default policy.
    ("ALTER TABLE workers ADD COLUMN permission_policy TEXT",),
    # 6: the typed parts of replies (text, reasoning, tool calls, step finishes …).
    (
        """
        CREATE TABLE message_parts (
            message_id TEXT NOT NULL REFERENCES chat_messages (message_id) ON DELETE CASCADE,
            -- The agent's part ID, unique within its reply.
            part_id TEXT NOT NULL,
            chat_session_id TEXT NOT NULL
                REFERENCES chat_sessions (chat_session_id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            type TEXT NOT NULL,
            -- A text or reasoning part's text, which grows by deltas.
            text TEXT NOT NULL DEFAULT '',
            -- The part's other fields as JSON (adapters/parts_json.py).
            data TEXT NOT NULL,
            updated_at INTEGER NOT NULL,
            -- The session's sequence at the part's last change (shared with chunks).
            sequence INTEGER NOT NULL,
            PRIMARY KEY (message_id, part_id)
        ) STRICT
        """,
        "CREATE UNIQUE INDEX message_parts_by_chat_session_id_and_position"
        " ON message_parts (chat_session_id, position)",
        "CREATE INDEX message_parts_by_chat_session_id_and_sequence"
        " ON message_parts (chat_session_id, sequence)",
        # A chunk of a text part says which part it grows and at which character.
        "ALTER TABLE chat_chunks ADD COLUMN part_id TEXT",
        "ALTER TABLE chat_chunks ADD COLUMN part_offset INTEGER",
    ),
    # 7: sign-ins, so signing out (or everywhere, or a new password) ends a cookie for good.
    (
        """
        CREATE TABLE sign_ins (
            sign_in_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            created_at INTEGER NOT NULL
        ) STRICT
        """,
        "CREATE INDEX sign_ins_by_user_id_and_created_at ON sign_ins (user_id, created_at)",
    ),
    # 8: Web Push subscriptions and notification settings, per user.
    (
        """
        CREATE TABLE push_subscriptions (
            endpoint TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            p256dh TEXT NOT NULL,
            auth TEXT NOT NULL,
            created_at INTEGER NOT NULL
        ) STRICT
        """,
        "CREATE INDEX push_subscriptions_by_user_id ON push_subscriptions (user_id, created_at)",
        """
        CREATE TABLE notification_settings (
            user_id TEXT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
            events TEXT NOT NULL,
            quiet_start TEXT,
            quiet_end TEXT,
            time_zone TEXT NOT NULL
        ) STRICT
        """,
    ),
    # 9: the lease of the one machine process that runs a machine (domain.lease).
    (
        "ALTER TABLE machines ADD COLUMN instance_id TEXT",
        "ALTER TABLE machines ADD COLUMN lease_until INTEGER",
    ),
    # 10: a chunk the live relay stored for a run of deltas: where each delta started, as
    # JSON [[sequence, offset], ...] (domain.live.TextRun), so resuming inside it is exact.
    ("ALTER TABLE chat_chunks ADD COLUMN marks TEXT",),
    # 11: the agents (modes) and slash commands a worker offers; the agent a session and a
    # message use.
    (
        "ALTER TABLE workers ADD COLUMN agents TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE workers ADD COLUMN commands TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE chat_sessions ADD COLUMN agent TEXT",
        "ALTER TABLE chat_messages ADD COLUMN agent TEXT",
    ),
    # 12: undo and redo of a session's turns (domain.undo).
    (
        "ALTER TABLE chat_sessions ADD COLUMN undone_from TEXT",
        "ALTER TABLE chat_sessions ADD COLUMN undo_agent_id TEXT",
        "ALTER TABLE chat_sessions ADD COLUMN undone_at INTEGER",
        "ALTER TABLE chat_sessions ADD COLUMN undo_requests INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE chat_sessions ADD COLUMN undo_applied INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE chat_sessions ADD COLUMN undo_error TEXT",
    ),
    # 13: questions the agent asks during a reply (domain.questions); JSON questions/answers.
    (
        """
        CREATE TABLE question_requests (
            question_id TEXT PRIMARY KEY,
            chat_session_id TEXT NOT NULL
                REFERENCES chat_sessions (chat_session_id) ON DELETE CASCADE,
            message_id TEXT NOT NULL REFERENCES chat_messages (message_id) ON DELETE CASCADE,
            agent_request_id TEXT NOT NULL,
            questions TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'answered', 'resolved', 'expired')),
            created_at INTEGER NOT NULL,
            answers TEXT,
            dismissed INTEGER NOT NULL DEFAULT 0
        ) STRICT
        """,
        "CREATE INDEX question_requests_by_session_and_status"
        " ON question_requests (chat_session_id, status, created_at)",
        "CREATE INDEX question_requests_by_message_and_status"
        " ON question_requests (message_id, status)",
    ),
    # 14: why a worker's machine cannot run it (Worker.problem).
    ("ALTER TABLE workers ADD COLUMN problem TEXT",),
    # 15: replies that ended, listed in the inbox after the user's "last looked" mark
    # (domain.notifications.FinishedReply); a small row each, so the inbox never reads texts.
    (
        """
        CREATE TABLE finished_replies (
            message_id TEXT PRIMARY KEY
                REFERENCES chat_messages (message_id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            chat_session_id TEXT NOT NULL
                REFERENCES chat_sessions (chat_session_id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            preview TEXT NOT NULL,
            finished_at INTEGER NOT NULL
        ) STRICT
        """,
        "CREATE INDEX finished_replies_by_user_and_time ON finished_replies (user_id, finished_at)",
        """
        CREATE TABLE inbox_seen (
            user_id TEXT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
            seen_at INTEGER NOT NULL
        ) STRICT
        """,
    ),
    # 16: the file an edit permission request
    # would change and its bounded diff (PermissionRequest.file/diff/diff_size).
    (
        "ALTER TABLE permission_requests ADD COLUMN file TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE permission_requests ADD COLUMN diff TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE permission_requests ADD COLUMN diff_size INTEGER NOT NULL DEFAULT 0",
    ),
    # 17: user API tokens (only the SHA-256 of each secret, see domain/api_tokens.py).
    (
        """
        CREATE TABLE api_tokens (
            token_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            last_used_at INTEGER
        ) STRICT
        """,
        "CREATE INDEX api_tokens_by_user_id_and_created_at ON api_tokens (user_id, created_at)",
    ),
    # 18: the model that produced a reply (ChatMessage.model); NULL for user messages and
    # for replies from before it was recorded.
    ("ALTER TABLE chat_messages ADD COLUMN model TEXT",),
]

SCHEMA_VERSION = len(MIGRATIONS)

BUSY_TIMEOUT_MS = 5000


def _create_private_file(path: Path) -> None:
    # The database holds password and secret hashes: readable by its owner only.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data directory is private
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


async def connect(path: Path | str) -> aiosqlite.Connection:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
    if str(path) != ":memory:":
        _create_private_file(Path(path))
    # isolation_level=None: we issue BEGIN/COMMIT ourselves.
    db = await aiosqlite.connect(str(path), isolation_level=None)
    try:
        db.row_factory = aiosqlite.Row
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    return db


async def schema_version(db: aiosqlite.Connection) -> int:
    """How many migrations the database has had."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def migrate(db: aiosqlite.Connection) -> int:
    """Apply the missing migrations in one transaction; returns the new version."""
    # IMMEDIATE takes the write lock first, so two processes never migrate at once.
    await db.execute("BEGIN IMMEDIATE")
    try:
        current = await schema_version(db)
        if current > SCHEMA_VERSION:
            raise BackendUnavailable(
                f"The database has schema version {current}, newer than this "
                f"orchestrator ({SCHEMA_VERSION}). Upgrade the orchestrator."
            )
        for step in MIGRATIONS[current:]:
            for statement in step:
                await db.execute(statement)
        await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
