"""Find the topology a command-line ``FILE[:ATTR]`` names.

``FILE`` is a Python file (``topologies/fraud.py``), an importable module
(``mypkg.topologies``), or a file whose extension has a registered loader (``.sql``: the SQL
front end's ``streamdsl.sql.load_file``). ``ATTR`` names a ``Topology`` (or a function
returning one); without it the module's ``topology`` is used, else its only ``Topology``.
A module-level ``INPUTS`` (``OUTPUTS``) dict gives default inputs (outputs); relative paths
in it are relative to the file.

Loaders are pluggable: ``register_loader(".ext", fn)``, or an entry point in the group
``streamdsl.loaders`` named after the extension (``sql = "mypkg:load_file"``); ``fn(path)``
returns a ``Topology`` or a ``Plan``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from streamdsl.callsite import traceback_site
from streamdsl.dsl.topology import Topology
from streamdsl.errors import StreamDSLError
from streamdsl.ir.plan import Plan

__all__ = ["Loaded", "LoadError", "load", "register_loader", "LOADERS", "LOADER_GROUP"]

LOADER_GROUP = "streamdsl.loaders"
_NAMES = ("topology", "topo", "build_topology", "make_topology")


class LoadError(StreamDSLError):
    """The FILE argument names nothing loadable (exit code 2)."""


@dataclass
class Loaded:
    """What a ``FILE[:ATTR]`` gave: the plan (as written), and the module's defaults."""

    plan: Plan
    target: str
    path: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


def _load_sql(path: str) -> Any:
    try:
        from streamdsl.sql import load_file  # type: ignore[attr-defined]
    except ImportError as e:
        raise LoadError(f"{path}: .sql files need the SQL front end (streamdsl.sql), which is "
                        f"not available here ({e})") from None
    return load_file(path)


#: Loaders by file extension (``.sql`` is the SQL front end's).
LOADERS: dict[str, Callable[[str], Any]] = {".sql": _load_sql}


def register_loader(ext: str, fn: Callable[[str], Any]) -> None:
    """Load files ending in ``ext`` (``".sql"``) with ``fn(path) -> Topology | Plan``."""
    LOADERS[ext if ext.startswith(".") else "." + ext] = fn


def _plugin_loader(ext: str) -> Callable[[str], Any] | None:
    if ext in LOADERS:
        return LOADERS[ext]
    for ep in md.entry_points(group=LOADER_GROUP):
        if "." + ep.name.lstrip(".") == ext:
            return ep.load()
    return None


def split_target(target: str) -> tuple[str, str | None]:
    """``"path.py:attr"`` -> ``("path.py", "attr")``; a path that exists is never split."""
    if os.path.exists(target) or ":" not in target:
        return target, None
    head, _, attr = target.rpartition(":")
    if attr.isidentifier() and head:
        return head, attr
    return target, None


def load(target: str) -> Loaded:
    """Load the topology ``target`` names (see the module docs).

    Raises:
        LoadError: nothing to load, or the module raised (the message names file:line).
        TopologyError: the DSL refused a call (its ``site`` is the user's file:line).
    """
    path, attr = split_target(target)
    ext = os.path.splitext(path)[1].lower()
    if ext and ext != ".py":
        fn = _plugin_loader(ext)
        if fn is None:
            raise LoadError(f"{path}: no loader for {ext!r} files (expected a .py file, a "
                            f"module name, or one of: {', '.join(sorted(LOADERS))})")
        if not os.path.exists(path):
            raise LoadError(f"{path}: no such file")
        return Loaded(_as_plan(fn(path), path), target, path)
    if ext == ".py" or os.sep in path or os.path.exists(path):
        if not os.path.isfile(path):
            raise LoadError(f"{path}: no such file")
        module = _import_file(path)
        base = os.path.dirname(os.path.abspath(path))
    else:
        module = _import_module(path)
        base = os.path.dirname(os.path.abspath(getattr(module, "__file__", "") or "."))
    obj = _pick(module, attr, target)
    return Loaded(_as_plan(obj, target), target, getattr(module, "__file__", None),
                  _resolve(getattr(module, "INPUTS", None), base, "INPUTS", target),
                  _resolve(getattr(module, "OUTPUTS", None), base, "OUTPUTS", target))


