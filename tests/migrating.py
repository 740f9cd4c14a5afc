"""Tests of data migrations: run them against the database as it was before them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets: list[tuple[str, str]] | None = None) -> Apps:
    """Migrate to `targets` (None: the latest) and give the models as they are there."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@contextmanager
def migrated_to(targets: list[tuple[str, str]]) -> Iterator[Apps]:
    """The database at `targets` (their models given) until the block ends, then at the
    latest migrations again, whatever happened in the block."""
    try:
        yield migrate(targets)
    finally:
        migrate()
