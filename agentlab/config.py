"""Frozen configuration dataclasses, YAML in/out and ``--set key=value`` overrides.

Every algorithm has one frozen dataclass (a subclass of :class:`AlgoConfig`); its defaults are the
reference values and each field is documented by ``field(metadata={"help": ...})`` or a comment.
The resolved config is written to ``RUN_DIR/config.yaml`` together with the algorithm name, and is
enough to rebuild the agent.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from agentlab.errors import UserError
from agentlab.files import atomic_write_text

C = TypeVar("C", bound="AlgoConfig")


@dataclasses.dataclass(frozen=True)
class AlgoConfig:
    """Base class of algorithm configs (frozen: a config never changes after a run starts)."""

    def validate(self) -> None:
        """Raise :class:`UserError` for inconsistent values; called before any run directory exists."""


def help_field(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a help string (shown by ``agentlab train ALGO --help-config``)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def config_to_dict(cfg: AlgoConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Convert ``value`` (from YAML or a ``--set`` string) to the field type ``typ``."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if errors else f"bad value {value!r} for {key}")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key {key!r} expects a list, got {value!r}")
        inner = args[0] if args else Any
        out = [_coerce(v, inner, key) for v in value]
        return tuple(out) if origin is tuple else out
    if typ is Any:
        return value
    if typing.get_origin(typ) is typing.Literal:
        if isinstance(value, bool) and not any(isinstance(a, bool) for a in args):
            # YAML 1.1 reads on/off/yes/no as booleans: map back to the one spelling the field allows
            spellings = ("on", "yes", "true", "y") if value else ("off", "no", "false", "n")
            match = [a for a in args if isinstance(a, str) and a.lower() in spellings]
            value = match[0] if len(match) == 1 else value
        if value not in args:
            raise UserError(f"config key {key!r} must be one of {list(args)}, got {value!r}")
        return value
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise UserError(f"config key {key!r} expects true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise UserError(f"config key {key!r} expects an integer, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise UserError(f"config key {key!r} expects an integer, got {value!r}") from None
        if f != int(f):
            raise UserError(f"config key {key!r} expects an integer, got {value!r}")
        return int(f)
    if typ is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"config key {key!r} expects a number, got {value!r}") from None
    if typ is str:
        if not isinstance(value, (str, int, float)):
            raise UserError(f"config key {key!r} expects a string, got {value!r}")
        return str(value)
    return value


def config_from_dict(cls: type[C], values: dict[str, Any], base: C | None = None) -> C:
    """Build ``cls`` from a (possibly partial) dict, checking keys and types."""
    if not isinstance(values, dict):
        raise UserError(f"config must be a mapping of keys to values, got {type(values).__name__}")
    types = _field_types(cls)
    current = config_to_dict(base) if base is not None else {}
    for key, value in values.items():
        if key not in types:
            known = ", ".join(sorted(types))
            raise UserError(f"unknown config key {key!r} for {cls.__name__} (known: {known})")
        current[key] = _coerce(value, types[key], key)
    return cls(**current)


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (values parsed as YAML scalars) into a dict."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise UserError(f"--set expects key=value, got {pair!r}")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            out[key] = raw
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"cannot parse config file {p}: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {p} must hold a mapping, got {type(data).__name__}")
    return data


def resolve_config(cls: type[C], yaml_path: str | Path | None = None, overrides: Iterable[str] = (),
                   preset: dict[str, Any] | None = None, base: C | None = None) -> C:
    """Defaults (or ``base``) <- preset (e.g. a budget) <- YAML file <- ``--set`` overrides, validated."""
    cfg = base if base is not None else cls()
    if preset:
        cfg = config_from_dict(cls, preset, cfg)
    if yaml_path is not None:
        data = load_yaml(yaml_path)
        data.pop("algo", None)
        cfg = config_from_dict(cls, data.get("config", data) if "config" in data else data, cfg)
    ov = parse_overrides(overrides)
    if ov:
        cfg = config_from_dict(cls, ov, cfg)
    cfg.validate()
    return cfg


def save_yaml(data: dict[str, Any], path: str | Path) -> None:
    atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))


def describe_config(cls: type[AlgoConfig]) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) for each field, for ``--help-config`` listings."""
    rows = []
    cfg = cls()
    types = _field_types(cls)
    for f in dataclasses.fields(cls):
        rows.append((f.name, getattr(types[f.name], "__name__", str(types[f.name])), getattr(cfg, f.name),
                     f.metadata.get("help", "")))
    return rows
