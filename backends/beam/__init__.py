"""The ``beam`` backend: streamdsl topologies as Apache Beam pipelines.

``BeamBackend`` compiles a plan into a ``beam.Pipeline`` (one transform per node, labelled
with the node's name) and runs it on Beam's DirectRunner, or on Flink, Spark or Dataflow by
pipeline options. Results equal the local backend's: see ``ordering`` for how the order
Beam does not keep is restored, and docs/backends.md for running on a cluster.
"""

from __future__ import annotations

from .backend import BeamBackend, BeamJob

__all__ = ["BeamBackend", "BeamJob"]
