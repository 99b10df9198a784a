"""Every error the orchestrator raises on purpose.

Adapters translate third-party failures into these (``raise ... from exc``);
entrypoints map them to HTTP statuses and CLI exit codes. The message of each
error is one sentence a user can act on.

::

    OrchestratorError
    ├── InvalidInput              bad data from a user or a machine (400)
    │   ├── InvalidToken          a token that is not well formed
    │   ├── PathOutsideRoot       a path that leaves the machine's root directory
    │   └── PayloadTooLarge       a body or field over its size limit (413)
    ├── AuthenticationFailed      wrong credentials: secret, password, session (401)
    │   └── RateLimited           too many attempts; try again later (429)
    ├── PermissionDenied          signed in, but not allowed to do this (403)
    ├── NotFound                  no such record, or not yours (404)
    ├── Conflict                  the record's state does not allow it (409)
    │   ├── InvalidTransition     a status change that is not allowed
    │   └── MachineInUse          another machine process holds the machine's lease
    ├── BackendUnavailable        the backend cannot be reached right now (503)
    ├── BackendLimitExceeded      a call over the backend's own limits (Convex's); not retried (507)
    ├── AgentUnavailable          opencode is missing, did not start or stopped (503)
    └── CommandFailed             a directory command failed on the machine (git, the disk)
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose.

    A subclass names its default sentence in its header: ``class X(Base, sentence="...")``.
    """

    default_message = "Something went wrong."

    def __init_subclass__(cls, sentence: str | None = None) -> None:
        super().__init_subclass__()
        if sentence is not None:
            cls.default_message = sentence

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class InvalidInput(OrchestratorError, sentence="The request is not valid."):
    """Raised when a request carries data that can never be valid."""


class InvalidToken(
    InvalidInput, sentence="Invalid token format. Expected: <machine_id>:<machine_secret>"
):
    """Raised when a machine or worker token is not well formed."""


class PathOutsideRoot(
    InvalidInput, sentence="The path must stay inside the machine's root directory."
):
    """Raised when a path is absolute, climbs with ``..`` or escapes the root."""


class PayloadTooLarge(InvalidInput, sentence="The request is too large."):
    """Raised when a body or a field is larger than its limit."""


class AuthenticationFailed(OrchestratorError, sentence="Invalid token"):
    """Raised when credentials (machine secret, password, session) are wrong."""


class RateLimited(AuthenticationFailed, sentence="Too many attempts. Wait a minute and try again."):
    """Raised when too many attempts were made from one place in a short time."""


class PermissionDenied(OrchestratorError, sentence="You are not allowed to do that."):
    """Raised when the caller is known but may not perform this action."""


class NotFound(OrchestratorError, sentence="Not found."):
    """Raised when a record does not exist or belongs to someone else."""


class Conflict(OrchestratorError, sentence="That cannot be done in the current state."):
    """Raised when the current state of a record does not allow the request."""


class MachineInUse(
    Conflict,
    sentence=(
        "Another machine process is already running with this token; only one may run per machine."
    ),
):
    """Raised when another machine process is running the machine (see ``domain.lease``)."""


class InvalidTransition(Conflict, sentence="That status change is not allowed."):
    """Raised when a status change is not one of the allowed transitions."""


class BackendUnavailable(
    OrchestratorError, sentence="The backend cannot be reached. Check that the server is running."
):
    """Raised when the backend (server or Convex) cannot be reached."""


class AgentUnavailable(
    OrchestratorError,
    sentence=(
        "opencode is not installed. Run: npm install -g opencode-ai@1.18.33 (or set OPENCODE_BIN)."
    ),
):
    """Raised when the coding agent (opencode) is not installed, fails to start or dies."""


class CommandFailed(OrchestratorError, sentence="The command failed on the machine."):
    """Raised on the machine when a directory command fails there (git, the disk, a timeout)."""


class TextGap(Conflict):
    """A text delta starts beyond the end of the stored text; re-send from ``stored_length``."""

    def __init__(self, message: str, stored_length: int = 0) -> None:
        super().__init__(message)
        self.stored_length = stored_length


class BackendLimitExceeded(
    OrchestratorError, sentence="That is more data than the backend can handle in one step."
):
    """Raised when one call would read, write or store more than the backend allows (Convex).

    Retrying cannot help, so unlike :class:`BackendUnavailable` it is not retried.
    """
