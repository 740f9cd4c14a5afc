"""An email backend that fails on demand (a mail server that is down)."""

from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend


class FlakyEmailBackend(BaseEmailBackend):
    failures = 0  # how many sends still fail; -1: every send fails

    def send_messages(self, messages):
        if FlakyEmailBackend.failures:
            if FlakyEmailBackend.failures > 0:
                FlakyEmailBackend.failures -= 1
            raise ConnectionRefusedError("mail server down")
        mail.outbox.extend(messages)
        return len(messages)
