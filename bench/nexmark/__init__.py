"""Nexmark for streamdsl: the event generator, the queries (DSL and SQL), hand-written
baselines, and the ``nexmark`` suite of ``python -m bench`` (docs/performance.md, "Nexmark")."""
