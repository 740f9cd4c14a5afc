"""The benchmark: `bench/run` (or `python -m bench`). See bench/RESULTS.md and the README.

On PostgreSQL: creates its own database, migrates, seeds, measures the raw-SQL limit
with pgbench, starts the app under gunicorn with production settings, drives it with
wrk on 127.0.0.1, and prints one `name: value unit` line per figure, then the ratios
against the targets. Everything it made (gunicorn, the database, temp files, its Redis
keys) is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
GUNICORN = str(Path(PY).with_name("gunicorn"))
CONNECTIONS = 8
THREADS = 2

figures: dict[str, tuple[float | str, str]] = {}


def say(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def figure(name: str, value, unit: str = "") -> None:
    figures[name] = (value, unit)
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    print(f"{name}: {shown} {unit}".rstrip(), flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="bench_backoffice_"))
        base = urlsplit(args.pg)
        self.admin_url = urlunsplit(base._replace(path="/postgres"))
        self.db_url = urlunsplit(base._replace(path=f"/{args.db}"))
        self.gunicorn: subprocess.Popen | None = None
        self.children: list[subprocess.Popen] = []
        self.db_made = False
        self.redis_db: int | None = None
        self.env = self._env()

    # ---- environment ----------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.db_url,
            SECRET_KEY="bench-" + os.urandom(16).hex(),
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1,testserver",
            LOG_LEVEL="WARNING",
            STATIC_ROOT=str(self.work / "static"),
            # One API key drives all the load: the per-key throttle would stop it.
            API_THROTTLE_RATE="1000000/second",
            API_BULK_THROTTLE_RATE="1000000/second",
            EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
            AXES_ENABLED="0",
            # seed_demo's card payments use the sandbox gateway, off in production.
            SANDBOX_ENABLED="1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.pop("CONN_MAX_AGE", None)
        broker = self._redis()
        if not broker:
            # Production settings refuse to start without a broker (and eager tasks would
            # run the alerts inside the request: not what a shop runs).
            raise SystemExit("bench/run needs Redis on 127.0.0.1:6379 with an empty "
                             "database among 8..15 (redis-server --daemonize yes)")
        env["CELERY_BROKER_URL"] = broker
        return env

    def _redis(self) -> str | None:
        """A real broker as in production: an empty Redis database of our own (flushed at
        the end). Without Redis, Celery runs eagerly in the request (slower)."""
        try:
            import redis
        except ImportError:
            return None
        for db in range(15, 7, -1):
            try:
                client = redis.Redis(host="127.0.0.1", port=6379, db=db, socket_timeout=1)
                if client.dbsize() == 0:
                    self.redis_db = db
                    return f"redis://127.0.0.1:6379/{db}"
            except Exception:  # noqa: BLE001 - no Redis: eager tasks
                return None
        return None

    # ---- processes --------------------------------------------------------------------
    def run(self, *cmd: str, env: dict[str, str] | None = None, capture=True,
            check=True) -> str:
        proc = subprocess.run(cmd, cwd=ROOT, env=env or self.env, text=True,
                              capture_output=capture)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:4])}... failed ({proc.returncode}):\n"
                               f"{(proc.stdout or '')[-2000:]}\n{(proc.stderr or '')[-3000:]}")
        return proc.stdout or ""

    def manage(self, *args: str) -> str:
        return self.run(PY, "manage.py", *args)

    def task(self, *args: str, env: dict[str, str] | None = None) -> str:
        out = self.run(PY, "-m", "bench.django_tasks", *args, str(self.work), env=env)
        for line in out.splitlines():
            name, _, rest = line.partition(": ")
            value, _, unit = rest.partition(" ")
            if name and rest:
                figure(name, _num(value), unit)
        return out

    def sql(self, statement: str, *, admin: bool = False, autocommit: bool = True):
        import psycopg

        with psycopg.connect(self.admin_url if admin else self.db_url,
                             autocommit=autocommit) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else None

    # ---- database ---------------------------------------------------------------------
    def create_db(self) -> None:
        if not re.fullmatch(r"bench_\w+", self.args.db):
            raise SystemExit("the benchmark only uses databases named bench_*")
        self.sql(f'DROP DATABASE IF EXISTS "{self.args.db}" WITH (FORCE)', admin=True)
        self.sql(f'CREATE DATABASE "{self.args.db}"', admin=True)
        self.db_made = True
        version = self.sql("SHOW server_version")[0][0]
        figure("postgresql_version", version.split()[0])
        figure("cpu_cores", os.cpu_count() or 0, "cores")

    def cleanup(self) -> None:
        self.stop_gunicorn()
        for child in self.children:
            with contextlib.suppress(Exception):
                child.kill()
        if self.db_made and not self.args.keep:
            with contextlib.suppress(Exception):
                self.sql(f'DROP DATABASE IF EXISTS "{self.args.db}" WITH (FORCE)', admin=True)
        if self.redis_db is not None:
            with contextlib.suppress(Exception):
                import redis

                redis.Redis(host="127.0.0.1", port=6379, db=self.redis_db).flushdb()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            say(f"kept {self.work} and database {self.args.db}")

    # ---- gunicorn -----------------------------------------------------------------------
    def start_gunicorn(self, config: tuple[int, ...], tag: str) -> None:
        self.stop_gunicorn()
        self.port = _free_port()
        workers, conn_max_age, prepared = (*config, 1)[:3]
        self.n_workers = workers
        env = dict(self.env, CONN_MAX_AGE=str(conn_max_age),
                   DB_PREPARED_STATEMENTS=str(prepared))
        log = open(self.work / f"gunicorn-{tag}.log", "w")  # noqa: SIM115 - kept open
        # The project's gunicorn.conf.py (production: JSON logs, access log) is read from
        # the working directory when present; these flags override it.
        self.gunicorn = subprocess.Popen(
            [GUNICORN, "backoffice.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--worker-class", "sync",
             "--max-requests", "0", "--timeout", "60"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {log.name}:\n"
                                   + Path(log.name).read_text()[-3000:])
            with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/healthz", timeout=2
            ) as resp:
                if resp.status == 200 and len(self.workers()) >= workers:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not answer /healthz within 30 s")
        # Warm every worker (imports, URL resolvers, first connections).
        self.wrk("healthz", "-", 2, quiet=True)
        self.wrk("fetch", str(self.work / "fetch.txt"), 2, quiet=True)

    def workers(self) -> list[int]:
        if not self.gunicorn:
            return []
        pid = self.gunicorn.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def peak_rss_mb(self) -> float:
        peaks = []
        for pid in self.workers():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
        return max(peaks) if peaks else 0.0

    def worker_cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the gunicorn workers."""
        total = 0
        for pid in self.workers():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def stop_gunicorn(self) -> None:
        if self.gunicorn and self.gunicorn.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.gunicorn.pid, signal.SIGTERM)
            try:
                self.gunicorn.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.gunicorn.pid, signal.SIGKILL)
                self.gunicorn.wait(5)
        self.gunicorn = None

    # ---- load -------------------------------------------------------------------------
    def wrk(self, mode: str, targets: str, seconds: int, *, quiet=False) -> dict[str, float]:
        key = (self.work / "api_key").read_text().strip()
        cpu_before = self.worker_cpu_s()
        out = self.run(
            "wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s",
            "--timeout", "10s", "-s", str(BENCH / "wrk.lua"), f"http://127.0.0.1:{self.port}",
            "--", mode, targets, key, str(THREADS),
        )
        match = re.search(r"^WRK (.*)$", out, re.M)
        if not match:
            raise RuntimeError(f"no summary from wrk:\n{out}")
        stats = {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
        stats["rps"] = stats["requests"] / stats["seconds"]
        stats["cpu_ms"] = (self.worker_cpu_s() - cpu_before) * 1000 / max(stats["requests"], 1)
        if not quiet:
            say(f"wrk {mode}: {match.group(1)}")
        return stats

    def profile(self, seconds: int) -> subprocess.Popen | None:
        spy = Path(PY).with_name("py-spy")
        if not self.args.profile or not spy.exists():
            return None
        out = Path(self.args.profile).resolve()
        out.mkdir(parents=True, exist_ok=True)
        pid = self.workers()[0]
        proc = subprocess.Popen(
            [str(spy), "record", "--pid", str(pid), "--duration", str(seconds), "--format",
             "speedscope", "--output", str(out / f"refund-worker-{pid}.speedscope.json")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.children.append(proc)
        return proc

    # ---- scenarios ----------------------------------------------------------------------
    def main(self) -> None:
        a = self.args
        started = time.monotonic()
        self.create_db()
        say("migrate")
        self.manage("migrate", "--noinput", "-v0")
        say(f"seed_demo --sales {a.sales}")
        t0 = time.perf_counter()
        self.manage("seed_demo", "--sales", str(a.sales))
        figure(f"seed_demo_{a.sales}", time.perf_counter() - t0, "s")
        say("collectstatic (production static storage, for the admin pages)")
        self.manage("collectstatic", "--noinput", "-v0")
        say("fixtures")
        self.task("prepare")
        self.sql("VACUUM ANALYZE")

        say("query counts and admin pages (in-process, Django's test Client)")
        self.task("queries")

        say(f"pgbench: the refund transaction in raw SQL, -c {CONNECTIONS} -j {THREADS}")
        lo, hi = (int(x) for x in (self.work / "pgbench_range").read_text().split())
        out = self.run(
            "pgbench", "-n", "-c", str(CONNECTIONS), "-j", str(THREADS), "-T", str(a.seconds),
            "-f", str(BENCH / "refund.sql"), "-D", f"minsale={lo}",
            "-D", f"nsales={hi - lo + 1}", "-D", "k=0", *_pg_conn_args(self.db_url),
        )
        tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
        failed = re.search(r"number of failed transactions: (\d+)", out)
        figure("pgbench_refund_tps", tps, "tps")
        figure("pgbench_refund_failed", int(failed.group(1)) if failed else 0, "transactions")

        # The API refund targets, split between the configurations (each sale once).
        targets = (self.work / "refund.txt").read_text().splitlines()
        configs = [tuple(int(x) for x in c.split(":")) for c in a.configs]
        for i, config in enumerate(configs):
            part = targets[i::len(configs)]
            (self.work / f"refund-{_tag(config)}.txt").write_text("\n".join(part) + "\n")

        for config in configs:
            tag = _tag(config)
            say(f"gunicorn: {config[0]} sync workers, CONN_MAX_AGE={config[1]}")
            self.start_gunicorn(config, tag)
            h = self.wrk("healthz", "-", a.short)
            figure(f"healthz_rps_{tag}", h["rps"], "req/s")
            figure(f"healthz_worker_cpu_{tag}", h["cpu_ms"], "ms/request")
            spy = self.profile(a.seconds)
            r = self.wrk("refund", str(self.work / f"refund-{tag}.txt"), a.seconds)
            if spy:
                spy.wait(30)
            figure(f"refund_rps_{tag}", r["rps"], "req/s")
            figure(f"refund_p99_{tag}", r["p99_ms"], "ms")
            figure(f"refund_worker_cpu_{tag}", r["cpu_ms"], "ms/request")
            figure(f"refund_errors_{tag}", int(r["requests"] - r["s2xx"]), "responses")
            figure(f"refund_worker_peak_rss_{tag}", self.peak_rss_mb(), "MB")
            f = self.wrk("fetch", str(self.work / "fetch.txt"), a.short)
            figure(f"sale_fetch_rps_{tag}", f["rps"], "req/s")
            figure(f"sale_fetch_worker_cpu_{tag}", f["cpu_ms"], "ms/request")
            figure(f"sale_fetch_errors_{tag}", int(f["requests"] - f["s2xx"]), "responses")
        best = max(configs, key=lambda c: figures[f"refund_rps_{_tag(c)}"][0])
        tag = _tag(best)
        self.best = tag
        figure("best_configuration", tag)

        say(f"hot sales (contention), {tag}")
        self.start_gunicorn(best, f"{tag}-hot")
        hot = self.wrk("hot", str(self.work / "hot.txt"), a.short)
        figure("hot_refund_rps", hot["rps"], "req/s")
        figure("hot_refund_201", int(hot["s2xx"]), "responses")
        figure("hot_refund_4xx", int(hot["s4xx"]), "responses")
        figure("hot_refund_5xx", int(hot["s5xx"] + hot["sockerr"]), "responses")
        self.task("verify")

        say("bulk import of 1,000 records through /api/v2/refunds/json")
        self.start_gunicorn(best, f"{tag}-bulk")
        base_rss = self.peak_rss_mb()
        key = (self.work / "api_key").read_text().strip()
        times = []
        for b in (0, 1):
            body = (self.work / f"bulk{b}.json").read_bytes()
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/api/v2/refunds/json", data=body, method="POST",
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                         "X-Forwarded-Proto": "https"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=60) as resp:
                resp.read()
                status = resp.status
            times.append(time.perf_counter() - t0)
            if status not in (200, 201):
                raise RuntimeError(f"bulk import answered {status}")
        figure("bulk_import_1000_s", min(times), "s")
        figure("bulk_import_1000_worst_s", max(times), "s")
        figure("bulk_import_worker_peak_rss", self.peak_rss_mb(), "MB")
        figure("worker_rss_after_warmup", base_rss, "MB")
        self.stop_gunicorn()

        if a.admin_million:
            say("seed_demo --sales 1000000 (COPY), then the admin pages again")
            t0 = time.perf_counter()
            self.manage("seed_demo", "--sales", "1000000", "--batch", "20000")
            figure("seed_demo_top_up_to_1000000", time.perf_counter() - t0, "s")
            self.sql("VACUUM ANALYZE sales_sale")
            out = self.run(PY, "-c", "import bench.django_tasks as t, sys, pathlib; "
                           "t.admin_pages(pathlib.Path(sys.argv[1]))", str(self.work))
            for line in out.splitlines():
                name, _, rest = line.partition(": ")
                value, _, unit = rest.partition(" ")
                figure(name.replace("admin_", "admin_1m_", 1), _num(value), unit)
        # Last: every refund the run made (API, pgbench, hot sales, bulk import) is on the
        # books, and a nightly audit over all the sales takes this long.
        audit_books(self, 1_000_000 if a.admin_million else a.sales)
        figure("bench_wall_time", time.monotonic() - started, "s")
        self.ratios()

    def ratios(self) -> None:
        tag = self.best
        g = {k: v[0] for k, v in figures.items()}
        print(f"\n# ratios and targets (best configuration: gunicorn {tag}; "
              "w = sync workers, cma = CONN_MAX_AGE)", flush=True)
        rows = []
        refund_ratio = g[f"refund_rps_{tag}"] / g["pgbench_refund_tps"]
        rows.append(("refund_vs_pgbench", refund_ratio, ">= 0.40", refund_ratio >= 0.40
                     and g[f"refund_errors_{tag}"] == 0))
        fetch_ratio = g[f"sale_fetch_rps_{tag}"] / g[f"healthz_rps_{tag}"]
        rows.append(("sale_fetch_vs_healthz", fetch_ratio, ">= 0.45", fetch_ratio >= 0.45))
        rows.append(("hot_no_5xx_no_over_refund", g["hot_refund_5xx"] + g["hot_over_refund_rows"],
                     "== 0", g["hot_refund_5xx"] == 0 and g["hot_over_refund_rows"] == 0))
        for kind in ("refund_service", "refund"):
            q1, q50 = g[f"queries_{kind}_1_lines"], g[f"queries_{kind}_50_lines"]
            rows.append((f"queries_{kind}_1_vs_50_lines", f"{q1}/{q50}", "equal, <= 15",
                         q1 == q50 and q50 <= 15))
        rows.append(("queries_sale_fetch", g["queries_sale_fetch"], "<= 6",
                     g["queries_sale_fetch"] <= 6))
        rows.append(("queries_sale_list_100", g["queries_sale_list_100"], "<= 6",
                     g["queries_sale_list_100"] <= 6))
        b10, b100 = g["queries_bulk_import_10_records"], g["queries_bulk_import_100_records"]
        rows.append(("queries_bulk_import_10_vs_100", f"{b10}/{b100}", "not growing",
                     b100 <= b10))
        rows.append(("bulk_import_1000_s", g["bulk_import_1000_s"], "<= 1.5 s",
                     g["bulk_import_1000_s"] <= 1.5))
        for prefix in ("admin_", "admin_1m_"):
            for page in ("changelist", "sale_page_100_lines"):
                name = f"{prefix}{page}_median"
                if name in g:
                    qs = str(g[f"{prefix}{page}_queries"]).split("..")
                    rows.append((name, g[name], "<= 150 ms, constant queries",
                                 g[name] <= 150 and qs[0] == qs[-1]))
        audit = next((k for k in g if re.fullmatch(r"audit_books_\d+_s", k)), None)
        if audit:
            rows.append((audit, g[audit], "<= 300 s, 0 differences",
                         g[audit] <= 300 and str(g["audit_books_differences"]) == "0"))
        seed = f"seed_demo_{self.args.sales}"
        if self.args.sales == 100000:
            rows.append((seed, g[seed], "<= 60 s", g[seed] <= 60))
        for name, value, target, ok in rows:
            shown = f"{value:.2f}" if isinstance(value, float) else value
            print(f"{name}: {shown} (target {target}) {'MET' if ok else 'MISSED'}", flush=True)


def audit_books(bench: Bench, sales: int) -> None:
    """manage.py audit_books over every sale: its wall time, differences and exit code."""
    counts = bench.sql("SELECT (SELECT count(*) FROM sales_sale), "
                       "(SELECT count(*) FROM refunds_refund)")[0]
    figure("audit_books_sales", counts[0], "sales")
    figure("audit_books_refunds", counts[1], "refunds")
    say("audit_books")
    t0 = time.perf_counter()
    out = bench.run(PY, "manage.py", "audit_books", check=False)
    figure(f"audit_books_{sales}_s", time.perf_counter() - t0, "s")
    last = out.splitlines()[-1] if out else "differences: ?"
    figure("audit_books_differences", last.partition(": ")[2], "differences")


def _tag(config: tuple[int, ...]) -> str:
    tag = f"w{config[0]}_cma{config[1]}"
    return tag + ("_noprep" if len(config) > 2 and not config[2] else "")


def _num(text: str):
    for cast in (int, float):
        with contextlib.suppress(ValueError):
            return cast(text)
    return text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_conn_args(url: str) -> list[str]:
    u = urlsplit(url)
    args = ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432)]
    if u.username:
        args += ["-U", u.username]
    return [*args, u.path.lstrip("/")]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    p.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"),
                   help="PostgreSQL server URL (its database part is ignored)")
    p.add_argument("--db", default="bench_backoffice", help="database to create (bench_*)")
    p.add_argument("--sales", type=int, default=100000, help="seed_demo --sales N")
    p.add_argument("--seconds", type=int, default=20, help="pgbench and refund scenario length")
    p.add_argument("--short", type=int, default=10, help="length of the other wrk scenarios")
    p.add_argument("--configs", nargs="+", default=["2:0", "2:60:0", "2:60", "4:60"],
                   metavar="WORKERS:CONN_MAX_AGE[:PREPARED]",
                   help="gunicorn configurations to compare (sync workers : CONN_MAX_AGE "
                        "[: DB_PREPARED_STATEMENTS, default 1]); the one with the best "
                        "refund throughput is used for the rest")
    p.add_argument("--no-admin-million", dest="admin_million", action="store_false",
                   help="skip topping the sales up to 1,000,000 to time the admin there "
                        "(~2 min of the run)")
    p.add_argument("--profile", metavar="DIR",
                   help="py-spy a worker during the refund scenario, speedscope files in DIR")
    p.add_argument("--keep", action="store_true", help="keep the database and temp files")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for tool in ("wrk", "pgbench"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install -y "
                             f"{'wrk' if tool == 'wrk' else 'postgresql-client'}")
    bench = Bench(args)

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    try:
        bench.main()
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
        return 130
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
