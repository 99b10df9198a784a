"""Long-running commands: the server, and the server with this computer as a machine."""

from __future__ import annotations

import gc
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import anyio
from aiohttp import web

from orchestrator.adapters.filesystem import LocalWorkspace
from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.remote.live import LiveOutbox
from orchestrator.application import machines
from orchestrator.application.commands import CommandRunner
from orchestrator.application.machine_process import MachineProcess, worker_directory
from orchestrator.application.sessions import SessionManager, StreamSettings
from orchestrator.domain.agent import AgentRuntime
from orchestrator.domain.errors import AuthenticationFailed, InvalidInput, OrchestratorError
from orchestrator.domain.ids import MachineToken
from orchestrator.domain.model import User
from orchestrator.domain.ports import Backend, MachineSide
from orchestrator.entrypoints import envfile
from orchestrator.entrypoints.container import bootstrap, resolve, running
from orchestrator.entrypoints.settings import MachineSettings, ServerSettings
from orchestrator.entrypoints.web import setup_link
from orchestrator.entrypoints.web.connections import GuardedSite

Report = Callable[[str], None]

#: Where ``orchestrator up`` keeps the token of "this computer" as a machine.
LOCAL_MACHINE_FILE = "this-machine.env"


def machine_process(
    backend: MachineSide,
    token: MachineToken,
    root: Path,
    runtime: AgentRuntime,
    settings: MachineSettings,
    report: Report,
) -> MachineProcess:
    """A machine process: chat sessions on ``runtime``, directory commands under ``root``."""
    process = MachineProcess(
        backend,
        token,
        root,
        heartbeat_interval=settings.heartbeat_interval,
        report=report,
        runtime=runtime,
    )
    connection = process.connection
    process.sessions = SessionManager(
        backend,
        token,
        runtime,
        workers=lambda: process.workers,
        directory=lambda worker: worker_directory(root, worker),
        settings=StreamSettings(
            idle_timeout=settings.idle_timeout, coalesce_window=settings.coalesce_window
        ),
        report=report,
        connection=connection,
        # A server's machine API takes reply events live; other backends are written directly.
        live=LiveOutbox(backend, token) if isinstance(backend, RemoteMachineBackend) else None,
    )
    process.commands = CommandRunner(
        backend, token, LocalWorkspace(root), report=report, connection=connection
    )
    return process


def freeze_startup_objects() -> None:
    """Keep what the process made to start (modules, the app, its settings) out of every
    later garbage collection.

    A full collection scans every tracked object: with the ~80,000 that start-up leaves,
    it paused the server and the machine process for 35-90 ms on this 2-core machine --
    every live stream of the process waits it out. Frozen, they are never scanned again
    (they live as long as the process anyway); what the process makes later is
    collected as before. Garbage made so far is collected first, not kept for ever.
    """
    gc.collect()
    gc.freeze()


async def wait_for_signal(report: Report, ready: Callable[[], None] = lambda: None) -> None:
    """Wait for SIGINT/SIGTERM; ``ready`` runs once they are caught, so none is missed."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        ready()
        async for _ in signals:
            report("Stopping...")
            return


async def start_site(app: web.Application, settings: ServerSettings) -> web.AppRunner:
    """Serve ``app`` on the configured address; a busy port is one clear sentence."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await GuardedSite(runner, settings).start()
    except OSError as exc:
        await runner.cleanup()
        raise InvalidInput(
            f"Cannot listen on {settings.host}:{settings.port} ({exc.strerror}). "
            "Stop whatever uses it or pass --port."
        ) from exc
    return runner


def announce(app: web.Application, settings: ServerSettings, report: Report) -> None:
    report(f"Orchestrator is running at {settings.public_url}")
    link = setup_link(app, settings.public_url)
    if link:
        report(f"First run: open {link} to create your account (the link works once).")


async def run_server(settings: ServerSettings, report: Report) -> None:
    """Run ``orchestrator serve`` until SIGINT/SIGTERM."""
    async with running(bootstrap(settings)) as container:
        app = await resolve(container.web_app)
        runner = await start_site(app, settings)
        freeze_startup_objects()
        try:
            await wait_for_signal(report, ready=lambda: announce(app, settings, report))
        finally:
            await runner.cleanup()


async def run_up(
    settings: ServerSettings, machine: MachineSettings, root: Path, report: Report
) -> None:
    """Run the server and, once an account exists, this computer as its machine."""
    root_path = machines.resolve_root(root)
    async with running(bootstrap(settings, machine)) as container:
        app = await resolve(container.web_app)
        backend = await resolve(container.backend)
        runner = await start_site(app, settings)
        freeze_startup_objects()
        try:
            async with container.agent_runtime() as runtime, anyio.create_task_group() as tg:

                def ready() -> None:
                    announce(app, settings, report)
                    tg.start_soon(
                        _local_machine, backend, runtime, settings, machine, root_path, report
                    )

                await wait_for_signal(report, ready)
                tg.cancel_scope.cancel()
        finally:
            await runner.cleanup()


async def _first_user(backend: Backend, report: Report) -> User:
    told = False
    while True:
        users = await backend.list_users()
        if users:
            return users[0]
        if not told:
            report("This computer joins as a machine as soon as the first account exists.")
            told = True
        await anyio.sleep(1)


async def local_machine_token(
    backend: Backend, settings: ServerSettings, owner: User, report: Report
) -> MachineToken:
    """The token of this computer's machine, created for ``owner`` on first use."""
    path = settings.data_dir / LOCAL_MACHINE_FILE
    saved = envfile.read_env_file(path).get(envfile.MACHINE_TOKEN)
    if saved:
        token = MachineToken.parse(saved)
        try:
            await backend.authenticate(token)
            return token
        except AuthenticationFailed:
            report("This computer's machine was deleted; creating it again.")
    name = f"This computer ({socket.gethostname()})"
    _, token = await machines.create_machine(backend, owner.user_id, name[:100])
    envfile.write_env_file(path, {envfile.MACHINE_TOKEN: str(token)})
    return token


async def _local_machine(
    backend: Backend,
    runtime: AgentRuntime,
    settings: ServerSettings,
    machine: MachineSettings,
    root: Path,
    report: Report,
) -> None:
    owner = await _first_user(backend, report)
    token = await local_machine_token(backend, settings, owner, report)
    process = machine_process(backend, token, root, runtime, machine, report)
    try:
        await process.start()
        await process.run()
    except OrchestratorError as exc:
        report(f"This computer's machine stopped: {exc.message}")
    finally:
        await process.stop()
