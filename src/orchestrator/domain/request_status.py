"""The life of what an agent asks its user during a reply: a permission or a question.

Both move the same way: ``pending`` until the user answers, ``answered`` until
the machine has passed the answer on (``resolved``), ``expired`` when the reply
ends first.
"""

from __future__ import annotations

import enum


class RequestStatus(enum.StrEnum):
    PENDING = "pending"  # asked by the agent, waiting for the user
    ANSWERED = "answered"  # answered (or dismissed); the machine has yet to pass it on
    RESOLVED = "resolved"  # passed on to the agent
    EXPIRED = "expired"  # the reply ended before an answer arrived

    @property
    def open(self) -> bool:
        """Whether the reply still waits on it (ending the reply expires it)."""
        return self in (RequestStatus.PENDING, RequestStatus.ANSWERED)
