"""A small pluggable SMS backend, in the manner of Django's email backends.

settings.SMS_BACKEND names a class with `send(to, body)`:

- `backoffice.sms.ConsoleBackend` (default): prints the message to stdout.
- `backoffice.sms.LocmemBackend`: keeps messages in `backoffice.sms.outbox` (tests).
- `backoffice.sms.FileBackend`: appends one JSON line per message to SMS_FILE_PATH
  (a directory; handy to see what a worker sent).
- `backoffice.sms.TwilioBackend`: Twilio's REST API (TWILIO_ACCOUNT_SID,
  TWILIO_AUTH_TOKEN, SMS_FROM), with the standard library only.

A backend raises `SmsRejectedError` when the provider refused the message for good
(bad number), `SmsOutcomeUnknownError` when the message may have gone out but no answer
came back (a timeout or a connection lost after the request was sent: never retried
blindly), and any other exception for a failure the provider answered, or a connection
that never reached it: the message was not accepted, a retry is safe.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

SMS_MAX_LENGTH = 160


class SmsRejectedError(Exception):
    """The provider refused the message for good: retrying will not help."""


class SmsOutcomeUnknownError(Exception):
    """The request went out but no answer came back: the SMS may have been sent."""


@dataclass
class SmsMessage:
    to: str
    body: str


outbox: list[SmsMessage] = []


class ConsoleBackend:
    def send(self, to: str, body: str) -> None:
        sys.stdout.write(f"SMS to {to}: {body}\n")
        sys.stdout.flush()


class LocmemBackend:
    def send(self, to: str, body: str) -> None:
        outbox.append(SmsMessage(to=to, body=body))


class FileBackend:
    _lock = threading.Lock()

    def send(self, to: str, body: str) -> None:
        directory = settings.SMS_FILE_PATH
        os.makedirs(directory, exist_ok=True)
        line = json.dumps({"to": to, "body": body, "at": timezone.now().isoformat()})
        with self._lock, open(os.path.join(directory, "sms.jsonl"), "a") as fh:
            fh.write(line + "\n")


class TwilioBackend:
    url = "https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json"
    timeout = 10

    def send(self, to: str, body: str) -> None:
        sid, token = settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN
        data = urllib.parse.urlencode({"To": to, "From": settings.SMS_FROM, "Body": body})
        request = urllib.request.Request(self.url.format(sid=sid), data=data.encode(),
                                         method="POST")
        auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
        request.add_header("Authorization", f"Basic {auth}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):  # noqa: S310
                return
        except urllib.error.HTTPError as exc:  # Twilio answered: the outcome is known.
            if 400 <= exc.code < 500 and exc.code != 429:
                raise SmsRejectedError(f"Twilio refused the SMS ({exc.code})") from exc
            raise
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (ConnectionRefusedError, socket.gaierror)):
                raise  # never reached Twilio: not sent
            raise SmsOutcomeUnknownError(f"no answer from Twilio: {exc.reason}") from exc
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            raise SmsOutcomeUnknownError(f"no answer from Twilio: {exc}") from exc


def get_backend():
    return import_string(settings.SMS_BACKEND)()


def send_sms(to: str, body: str) -> None:
    """Send one SMS (at most 160 characters) through the configured backend."""
    body = " ".join(body.split())
    if len(body) > SMS_MAX_LENGTH:
        body = body[: SMS_MAX_LENGTH - 1] + "…"
    get_backend().send(to, body)
