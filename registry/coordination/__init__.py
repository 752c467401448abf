"""State that the processes serving one store share: single-flights, upload claims and running
hashes, blob fills in flight, upstream tokens, pull throttling. `protocols` says what callers may
rely on; `InProcessCoordinator` keeps it in memory for the one process that serves a store."""

from .inprocess import InProcessCoordinator
from .protocols import Coordinator

__all__ = ["Coordinator", "InProcessCoordinator"]
