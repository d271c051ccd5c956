"""Reading feeds.yaml: fast and line-numbered for validation, round-trip (ruamel) for editing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ..errors import ConfigError
from .fastyaml import load_lined


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file (pass --config PATH or set AGGREGATOR_CONFIG)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None


def _invalid(path: Path, exc: Exception) -> ConfigError:
    """`FILE:LINE: invalid YAML: reason` for an error from either parser (PyYAML's and ruamel's
    marked errors carry the same problem/context marks)."""
    if not isinstance(exc, yaml.MarkedYAMLError | MarkedYAMLError):
        return ConfigError([f"{path}:1: invalid YAML: {str(exc).splitlines()[0]}"])
    problem, context = (exc.problem or "").strip(), (exc.context or "").strip()
    began = exc.context_mark
    # a quote or bracket left open is found where the parser gives up (often the end of the file):
    # the line to name is where it was opened
    unclosed = began is not None and ("end of stream" in problem or "quoted" in context or "flow" in context)
    mark = began if unclosed else (exc.problem_mark or began)
    reason = problem or context or "invalid YAML"
    if context and problem and began is not None and unclosed:
        reason = f"{context} on line {began.line + 1}: {problem}"
        if exc.problem_mark is not None:
            reason += f" on line {exc.problem_mark.line + 1}"
    elif context and problem and began is not None:
        reason = f"{problem} ({context} on line {began.line + 1})"
    return ConfigError([f"{path}:{mark.line + 1 if mark else 1}: invalid YAML: {reason}"])


def read_config_yaml(path: Path) -> Any:
    """Parse feeds.yaml into LinedMap / LinedList (fast, YAML 1.2, with the line of every key)."""
    text = _read_text(path)
    try:
        return load_lined(text)
    except yaml.YAMLError as exc:
        raise _invalid(path, exc) from None
    except RecursionError:
        raise ConfigError([f"{path}:1: invalid YAML: an alias refers to itself, or nesting is too deep"]) from None


def read_yaml(path: Path) -> Any:
    """Parse a YAML file into ruamel's round-trip objects, which keep comments and layout for edits."""
    text = _read_text(path)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True  # an edit must not requote the operator's scalars all over the file
    try:
        return yaml.load(text)
    except YAMLError as exc:
        raise _invalid(path, exc) from None
