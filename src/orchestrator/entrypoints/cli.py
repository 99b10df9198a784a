"""The ``orchestrator`` command line."""

from __future__ import annotations

import enum
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import anyio
import typer

from orchestrator.application import accounts, machines
from orchestrator.application.machine_process import MachineProcess
from orchestrator.domain.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
    OrchestratorError,
)
from orchestrator.domain.ids import MachineToken, WorkerToken
from orchestrator.entrypoints import envfile, options, service
from orchestrator.entrypoints.container import bootstrap, resolve, running
from orchestrator.entrypoints.logs import configure_logging
from orchestrator.entrypoints.runtime import (
    freeze_startup_objects,
    machine_process,
    run_server,
    run_up,
)
from orchestrator.entrypoints.settings import (
    CONVEX_SCHEDULER_TICK,
    DEFAULT_HOST,
    DEFAULT_PORT,
    MachineSettings,
    ServerSettings,
    default_data_dir,
)
from orchestrator.entrypoints.web import proxy

T = TypeVar("T")

app = typer.Typer(
    help="Drive opencode coding agents on your own machines from one web chat.",
    no_args_is_help=True,
    add_completion=False,
)
user_app = typer.Typer(help="Manage accounts of the web app.", no_args_is_help=True)
machine_app = typer.Typer(help="Manage machines from the server's host.", no_args_is_help=True)
worker_app = typer.Typer(
    help="Run this computer as a machine: its workers and their agents.", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(machine_app, name="machine")
app.add_typer(worker_app, name="worker")

#: Exit codes, so scripts can tell failures apart.
EXIT_CODES: list[tuple[type[OrchestratorError], int]] = [
    (InvalidInput, 2),
    (AuthenticationFailed, 3),
    (NotFound, 4),
    (Conflict, 5),
    (BackendUnavailable, 6),
    (OrchestratorError, 1),
]

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="ORCHESTRATOR_DATA_DIR",
        help="Where the embedded backend keeps its data (default ~/.local/share/orchestrator).",
        show_default=False,
    ),
]
Port = Annotated[int, typer.Option("--port", envvar="ORCHESTRATOR_PORT", help="Port to listen on.")]
Host = Annotated[
    str,
    typer.Option(
        "--host", envvar="ORCHESTRATOR_HOST", help="Address to listen on (0.0.0.0 for all)."
    ),
]
EnvFile = Annotated[
    Path, typer.Option("--env-file", help="Where the machine's token and root are saved.")
]


def fail(error: OrchestratorError) -> NoReturn:
    """Print the error's one sentence and exit with its code."""
    typer.echo(f"Error: {error.message}", err=True)
    code = next(code for kind, code in EXIT_CODES if isinstance(error, kind))
    raise typer.Exit(code)


