"""Vigil: a network video recorder that records by stream copy, proves its evidence and
keeps people's privacy.

The package is laid out by the direction data flows: ``ingest`` (camera connections) feeds
``record`` (segments on disk) whose files live in ``storage`` and are described by ``index``;
``evidence``, ``analytics``, ``events``, ``api`` and ``web`` read from there; ``cli`` and
``config`` drive it all; ``sim`` provides simulated cameras for the demo, tests and benchmarks.
"""

__version__ = "0.1.0"
