"""Renderers: pure functions from commentaries to feed and page bytes."""
