"""The SMS backends: console, file, and the Twilio adapter (its HTTP call faked)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest

from backoffice import sms


def test_console_backend_prints(settings, capsys):
    settings.SMS_BACKEND = "backoffice.sms.ConsoleBackend"
    sms.send_sms("+447700900123", "Hello\n  there")
    assert capsys.readouterr().out == "SMS to +447700900123: Hello there\n"


def test_file_backend_appends_json_lines(settings, tmp_path):
    settings.SMS_BACKEND = "backoffice.sms.FileBackend"
    settings.SMS_FILE_PATH = str(tmp_path)
    sms.send_sms("+1", "one")
    sms.send_sms("+2", "two")
    lines = (tmp_path / "sms.jsonl").read_text().splitlines()
    assert [json.loads(line)["body"] for line in lines] == ["one", "two"]


@pytest.fixture
def twilio(settings, monkeypatch):
    settings.SMS_BACKEND = "backoffice.sms.TwilioBackend"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC123", "secret"
    settings.SMS_FROM = "+15005550006"
    sent = []

    def fake_urlopen(request, timeout):
        sent.append(request)
        status = getattr(fake_urlopen, "status", 201)
        if status >= 400:
            raise urllib.error.HTTPError(request.full_url, status, "no", {}, io.BytesIO())
        return io.BytesIO(b"{}")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return fake_urlopen, sent


def test_twilio_posts_the_message(twilio):
    _, sent = twilio
    sms.send_sms("+447700900123", "Your refund")
    request = sent[0]
    assert request.full_url.endswith("/Accounts/AC123/Messages.json")
    assert b"Body=Your+refund" in request.data and b"To=%2B447700900123" in request.data
    assert request.get_header("Authorization").startswith("Basic ")


def test_twilio_bad_number_is_permanent_and_outage_transient(twilio):
    fake, _ = twilio
    fake.status = 400
    with pytest.raises(sms.SmsRejectedError):
        sms.send_sms("+0", "x")
    fake.status = 503
    with pytest.raises(urllib.error.HTTPError):
        sms.send_sms("+0", "x")


@pytest.mark.parametrize("failure", [
    urllib.error.URLError(TimeoutError("timed out")), TimeoutError("read timed out"),
    ConnectionResetError("reset by peer"),
])
def test_twilio_without_an_answer_is_an_unknown_outcome(settings, monkeypatch, failure):
    settings.SMS_BACKEND = "backoffice.sms.TwilioBackend"

    def no_answer(request, timeout):
        raise failure

    monkeypatch.setattr(urllib.request, "urlopen", no_answer)
    with pytest.raises(sms.SmsOutcomeUnknownError):
        sms.send_sms("+447700900123", "x")


def test_twilio_never_reached_is_not_sent(settings, monkeypatch):
    settings.SMS_BACKEND = "backoffice.sms.TwilioBackend"

    def refused(request, timeout):
        raise urllib.error.URLError(ConnectionRefusedError("refused"))

    monkeypatch.setattr(urllib.request, "urlopen", refused)
    with pytest.raises(urllib.error.URLError) as exc:
        sms.send_sms("+447700900123", "x")
    assert not isinstance(exc.value, sms.SmsOutcomeUnknownError)
