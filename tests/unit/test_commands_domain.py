"""Properties of directory commands: paths, git URLs, results and status transitions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import PurePosixPath

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator.domain import commands as c
from orchestrator.domain import git_url as u
from orchestrator.domain.commands import (
    Command,
    CommandArguments,
    CommandKind,
    CommandResult,
    CommandStatus,
    DirEntry,
    EntryKind,
)
from orchestrator.domain.errors import Conflict, InvalidInput
from orchestrator.domain.ids import CommandId, MachineId, UserId

NOW = datetime(2025, 1, 1, tzinfo=UTC)
LATER = datetime(2025, 1, 1, 0, 5, tzinfo=UTC)

ACCEPTED = [
    "https://github.com/acme/app.git",
    "http://127.0.0.1:9418/repo",
    "ssh://git@example.com:2222/acme/app.git",
    "git://example.com/app",
    "git@github.com:acme/app.git",
    "deploy@10.0.0.1:/srv/git/app.git",
    "https://[::1]:8443/repo.git",
    "HTTPS://example.com/x",
]
#: Each refused URL and the start of the one sentence that says why.
REFUSED = [
    ("", "Enter the URL"),
    ("   ", "Enter the URL"),
    ("-u", "The repository URL must not start with '-'"),
    ("--upload-pack=touch /tmp/pwned", "The repository URL must not contain spaces"),
    ("--upload-pack=evil", "The repository URL must not start with '-'"),
    ("ext::sh -c touch% /tmp/pwned", "The repository URL must not contain spaces"),
    ("ext::sh", "The ext:: transport is not allowed"),
    ("fd::17", "The fd:: transport is not allowed"),
    ("file:///etc", "Cloning from local files (file://) is not allowed"),
    ("FILE:///etc", "Cloning from local files (file://) is not allowed"),
    ("ftp://example.com/repo", "The ftp:// scheme is not allowed"),
    ("/srv/git/repo", "Local paths cannot be cloned"),
    ("./repo", "Local paths cannot be cloned"),
    ("../repo", "Local paths cannot be cloned"),
    ("~/repo", "Local paths cannot be cloned"),
    ("repo", "Local paths cannot be cloned"),
    ("C:\\repo", "Local paths cannot be cloned"),
    ("https://exa mple.com/r", "The repository URL must not contain spaces"),
    ("https://example.com/r\n", "The repository URL must not contain spaces"),
    ("https://example.com/\x00", "The repository URL must not contain spaces"),
    ("https://-oProxyCommand=x/r", "The repository URL must name a valid host"),
    ("ssh://-oProxyCommand=x@host/r", "The user name in the repository URL"),
    ("https:///repo", "The repository URL must name a valid host"),
    ("https://host:99999/repo", "The port in the repository URL"),
    ("https://example.com", "The repository URL must include the path"),
    ("git@-oProxyCommand=x:repo", "The repository URL must name a valid host"),
    ("host:repo", "This is not a repository URL"),
    (
        "https://alice:s3cret@github.com/acme/app.git",
        "The repository URL must not carry a password",
    ),
    ("https://ghp_token@github.com/acme/app.git", "The repository URL must not carry a password"),
    ("http://user:@example.com/app", "The repository URL must not carry a password"),
    ("ssh://git:pw@example.com/app", "The repository URL must not carry a password"),
    ("https://example.com/" + "a" * u.MAX_URL_LENGTH, "The repository URL must be at most"),
]


@pytest.mark.parametrize("url", ACCEPTED)
def test_clonable_urls_are_accepted(url: str) -> None:
    """https, http, ssh, git and user@host:path URLs pass (the scheme lower-cased)."""
    assert u.validate_git_url(url).lower() == url.lower()


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_unsafe_urls_are_refused_with_one_sentence(url: str, reason: str) -> None:
    """Each unsafe or unusable URL is refused with one sentence saying why."""
    with pytest.raises(InvalidInput) as caught:
        u.validate_git_url(url)
    assert caught.value.message.startswith(reason)
    assert caught.value.message.endswith(".")
    assert caught.value.message.count(". ") == 0


def _safe(url: str) -> bool:
    if url.startswith("-") or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*::", url):
        return False
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if scheme:
        return scheme.group(1) in ("https", "http", "ssh", "git")
    return re.fullmatch(r"[^-@/:][^@/:]*@[A-Za-z0-9\[][^@/:]*:.+", url) is not None


@given(st.text(max_size=80))
@example("ext::sh -c x")
@example("--upload-pack=x")
@example("file:///x")
def test_any_accepted_url_is_safe_to_pass_to_git(url: str) -> None:
    """Whatever string comes in, an accepted URL has an allowed scheme or is user@host:path."""
    try:
        accepted = u.validate_git_url(url)
    except InvalidInput as exc:
        refusal = exc.message
    else:
        assert _safe(accepted), accepted
        assert len(accepted) <= u.MAX_URL_LENGTH
        return
    assert refusal.endswith(".")


HOSTS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,6}){0,2}", fullmatch=True)
REPO_PATHS = st.from_regex(r"[A-Za-z0-9._-]{1,20}(/[A-Za-z0-9._-]{1,20}){0,3}", fullmatch=True)


@given(
    st.sampled_from(["https", "http", "ssh", "git"]),
    HOSTS,
    st.none() | st.integers(1, 65535),
    REPO_PATHS,
)
def test_well_formed_scheme_urls_are_accepted(
    scheme: str, host: str, port: int | None, path: str
) -> None:
    """Any well-formed URL with an allowed scheme, a host and a path is accepted unchanged."""
    url = f"{scheme}://{host}{f':{port}' if port else ''}/{path}"
    assert u.validate_git_url(url) == url


@given(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), HOSTS, REPO_PATHS)
def test_scp_like_urls_are_accepted(user: str, host: str, path: str) -> None:
    """Any ``user@host:path`` with a plain user and host is accepted unchanged."""
    url = f"{user}@{host}:{path}"
    assert u.validate_git_url(url) == url


@given(st.text(max_size=300))
@example("a/../../b")
@example("/etc/passwd")
@example("a\x00b")
@example("ü" * 200)
def test_an_accepted_path_never_leaves_the_root(path: str) -> None:
    """Any accepted path is relative, has no ``..`` and stays under the root lexically."""
    try:
        clean = c.validate_path(path)
    except InvalidInput:
        return
    assert not clean.startswith("/")
    parts = PurePosixPath(clean).parts if clean else ()
    assert ".." not in parts
    assert all(len(part.encode()) <= 255 for part in parts)
    assert "\x00" not in clean
    root = PurePosixPath("/srv/root")
    assert (root / clean).is_relative_to(root)


def test_arguments_keep_only_what_the_kind_reads() -> None:
    """Each kind's arguments are normalized and the fields it does not read are dropped."""
    noisy = CommandArguments(path="./a//b/", parents=True, url="git@h:r", cursor="0/x")
    assert c.validate_arguments(CommandKind.LIST_DIR, noisy) == CommandArguments(
        "a/b", cursor="0/x"
    )
    assert c.validate_arguments(CommandKind.MKDIR, noisy) == CommandArguments("a/b", parents=True)
    assert c.validate_arguments(CommandKind.GIT_CLONE, noisy) == CommandArguments(
        "a/b", url="git@h:r"
    )


