"""Benchmark on one machine: cosmos-sms throughput, enqueue rate, latency, CPU and memory vs a naive Celery app.

    .venv/bin/python -m bench.run [--messages N] [--latencies 0,100] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import requests

from bench.processes import RssSampler, Service, cosmos_cmd, cpu_seconds, free_port, spawn, start_redis, wait_for
from bench.profiling import Profiler, summarize
from bench.report import print_table
from config.settings import load_settings
from ledger.record import FINAL_STATES
from producers.producer import SmsProducer

DEFAULT_MESSAGES = 20_000
ENQUEUE_BATCH = 1_000
"""Messages per send_bulk call."""
POLL_BATCH = 2_000
"""State reads per pipelined round trip while waiting for `sent`."""
POLL_INTERVAL_S = 0.05
STALL_S = 120.0
"""A run with no job reaching `sent` for this long has failed."""
LIGHT_RATE_PER_S = 50
LIGHT_DURATION_S = 10.0
MEMORY_RECORDS = 10_000
WARMUP_MESSAGES = 200
"""Sent before any timing, so connections, scripts and imports are warm on both sides."""
TO, SENDER, TEXT = "033334445566770", "Company Name 123", "Hello world!"
MESSAGE = {"to": TO, "sender": SENDER, "text": TEXT}


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Bench:
    """One run: a private Redis, then per latency a sandbox, the workers, and the baseline."""

    def __init__(self, work_dir: Path, messages: int, light_s: float, memory_records: int):
        self.work_dir = work_dir
        self.messages = messages
        self.light_s = light_s
        self.memory_records = memory_records
        self.services: list[Service] = []
        self.api_key = "bench-key"
        self.api_secret = f"bench-secret-{uuid.uuid4().hex[:12]}"
        self.redis_url = ""
        self.profile_dir: Path | None = None

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every child: ours, minus any COSMOS_* or REDIS_URL of the caller's shell."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "BENCH_")) and k != "REDIS_URL"}
        env.update(REDIS_URL=self.redis_url, COSMOS_API_KEY=self.api_key, COSMOS_API_SECRET=self.api_secret,
                   PYTHONUNBUFFERED="1", **extra)
        return env

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> Service:
        service = spawn(name, cmd, env, self.work_dir)
        self.services.append(service)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()

    # --- one latency ---------------------------------------------------------------
    def run_latency(self, latency_ms: int, measure_memory: bool) -> dict:
        port = free_port()
        sandbox = self.start(f"sandbox-{latency_ms}ms", cosmos_cmd(
            "sandbox", "--port", str(port), "--latency-ms", str(latency_ms), "--receipt-delay-s", "3600"),
            self.env())
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: sandbox.check_alive() or _answers(base_url), 30, "the sandbox to answer")
        result: dict = {"latency_ms": latency_ms}
        result.update(self.run_cosmos(latency_ms, base_url, sandbox, measure_memory))
        result.update(self.run_enqueue_only(latency_ms, base_url))
        result.update(self.run_baseline(latency_ms, base_url))
        stats = requests.get(f"{base_url}/_sandbox/stats", timeout=10).json()
        result["sandbox_requests"] = stats["requests"]
        result["sandbox_by_status"] = stats["by_status"]
        sandbox.stop()
        for name in ("bulk", "single"):
            result[f"{name}_vs_baseline"] = result[f"{name}_msgs_per_s"] / result["baseline_msgs_per_s"]
        return result

    def producer(self, prefix: str, base_url: str) -> SmsProducer:
        return SmsProducer(load_settings(redis_url=self.redis_url, redis_prefix=prefix, api_url=f"{base_url}/v1.0",
                                         api_key=self.api_key, api_secret=self.api_secret))

    def run_cosmos(self, latency_ms: int, base_url: str, sandbox: Service, measure_memory: bool) -> dict:
        prefix = f"bench-{latency_ms}ms-{uuid.uuid4().hex[:8]}"
        env = self.env(COSMOS_API_URL=f"{base_url}/v1.0", COSMOS_REDIS_PREFIX=prefix)
        workers = self.start(f"workers-{latency_ms}ms", cosmos_cmd("worker"), env)
        processes = os.cpu_count() or 1
        log(f"latency {latency_ms} ms: starting `cosmos-sms worker` ({processes} processes)")
        wait_for(lambda: workers.check_alive() or workers.log().count(" ready") >= processes, 60,
                 "every worker process to log `ready`")
        producer = self.producer(prefix, base_url)
        sampler = RssSampler([workers.proc.pid])
        sampler.start()
        out: dict = {}
        try:
            wait_sent(producer, producer.send_bulk([MESSAGE] * WARMUP_MESSAGES)
                      + [producer.send_sms(**MESSAGE) for _ in range(WARMUP_MESSAGES // 10)])

            log(f"latency {latency_ms} ms: send_bulk of {self.messages} messages")
            profiler = None
            if self.profile_dir is not None:
                profiler = Profiler(self.profile_dir, f"bulk-{latency_ms}ms", workers.proc.pid)
                profiler.start()
            cpu_workers, cpu_sandbox = cpu_seconds(workers.proc.pid), cpu_seconds(sandbox.proc.pid)
            started = time.perf_counter()
            ids = []
            for start in range(0, self.messages, ENQUEUE_BATCH):
                ids += producer.send_bulk([MESSAGE] * min(ENQUEUE_BATCH, self.messages - start))
            enqueued = time.perf_counter()
            finished, failed = wait_sent(producer, ids)
            out["bulk_msgs_per_s"] = len(ids) / (finished - started)
            out["bulk_enqueue_in_run_msgs_per_s"] = len(ids) / (enqueued - started)
            out["bulk_failed"] = failed
            out["worker_cpu_s_per_msg"] = (cpu_seconds(workers.proc.pid) - cpu_workers) / len(ids)
            out["sandbox_cpu_s_per_msg"] = (cpu_seconds(sandbox.proc.pid) - cpu_sandbox) / len(ids)
            if profiler is not None:
                profiler.stop()
                log(f"profile of the bulk run at {latency_ms} ms:\n{summarize(profiler.files)}")

            singles = max(1, self.messages // 4)
            log(f"latency {latency_ms} ms: loop of {singles} send_sms")
            started = time.perf_counter()
            ids = [producer.send_sms(**MESSAGE) for _ in range(singles)]
            enqueued = time.perf_counter()
            finished, failed = wait_sent(producer, ids)
            out["single_msgs_per_s"] = len(ids) / (finished - started)
            out["single_enqueue_in_run_msgs_per_s"] = len(ids) / (enqueued - started)
            out["single_failed"] = failed

            log(f"latency {latency_ms} ms: {LIGHT_RATE_PER_S} msg/s of send_sms for {self.light_s:g} s")
            out["light_load"] = light_load(producer, self.light_s)
            if measure_memory:
                log(f"latency {latency_ms} ms: Redis memory of {self.memory_records} records")
                out.update(redis_memory(producer, self.memory_records))
        finally:
            sampler.stop()
            workers.stop()
        out["worker_peak_rss_mb"] = sampler.peak_mb
        out["worker_processes"] = processes
        return out

    def run_enqueue_only(self, latency_ms: int, base_url: str) -> dict:
        """Enqueue rates with no worker running: the producer's own cost, not a share of the CPUs."""
        producer = self.producer(f"bench-enqueue-{latency_ms}ms-{uuid.uuid4().hex[:8]}", base_url)
        producer.send_bulk([MESSAGE] * 10)
        started = time.perf_counter()
        for start in range(0, self.messages, ENQUEUE_BATCH):
            producer.send_bulk([MESSAGE] * min(ENQUEUE_BATCH, self.messages - start))
        bulk = self.messages / (time.perf_counter() - started)
        singles = max(1, self.messages // 4)
        started = time.perf_counter()
        for _ in range(singles):
            producer.send_sms(**MESSAGE)
        single = singles / (time.perf_counter() - started)
        # Unconsumed jobs: drop them so later memory figures are not skewed by them.
        _delete_prefix(producer.redis, producer.keys.prefix)
        return {"bulk_enqueue_msgs_per_s": bulk, "single_enqueue_msgs_per_s": single}

    def run_baseline(self, latency_ms: int, base_url: str) -> dict:
        """The naive Celery app: `.delay()` N times, time until its tasks ran N times."""
        from bench import baseline  # reads BENCH_BASELINE_REDIS_URL at import, set by main()

        prefix = f"baseline-{latency_ms}ms-{uuid.uuid4().hex[:8]}"
        env = self.env(BENCH_BASELINE_REDIS_URL=self.redis_url, BENCH_BASELINE_PREFIX=prefix,
                       BENCH_BASELINE_SMS_URL=f"{base_url}/v1.0/sms/")
        worker = self.start(f"baseline-{latency_ms}ms", [
            sys.executable, "-m", "celery", "-A", "bench.baseline", "worker", "--pool", "threads",
            "-c", str(baseline.CONCURRENCY), "--hostname", f"{prefix}@%h"], env)
        client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        log(f"latency {latency_ms} ms: naive baseline, {self.messages} messages")
        wait_for(lambda: worker.check_alive() or client.get(baseline.ready_key(prefix)), 60,
                 "the baseline worker to be ready")
        done = baseline.done_key(prefix)

        def run(count: int, first: int) -> tuple[float, float, float]:
            before = int(client.get(done) or 0)
            started = time.perf_counter()
            for job in range(first, first + count):
                baseline.send.delay(job, TO, SENDER, TEXT)
            enqueued = time.perf_counter()
            finished = wait_count(client, done, before + count)
            return started, enqueued, finished

        sampler = RssSampler([worker.proc.pid])
        sampler.start()
        try:
            run(WARMUP_MESSAGES, 0)
            cpu = cpu_seconds(worker.proc.pid)
            started, enqueued, finished = run(self.messages, WARMUP_MESSAGES)
            cpu = cpu_seconds(worker.proc.pid) - cpu
        finally:
            sampler.stop()
            worker.stop()
        return {
            "baseline_msgs_per_s": self.messages / (finished - started),
            "baseline_enqueue_msgs_per_s": self.messages / (enqueued - started),
            "baseline_worker_cpu_s_per_msg": cpu / self.messages,
            "baseline_peak_rss_mb": sampler.peak_mb,
        }


# --- measurements ---------------------------------------------------------------------
def wait_sent(producer: SmsProducer, ids: list[str]) -> tuple[float, dict[str, int]]:
    """Poll states in pipelined batches until every job left the way to `sent`;
    returns when that was seen, and the count of jobs that ended otherwise, per state."""
    pending = list(ids)
    failed: dict[str, int] = {}
    last_progress = time.perf_counter()
    while pending:
        still = []
        for start in range(0, len(pending), POLL_BATCH):
            batch = pending[start:start + POLL_BATCH]
            for job_id, state in zip(batch, producer.ledger.states(batch)):
                if state == "sent":
                    continue
                if state in FINAL_STATES or state == "held" or state is None:
                    failed[state or "missing"] = failed.get(state or "missing", 0) + 1
                else:
                    still.append(job_id)
        now = time.perf_counter()
        if len(still) < len(pending):
            last_progress = now
        elif now - last_progress > STALL_S:
            raise RuntimeError(f"{len(still)} jobs made no progress for {STALL_S:g} s")
        pending = still
        if pending:
            time.sleep(POLL_INTERVAL_S)
    return time.perf_counter(), failed


def wait_count(client: redis.Redis, key: str, target: int) -> float:
    """Poll a counter until it reaches `target`; returns when that was seen."""
    last, last_progress = -1, time.perf_counter()
    while True:
        value = int(client.get(key) or 0)
        now = time.perf_counter()
        if value >= target:
            return now
        if value > last:
            last, last_progress = value, now
        elif now - last_progress > STALL_S:
            raise RuntimeError(f"baseline stuck at {value} of {target} for {STALL_S:g} s")
        time.sleep(POLL_INTERVAL_S / 5)


def light_load(producer: SmsProducer, duration_s: float) -> dict:
    """send_sms paced at LIGHT_RATE_PER_S; enqueue→sent latency from the records' own clock (Redis TIME)."""
    count = max(1, int(duration_s * LIGHT_RATE_PER_S))
    ids = []
    started = time.perf_counter()
    for i in range(count):
        delay = started + i / LIGHT_RATE_PER_S - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing, not synchronisation
        ids.append(producer.send_sms(**MESSAGE))
    wait_sent(producer, ids)
    pipe = producer.redis.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(producer.keys.job(job_id), "created_ts", "sent_ts")
    latencies = sorted((float(sent) - float(created)) * 1000 for created, sent in pipe.execute() if sent)
    return {"rate_per_s": LIGHT_RATE_PER_S, "messages": len(latencies),
            "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99), "max_ms": latencies[-1]}


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def redis_memory(producer: SmsProducer, records: int) -> dict:
    """used_memory growth over `records` jobs recorded, then sent with one attempt each.

    Client buffers are subtracted from the headline figure: they grow with the workers'
    connection pools (one connection per busy thread), not with the records kept.
    """
    client = producer.redis
    before = client.info("memory")
    ids = []
    for start in range(0, records, ENQUEUE_BATCH):
        ids += producer.send_bulk([MESSAGE] * min(ENQUEUE_BATCH, records - start))
    wait_sent(producer, ids)
    time.sleep(1.0)  # let the last acks and lease releases land
    after = client.info("memory")
    grew = after["used_memory"] - before["used_memory"]
    clients = after["mem_clients_normal"] - before["mem_clients_normal"]
    sample = client.hgetall(producer.keys.job(ids[-1]))
    return {
        "redis_bytes_per_record": (grew - clients) / records,
        "redis_used_memory_delta_per_record": grew / records,
        "redis_client_buffers_delta_per_record": clients / records,
        "redis_job_hash_bytes": client.memory_usage(producer.keys.job(ids[-1])),
        "redis_msgid_key_bytes": client.memory_usage(producer.keys.message_id(sample.get("message_id", ""))) or 0,
        "redis_job_fields": len(sample),
    }


def _delete_prefix(client: redis.Redis, prefix: str) -> None:
    batch = []
    for key in client.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def _answers(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/_sandbox/stats", timeout=1).ok
    except requests.RequestException:
        return False


def machine_facts() -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "cpu_model": cpu_model, "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=None, help=f"bulk run size (default {DEFAULT_MESSAGES})")
    parser.add_argument("--latencies", default="0,100", help="sandbox latencies in ms, comma-separated")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run for CI: a few hundred messages, latency 0 only, 2 s light load")
    parser.add_argument("--json", action="store_true", help="print a JSON object on stdout (the table on stderr)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy the worker processes during each bulk run; raw stacks into DIR")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = args.messages or 400
        args.latencies = "0"
        args.light_s, args.memory_records = 2.0, 1_000
    else:
        args.messages = args.messages or DEFAULT_MESSAGES
        args.light_s, args.memory_records = LIGHT_DURATION_S, MEMORY_RECORDS
    args.latency_list = [int(x) for x in args.latencies.split(",") if x.strip()]
    if args.messages < 4 or not args.latency_list:
        parser.error("need at least 4 messages and one latency")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="cosmos-bench-"))
    bench = Bench(work_dir, args.messages, args.light_s, args.memory_records)
    bench.profile_dir = args.profile
    facts = machine_facts()
    results = {"machine": facts, "messages": args.messages, "quick": args.quick, "scenarios": []}
    ok = False
    try:
        redis_service, bench.redis_url = start_redis(work_dir)
        bench.services.append(redis_service)
        # The feeding side of the baseline reads its broker from here when bench.baseline is imported.
        os.environ["BENCH_BASELINE_REDIS_URL"] = bench.redis_url
        for index, latency in enumerate(args.latency_list):
            results["scenarios"].append(bench.run_latency(latency, measure_memory=index == 0))
        first = results["scenarios"][0]
        results["redis_bytes_per_record"] = first["redis_bytes_per_record"]
        facts["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        ok = True
    finally:
        bench.stop_all()
        if ok:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            log(f"failed; process logs kept in {work_dir}")
    print_table(results, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