def first_error(error: BaseException) -> OrchestratorError | None:
    """The first domain error in ``error``, looking inside task-group exception groups."""
    if isinstance(error, OrchestratorError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := first_error(inner)) is not None:
                return found
    return None


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run an async command; domain errors become one sentence and an exit code."""
    try:
        return anyio.run(main, backend="asyncio")
    except (OrchestratorError, BaseExceptionGroup) as exc:
        found = first_error(exc)
        if found is None:
            raise
        fail(found)


def echo(line: str) -> None:
    typer.echo(line)


class TransportName(enum.StrEnum):
    websocket = "websocket"
    http = "http"


ConvexTransport = Annotated[
    TransportName,
    typer.Option(
        "--convex-transport",
        envvar="CONVEX_TRANSPORT",
        help="websocket (live subscriptions) or http (polling, for networks that block "
        "WebSockets).",
    ),
]
ConvexUrl = Annotated[
    str | None,
    typer.Option(
        "--convex-url",
        envvar="CONVEX_URL",
        help="Use this Convex deployment instead of the embedded backend "
        "(the server also needs ORCHESTRATOR_SERVER_SECRET).",
        show_default=False,
    ),
]


def server_settings(
    data_dir: Path | None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    convex_url: str | None = None,
    convex_transport: TransportName = TransportName.websocket,
    public_url: str | None = None,
    secure_cookies: bool = False,
    trusted_proxy: list[str] | None = None,
) -> ServerSettings:
    try:
        advertised = options.public_url(public_url)
        trusted = proxy.parse_networks(trusted_proxy or [])
    except OrchestratorError as exc:
        fail(exc)
    return ServerSettings(
        advertised_url=advertised,
        secure_cookies=options.secure_cookies(secure_cookies, advertised),
        trusted_proxies=trusted,
        convex_transport="http" if convex_transport == "http" else "websocket",
        data_dir=data_dir or default_data_dir(),
        host=host,
        port=port,
        convex_url=convex_url or None,
        convex_server_secret=os.environ.get("ORCHESTRATOR_SERVER_SECRET") or None,
        scheduler_tick=CONVEX_SCHEDULER_TICK if convex_url else ServerSettings().scheduler_tick,
    )


# --- serve / up --------------------------------------------------------------


@app.callback()
def main_options(log_level: options.LogLevel = "info") -> None:
    """Drive opencode coding agents on your own machines from one web chat."""
    try:
        configure_logging(log_level)
    except OrchestratorError as exc:
        fail(exc)


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    convex_url: ConvexUrl = None,
    convex_transport: ConvexTransport = TransportName.websocket,
    public_url: options.PublicUrl = None,
    secure_cookies: options.SecureCookies = False,
    trusted_proxy: options.TrustedProxy = None,
) -> None:
    """Run the web app and the backend (embedded SQLite, or Convex) on one port."""
    settings = server_settings(
        data_dir,
        host,
        port,
        convex_url,
        convex_transport,
        public_url,
        secure_cookies,
        trusted_proxy,
    )
    run(lambda: run_server(settings, echo))


@app.command()
def up(
    data_dir: DataDir = None,
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    root: Annotated[
        Path | None,
        typer.Option(help="Root directory for this computer's workers (default: your home)."),
    ] = None,
    convex_url: ConvexUrl = None,
    convex_transport: ConvexTransport = TransportName.websocket,
    public_url: options.PublicUrl = None,
    secure_cookies: options.SecureCookies = False,
    trusted_proxy: options.TrustedProxy = None,
    heartbeat: options.Heartbeat = options.DEFAULT_HEARTBEAT,
    idle_timeout: options.IdleTimeout = options.DEFAULT_IDLE_TIMEOUT,
    process_policy: options.Policy = options.DEFAULT_POLICY,
) -> None:
    """Run the server and a machine process for this computer, then print the URL to open."""
    settings = server_settings(
        data_dir,
        host,
        port,
        convex_url,
        convex_transport,
        public_url,
        secure_cookies,
        trusted_proxy,
    )
    machine = options.machine_settings(
        heartbeat, idle_timeout, process_policy, convex_url=convex_url
    )
    run(lambda: run_up(settings, machine, root or Path.home(), echo))


# --- user -----------------------------------------------------------------------


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Sign-in name: letters, digits, . _ @ -")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Create an account for the web app."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def main() -> None:
        async with running(bootstrap(server_settings(data_dir))) as container:
            backend = await resolve(container.backend)
            user = await accounts.create_user(backend, container.hasher(), username, password)
        echo(f"Created user {user.username}.")

    run(main)


# --- machine --------------------------------------------------------------------


@machine_app.command("create")
def machine_create(
    name: Annotated[str, typer.Argument(help="A name you will recognise, e.g. 'laptop'.")],
    user: Annotated[str, typer.Option("--user", help="The account that owns the machine.")],
    server: Annotated[
        str, typer.Option(help="URL the machine will use to reach this server.")
    ] = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
    data_dir: DataDir = None,
) -> None:
    """Create a machine and print its token (shown only this once)."""

    async def main() -> None:
        async with running(bootstrap(server_settings(data_dir))) as container:
            backend = await resolve(container.backend)
            found = await backend.find_user(user)
            if found is None:
                raise NotFound(
                    f"There is no user {user!r}. Create one with `orchestrator user create`."
                )
            machine, token = await machines.create_machine(backend, found[0].user_id, name)
        echo(f"Created machine {machine.name!r}. Its token is shown only this once:\n\n  {token}\n")
        echo(
            "On that computer run this, and paste the token when it asks:\n\n"
            f"  orchestrator worker start --server {server}\n"
        )

    run(main)


@machine_app.command("list")
def machine_list(
    user: Annotated[str, typer.Option("--user", help="Whose machines to list.")],
    data_dir: DataDir = None,
) -> None:
    """List a user's machines with their status and workers."""

    async def main() -> None:
        async with running(bootstrap(server_settings(data_dir))) as container:
            backend = await resolve(container.backend)
            found = await backend.find_user(user)
            if found is None:
                raise NotFound(f"There is no user {user!r}.")
            summaries = await machines.list_machines(backend, found[0].user_id)
        if not summaries:
            echo("No machines yet. Create one with `orchestrator machine create`.")
        for s in summaries:
            m, w = s.machine, s.workers
            echo(
                f"{m.machine_id}  {m.name:<20} {m.status:<8} workers: {w.online} online, "
                f"{w.offline + w.ready} offline, {w.pending_authorization} pending"
            )

    run(main)


