"""Properties of the domain's parsers and rules: tokens, statuses, paths and names."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.errors import (
    InvalidInput,
    InvalidToken,
    InvalidTransition,
    PathOutsideRoot,
)
from orchestrator.domain.ids import (
    ID_PATTERN,
    MACHINE_TOKEN_FORMAT,
    WORKER_TOKEN_FORMAT,
    MachineToken,
    WorkerToken,
)
from orchestrator.domain.model import (
    MAX_NAME_LENGTH,
    WorkerStatus,
    can_transition_worker,
    normalize_relative_path,
    transition_worker,
    validate_name,
)

ID_CHARS = string.ascii_letters + string.digits + "_-"
ids = st.from_regex(ID_PATTERN, fullmatch=True)
statuses = st.sampled_from(list(WorkerStatus))

# --- machine tokens ---------------------------------------------------------------


@given(ids, ids)
def test_machine_token_round_trips(machine_id: str, secret: str) -> None:
    """Any id:secret of ID characters parses and prints back unchanged."""
    token = MachineToken.parse(f"{machine_id}:{secret}")
    assert (token.machine_id, token.secret) == (machine_id, secret)
    assert str(token) == f"{machine_id}:{secret}"


@given(ids, ids)
def test_machine_token_repr_hides_secret(machine_id: str, secret: str) -> None:
    """The repr of a machine token never shows its secret."""
    shown = repr(MachineToken.parse(f"{machine_id}:{secret}"))
    assert shown == f"MachineToken(machine_id={machine_id!r}, secret='***')"


def _refused(raw: str) -> None:
    with pytest.raises(InvalidToken) as raised:
        MachineToken.parse(raw)
    assert raised.value.message == MACHINE_TOKEN_FORMAT
    assert MACHINE_TOKEN_FORMAT == "Invalid token format. Expected: <machine_id>:<machine_secret>"


@given(ids, ids, st.sampled_from(" \t\n\r\x0b\x0c\u00a0"), st.integers(min_value=0))
def test_machine_token_with_whitespace_is_refused(
    machine_id: str, secret: str, space: str, where: int
) -> None:
    """Whitespace anywhere in a machine token is refused with the format message."""
    raw = f"{machine_id}:{secret}"
    at = where % (len(raw) + 1)
    _refused(raw[:at] + space + raw[at:])


@given(st.lists(ids, max_size=5).filter(lambda parts: len(parts) != 2))
def test_machine_token_needs_exactly_one_colon(parts: list[str]) -> None:
    """Zero or several colons are refused with the format message."""
    _refused(":".join(parts))


@given(ids)
def test_machine_token_with_empty_part_is_refused(part: str) -> None:
    """An empty machine ID or an empty secret is refused."""
    _refused(f":{part}")
    _refused(f"{part}:")
    _refused(":")


@given(ids, ids, st.characters(exclude_characters=ID_CHARS + ":"), st.booleans())
def test_machine_token_with_bad_character_is_refused(
    machine_id: str, secret: str, bad: str, in_secret: bool
) -> None:
    """A character outside letters, digits, '_' and '-' is refused."""
    _refused(f"{machine_id}:{secret}{bad}" if in_secret else f"{bad}{machine_id}:{secret}")


#: Independent statement of the machine token format, as the oracle for parsing.
MACHINE_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,128}:[A-Za-z0-9_-]{1,128}")
token_like = st.text(alphabet=ID_CHARS + ": \n\t", max_size=300) | st.text(max_size=300)


@given(token_like)
def test_machine_token_parse_accepts_only_the_format(raw: str) -> None:
    """Arbitrary text parses (and prints back as itself) exactly when it has the format."""
    if MACHINE_TOKEN_SHAPE.fullmatch(raw):
        assert str(MachineToken.parse(raw)) == raw
    else:
        _refused(raw)


# --- worker tokens ----------------------------------------------------------------


@given(ids, ids)
def test_worker_token_round_trips(machine_id: str, worker_id: str) -> None:
    """machine_<id>:worker_<id> parses and prints back unchanged."""
    raw = f"machine_{machine_id}:worker_{worker_id}"
    token = WorkerToken.parse(raw)
    assert (token.machine_id, token.worker_id) == (machine_id, worker_id)
    assert str(token) == raw


@pytest.mark.parametrize(
    "raw",
    [
        "mch_1:wrk_1",
        "machine_:worker_x",
        "machine_x:worker_",
        "worker_x:machine_y",
        "machine_x:worker_y:z",
        " machine_x:worker_y",
        "machine_x :worker_y",
        "machine_x;worker_y",
        "",
    ],
)
def test_worker_token_refuses_other_shapes(raw: str) -> None:
    """A worker token without both prefixes and IDs is refused with its format message."""
    with pytest.raises(InvalidToken) as raised:
        WorkerToken.parse(raw)
    assert raised.value.message == WORKER_TOKEN_FORMAT


WORKER_TOKEN_SHAPE = re.compile(r"machine_[A-Za-z0-9_-]{1,120}:worker_[A-Za-z0-9_-]{1,121}")
worker_token_like = (
    st.text(alphabet=ID_CHARS + ": ", max_size=200)
    | st.builds("machine_{}:worker_{}".format, st.text(max_size=130), st.text(max_size=130))
    | st.text(max_size=200)
)


@given(worker_token_like)
def test_worker_token_parse_accepts_only_the_format(raw: str) -> None:
    """Arbitrary text parses (and prints back as itself) exactly when it has the format."""
    if WORKER_TOKEN_SHAPE.fullmatch(raw):
        assert str(WorkerToken.parse(raw)) == raw
    else:
        with pytest.raises(InvalidToken, match=re.escape(WORKER_TOKEN_FORMAT)):
            WorkerToken.parse(raw)


# --- worker statuses ----------------------------------------------------------------

S = WorkerStatus
ALLOWED = {
    (S.PENDING_AUTHORIZATION, S.READY),
    (S.READY, S.ONLINE),
    (S.READY, S.OFFLINE),
    (S.ONLINE, S.OFFLINE),
    (S.OFFLINE, S.ONLINE),
}


@given(statuses, statuses)
def test_transition_agrees_with_table(current: WorkerStatus, target: WorkerStatus) -> None:
    """A worker may change status exactly as the table allows (or stay put)."""
    allowed = current == target or (current, target) in ALLOWED
    assert can_transition_worker(current, target) is allowed
    if allowed:
        assert transition_worker(current, target) is target
    else:
        with pytest.raises(InvalidTransition):
            transition_worker(current, target)


@given(statuses)
def test_pending_only_goes_to_ready(target: WorkerStatus) -> None:
    """A pending worker can only be approved (become ready); otherwise it must wait."""
    if target in (S.READY, S.PENDING_AUTHORIZATION):
        assert transition_worker(S.PENDING_AUTHORIZATION, target) is target
    else:
        with pytest.raises(InvalidTransition, match="waiting for approval"):
            transition_worker(S.PENDING_AUTHORIZATION, target)


@given(statuses)
def test_nothing_returns_to_pending(current: WorkerStatus) -> None:
    """No status leads back to pending authorization."""
    assert can_transition_worker(current, S.PENDING_AUTHORIZATION) is (
        current is S.PENDING_AUTHORIZATION
    )


# --- relative paths -------------------------------------------------------------------

path_text = st.text(alphabet=st.sampled_from("ab./\\:\x00 é"), max_size=40) | st.text(max_size=40)
safe_part = st.text(alphabet=string.ascii_letters + string.digits + "-_ ", min_size=1, max_size=20)


@given(path_text)
def test_normalized_path_stays_inside(path: str) -> None:
    """A normalised path is refused, or relative, without '..', NUL or empty parts."""
    try:
        clean = normalize_relative_path(path)
    except PathOutsideRoot:
        return
    assert not clean.startswith(("/", "\\"))
    assert ".." not in clean.split("/")
    assert "\x00" not in clean
    assert "" not in clean.split("/") or clean == ""
    assert normalize_relative_path(clean) == clean


@given(st.lists(safe_part.filter(lambda p: p.strip(".") != ""), max_size=6))
def test_normalize_keeps_plain_paths(parts: list[str]) -> None:
    """A path of plain folder names is kept as is."""
    path = "/".join(parts)
    assert normalize_relative_path(path) == path


@given(path_text, path_text)
def test_nul_is_refused(before: str, after: str) -> None:
    """A path holding a NUL byte is refused."""
    with pytest.raises(PathOutsideRoot, match="NUL"):
        normalize_relative_path(f"{before}\x00{after}")


@pytest.mark.parametrize(
    ("path", "expected"),
    [("", ""), (".", ""), ("./a/./b/", "a/b"), ("a//b", "a/b"), ("a\\b", "a/b")],
)
def test_normalize_examples(path: str, expected: str) -> None:
    """Dots, doubled and back slashes are tidied into a plain POSIX path."""
    assert normalize_relative_path(path) == expected


@pytest.mark.parametrize(
    "path", ["/etc", "\\etc", "C:/x", "./C:/x", "..", "a/../..", "a/..", "x" * 256]
)
def test_normalize_refuses(path: str) -> None:
    """Absolute, drive-letter, climbing and over-long paths are refused."""
    with pytest.raises(PathOutsideRoot):
        normalize_relative_path(path)


# --- names -----------------------------------------------------------------------------


@given(
    st.text(st.characters(min_codepoint=32), min_size=1, max_size=MAX_NAME_LENGTH).filter(str.strip)
)
def test_validate_name_strips_and_keeps(name: str) -> None:
    """A printable name of acceptable length comes back without surrounding spaces."""
    assert validate_name(f"  {name}\t") == name.strip()


@given(st.text(alphabet=" \t\n", max_size=5))
def test_validate_name_refuses_blank(name: str) -> None:
    """An empty or blank name is refused."""
    with pytest.raises(InvalidInput, match="must not be empty"):
        validate_name(name, "Machine name")


def test_validate_name_refuses_long_and_control() -> None:
    """Over-long names and control characters are refused."""
    with pytest.raises(InvalidInput, match="at most"):
        validate_name("x" * (MAX_NAME_LENGTH + 1))
    with pytest.raises(InvalidInput, match="control"):
        validate_name("bad\x07name")
