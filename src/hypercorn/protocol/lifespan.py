"""The ASGI lifespan state machine, shared by the backends (which only supply waiting).

The backend sends ``lifespan.startup``/``lifespan.shutdown`` to the application, passes every
message the application sends to :meth:`LifespanState.app_send`, and reports an exception from
the application to :meth:`LifespanState.app_raised`, which classifies it:

- raised before the application received ``lifespan.startup``: lifespan is not supported
  (ASGI: carry on without it);
- raised after receiving it but before start-up completed: start-up failed (exit code 3), the
  same as ``lifespan.startup.failed``;
- raised later: an error to log; shutdown then has nothing to wait for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..utils import LifespanFailureError

LIFESPAN_SCOPE_ASGI = {"spec_version": "2.0", "version": "3.0"}


class LifespanState:
    def __init__(self) -> None:
        self.supported = True
        self.received_startup = False
        self.startup_done = False
        self.shutdown_done = False
        self.failure: LifespanFailureError | None = None

    def app_received(self, message: Mapping[str, Any]) -> None:
        """The application took ``message`` from its ``receive()``."""
        if message["type"] == "lifespan.startup":
            self.received_startup = True

    def app_send(self, message: Mapping[str, Any]) -> None:
        """Apply a message the application sent."""
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self.startup_done = True
        elif kind == "lifespan.startup.failed":
            self.failure = LifespanFailureError("startup", message.get("message", ""))
            self.startup_done = True
        elif kind == "lifespan.shutdown.complete":
            self.shutdown_done = True
        elif kind == "lifespan.shutdown.failed":
            self.failure = LifespanFailureError("shutdown", message.get("message", ""))
            self.shutdown_done = True

    def app_raised(self, error: BaseException) -> str:
        """Classify an exception from the application: returns the message to log."""
        if not self.received_startup:
            self.supported = False
            message = (
                f"ASGI application does not support lifespan (it raised {error!r}); "
                "continuing without it"
            )
        elif not self.startup_done:
            self.failure = LifespanFailureError("startup", repr(error))
            message = "Lifespan start-up failed"
        else:
            message = "Error in the lifespan task"
        self.startup_done = self.shutdown_done = True
        return message

    def check(self) -> None:
        """Raise the recorded failure, if any."""
        if self.failure is not None:
            raise self.failure