# --- worker (the machine process) -----------------------------------------------


def _ask_token(interactive: bool) -> str:
    if not interactive:
        raise InvalidInput(
            "No machine token. Pass --token-file or --token - (standard input), "
            "set MACHINE_TOKEN, or run this in a terminal to be asked."
        )
    return str(typer.prompt("Enter machine token (from web UI)", hide_input=True))


def _ask_root(interactive: bool) -> str:
    if not interactive:
        raise InvalidInput("No root directory. Pass --root or set ROOT_DIRECTORY.")
    return str(typer.prompt("Root directory for this machine's workers", default=str(Path.home())))


@worker_app.command("start")
def worker_start(
    token: options.TokenOption = None,
    token_file: options.TokenFile = None,
    root: Annotated[
        str | None,
        typer.Option(
            help="Directory the workers live under.", envvar="ROOT_DIRECTORY", show_default=False
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help=f"URL of `orchestrator serve` (default http://{DEFAULT_HOST}:{DEFAULT_PORT}).",
            envvar="ORCHESTRATOR_SERVER",
            show_default=False,
        ),
    ] = None,
    env_file: EnvFile = Path(".env"),
    convex_url: Annotated[
        str | None,
        typer.Option(
            "--convex-url",
            envvar="CONVEX_URL",
            help="Talk to this Convex deployment directly instead of a server.",
            show_default=False,
        ),
    ] = None,
    convex_transport: ConvexTransport = TransportName.websocket,
    heartbeat: options.Heartbeat = options.DEFAULT_HEARTBEAT,
    idle_timeout: options.IdleTimeout = options.DEFAULT_IDLE_TIMEOUT,
    process_policy: options.Policy = options.DEFAULT_POLICY,
    insecure: options.Insecure = False,
) -> None:
    """Bring this computer online as a machine (asks once for the token and root)."""
    interactive = sys.stdin.isatty()
    saved = envfile.read_env_file(env_file)
    server_url = (server or saved.get(envfile.SERVER_URL) or MachineSettings().server_url).rstrip(
        "/"
    )
    convex = convex_url or saved.get(envfile.CONVEX_URL) or None
    insecure = insecure or saved.get(envfile.INSECURE) == "1"
    try:
        # Before asking for the token: refuse to send it in clear unless told to.
        warning = options.plain_http_warning(convex or server_url, insecure)
        parsed = MachineToken.parse(
            options.given_token(token, token_file)
            or saved.get(envfile.MACHINE_TOKEN)
            or _ask_token(interactive)
        )
        root_path = machines.resolve_root(
            root or saved.get(envfile.ROOT_DIRECTORY) or _ask_root(interactive)
        )
    except OrchestratorError as exc:
        fail(exc)
    if warning:
        typer.echo(warning, err=True)
    settings = options.machine_settings(
        heartbeat,
        idle_timeout,
        process_policy,
        convex_url=convex,
        server_url=server_url,
        convex_transport="http" if convex_transport == "http" else "websocket",
    )
    wanted = {
        envfile.MACHINE_TOKEN: str(parsed),
        envfile.ROOT_DIRECTORY: str(root_path),
        **({envfile.CONVEX_URL: convex} if convex else {envfile.SERVER_URL: server_url}),
        **({envfile.INSECURE: "1"} if warning else {}),
    }

    async def main() -> None:
        async with running(bootstrap(machine=settings)) as container:
            backend = await resolve(container.machine_backend)
            async with container.agent_runtime() as runtime:
                process = machine_process(backend, parsed, root_path, runtime, settings, echo)
                await run_until_signal(process, on_online=lambda: _save(env_file, saved, wanted))

    run(main)


def _save(env_file: Path, saved: dict[str, str], wanted: dict[str, str]) -> None:
    envfile.remember_env_file(default_data_dir(), env_file)
    changed = {k: v for k, v in wanted.items() if saved.get(k) != v}
    if changed:
        envfile.write_env_file(env_file, changed)
        echo(f"Saved the machine token and root directory to {env_file} (readable only by you).")


