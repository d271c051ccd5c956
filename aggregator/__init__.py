"""aggregator: polls RSS/Atom sources, stores posts in SQLite and republishes them."""

__version__ = "0.1.0"