def _import_file(path: str) -> Any:
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    name = os.path.splitext(os.path.basename(path))[0]
    existing = sys.modules.get(name)
    digest = hashlib.sha1(path.encode()).hexdigest()[:10]
    if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") != path:
        name = f"_streamdsl_user_{digest}_{name}"
    if not name.isidentifier():
        name = f"_streamdsl_user_{digest}"
    # The file's directory goes on sys.path (as `python FILE` does), so its functions can be
    # imported by name again in worker processes (Bytewax, Beam).
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except StreamDSLError:
        sys.modules.pop(name, None)
        raise
    except SyntaxError as e:
        sys.modules.pop(name, None)
        raise LoadError(f"{_rel(e.filename or path)}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:
        sys.modules.pop(name, None)
        raise LoadError(f"{_where(e, path)}: loading {_rel(path)} raised "
                        f"{type(e).__name__}: {e}") from e
    return module


def _import_module(name: str) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            raise LoadError(f"{name}: no such file or module (FILE is a .py path, a module "
                            "name, or a .sql file)") from None
        raise LoadError(f"{name}: importing it raised ModuleNotFoundError: {e}") from e
    except StreamDSLError:
        raise
    except Exception as e:
        raise LoadError(f"{_where(e, name)}: importing {name} raised {type(e).__name__}: {e}") from e


def _where(e: BaseException, default: str) -> str:
    """The innermost traceback frame in the user's code: not streamdsl's, not the standard
    library's, not generated (``<string>``: a dataclass's ``__init__``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    site = traceback_site(e.__traceback__, skip_dirs=(here,))
    if site is None:
        return _rel(default)
    path, _, line = site.rpartition(":")
    return f"{_rel(path)}:{line}"


def _rel(path: str) -> str:
    from streamdsl.render import short_site
    return short_site(f"{os.path.abspath(path)}:0").rsplit(":", 1)[0]


def _pick(module: Any, attr: str | None, target: str) -> Any:
    if attr is not None:
        if not hasattr(module, attr):
            raise LoadError(f"{target}: the module has no attribute {attr!r}")
        return getattr(module, attr)
    for n in _NAMES:
        v = getattr(module, n, None)
        if isinstance(v, (Topology, Plan)) or (n != "topo" and inspect.isfunction(v)):
            return v
    found = [(k, v) for k, v in vars(module).items() if isinstance(v, Topology)]
    if len(found) == 1:
        return found[0][1]
    if not found:
        raise LoadError(f"{target}: defines no Topology (name it `topology`, or give one as "
                        "FILE:ATTR)")
    raise LoadError(f"{target}: defines several topologies ({', '.join(k for k, _ in found)}); "
                    "pick one with FILE:ATTR")


def _as_plan(obj: Any, target: str) -> Plan:
    if callable(obj) and not isinstance(obj, (Topology, Plan)):
        obj = obj()
    if isinstance(obj, Topology):
        return obj.plan()
    if isinstance(obj, Plan):
        return obj
    raise LoadError(f"{target}: expected a Topology (or a function returning one), got "
                    f"{type(obj).__name__}")


def _resolve(d: Any, base: str, what: str, target: str) -> dict[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise LoadError(f"{target}: {what} must be a dict {{name: path or URI}}, got "
                        f"{type(d).__name__}")
    out = {}
    for k, v in d.items():
        if isinstance(v, str) and v != "-" and "://" not in v and not v.startswith("memory:") \
                and not os.path.isabs(v):
            v = os.path.normpath(os.path.join(base, v))
        elif isinstance(v, dict) and isinstance(v.get("path"), str) and not os.path.isabs(v["path"]):
            v = {**v, "path": os.path.normpath(os.path.join(base, v["path"]))}
        out[k] = v
    return out