async def run_until_signal(process: MachineProcess, on_online: Callable[[], None]) -> None:
    """Start ``process``, run it until SIGINT/SIGTERM, then take it offline."""
    online = False
    error: OrchestratorError | None = None

    async with anyio.create_task_group() as tg:

        async def body() -> None:
            nonlocal online, error
            try:
                await process.start()
                freeze_startup_objects()
                online = True
                on_online()
                await process.run()
            except OrchestratorError as exc:
                error = exc
            finally:
                tg.cancel_scope.cancel()

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    echo("Stopping...")
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(watch_signals)
        tg.start_soon(body)

    if online:
        await process.stop()
    if error is not None:
        raise error


@worker_app.command("register")
def worker_register(
    worker_token: Annotated[
        str | None,
        typer.Argument(
            help="Worker token from the web UI's 'Create worker token' ('-' reads standard "
            "input; leave it out to be asked).",
            show_default=False,
        ),
    ] = None,
    directory: Annotated[
        Path, typer.Option(help="The worker's directory, under the machine's root.")
    ] = Path("."),
    name: Annotated[str | None, typer.Option(help="A name for the worker.")] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            show_default=False,
            help="The machine's .env (default: found from here and the worker's directory "
            "upwards, else the one `worker start` last used).",
        ),
    ] = None,
    insecure: options.Insecure = False,
) -> None:
    """Register a worker for a directory from this machine; approve it in the web UI."""
    try:
        found = env_file or _find_machine_env(directory)
        saved = envfile.read_env_file(found)
        if envfile.MACHINE_TOKEN not in saved or envfile.ROOT_DIRECTORY not in saved:
            raise InvalidInput(
                f"No machine set up in {found}. Run `orchestrator worker start` first."
            )
        server_url = saved.get(envfile.SERVER_URL, MachineSettings().server_url)
        warning = options.plain_http_warning(
            server_url, insecure or saved.get(envfile.INSECURE) == "1"
        )
        parsed_worker = WorkerToken.parse(_worker_token(worker_token))
        token = MachineToken.parse(saved[envfile.MACHINE_TOKEN])
        root_path = machines.resolve_root(saved[envfile.ROOT_DIRECTORY])
    except OrchestratorError as exc:
        fail(exc)
    if warning:
        typer.echo(warning, err=True)
    settings = MachineSettings(server_url=server_url)

    async def main() -> None:
        async with running(bootstrap(machine=settings)) as container:
            backend = await resolve(container.machine_backend)
            worker = await machines.register_worker(
                backend, token, parsed_worker, root_path, directory.absolute(), name
            )
        echo(
            f"Registered worker {worker.worker_id} for {worker.directory or '(root)'}. "
            "Approve it in the web UI; `orchestrator worker start` runs it after that."
        )

    run(main)


@worker_app.command("install-service")
def worker_install_service(env_file: EnvFile = Path(".env")) -> None:
    """Run this machine as a service of yours (systemd user unit or launchd agent)."""
    try:
        service.install(service.this_platform(), env_file, echo)
    except OrchestratorError as exc:
        fail(exc)


@worker_app.command("service-status")
def worker_service_status() -> None:
    """Show whether the machine service is running (systemctl/launchctl)."""
    try:
        code = service.status(service.this_platform())
    except OrchestratorError as exc:
        fail(exc)
    raise typer.Exit(code)


@worker_app.command("uninstall-service")
def worker_uninstall_service() -> None:
    """Stop the machine service and remove it; the .env stays."""
    try:
        service.uninstall(service.this_platform(), echo)
    except OrchestratorError as exc:
        fail(exc)


def _find_machine_env(directory: Path) -> Path:
    starts = [Path.cwd(), directory.absolute()]
    remembered = envfile.remembered_env_file(default_data_dir())
    found = envfile.find_machine_env(starts, remembered)
    if found is None:
        looked = " and ".join(dict.fromkeys(str(start) for start in starts))
        also = f", and in {remembered}" if remembered else ""
        raise InvalidInput(
            f"No machine set up: no .env with a machine token in {looked} or their "
            f"parents{also}. Run `orchestrator worker start` first, or pass --env-file."
        )
    return found


def _worker_token(given: str | None) -> str:
    if given == options.STDIN:
        return sys.stdin.readline().strip()
    if given:
        return given
    if not sys.stdin.isatty():
        raise InvalidInput("No worker token. Pass it, or '-' to read it from standard input.")
    return str(typer.prompt("Enter worker token (from web UI)"))


# export / import live in their own module; it uses the helpers above.
from orchestrator.entrypoints import transfer_cli  # noqa: E402

transfer_cli.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
