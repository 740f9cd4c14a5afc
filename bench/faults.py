"""Fault injection against a staging deployment: `python -m bench.faults --help`.

For each scenario: make fresh sales through the API, refund one unit of each through the
API under load (each request with its own Idempotency-Key, retried with the same key on
a timeout, a 5xx, a 409 or a 429 until it gets an answer), inject the fault while the
load runs (kill a component, wait, start it again: shell commands, systemd by default),
wait for one beat cycle, then check:

- every 2xx replayed with its key returns the same refund;
- no refund of the scenario is left pending;
- the books match the ledger (`manage.py audit_books` when the project has it, else
  tests/books.py) for the scenario's sales: no counter held for a declined refund;
- every alert is sent, failed or unknown (none pending or sending), and, with
  `--mail-dir` / `--sms-file` (the filebased email backend's directory, the SMS
  FileBackend's file on staging), no customer received the same alert twice.

One line per scenario, then `faults: N/M scenarios passed`; the exit status is non-zero
when one failed. Run it on a machine with the project checked out and the staging
environment loaded (DATABASE_URL, SECRET_KEY, ...): the checks read the database.

    python -m bench.faults --api http://staging:8000 --key "$KEY" \\
        --mail-dir /srv/backoffice/sent_email --sms-file /srv/backoffice/sent_sms/sms.jsonl
    python -m bench.faults ... --only worker-kill,broker-down --refunds 300
    python -m bench.faults ... --config faults.json   # your own kill/start commands

The config is a JSON object: scenario name -> {"fault": cmd, "recover": cmd, "down": s}
(commands run with `sh -c`; "recover" may be empty). Every tenth sale is priced so that
its refund is declined by the sandbox gateway (SANDBOX_FAIL_AMOUNT, 13 minor units): the
compensation path is under load too. Payments go through the `sandbox` gateway.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The default commands: the systemd units of deploy/systemd and Debian's services.
WEB_WORKER = ("kill -9 $(pgrep -P $(systemctl show -p MainPID --value backoffice-web) "
              "| head -n 1)")
SCENARIOS: dict[str, dict] = {
    "baseline": {"fault": "", "recover": "", "down": 0},
    "worker-kill": {"fault": "systemctl kill --signal=KILL backoffice-worker",
                    "recover": "systemctl start backoffice-worker", "down": 5},
    "worker-term": {"fault": "systemctl stop backoffice-worker",
                    "recover": "systemctl start backoffice-worker", "down": 5},
    "broker-down": {"fault": "systemctl stop redis-server",
                    "recover": "systemctl start redis-server", "down": 30},
    "database-restart": {"fault": "systemctl restart postgresql", "recover": "", "down": 5},
    "web-worker-kill": {"fault": WEB_WORKER, "recover": "", "down": 0},
    "beat-kill": {"fault": "systemctl kill --signal=KILL backoffice-beat",
                  "recover": "systemctl start backoffice-beat", "down": 5},
}
RETRY_STATUSES = {409, 429, 500, 502, 503, 504}


@dataclass
class Outcome:
    sale_id: int
    key: str
    body: dict
    status: int = 0
    refund_id: int | None = None
    tries: int = 0


@dataclass
class Scenario:
    name: str
    sale_ids: list[int] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Api:
    def __init__(self, base: str, key: str, timeout: float) -> None:
        self.base = base.rstrip("/") + "/api/v2"
        self.key, self.timeout = key, timeout

    def call(self, method: str, path: str, body: dict | None = None,
             key: str | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.base + path, method=method,
            data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Authorization", f"Bearer {self.key}")
        request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Idempotency-Key", key)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {}
        except (OSError, ValueError):  # refused, reset, timed out: no answer
            return 0, {}

    def until_answered(self, method: str, path: str, body: dict, key: str,
                       deadline: float) -> tuple[int, dict, int]:
        """Send, and again with the same key while there is no final answer."""
        tries = 0
        while True:
            tries += 1
            status, data = self.call(method, path, body, key)
            if (status and status not in RETRY_STATUSES) or time.monotonic() > deadline:
                return status, data, tries
            time.sleep(min(0.25 * tries, 3))


def make_sales(api: Api, count: int, tag: str, deadline: float) -> list[int]:
    ids = []
    for i in range(count):
        declined = i % 10 == 9
        price = 13 if declined else 1200 + 5 * i  # 20% tax of 2 units: a whole number
        body = {
            "kind": "invoice", "currency": "GBP", "external_id": f"FAULTS-{tag}-{i}",
            "customer": {"name": f"Fault {tag} {i}", "email": f"faults+{tag}-{i}@example.com",
                         "phone": "+447700900123"},
            "lines": [{"sku": "FAULT-1", "description": "Fault test item", "quantity": 2,
                       "unit_price": price, "discount": 0,
                       "tax_rate": "0" if declined else "0.20"}],
            "payments": [{"method": "card", "gateway": "sandbox",
                          "amount": 2 * price if declined else 2 * price + 2 * price // 5}],
        }
        status, data, _ = api.until_answered("POST", "/sales/", body, f"faults-sale-{tag}-{i}",
                                             deadline)
        if status != 201:
            raise SystemExit(f"could not make a sale ({status}): {data}")
        ids.append(data["data"]["id"])
    return ids


def refund_one(api: Api, sale_id: int, tag: str, deadline: float) -> Outcome:
    status, data = 0, {}
    while status != 200 and time.monotonic() < deadline:
        status, data = api.call("GET", f"/sales/{sale_id}/")
    line = (data.get("data") or {}).get("lines", [{}])[0].get("id")
    body = {"items": [{"item_id": line, "quantity": 1}], "alert_customer": True,
            "reason": "requested_by_customer"}
    outcome = Outcome(sale_id=sale_id, key=f"faults-refund-{tag}-{sale_id}", body=body)
    outcome.status, answer, outcome.tries = api.until_answered(
        "POST", f"/sales/{sale_id}/refunds/", body, outcome.key, deadline)
    if 200 <= outcome.status < 300:
        outcome.refund_id = answer["data"]["id"]
    return outcome


def run_command(command: str, scenario: Scenario) -> None:
    if not command:
        return
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
    if done.returncode:
        scenario.notes.append(f"`{command}` exited {done.returncode}: "
                              f"{done.stderr.strip()[:200]}")


def inject(spec: dict, scenario: Scenario, after: float) -> threading.Thread:
    def fault() -> None:
        time.sleep(after)
        run_command(spec.get("fault", ""), scenario)
        time.sleep(float(spec.get("down", 0)))
        run_command(spec.get("recover", ""), scenario)

    thread = threading.Thread(target=fault, name=f"fault-{scenario.name}")
    thread.start()
    return thread


# ---- checks (read the database through the project's models) --------------------------

def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
    import django

    django.setup()


def books_problems(sale_ids: list[int]) -> list[str]:
    from django.core.management import call_command, get_commands

    if "audit_books" in get_commands():
        try:
            call_command("audit_books", stdout=open(os.devnull, "w"))  # noqa: SIM115
        except SystemExit as exc:
            return [f"manage.py audit_books exited {exc.code}"] if exc.code else []
        except Exception as exc:
            return [f"manage.py audit_books: {exc}"]
        return []
    from tests.books import books_differences

    return books_differences(sale_ids=sale_ids)


def pending_refunds(sale_ids: list[int]) -> int:
    from refunds.models import Refund

    return Refund.objects.filter(sale_id__in=sale_ids, status="pending").count()


def alert_counts(sale_ids: list[int]) -> Counter:
    from refunds.models import CustomerAlert

    return Counter(CustomerAlert.objects.filter(sale_id__in=sale_ids)
                   .values_list("status", flat=True))


def delivered_twice(args: argparse.Namespace, sale_ids: list[int]) -> int:
    """Alerts delivered more than once, from what the staging backends wrote."""
    import re

    from refunds.models import CustomerAlert
    from sales.models import Sale

    numbers = list(Sale.objects.filter(pk__in=sale_ids).values_list("number", flat=True))
    ids = set(CustomerAlert.objects.filter(sale_id__in=sale_ids).values_list("pk", flat=True))
    phones = set(CustomerAlert.objects.filter(sale_id__in=sale_ids, channel="sms")
                 .values_list("recipient", flat=True))
    seen: Counter = Counter()
    if args.mail_dir:
        for path in Path(args.mail_dir).glob("*.log"):
            for pk in re.findall(r"^X-Customer-Alert: (\d+)", path.read_text(errors="replace"),
                                 re.M):
                if int(pk) in ids:
                    seen[("email", pk)] += 1
    if args.sms_file and Path(args.sms_file).exists():
        for line in Path(args.sms_file).read_text().splitlines():
            message = json.loads(line)
            if message["to"] in phones and any(n in message["body"] for n in numbers):
                seen[("sms", message["to"], message["body"])] += 1
    return sum(1 for n in seen.values() if n > 1)


def settled(sale_ids: list[int], wait: float) -> float | None:
    """Seconds until no refund is pending and no alert waits to be sent; None: not in
    `wait` seconds."""
    started = time.monotonic()
    while time.monotonic() < started + wait:
        counts = alert_counts(sale_ids)
        if not pending_refunds(sale_ids) and not counts["pending"] and not counts["sending"]:
            return time.monotonic() - started
        time.sleep(2)
    return None


def run(args: argparse.Namespace, name: str, spec: dict, api: Api) -> bool:
    scenario = Scenario(name=name)
    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    deadline = time.monotonic() + args.request_deadline
    scenario.sale_ids = make_sales(api, args.refunds, tag, deadline)
    fault = inject(spec, scenario, args.fault_after)
    deadline = time.monotonic() + args.request_deadline
    with ThreadPoolExecutor(args.concurrency) as pool:
        scenario.outcomes = list(pool.map(lambda pk: refund_one(api, pk, tag, deadline),
                                          scenario.sale_ids))
    fault.join()
    ok_calls = [o for o in scenario.outcomes if 200 <= o.status < 300]
    mismatched = 0
    for o in ok_calls:  # replayed: the same refund, nothing new
        status, data = api.call("POST", f"/sales/{o.sale_id}/refunds/", o.body, o.key)
        if not (200 <= status < 300 and (data.get("data") or {}).get("id") == o.refund_id):
            mismatched += 1
    from django.db import connections

    connections.close_all()  # the fault may have cut this process's session too
    finished = settled(scenario.sale_ids, args.settle_wait)
    problems = books_problems(scenario.sale_ids)
    alerts = alert_counts(scenario.sale_ids)
    twice = delivered_twice(args, scenario.sale_ids)
    failed_calls = len(scenario.outcomes) - len(ok_calls)
    passed = (finished is not None and not problems and not mismatched and not twice
              and failed_calls == 0 and not scenario.notes)
    refused = Counter(o.status for o in scenario.outcomes if not 200 <= o.status < 300)
    fields = [
        f"refunds={len(ok_calls)}/{len(scenario.outcomes)}",
        f"retried={sum(o.tries > 1 for o in scenario.outcomes)}",
        *(f"http_{code}={n}" for code, n in sorted(refused.items())),
        f"replay_mismatch={mismatched}", f"pending={pending_refunds(scenario.sale_ids)}",
        f"settled_in={'never' if finished is None else f'{finished:.0f}s'}",
        f"books={'ok' if not problems else len(problems)}",
        f"alerts_sent={alerts['sent']}", f"unknown={alerts['unknown']}",
        f"failed={alerts['failed']}", f"cancelled={alerts['cancelled']}",
        f"unsent={alerts['pending'] + alerts['sending']}",
        f"twice={twice if args.mail_dir or args.sms_file else 'n/a'}",
        *([f"notes={'; '.join(scenario.notes)}"] if scenario.notes else []),
    ]
    print(f"{name}: {'ok' if passed else 'FAILED'} {' '.join(fields)}", flush=True)
    for problem in problems[:10]:
        print(f"  {problem}", flush=True)
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", required=True, help="the deployment's base URL")
    parser.add_argument("--key", default=os.environ.get("FAULTS_API_KEY", ""),
                        help="an API key allowed to make sales and refunds "
                             "(default: $FAULTS_API_KEY)")
    parser.add_argument("--config", help="JSON: scenario -> {fault, recover, down}")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--refunds", type=int, default=100, help="per scenario (100)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fault-after", type=float, default=2.0,
                        help="seconds of load before the fault (2)")
    parser.add_argument("--request-deadline", type=float, default=180.0,
                        help="how long a request is retried with its key (180 s)")
    parser.add_argument("--settle-wait", type=float, default=420.0,
                        help="how long to wait for one beat cycle to finish all (420 s)")
    parser.add_argument("--timeout", type=float, default=15.0, help="per HTTP request")
    parser.add_argument("--mail-dir", help="the filebased email backend's directory")
    parser.add_argument("--sms-file", help="the SMS FileBackend's sms.jsonl")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("--key or FAULTS_API_KEY is required")
    scenarios = dict(SCENARIOS)
    if args.config:
        scenarios.update(json.loads(Path(args.config).read_text()))
    names = args.only.split(",") if args.only else list(scenarios)
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    django_setup()
    api = Api(args.api, args.key, args.timeout)
    passed = sum(run(args, name, scenarios[name], api) for name in names)
    print(f"faults: {passed}/{len(names)} scenarios passed", flush=True)
    return 0 if passed == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
