"""The golden cases shared with TypeScript (tests/golden/rules.json): Python gives each answer."""

from __future__ import annotations

import enum
import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domain import chat, commands, git_url, jobs, model, paging
from orchestrator.domain.errors import OrchestratorError

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "rules.json").read_text("utf-8"))


def _expand(value: Any) -> Any:
    """A fixture value as the text it stands for (long texts are written as a repeat)."""
    if isinstance(value, dict) and "repeat" in value:
        return value["repeat"] * value["times"] + value.get("suffix", "")
    return value


def _next_due(cron: str, timezone: str, after: str) -> str | None:
    found = jobs.next_due(cron, timezone, datetime.fromisoformat(after))
    return None if found is None else found.astimezone(UTC).isoformat().replace("+00:00", "Z")


#: Each rule's Python implementation, called with a case's arguments.
IMPLEMENTATIONS: dict[str, Callable[..., object]] = {
    "name": model.validate_name,
    "relative_path": model.normalize_relative_path,
    "command_path": commands.validate_path,
    "git_url": git_url.validate_git_url,
    "cursor": commands.validate_cursor,
    "command_kind": commands.parse_kind,
    "message": chat.validate_message,
    "chunk": chat.validate_chunk,
    "page_limit": lambda limit, most: paging.page_limit(limit, most, most),
    "next_due": _next_due,
}


def _outcome(rule: str, args: list[Any]) -> dict[str, Any]:
    try:
        value = IMPLEMENTATIONS[rule](*map(_expand, args))
    except OrchestratorError as exc:
        return {"args": args, "error": exc.message, "kind": type(exc).__name__}
    return {"args": args, "ok": value.value if isinstance(value, enum.Enum) else value}


def test_every_rule_of_the_fixture_has_a_python_implementation() -> None:
    """The fixture's rules and this test's implementations are the same set."""
    assert set(GOLDEN["cases"]) == set(IMPLEMENTATIONS)


@pytest.mark.parametrize(
    "constant", GOLDEN["constants"], ids=[c["python"] for c in GOLDEN["constants"]]
)
def test_each_shared_constant_has_the_golden_value(constant: dict[str, Any]) -> None:
    """A limit or sentence TypeScript repeats has the fixture's value here."""
    module, name = constant["python"].split(".")
    found = getattr(importlib.import_module(f"orchestrator.domain.{module}"), name)
    assert found == constant["value"]


@pytest.mark.parametrize(
    ("rule", "case"),
    [(rule, case) for rule, cases in GOLDEN["cases"].items() for case in cases],
    ids=[f"{rule}-{i}" for rule, cases in GOLDEN["cases"].items() for i in range(len(cases))],
)
def test_each_golden_case_gets_its_answer(rule: str, case: dict[str, Any]) -> None:
    """The rule accepts (normalising) or refuses (sentence and kind) as the fixture says."""
    expected = dict(case)
    if "ok" in expected:
        expected["ok"] = _expand(expected["ok"])
    assert _outcome(rule, case["args"]) == expected
