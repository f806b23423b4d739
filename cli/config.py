"""Configuration of ``streamdsl run``: a ``streamdsl.toml`` file and ``STREAMDSL_*`` variables.

The command line wins over the environment, which wins over the file, which wins over the
defaults (click's own order: command line, ``envvar``, ``default_map``, default). The file is
``streamdsl.toml`` in the working directory, or the one ``--config FILE`` names::

    [kafka]
    bootstrap_servers = "127.0.0.1:9092"   # for kafka:///TOPIC URIs (no host in them)
    group = "fraud"                        # the consumer group of Kafka inputs without ?group=
    processing_guarantee = "exactly_once"

    [run]                                  # any option of `streamdsl run` or of a backend
    backend = "local"
    until_idle = 2

    [backend.bytewax]                      # options for one backend only
    workers = 2

Environment variables: ``STREAMDSL_BACKEND``, ``STREAMDSL_BOOTSTRAP_SERVERS``,
``STREAMDSL_GROUP``, and ``STREAMDSL_<OPTION>`` for each option of the backend that runs
(``STREAMDSL_PROCESSING_GUARANTEE``, ``STREAMDSL_UNTIL_IDLE``, ``STREAMDSL_WORKERS``, ...).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .common import CliError

__all__ = ["CONFIG_FILE", "ENV_PREFIX", "Config", "load_config", "envvar"]

CONFIG_FILE = "streamdsl.toml"
ENV_PREFIX = "STREAMDSL_"
KAFKA_KEYS = ("bootstrap_servers", "group", "processing_guarantee")
SECTIONS = ("kafka", "run", "backend")


def envvar(name: str) -> str:
    """The environment variable of option ``name``: ``until_idle`` -> ``STREAMDSL_UNTIL_IDLE``."""
    return ENV_PREFIX + name.upper()


@dataclass
class Config:
    """What a configuration file holds (empty without one)."""

    path: str | None = None
    kafka: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    backends: dict[str, dict[str, Any]] = field(default_factory=dict)

    def defaults(self, backend: str) -> dict[str, Any]:
        """The ``default_map`` of ``streamdsl run`` on ``backend``: ``[kafka]``, then
        ``[run]``, then ``[backend.NAME]`` (later wins)."""
        return {**self.kafka, **self.run, **self.backends.get(backend, {})}

    def where(self, section: str) -> str:
        return f"{self.path}: [{section}]"


def load_config(path: str | None) -> Config:
    """Read ``path`` (``--config``), else ``streamdsl.toml`` in the working directory if there
    is one.

    Raises:
        CliError: the file is missing (``--config``), not TOML, or has an unknown section or
            ``[kafka]`` key (exit code 2, with the closest known name).
    """
    if path is None:
        if not os.path.isfile(CONFIG_FILE):
            return Config()
        path = CONFIG_FILE
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise CliError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"--config {path}: is a directory") from None
    except OSError as e:
        raise CliError(f"--config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise CliError(f"{path}: not valid TOML: {e}") from None
    cfg = Config(path=path)
    for name, value in data.items():
        if name not in SECTIONS:
            raise CliError(f"{path}: unknown section [{name}]{_did_you_mean(name, SECTIONS)}; "
                           f"sections: {', '.join(f'[{s}]' for s in SECTIONS)}")
        if not isinstance(value, dict):
            raise CliError(f"{path}: {name} must be a section ([{name}])")
    cfg.kafka = dict(data.get("kafka", {}))
    for key in cfg.kafka:
        if key not in KAFKA_KEYS:
            raise CliError(f"{cfg.where('kafka')} has no key {key!r}{_did_you_mean(key, KAFKA_KEYS)}"
                           f"; keys: {', '.join(KAFKA_KEYS)}")
    cfg.run = dict(data.get("run", {}))
    for name, section in data.get("backend", {}).items():
        if not isinstance(section, dict):
            raise CliError(f"{path}: backend.{name} must be a section ([backend.{name}])")
        cfg.backends[name] = dict(section)
    return cfg


def _did_you_mean(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_run_keys(cfg: Config, run_params: set[str], backend: Any) -> None:
    """Fail on a ``[run]`` key that is no option of ``streamdsl run`` nor of any installed
    backend, and on a ``[backend.NAME]`` key that backend does not declare (the running one's
    only: another backend's section is not checked, its engine may not be installed)."""
    from streamdsl.backend import available_backends, declared_options, get_backend

    if cfg.path is None:
        return
    mine = set(declared_options(backend)) if backend is not None else set()
    unknown = [k for k in cfg.run if k not in run_params and k not in mine]
    if unknown:
        every = set(run_params) | mine
        for name in available_backends():
            try:
                every |= set(declared_options(get_backend(name)))
            except Exception:  # noqa: BLE001 - an engine that cannot be imported
                continue
        for key in unknown:
            if key not in every:
                raise CliError(f"{cfg.where('run')} has no option {key!r}"
                               f"{_did_you_mean(key, every)} (options: those of "
                               "`streamdsl run --help` and of `streamdsl backends`)")
    if backend is not None:
        for key in cfg.backends.get(backend.name, {}):
            if key not in mine:
                raise CliError(f"{cfg.where('backend.' + backend.name)} has no option {key!r}"
                               f"{_did_you_mean(key, mine)}; backend {backend.name!r} takes: "
                               f"{', '.join(sorted(mine)) or 'none'}")
