"""Backends that cut the worker off from PostgreSQL right after a message went out:
the message is accepted, then the worker's database connection is terminated, so
recording the outcome fails. They do it once per marker file (FAULT_MARKER_DIR/<channel>),
which the test creates; the backend deletes it when it acts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
from django.core.mail.backends.filebased import EmailBackend
from django.db import connection

from backoffice.sms import FileBackend


def _drop_database_once(channel: str) -> None:
    marker = Path(os.environ["FAULT_MARKER_DIR"]) / channel
    if not marker.exists():
        return
    marker.unlink()
    pid = connection.connection.info.backend_pid  # the worker's own session
    settings = connection.settings_dict
    with psycopg.connect(dbname=settings["NAME"], user=settings["USER"],
                         host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         password=settings["PASSWORD"] or None, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    print(f"FAULT: terminated database session {pid} after sending by {channel}", flush=True)


class DroppingEmailBackend(EmailBackend):
    def send_messages(self, messages):
        sent = super().send_messages(messages)
        _drop_database_once("email")
        return sent


class DroppingSmsBackend(FileBackend):
    def send(self, to: str, body: str) -> None:
        super().send(to, body)
        _drop_database_once("sms")


class HangingSmsBackend(FileBackend):
    """Sends, then says so (FAULT_MARKER_DIR/sms-sent) and hangs, so that the test can
    kill the worker exactly between the send and the record of its outcome."""

    def send(self, to: str, body: str) -> None:
        super().send(to, body)
        (Path(os.environ["FAULT_MARKER_DIR"]) / "sms-sent").touch()
        time.sleep(120)
