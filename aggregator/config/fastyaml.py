"""Reading feeds.yaml fast, with line numbers, by the YAML 1.2 core schema.

Loading a 1,000-source file with ruamel.yaml's round-trip mode takes ~0.35 s of pure Python, which
is most of a run in which every source answers 304. libyaml (PyYAML's C parser) reads the same file
in a tenth of that. This module keeps what the validator needs from ruamel: every mapping and list
knows the line of each key and item, duplicate keys are an error, and scalars resolve as in YAML 1.2
(`yes`, `no`, `on` and `off` stay strings, `010` is ten, `1:30` is a string), so a file means the
same as it did under ruamel. ruamel stays for editing the file (`sources add`), where comments and
layout must survive.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

try:
    from yaml.cyaml import CParser as Parser  # type: ignore[attr-defined]  # libyaml
except ImportError:  # pragma: no cover - PyYAML without libyaml: the pure-Python parser, same results
    from yaml.composer import Composer
    from yaml.parser import Parser as _Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class Parser(Reader, Scanner, _Parser, Composer):  # type: ignore[no-redef]
        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            _Parser.__init__(self)
            Composer.__init__(self)


class LinedMap(dict[Any, Any]):
    """A mapping that knows its own line and the line of each key (1-based)."""

    line = 1
    key_lines: dict[Any, int]

    def key_line(self, key: Any, default: int) -> int:
        return getattr(self, "key_lines", {}).get(key, default)


class LinedList(list[Any]):
    """A list that knows its own line and the line of each item (1-based)."""

    line = 1
    item_lines: list[int]

    def item_line(self, index: int, default: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if 0 <= index < len(lines) else default


MERGE = "tag:yaml.org,2002:merge"


class Core12Resolver(BaseResolver):
    """Implicit tags of the YAML 1.2 core schema (PyYAML itself resolves by YAML 1.1)."""


_RESOLVERS = [
    (MERGE, r"^<<$", ["<"]),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    # YAML 1.2 core ints, plus what ruamel also reads as ints: `_` separators, 0b binary, signed 0o/0x
    ("tag:yaml.org,2002:int", r"^[-+]?(?:[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
]
for _tag, _pattern, _first in _RESOLVERS:
    Core12Resolver.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def _int(text: str) -> int:
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    if digits[:2] in ("0o", "0x", "0b"):
        return sign * int(digits, 0)
    return sign * int(digits, 10)  # 010 is ten in YAML 1.2, not eight


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return float(text)


SCALARS: dict[str, Callable[[str], Any]] = {
    "tag:yaml.org,2002:null": lambda text: None,
    "tag:yaml.org,2002:bool": lambda text: text.lower() == "true",
    "tag:yaml.org,2002:int": _int,
    "tag:yaml.org,2002:float": _float,
    "tag:yaml.org,2002:str": str,
}


class _Loader(Parser, SafeConstructor, Core12Resolver):  # type: ignore[misc, valid-type]
    def __init__(self, stream: str):
        Parser.__init__(self, stream)
        SafeConstructor.__init__(self)
        Core12Resolver.__init__(self)


def _build(loader: _Loader, node: Node) -> Any:
    if isinstance(node, ScalarNode):
        convert = SCALARS.get(node.tag)
        if convert is None:
            raise ConstructorError(None, None, f"unsupported tag {node.tag!r}", node.start_mark)
        try:
            return convert(node.value)
        except ValueError:
            raise ConstructorError(None, None, f"{node.value!r} is not a valid {node.tag}", node.start_mark) from None
    if isinstance(node, SequenceNode):
        items = LinedList(_build(loader, child) for child in node.value)
        items.line = node.start_mark.line + 1
        items.item_lines = [child.start_mark.line + 1 for child in node.value]
        return items
    if isinstance(node, MappingNode):
        return _build_mapping(loader, node)
    raise ConstructorError(None, None, f"unsupported node {type(node).__name__}", node.start_mark)


def _build_mapping(loader: _Loader, node: MappingNode) -> LinedMap:
    """The mapping's own keys (a key twice is an error), then keys merged from `<<:` that it does
    not set itself, earlier merge sources first. The nodes are never changed, so an anchor reused
    elsewhere means the same there."""
    mapping = LinedMap()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    merges: list[Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == MERGE:
            merges += value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            continue
        key = _build(loader, key_node)
        if isinstance(key, list | dict):
            raise ConstructorError(None, None, "a key must be a plain value", key_node.start_mark)
        if key in mapping:
            raise ConstructorError(None, None, f"found duplicate key {key!r}", key_node.start_mark)
        mapping[key] = _build(loader, value_node)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    for source in merges:
        if not isinstance(source, MappingNode):
            raise ConstructorError(None, None, "`<<` merges mappings only", source.start_mark)
        merged = _build_mapping(loader, source)
        for key, value in merged.items():
            if key not in mapping:
                mapping[key] = value
                mapping.key_lines[key] = merged.key_lines[key]
    return mapping


def load_lined(text: str) -> Any:
    """Parse one YAML document into LinedMap / LinedList / scalars; raise yaml.MarkedYAMLError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _build(loader, node)
    finally:
        loader.dispose()
