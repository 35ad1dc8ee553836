"""feedsvc: stores analytical commentaries and publishes them as RSS, Atom, JSON Feed and an API."""

__version__ = "0.1.0"
