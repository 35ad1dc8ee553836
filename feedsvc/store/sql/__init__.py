"""What both engines share, written once: statements, filters, paging and the write rules.

Each engine supplies a ``Dialect`` (feedsvc.store.sql.dialect) for what they spell
differently, and runs the statements on its own connections.
"""
