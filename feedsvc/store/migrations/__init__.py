"""Numbered schema steps, one module per backend. Each step links the issue that asked for it."""
