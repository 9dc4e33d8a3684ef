"""The errors of `modelyard.inspect`.

`InspectError` (a `ValueError`) means a file or a remote repository cannot be used as it is: its message names the
file or repository and says what is wrong, in words a person can act on, so a worker can copy it into a version's
`status_message`. `HubUnavailableError`, its subclass, means the Hub could not be reached or answered with a
temporary failure (network error, timeout, 429, 5xx): the same request may succeed later, so a job may retry.
"""

from __future__ import annotations


class InspectError(ValueError):
    """A model file, config or remote repository that cannot be used; the message says why and names it."""


class HubUnavailableError(InspectError):
    """The Hub could not be reached or failed temporarily; retrying later may succeed."""
