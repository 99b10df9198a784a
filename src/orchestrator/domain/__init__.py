"""The orchestrator's domain: IDs, tokens, records, errors and ports."""

from orchestrator.domain import errors, ids, model, ports

__all__ = ["errors", "ids", "model", "ports"]
