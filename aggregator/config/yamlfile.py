"""Reading feeds.yaml with ruamel.yaml, whose round-trip objects remember every key's line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ..errors import ConfigError


def read_yaml(path: Path) -> Any:
    """Parse a YAML file into ruamel's round-trip objects (which know their line numbers)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file (pass --config PATH or set AGGREGATOR_CONFIG)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = (exc.problem or exc.context or "invalid YAML").strip()
        raise ConfigError([f"{path}:{line}: invalid YAML: {reason}"]) from None
    except YAMLError as exc:
        raise ConfigError([f"{path}:1: invalid YAML: {str(exc).splitlines()[0]}"]) from None
