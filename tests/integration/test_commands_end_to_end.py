"""Directory commands with real parts: server, ``worker start``, the disk, git and git daemon.

A client uses only the user API: it browses the machine's root, creates a
folder, clones a repository served by ``git daemon`` on loopback while
following its progress over SSE, and checks every refusal. The machine
process runs as a real ``orchestrator worker start`` subprocess.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from orchestrator.application.commands import STOPPED
from orchestrator.domain import commands as c
from orchestrator.domain import git_url as u
from orchestrator.entrypoints.web.commands_api import QUEUED_NOTICE
from tests.integration.chat_stage import Api, Stage, machine_online, signed_in, stage
from tests.integration.git_server import (
    git_processes_for,
    served_repository,
    silent_server,
)
from tests.integration.harness import NEEDS_GIT, sse_events, stop, wait_for_line

pytestmark = [pytest.mark.slow, pytest.mark.anyio, NEEDS_GIT]


@attrs.define
class Commands(Api):
    """The user API with the calls for one machine's directory commands."""

    machine_id: str = attrs.field(kw_only=True)

    @classmethod
    def of(cls, api: Api, machine_id: str) -> Commands:
        """``api``, signed in, for the commands of ``machine_id``."""
        return cls(api.http, api.base, api.csrf, machine_id=machine_id)

    async def queue(self, kind: str, **arguments: object) -> dict[str, Any]:
        """Queue a command on the machine; returns the whole answer (command, queued)."""
        body = {"kind": kind, **arguments}
        return dict(await self.call("POST", f"/api/machines/{self.machine_id}/commands", body, 201))

    async def follow(self, command_id: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Every state of the command the SSE stream sends, up to the finished one."""
        states: list[dict[str, Any]] = []
        with anyio.fail_after(timeout):
            async with self.http.get(f"{self.base}/api/commands/{command_id}/stream") as stream:
                assert stream.status == 200
                async for event in sse_events(stream.content):
                    assert event.name == "command", event
                    states.append(event.data["command"])
        assert states[-1]["finished"], states
        return states

    async def run(self, kind: str, **arguments: object) -> dict[str, Any]:
        """Queue a command and wait for its final state."""
        answer = await self.queue(kind, **arguments)
        return (await self.follow(answer["command"]["command_id"]))[-1]


@contextmanager
def command_stage(tmp_path: Path) -> Iterator[Stage]:
    """The stage with sample entries in its root, one a link to ``outside`` the root."""
    outside = tmp_path / "outside"
    outside.mkdir()
    with stage(tmp_path) as s:
        (s.root / "existing" / ".git").mkdir(parents=True)
        (s.root / "notes.txt").write_text("hello")
        (s.root / "full").mkdir()
        (s.root / "full" / "file").write_text("x")
        (s.root / "escape").symlink_to(outside)
        yield s


@asynccontextmanager
async def online_commands(s: Stage) -> AsyncIterator[Commands]:
    """Start the stage's machine and sign alice in; the machine stops after."""
    async with machine_online(s) as online:
        yield Commands.of(online.api, s.machine_id)


@asynccontextmanager
async def offline_commands(s: Stage) -> AsyncIterator[Commands]:
    """Sign alice in while her machine is not started."""
    async with signed_in(s.server) as api:
        yield Commands.of(api, s.machine_id)


async def clone_that_hangs(api: Commands, hanging: str, root: Path) -> str:
    """Queue a clone into ``hung`` from a server that never answers; once git runs, its ID."""
    answer = await api.queue("git_clone", url=f"{hanging}/app.git", path="hung")
    with anyio.fail_after(30):
        while not git_processes_for(str(root)):
            await anyio.sleep(0.05)
    return str(answer["command"]["command_id"])


@contextmanager
def machines(s: Stage) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    """Start machine processes on the stage, each once it is online; all are stopped after."""
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        started.append(s.worker())
        wait_for_line(started[-1], r"Machine .* is online", [])
        return started[-1]

    try:
        yield start
    finally:
        for machine in started:
            stop(machine)


async def test_browse_mkdir_and_clone_with_live_progress(tmp_path: Path) -> None:
    """List the root, make a folder, clone from git daemon into it with progress seen live."""
    with served_repository(tmp_path / "served", files=400) as daemon, command_stage(tmp_path) as s:
        async with online_commands(s) as api:
            tree = await api.call("POST", f"/api/machines/{s.machine_id}/tree", {})
            listing = tree["command"]["result"]
            assert [(e["name"], e["kind"], e["is_git_repo"]) for e in listing["entries"]] == [
                ("existing", "dir", True),
                ("full", "dir", False),
                ("escape", "symlink", False),
                ("notes.txt", "file", False),
            ]
            assert listing["entries"][3]["size"] == 5

            made = await api.run("mkdir", path="projects")
            assert (made["status"], made["result"]["path"]) == ("done", "projects")
            assert (s.root / "projects").is_dir()

            answer = await api.queue("git_clone", url=f"{daemon}/app.git", path="projects/app")
            states = await api.follow(answer["command"]["command_id"])
            done = states[-1]
            assert (done["status"], done["progress"], done["error"]) == ("done", 100, None)
            running = [st for st in states if st["status"] == "running"]
            assert any(0 < st["progress"] < 100 for st in running), states
            assert any(st["progress_line"] for st in running)
            progress = [st["progress"] for st in states]
            assert progress == sorted(progress)
            assert (s.root / "projects" / "app" / "README.md").read_text() == "# app\n"

            tree = await api.call(
                "POST", f"/api/machines/{s.machine_id}/tree", {"path": "projects"}
            )
            assert [
                (e["name"], e["is_git_repo"]) for e in tree["command"]["result"]["entries"]
            ] == [("app", True)]


async def test_a_command_sent_while_offline_runs_when_the_machine_returns(
    tmp_path: Path,
) -> None:
    """The machine is off: the command is queued; the machine starts and completes it."""
    with command_stage(tmp_path) as s, machines(s) as start_machine:
        async with offline_commands(s) as api:
            answer = await api.queue("mkdir", path="made/while/away", parents=True)
            assert (answer["queued"], answer["notice"]) == (True, QUEUED_NOTICE)
            command_id = answer["command"]["command_id"]
            await anyio.sleep(0.5)
            current = await api.call("GET", f"/api/commands/{command_id}")
            assert current["command"]["status"] == "pending"
            start_machine()
            states = await api.follow(command_id)
            assert states[-1]["status"] == "done"
            assert (s.root / "made" / "while" / "away").is_dir()


async def test_a_restart_fails_the_clone_the_dead_process_was_running(tmp_path: Path) -> None:
    """SIGKILL mid-clone: git dies too; on restart the clone fails, never runs twice, no folder."""
    with (
        served_repository(tmp_path / "served", files=5) as daemon,
        silent_server() as hanging,
        command_stage(tmp_path) as s,
        machines(s) as start_machine,
    ):
        first = start_machine()
        async with offline_commands(s) as api:
            command_id = await clone_that_hangs(api, hanging, s.root)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            with anyio.fail_after(10):  # git dies with its machine process
                while git_processes_for(str(s.root)):
                    await anyio.sleep(0.05)
            start_machine()
            final = (await api.follow(command_id))[-1]
            assert (final["status"], final["error"]) == ("failed", c.RESTARTED)
            assert not (s.root / "hung").exists()

            again = await api.run("git_clone", url=f"{daemon}/app.git", path="hung")
            assert again["status"] == "done", again
            assert sorted(p.name for p in s.root.iterdir() if "hung" in p.name) == ["hung"]


#: Refused by the server before anything is queued: (body, error sentence).
REFUSED_AT_ONCE = [
    ({"kind": "list_dir", "path": "../outside"}, "The path must not contain '..'."),
    ({"kind": "mkdir", "path": "/etc/evil"}, "Use a path relative to the machine's root, not an absolute one."),  # noqa: E501
    ({"kind": "mkdir", "path": "a\u0000b"}, "The path must not contain NUL bytes."),
    ({"kind": "mkdir", "path": "n" * 256}, "Each folder name must be at most 255 characters."),
    ({"kind": "git_clone", "path": "x", "url": "-u"}, u.URL_OPTION),
    ({"kind": "git_clone", "path": "x", "url": "--upload-pack=touch"}, u.URL_OPTION),
    ({"kind": "git_clone", "path": "x", "url": "ext::sh -c touch"}, u.URL_CHARACTERS),
    ({"kind": "git_clone", "path": "x", "url": "ext::sh"}, u.URL_TRANSPORT.format(name="ext")),
    ({"kind": "git_clone", "path": "x", "url": "file:///etc"}, u.URL_FILE),
    ({"kind": "git_clone", "path": "x", "url": "/srv/repo"}, u.URL_LOCAL),
    ({"kind": "git_clone", "path": "x", "url": "ftp://h/r"}, u.URL_SCHEME.format(scheme="ftp")),
]  # fmt: skip


async def test_every_refusal_is_one_sentence_through_the_api(tmp_path: Path) -> None:
    """Bad input is refused at once, what only the disk knows fails the command: one sentence."""
    with served_repository(tmp_path / "served", files=5) as daemon, command_stage(tmp_path) as s:
        async with online_commands(s) as api:
            for body, sentence in REFUSED_AT_ONCE:
                path = f"/api/machines/{s.machine_id}/commands"
                answer = await api.call("POST", path, body, 400)
                assert answer["error"] == sentence, body
            listed = await api.call("GET", f"/api/machines/{s.machine_id}/commands")
            assert listed["commands"] == []

            escape = "The path leads outside the machine's root directory through a symbolic link."
            refused_on_the_machine = [
                ({"kind": "list_dir", "path": "escape"}, escape),
                ({"kind": "mkdir", "path": "escape/new"}, escape),
                ({"kind": "git_clone", "url": f"{daemon}/app.git", "path": "escape/app"}, escape),
                (
                    {"kind": "git_clone", "url": f"{daemon}/app.git", "path": "full"},
                    "The folder 'full' already exists and is not empty;"
                    " clone into a new or empty folder.",
                ),
                ({"kind": "mkdir", "path": "full"}, "A folder named 'full' already exists."),
                ({"kind": "list_dir", "path": "missing"}, "There is no folder 'missing' under the root."),  # noqa: E501
            ]  # fmt: skip
            for body, sentence in refused_on_the_machine:
                final = await api.run(**body)
                assert (final["status"], final["error"]) == ("failed", sentence), body

            final = await api.run("git_clone", url=f"{daemon}/missing.git", path="gone")
            assert final["status"] == "failed"
            assert final["error"].startswith("git clone failed: ")
            assert not (s.root / "gone").exists()
        assert list((tmp_path / "outside").iterdir()) == []


async def test_cancel_stops_a_running_clone_and_removes_its_folder(tmp_path: Path) -> None:
    """Cancelling a hanging clone kills git, removes the folder and fails the command."""
    with silent_server() as hanging, command_stage(tmp_path) as s:
        async with online_commands(s) as api:
            command_id = await clone_that_hangs(api, hanging, s.root)
            cancelled = await api.call("POST", f"/api/commands/{command_id}/cancel", None, 200)
            assert cancelled["command"]["cancel_requested"] is True
            final = (await api.follow(command_id))[-1]
            assert (final["status"], final["error"]) == ("failed", c.CANCELLED)
            assert git_processes_for(str(s.root)) == []
            assert not any("hung" in p.name for p in s.root.iterdir())
            assert final["error"] != STOPPED
