"""Rebuild IR nodes from their JSON form (``Plan.to_dict``)."""

from __future__ import annotations

from typing import Any

from ..windows import Window
from .aggregators import Aggregator
from .fn import Fn
from .nodes import NODE_KINDS, Node

__all__ = ["node_from_dict"]

_FN_FIELDS = {"pred", "fn", "key", "timestamp", "joiner", "group_key"}


def node_from_dict(d: dict) -> Node:
    cls = NODE_KINDS[d["kind"]]
    cfg: dict[str, Any] = {}
    for k, v in d["config"].items():
        cfg[k] = _field_from_json(k, v)
    return cls(name=d["name"], site=d.get("site"), **cfg)


def _field_from_json(k: str, v: Any) -> Any:
    if v is None:
        return None
    if k in _FN_FIELDS:
        return Fn.from_dict(v)
    if k == "aggregator":
        return Aggregator.from_dict(v)
    if k == "window":
        return Window.from_dict(v)
    if k == "branches":
        return tuple((n, Fn.from_dict(f)) for n, f in v)
    if k == "columns":
        return tuple(tuple(c) if isinstance(c, list) else c for c in v)
    if k == "stages":
        return tuple(node_from_dict({"name": s["name"], "kind": s["kind"], "site": s.get("site"),
                                     "config": {x: y for x, y in s.items()
                                                if x not in ("name", "kind", "site")}})
                     for s in v)
    if isinstance(v, list):
        return tuple(v)
    return v