@pytest.mark.parametrize(
    ("kind", "arguments", "sentence"),
    [
        (CommandKind.MKDIR, CommandArguments(""), c.NEW_FOLDER_REQUIRED),
        (CommandKind.MKDIR, CommandArguments("./"), c.NEW_FOLDER_REQUIRED),
        (CommandKind.MKDIR, CommandArguments("a\nb"), c.NAME_CONTROL),
        (CommandKind.GIT_CLONE, CommandArguments("", url="git@h:r"), c.CLONE_TARGET_REQUIRED),
        (CommandKind.GIT_CLONE, CommandArguments("x"), u.URL_REQUIRED),
        (CommandKind.LIST_DIR, CommandArguments("", cursor="x" * 601), c.BAD_CURSOR),
    ],
)
def test_arguments_are_refused_with_one_sentence(
    kind: CommandKind, arguments: CommandArguments, sentence: str
) -> None:
    """Missing targets, control characters and bad cursors are refused before anything runs."""
    with pytest.raises(InvalidInput) as caught:
        c.validate_arguments(kind, arguments)
    assert caught.value.message == sentence


def _command(kind: CommandKind = CommandKind.MKDIR) -> Command:
    return Command(
        CommandId("cmd_1"),
        MachineId("mch_1"),
        UserId("usr_1"),
        kind,
        CommandArguments("a"),
        CommandStatus.PENDING,
        NOW,
    )


