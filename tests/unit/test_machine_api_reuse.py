"""List subscription values after the first: unchanged items go as the index they had."""

from __future__ import annotations

import pytest

from orchestrator.adapters.machine_api import ListFrame, rebuild_items, reuse_items


def _unstructure(value: object) -> object:
    return {"v": value} if not isinstance(value, list) else [_unstructure(v) for v in value]


def _structure(raw: object) -> tuple[str, str]:
    assert isinstance(raw, dict)
    return ("read", str(raw["v"]))


def test_the_first_value_and_values_with_nothing_unchanged_go_whole() -> None:
    """Nothing to reuse (no earlier list, no equal item, not a list): the value whole."""
    assert reuse_items(None, ["a", "b"], _unstructure) == [{"v": "a"}, {"v": "b"}]
    assert reuse_items(["a"], ["b"], _unstructure) == [{"v": "b"}]
    assert reuse_items(["a"], "a", _unstructure) == {"v": "a"}
    assert reuse_items([], ["a"], _unstructure) == [{"v": "a"}]


def test_unchanged_items_go_as_their_earlier_index_and_come_back_as_the_same_objects() -> None:
    """Reordered, kept, new and dropped items: the frame rebuilds the new list exactly."""
    previous = [("read", "a"), ("read", "b"), ("read", "c")]
    value = [("read", "c"), "new", ("read", "a")]
    frame = reuse_items(previous, value, _unstructure)
    assert frame == ListFrame([None, {"v": "new"}, None], [2, -1, 0])
    rebuilt = rebuild_items(previous, frame, _structure)
    assert rebuilt == [("read", "c"), ("read", "new"), ("read", "a")]
    assert rebuilt[0] is previous[2]
    assert rebuilt[2] is previous[0]


def test_unhashable_items_go_whole() -> None:
    """Items that cannot be compared by hash are never reused."""
    assert reuse_items([["a"]], [["a"]], lambda v: v) == [["a"]]


@pytest.mark.parametrize(
    "frame",
    [
        ListFrame([None], [5]),  # an index never sent
        ListFrame([None, None], [0]),  # lengths differ
        ListFrame([None], [True]),  # not an index
    ],
)
def test_a_frame_that_does_not_fit_what_was_sent_is_refused(frame: ListFrame) -> None:
    """A reused index the client never had, or a malformed frame, raises ValueError."""
    with pytest.raises(ValueError, match="list frame"):
        rebuild_items([("read", "a")], frame, _structure)
