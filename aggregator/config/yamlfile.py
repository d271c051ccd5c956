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


def _invalid(path: Path, exc: Exception, text: str) -> ConfigError:
    """`FILE:LINE: invalid YAML: reason` for an error from either parser (PyYAML's and ruamel's
    marked errors carry the same problem/context marks)."""
    if not isinstance(exc, yaml.MarkedYAMLError | MarkedYAMLError):
        return ConfigError([f"{path}:1: invalid YAML: {str(exc).splitlines()[0]}"])
    problem, context = (exc.problem or "").strip(), (exc.context or "").strip()
    began = exc.context_mark
    unclosed = began is not None and _left_open(exc, text)
    mark = began if unclosed else (exc.problem_mark or began)
    reason = problem or context or "invalid YAML"
    if context and problem and began is not None and unclosed:
        reason = f"{context} on line {began.line + 1}: {problem}"
        if exc.problem_mark is not None:
            reason += f" on line {exc.problem_mark.line + 1}"
    elif context and problem and began is not None:
        reason = f"{problem} ({context} on line {began.line + 1})"
    return ConfigError([f"{path}:{mark.line + 1 if mark else 1}: invalid YAML: {reason}"])


def _left_open(exc: Any, text: str) -> bool:
    """Whether the error is a quote or bracket left open, which the parser finds where it gives up
    (the end of the file, or the next line of the block around it): the line to name is then the
    one it opened on. A mistake inside a flow collection that spans lines is where the parser says."""
    problem = exc.problem or ""
    if "end of stream" in problem:
        return True
    if "flow" not in (exc.context or "") or exc.problem_mark is None:
        return False
    opened, found = exc.context_mark, exc.problem_mark
    lines = text.split("\n")

    def indent(line: int) -> int:
        text_of_line = lines[line] if line < len(lines) else ""
        return len(text_of_line) - len(text_of_line.lstrip(" "))

    # the parser ran on into the next line of the block (no deeper than the opening line)
    return found.line > opened.line and indent(found.line) <= indent(opened.line)


def read_config_yaml(path: Path) -> Any:
    """Parse feeds.yaml into LinedMap / LinedList (fast, YAML 1.2, with the line of every key)."""
    text = _read_text(path)
    try:
        return load_lined(text)
    except yaml.YAMLError as exc:
        raise _invalid(path, exc, text) from None
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
        raise _invalid(path, exc, text) from None