def test_a_command_is_claimed_once_and_finishes_once() -> None:
    """pending → running → done; claiming or finishing again is a Conflict."""
    running = c.claim(_command(), NOW)
    assert (running.status, running.started_at) == (CommandStatus.RUNNING, NOW)
    with pytest.raises(Conflict, match=r"^This command has already been claimed\.$"):
        c.claim(running, NOW)
    done = c.finish(running, LATER, CommandResult("a"), None)
    assert (done.status, done.progress, done.finished_at) == (CommandStatus.DONE, 100, LATER)
    with pytest.raises(Conflict, match=r"^This command has already finished\.$"):
        c.claim(done, NOW)
    with pytest.raises(Conflict, match=r"^This command has already finished\.$"):
        c.finish(done, LATER, None, "x")


def test_finish_needs_exactly_one_outcome_and_a_fitting_result() -> None:
    """A result or an error, not both or neither; only list_dir results have entries."""
    running = c.claim(_command(), NOW)
    for result, error in ((None, None), (CommandResult("a"), "x")):
        with pytest.raises(InvalidInput, match=r"either a result or an error"):
            c.finish(running, LATER, result, error)
    entry = DirEntry("f", EntryKind.FILE, 1)
    with pytest.raises(InvalidInput, match=r"^Only a list_dir result has entries\.$"):
        c.finish(running, LATER, CommandResult("a", (entry,), 1), None)
    with pytest.raises(InvalidInput, match=r"not a valid file name"):
        c.finish(
            c.claim(_command(CommandKind.LIST_DIR), NOW),
            LATER,
            CommandResult("", (DirEntry("a/b", EntryKind.FILE),), 1),
            None,
        )
    failed = c.finish(running, LATER, None, "git failed.")
    assert (failed.status, failed.error) == (CommandStatus.FAILED, "git failed.")


@given(st.integers(-1000, 1000), st.text(max_size=600))
def test_progress_is_a_bounded_percentage(progress: int, line: str) -> None:
    """Progress 0-100 with a line of at most 500 characters is recorded; anything else refused."""
    running = c.claim(_command(), NOW)
    valid = 0 <= progress <= 100 and len(line) <= c.MAX_PROGRESS_LINE_LENGTH
    try:
        updated = c.record_progress(running, progress, line)
    except InvalidInput:
        assert not valid
        return
    assert valid
    assert (updated.progress, updated.progress_line) == (progress, line or None)


def test_cancel_fails_a_pending_command_and_asks_a_running_one_to_stop() -> None:
    """Pending: failed at once; running: cancel_requested; finished: Conflict."""
    cancelled = c.request_cancel(_command(), NOW)
    assert (cancelled.status, cancelled.error) == (CommandStatus.FAILED, c.CANCELLED)
    asked = c.request_cancel(c.claim(_command(), NOW), NOW)
    assert (asked.status, asked.cancel_requested) == (CommandStatus.RUNNING, True)
    with pytest.raises(Conflict, match=r"^This command has already finished\.$"):
        c.request_cancel(cancelled, NOW)


def test_recovery_reruns_reads_and_fails_writes() -> None:
    """After a restart a running list_dir is pending again; mkdir and git_clone fail."""
    listing = c.recover(c.claim(_command(CommandKind.LIST_DIR), NOW), LATER)
    assert (listing.status, listing.started_at) == (CommandStatus.PENDING, None)
    for kind in (CommandKind.MKDIR, CommandKind.GIT_CLONE):
        failed = c.recover(c.claim(_command(kind), NOW), LATER)
        assert (failed.status, failed.error, failed.finished_at) == (
            CommandStatus.FAILED,
            c.RESTARTED,
            LATER,
        )
    pending = _command()
    assert c.recover(pending, LATER) is pending
