"""Tokens and cost a worker's agent used, summed from its replies' step-finish parts."""

from __future__ import annotations

import attrs

from orchestrator.domain.ids import UserId, WorkerId
from orchestrator.domain.parts import StepFinishPart
from orchestrator.domain.ports import ServerBackend


@attrs.frozen
class Usage:
    """What the agent spent: tokens read and written, and the cost opencode computed."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cost: float = 0.0
    #: Model calls (steps) counted.
    steps: int = 0

    def add(self, step: StepFinishPart) -> Usage:
        """This usage with one more step."""
        tokens = step.tokens
        return Usage(
            self.input_tokens + tokens.input,
            self.output_tokens + tokens.output,
            self.reasoning_tokens + tokens.reasoning,
            self.cache_read_tokens + tokens.cache_read,
            self.cost + step.cost,
            self.steps + 1,
        )


async def worker_usage(backend: ServerBackend, user: UserId, worker_id: WorkerId) -> Usage:
    """The user's worker's total usage over its sessions (NotFound for another's worker)."""
    total = Usage()
    for session in await backend.list_sessions(user, worker_id):
        for part in await backend.list_parts(user, session.chat_session_id):
            if isinstance(part.body, StepFinishPart):
                total = total.add(part.body)
    return total
