"""feeds.yaml: the typed settings (`model`) and how a file becomes them (`validate`)."""

from .model import (
    DEFAULT_INTERVAL,
    Category,
    Config,
    Defaults,
    Jekyll,
    Rule,
    Server,
    Site,
    Source,
    config_warnings,
    is_http_url,
    parse_interval,
    parse_size,
)
from .validate import load_config
from .yamlfile import read_yaml

__all__ = [
    "DEFAULT_INTERVAL", "Category", "Config", "Defaults", "Jekyll", "Rule", "Server", "Site", "Source",
    "config_warnings", "is_http_url", "load_config", "parse_interval", "parse_size", "read_yaml",
]
