"""Files feedsvc writes that only its own user may read.

A database holds the cursor key, webhook signing keys and token hashes; backups,
pre-restore copies and exports hold the same data or unpublished drafts. Each is created
with mode 0600 *before* anything writes into it, so there is no moment at which it is
readable by others whatever the process's umask. SQLite gives the ``-wal`` and ``-shm``
files it creates the mode of their database file, so a database created here keeps its
journal private too.

This module imports nothing from feedsvc: every layer may use it.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_MODE = 0o600
"""Read and write for the owner, nothing for the group or others."""


def create_private(path: str | os.PathLike[str]) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True if it was created.

    An existing file is left as it is: its mode may be the operator's choice (a backup
    agent in the file's group), and feedsvc never changes permissions it did not set.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def open_private(path: str | os.PathLike[str]) -> int:
    """A new file at ``path`` (replacing any that is there) open for writing, mode 0600.

    The old file is removed first rather than truncated, so the new one does not inherit
    a looser mode; returns the descriptor.
    """
    Path(path).unlink(missing_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)


def readable_by_others(path: str | os.PathLike[str]) -> bool:
    """Whether the group or anyone else may read (or write) ``path``."""
    return bool(os.stat(path).st_mode & 0o077)


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
