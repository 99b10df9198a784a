"""Finding the opencode binary: the pinned install, or a sentence saying how to get it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from orchestrator.adapters.opencode import find_opencode
from orchestrator.domain.errors import AgentUnavailable
from tests.integration.harness import opencode_or_skip


def test_bad_opencode_bin_names_the_fix(tmp_path: Path) -> None:
    """An OPENCODE_BIN that is not an executable raises AgentUnavailable saying how to fix it."""
    with pytest.raises(AgentUnavailable, match=re.escape("npm install -g opencode-ai@1.18.33")):
        find_opencode({"OPENCODE_BIN": str(tmp_path / "missing"), "PATH": ""})


def test_pinned_binary_is_found() -> None:
    """Without OPENCODE_BIN, find_opencode returns an executable opencode."""
    binary = opencode_or_skip()
    assert binary.name == "opencode"
    assert os.access(binary, os.X_OK)
