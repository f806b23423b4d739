"""The ``beam`` backend: streamdsl topologies as Apache Beam pipelines.

``BeamBackend`` compiles a plan into a ``beam.Pipeline`` (one transform per node, labelled
with the node's name) and runs it on Beam's DirectRunner, or on Flink, Spark or Dataflow by
pipeline options. Results equal the local backend's: see ``ordering`` for how the order
Beam does not keep is restored, and docs/backends.md for running on a cluster.
"""

from __future__ import annotations

import logging


def _import_beam() -> None:
    """Import Beam without its import-time warning about optional GCP clients on stderr."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        import apache_beam  # noqa: F401
    finally:
        root.setLevel(level)


_import_beam()

from .backend import BeamBackend, BeamJob  # noqa: E402

__all__ = ["BeamBackend", "BeamJob"]
