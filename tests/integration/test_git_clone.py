"""LocalWorkspace.git_clone with real git against ``git daemon`` on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.adapters.filesystem import LocalWorkspace
from orchestrator.adapters.filesystem._git import git_arguments, git_environment
from orchestrator.adapters.filesystem._paths import SYMLINK_ESCAPE
from orchestrator.adapters.filesystem._progress import GitProgress, overall
from orchestrator.domain.errors import (
    CommandFailed,
    Conflict,
    InvalidInput,
    NotFound,
    PathOutsideRoot,
)
from tests.integration.git_server import (
    git,
    git_processes_for,
    served_repository,
    silent_server,
)
from tests.integration.harness import NEEDS_GIT

pytestmark = [pytest.mark.anyio, pytest.mark.slow, NEEDS_GIT]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``git://.../app.git``: a repository of a few hundred files behind git daemon."""
    with served_repository(tmp_path_factory.mktemp("served")) as url:
        yield f"{url}/app.git"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


class Recorder:
    def __init__(self) -> None:
        self.steps: list[tuple[int, str]] = []

    async def __call__(self, percent: int, line: str) -> None:
        self.steps.append((percent, line))


def test_progress_lines_map_onto_one_growing_percentage() -> None:
    """Each phase maps into its slice; repeated or earlier values are not reported again."""
    assert overall("remote: Counting objects: 100% (310/310), done.") == 5
    assert overall("Receiving objects:  50% (155/310), 1.2 MiB | 2 MiB/s") == 45
    assert overall("Resolving deltas: 100% (2/2), done.") == 95
    assert overall("Updating files:  50% (1/2)") == 97
    assert overall("Cloning into 'app'...") is None
    parser = GitProgress()
    steps = parser.feed(b"Cloning into 'x'...\nReceiving objects:  10% (1/10)\rReceiving obj")
    steps += parser.feed(b"ects:  10% (1/10)\rReceiving objects:  50% (5/10)\r")
    steps += parser.feed(b"fatal: the remote end hung up unexpectedly\n")
    assert steps == [(17, "Receiving objects:  10% (1/10)"), (45, "Receiving objects:  50% (5/10)")]
    assert parser.failure(128) == "git clone failed: the remote end hung up unexpectedly."


def test_git_runs_without_shell_prompts_or_dangerous_transports() -> None:
    """The URL follows ``--``; file and ext are never allowed; nothing may prompt."""
    args = git_arguments("/usr/bin/git", "git@h:r", Path("/r/app"))
    assert args[-4:] == ["--progress", "--", "git@h:r", "/r/app"]
    assert "protocol.file.allow=never" in args
    assert "protocol.ext.allow=never" in args
    env = git_environment({"PATH": "/usr/bin"})
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_ASKPASS"].endswith("true")
    assert "BatchMode=yes" in env["GIT_SSH_COMMAND"]


async def test_a_clone_reports_progress_and_leaves_a_working_copy(served: str, root: Path) -> None:
    """A real clone over git:// streams a growing percentage and yields the files."""
    workspace = LocalWorkspace(root)
    progress = Recorder()
    result = await workspace.git_clone(served, "app", progress)
    assert result.path == "app"
    assert (root / "app" / "README.md").read_text() == "# app\n"
    assert git("rev-parse", "--is-inside-work-tree", cwd=root / "app").strip() == "true"
    percents = [p for p, _ in progress.steps]
    assert percents == sorted(percents)
    assert len(set(percents)) > 1
    assert any(line.startswith("Receiving objects") for _, line in progress.steps)
    listing = await workspace.list_dir("")
    assert [(e.name, e.is_git_repo) for e in listing.entries] == [("app", True)]


async def test_a_clone_into_an_empty_folder_works_and_occupied_ones_are_refused(
    served: str, root: Path
) -> None:
    """An existing empty folder can be cloned into; a non-empty one or a file cannot."""
    workspace = LocalWorkspace(root)
    (root / "empty").mkdir()
    await workspace.git_clone(served, "empty", Recorder())
    assert (root / "empty" / "README.md").exists()
    with pytest.raises(Conflict, match=r"^The folder 'empty' already exists and is not empty;"):
        await workspace.git_clone(served, "empty", Recorder())
    (root / "file").write_text("x")
    with pytest.raises(Conflict, match=r"^'file' already exists and is not a folder;"):
        await workspace.git_clone(served, "file", Recorder())
    with pytest.raises(NotFound, match=r"^The folder 'no/such' does not exist; create it first\.$"):
        await workspace.git_clone(served, "no/such/app", Recorder())


async def test_a_clone_never_lands_outside_the_root(
    served: str, root: Path, tmp_path: Path
) -> None:
    """Targets through a symlink out of the root, or a symlink itself, are refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "link-to-empty").symlink_to(outside)
    workspace = LocalWorkspace(root)
    for target in ("escape/app", "link-to-empty"):
        with pytest.raises(PathOutsideRoot) as caught:
            await workspace.git_clone(served, target, Recorder())
        assert caught.value.message == SYMLINK_ESCAPE
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("url", ["ext::sh -c touch% /tmp/x", "--upload-pack=touch", "file:///"])
async def test_unsafe_urls_never_reach_git(root: Path, url: str) -> None:
    """Refused URLs raise before git runs and create nothing."""
    with pytest.raises(InvalidInput):
        await LocalWorkspace(root).git_clone(url, "app", Recorder())
    assert list(root.iterdir()) == []


async def test_a_failed_clone_leaves_no_half_made_folder(served: str, root: Path) -> None:
    """A missing repository fails with git's reason; the new folder is gone, an empty one kept."""
    workspace = LocalWorkspace(root)
    missing = served.replace("app.git", "missing.git")
    with pytest.raises(CommandFailed) as caught:
        await workspace.git_clone(missing, "app", Recorder())
    assert caught.value.message.startswith("git clone failed: ")
    assert caught.value.message.endswith(".")
    assert list(root.iterdir()) == []
    (root / "kept").mkdir()
    with pytest.raises(CommandFailed):
        await workspace.git_clone(missing, "kept", Recorder())
    assert (root / "kept").is_dir()
    assert list((root / "kept").iterdir()) == []


