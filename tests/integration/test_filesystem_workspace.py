"""LocalWorkspace on a real disk: listing, paging, mkdir and confinement (symlinks included)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator.adapters.filesystem import LocalWorkspace
from orchestrator.adapters.filesystem._paths import SYMLINK_ESCAPE, SYMLINK_LOOP, Root
from orchestrator.domain.commands import BAD_CURSOR, PAGE_SIZE, EntryKind
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound, PathOutsideRoot

pytestmark = pytest.mark.anyio


def build_tree(base: Path) -> tuple[Path, Path]:
    """A root with folders, files, a git repo and symlinks in and out; and a folder outside."""
    root, outside = base / "root", base / "outside"
    (root / "src" / "app" / ".git").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "Zeta").mkdir()
    (root / "notes.txt").write_text("hello")
    (root / "b.txt").write_text("")
    outside.mkdir()
    (outside / "secret.txt").write_text("keep out")
    (root / "escape").symlink_to(outside)
    (root / "escape-file").symlink_to(outside / "secret.txt")
    (root / "inside").symlink_to(root / "src")
    (root / "loop").symlink_to(root / "loop")
    return root, outside


@pytest.fixture
def tree(tmp_path: Path) -> tuple[LocalWorkspace, Path, Path]:
    root, outside = build_tree(tmp_path)
    return LocalWorkspace(root), root, outside


async def test_a_listing_puts_folders_first_and_marks_git_repos(
    tree: tuple[LocalWorkspace, Path, Path],
) -> None:
    """Folders first, then the rest, each by name; kinds, sizes and git repos are reported."""
    workspace, root, _ = tree
    os.mkfifo(root / "pipe")
    (root / os.fsdecode(b"bad-\xff-name")).write_text("x")
    result = await workspace.list_dir("")
    names = [e.name for e in result.entries]
    assert names == [
        "docs", "src", "Zeta", "b.txt", "escape", "escape-file", "inside", "loop", "notes.txt",
        "pipe",
    ]  # fmt: skip
    by_name = {e.name: e for e in result.entries}
    assert by_name["notes.txt"].kind is EntryKind.FILE
    assert by_name["notes.txt"].size == 5
    assert by_name["docs"].size is None
    assert by_name["escape"].kind is EntryKind.SYMLINK
    assert by_name["pipe"].kind is EntryKind.OTHER
    assert all(e.modified is not None for e in result.entries)
    assert (result.path, result.total, result.next_cursor) == ("", 10, None)
    nested = await workspace.list_dir("src")
    assert [(e.name, e.is_git_repo) for e in nested.entries] == [("app", True)]
    assert not by_name["docs"].is_git_repo


async def test_a_huge_folder_comes_in_pages_without_gaps_or_repeats(tmp_path: Path) -> None:
    """A folder of 1203 entries is read in pages of PAGE_SIZE that add up to all of them."""
    (tmp_path / "big").mkdir()
    for n in range(1200):
        (tmp_path / "big" / f"file{n:04d}").write_text("")
    for name in ("dir-a", "dir-b", "dir-c"):
        (tmp_path / "big" / name).mkdir()
    workspace = LocalWorkspace(tmp_path)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await workspace.list_dir("big", cursor)
        pages += 1
        assert page.total == 1203
        assert len(page.entries) <= PAGE_SIZE
        seen += [e.name for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen[:3] == ["dir-a", "dir-b", "dir-c"]
    assert sorted(seen[3:]) == seen[3:]
    assert len(seen) == len(set(seen)) == 1203
    with pytest.raises(InvalidInput) as caught:
        await workspace.list_dir("big", "2/nonsense")
    assert caught.value.message == BAD_CURSOR


@pytest.mark.parametrize(
    ("path", "error", "sentence"),
    [
        ("missing", NotFound, "There is no folder 'missing' under the root."),
        ("notes.txt", InvalidInput, "'notes.txt' is a file, not a folder."),
        ("escape", PathOutsideRoot, SYMLINK_ESCAPE),
        ("escape/../../outside", PathOutsideRoot, "The path must not contain '..'."),
        (
            "/etc",
            PathOutsideRoot,
            "Use a path relative to the machine's root, not an absolute one.",
        ),
        ("src\x00", PathOutsideRoot, "The path must not contain NUL bytes."),
        ("x" * 256, PathOutsideRoot, "Each folder name must be at most 255 characters."),
        ("loop", InvalidInput, SYMLINK_LOOP),
    ],
)
async def test_listing_refusals_are_one_sentence(
    tree: tuple[LocalWorkspace, Path, Path], path: str, error: type[Exception], sentence: str
) -> None:
    """Missing folders, files, escapes, absolute paths, NUL bytes and loops are refused."""
    workspace, _, _ = tree
    with pytest.raises(error) as caught:
        await workspace.list_dir(path)
    assert str(caught.value) == sentence


async def test_a_symlink_inside_the_root_is_followed(
    tree: tuple[LocalWorkspace, Path, Path],
) -> None:
    """A link to a folder under the root lists that folder."""
    workspace, _, _ = tree
    result = await workspace.list_dir("inside")
    assert [e.name for e in result.entries] == ["app"]


async def test_mkdir_creates_folders_and_refuses_what_exists(
    tree: tuple[LocalWorkspace, Path, Path],
) -> None:
    """mkdir makes one folder; parents=True makes the chain and tolerates an existing one."""
    workspace, root, _ = tree
    assert (await workspace.make_dir("docs/new")).path == "docs/new"
    assert (root / "docs" / "new").is_dir()
    with pytest.raises(Conflict, match=r"^A folder named 'docs/new' already exists\.$"):
        await workspace.make_dir("docs/new")
    with pytest.raises(Conflict, match=r"^'notes.txt' already exists and is not a folder\.$"):
        await workspace.make_dir("notes.txt", parents=True)
    with pytest.raises(NotFound, match=r"^The folder 'a/b' does not exist; create it first"):
        await workspace.make_dir("a/b/c")
    await workspace.make_dir("a/b/c", parents=True)
    assert (root / "a" / "b" / "c").is_dir()
    assert (await workspace.make_dir("a/b/c", parents=True)).path == "a/b/c"
    await workspace.make_dir("inside/made-through-link")
    assert (root / "src" / "made-through-link").is_dir()


@pytest.mark.parametrize("path", ["escape/new", "escape/deep/new", "escape-file", "../new"])
@pytest.mark.parametrize("parents", [False, True])
async def test_mkdir_never_creates_anything_outside_the_root(
    tree: tuple[LocalWorkspace, Path, Path], path: str, parents: bool
) -> None:
    """A new folder through a symlink that leaves the root (or via ..) is refused."""
    workspace, _, outside = tree
    before = sorted(p.name for p in outside.rglob("*"))
    with pytest.raises(PathOutsideRoot):
        await workspace.make_dir(path, parents=parents)
    assert sorted(p.name for p in outside.rglob("*")) == before


SEGMENTS = st.sampled_from(
    ["src", "app", ".git", "escape", "inside", "loop", "..", ".", "", "docs", "x", "/", "\x00"]
)


@pytest.fixture(scope="module")
def shared_tree(tmp_path_factory: pytest.TempPathFactory) -> Root:
    root, _ = build_tree(tmp_path_factory.mktemp("confinement"))
    return Root(root)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(SEGMENTS, max_size=8).map("/".join) | st.text(max_size=40))
@example("escape/../../outside")
@example("inside/../escape")
@example("./escape/.")
def test_no_path_string_resolves_outside_the_root(shared_tree: Root, path: str) -> None:
    """Any path string either is refused or resolves (symlinks followed) under the root."""
    try:
        place = shared_tree.resolve(path)
    except InvalidInput:
        return
    assert Path(os.path.realpath(place.real)).is_relative_to(shared_tree.path)
    assert place.real.is_relative_to(shared_tree.path)
