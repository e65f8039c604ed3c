"""mirror: signed editions of a newsroom's articles, pushed to many mirrors, verified by readers."""

__version__ = "0.1.0"