async def test_a_clone_that_hangs_times_out_and_is_cleaned_up(root: Path) -> None:
    """A server that never answers: the clone fails after the time limit, git is gone."""
    workspace = LocalWorkspace(root, clone_timeout=timedelta(seconds=1))
    with (
        silent_server() as url,
        pytest.raises(CommandFailed, match=r"^The clone did not finish within 1 seconds\.$"),
    ):
        await workspace.git_clone(f"{url}/app.git", "hung", Recorder())
    assert list(root.iterdir()) == []
    assert git_processes_for(str(root)) == []


async def start_hung_clone(
    tg: anyio.abc.TaskGroup, workspace: LocalWorkspace, root: Path, url: str, folder: str
) -> None:
    """Start ``workspace`` cloning the silent ``url`` into ``folder``; return once git runs."""
    tg.start_soon(workspace.git_clone, url, folder, Recorder())
    with anyio.fail_after(10):
        while not git_processes_for(str(root)):
            await anyio.sleep(0.02)


async def test_cancelling_a_clone_kills_git_and_removes_the_folder(root: Path) -> None:
    """Cancelling the caller stops git's whole process group and removes the folder."""
    workspace = LocalWorkspace(root)
    with silent_server() as url:
        async with anyio.create_task_group() as tg:
            await start_hung_clone(tg, workspace, root, f"{url}/app.git", "cancelled")
            tg.cancel_scope.cancel()
    assert git_processes_for(str(root)) == []
    assert list(root.iterdir()) == []


async def test_one_clone_per_folder_and_leftovers_of_a_dead_clone_are_removed(
    served: str, root: Path
) -> None:
    """A second clone into a folder being cloned is refused; a dead clone's staging goes."""
    workspace = LocalWorkspace(root)
    (root / ".app.cloning" / ".git").mkdir(parents=True)  # left by a SIGKILLed machine
    with silent_server() as url:
        async with anyio.create_task_group() as tg:
            await start_hung_clone(tg, workspace, root, f"{url}/app.git", "app")
            with pytest.raises(Conflict, match=r"^A clone into 'app' is already running\.$"):
                await workspace.git_clone(served, "app", Recorder())
            tg.cancel_scope.cancel()
    (root / ".app.cloning" / ".git").mkdir(parents=True)
    await workspace.git_clone(served, "app", Recorder())
    assert sorted(p.name for p in root.iterdir()) == ["app"]


_KILLED_CLONE = """
import sys, anyio
from pathlib import Path
from orchestrator.adapters.filesystem import LocalWorkspace

async def progress(percent: int, line: str) -> None:
    pass

anyio.run(LocalWorkspace(Path(sys.argv[1])).git_clone, sys.argv[2], "work/app", progress)
"""


async def test_a_machine_killed_mid_clone_leaves_staging_that_the_next_start_removes(
    root: Path,
) -> None:
    """SIGKILL mid-clone leaves ``.app.cloning``; the next start's sweep removes it."""
    (root / "work").mkdir()
    with silent_server() as url:
        child = subprocess.Popen([sys.executable, "-c", _KILLED_CLONE, str(root), f"{url}/a.git"])
        try:
            with anyio.fail_after(20):
                while not (root / "work" / ".app.cloning" / ".git").is_dir():
                    await anyio.sleep(0.05)
        finally:
            child.kill()
            child.wait()
        with anyio.fail_after(10):
            while git_processes_for(str(root)):
                await anyio.sleep(0.05)
    assert (root / "work" / ".app.cloning").is_dir()
    assert await LocalWorkspace(root).remove_stale_clones() == 1
    assert list((root / "work").iterdir()) == []


async def test_the_start_up_sweep_keeps_the_users_folders_and_never_leaves_the_root(
    root: Path, tmp_path: Path
) -> None:
    """Only empty or git-holding ``.<name>.cloning`` folders go; look-alikes and links stay."""
    (root / "a" / "b" / ".deep.cloning" / ".git" / "objects").mkdir(parents=True)
    (root / ".empty.cloning").mkdir()
    kept = [
        root / ".notes.cloning",  # the user's: content but no .git
        root / "notes.cloning",  # not hidden
        root / ".cloning",  # no name
        root / ".notes.cloning.bak",
        root / "repo" / ".git" / ".x.cloning",  # inside a .git folder
    ]
    for folder in kept:
        (folder / ".git" if folder.name != ".notes.cloning" else folder).mkdir(parents=True)
    (root / ".notes.cloning" / "todo.txt").write_text("mine")
    outside = tmp_path / "outside"
    (outside / ".other.cloning" / ".git").mkdir(parents=True)
    (root / "link").symlink_to(outside)
    assert await LocalWorkspace(root).remove_stale_clones() == 2
    assert not (root / "a" / "b" / ".deep.cloning").exists()
    assert not (root / ".empty.cloning").exists()
    assert all(folder.is_dir() for folder in kept)
    assert (root / ".notes.cloning" / "todo.txt").read_text() == "mine"
    assert (outside / ".other.cloning" / ".git").is_dir()
