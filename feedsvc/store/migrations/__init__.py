"""Numbered schema steps: written once (``steps``), spelled per engine (``sqlite``, ``postgres``).
Each step links the issue that asked for it."""
