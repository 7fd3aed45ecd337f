"""Benchmark on one machine: cosmos-sms throughput, enqueue rate, latency, CPU and memory vs a naive Celery app.

.venv/bin/python -m bench.run [--messages N] [--latencies 0,100] [--quick] [--json]
    [--set COST=on|off ...] [--costs aof,events,durable,indexes,forwarding|none] [--no-delivered]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
import requests

from bench.costs import (
    BY_NAME,
    COSTS,
    parse_states,
    shipped_appendfsync,
    shipped_state,
    supported,
    worker_env,
)
from bench.processes import (
    RssSampler,
    Service,
    cosmos_cmd,
    cpu_seconds,
    free_port,
    spawn,
    start_redis,
    wait_for,
)
from bench.profiling import Profiler, summarize
from bench.report import print_table
from cli.worker_command import default_bulk_processes
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
LIGHT_DURATION_S = 60.0
MEMORY_RECORDS = 10_000
WARMUP_MESSAGES = 200
"""Sent before any timing, so connections, scripts and imports are warm on both sides."""
TO, SENDER, TEXT = "033334445566770", "Company Name 123", "Hello world!"
MESSAGE: dict[str, Any] = {"to": TO, "sender": SENDER, "text": TEXT}
RECEIPT_DELAY_S = 0.2
"""The sandbox's delay before it pushes a receipt, in the run that goes on to `delivered`."""
DELIVERED = ("delivered", "not_delivered")


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Bench:
    """One run: a private Redis, then per latency a sandbox, the workers, and the baseline."""

    def __init__(
        self, work_dir: Path, messages: int, light_s: float, memory_records: int, states: dict[str, bool] | None = None
    ):
        self.work_dir = work_dir
        self.messages = messages
        self.light_s = light_s
        self.memory_records = memory_records
        self.services: list[Service] = []
        self.api_key = "bench-key"
        self.api_secret = f"bench-secret-{uuid.uuid4().hex[:12]}"
        self.webhook_secret = f"bench-webhook-{uuid.uuid4().hex}"
        self.app_webhook_secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        self.redis_url = ""
        self.redis: redis.Redis | None = None
        self.profile_dir: Path | None = None
        # The main runs' costs: as shipped unless --set says otherwise.
        self.states = {cost.name: shipped_state(cost) for cost in COSTS}
        self.states.update(states or {})
        self.appendfsync = shipped_appendfsync()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every child: ours, minus any COSMOS_* or REDIS_URL of the caller's shell."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "BENCH_")) and k != "REDIS_URL"}
        env.update(
            REDIS_URL=self.redis_url,
            COSMOS_API_KEY=self.api_key,
            COSMOS_API_SECRET=self.api_secret,
            PYTHONUNBUFFERED="1",
            **extra,
        )
        return env

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> Service:
        service = spawn(name, cmd, env, self.work_dir)
        self.services.append(service)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()

    def start_sandbox(self, latency_ms: int, receipt_delay_s: float = 3600) -> tuple[Service, str]:
        port = free_port()
        sandbox = self.start(
            f"sandbox-{latency_ms}ms-{port}",
            cosmos_cmd(
                "sandbox",
                "--port",
                str(port),
                "--latency-ms",
                str(latency_ms),
                "--receipt-delay-s",
                str(receipt_delay_s),
            ),
            self.env(),
        )
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: sandbox.check_alive() and _answers(base_url), 30, "the sandbox to answer")
        return sandbox, base_url

    # --- costs that live in Redis ----------------------------------------------------------
    def apply_redis_costs(self, states: dict[str, bool]) -> dict:
        """AOF on or off, and a replica attached for durable acknowledgements; says what was applied."""
        assert self.redis is not None
        if states.get("aof"):
            self.redis.config_set("appendfsync", self.appendfsync)
            self.redis.config_set("appendonly", "yes")
            wait_for(
                lambda: (
                    self.redis.info("persistence")["aof_rewrite_in_progress"] == 0
                    and self.redis.info("persistence")["aof_enabled"] == 1
                ),
                120,
                "the AOF to be written",
            )
        else:
            self.redis.config_set("appendonly", "no")
        replicas = 0
        if states.get("durable") and supported(BY_NAME["durable"]):
            self.ensure_replica()
            replicas = self.redis.info("replication")["connected_slaves"]
        elif getattr(self, "replica", None) is not None:
            self.replica.stop()
            self.replica = None
            wait_for(lambda: self.redis.info("replication")["connected_slaves"] == 0, 30, "the replica to go")
        return {"aof": self.appendfsync if states.get("aof") else "off", "replicas": replicas}

    def ensure_replica(self) -> None:
        if getattr(self, "replica", None) is not None:
            return
        port = self.redis.connection_pool.connection_kwargs["port"]
        self.replica, _url = start_redis(self.work_dir, "replica", "--replicaof", "127.0.0.1", str(port))
        self.services.append(self.replica)
        wait_for(
            lambda: (
                self.redis.info("replication")["connected_slaves"] >= 1
                and self.redis.info("replication").get("slave0", {}).get("state") == "online"
            ),
            60,
            "the replica to be in sync",
        )

    # --- one latency ---------------------------------------------------------------
    def run_latency(self, latency_ms: int, measure_memory: bool) -> dict:
        sandbox, base_url = self.start_sandbox(latency_ms)
        result: dict = {"latency_ms": latency_ms}
        result["costs_applied"] = self.apply_redis_costs(self.states)
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

    def producer(self, prefix: str, base_url: str, states: dict[str, bool] | None = None, **extra: str) -> SmsProducer:
        overrides = {**worker_env(states if states is not None else self.states), **extra}
        return SmsProducer(
            load_settings(
                redis_url=self.redis_url,
                redis_prefix=prefix,
                api_url=f"{base_url}/v1.0",
                api_key=self.api_key,
                api_secret=self.api_secret,
                **overrides,
            )
        )

    def start_workers(self, name: str, base_url: str, prefix: str, states: dict[str, bool], **extra: str) -> Service:
        env = self.env(COSMOS_API_URL=f"{base_url}/v1.0", COSMOS_REDIS_PREFIX=prefix, **worker_env(states), **extra)
        workers = self.start(name, cosmos_cmd("worker"), env)
        processes = default_bulk_processes() + 1  # and the single lane's
        log(f"{name}: starting `cosmos-sms worker` ({processes} processes)")
        wait_for(
            lambda: workers.check_alive() and workers.log().count(" ready") >= processes,
            60,
            "every worker process to log `ready`",
        )
        return workers

    def timed_bulk(
        self,
        producer: SmsProducer,
        workers: Service,
        sandbox: Service,
        label: str,
        until: tuple[str, ...] = ("sent",),
        callback: str | None = None,
    ) -> dict:
        """send_bulk of N messages in calls of ENQUEUE_BATCH; clock until every record is in `until`."""
        message = {**MESSAGE, "callback": callback} if callback else MESSAGE
        profiler = self.profiler(label, workers)
        cpu_workers, cpu_sandbox = cpu_seconds(workers.proc.pid), cpu_seconds(sandbox.proc.pid)
        started = time.perf_counter()
        ids: list[str] = []
        for start in range(0, self.messages, ENQUEUE_BATCH):
            ids += producer.send_bulk([message] * min(ENQUEUE_BATCH, self.messages - start))
        enqueued = time.perf_counter()
        finished, failed = wait_state(producer, ids, until)
        out = {
            "msgs_per_s": len(ids) / (finished - started),
            "enqueue_in_run_msgs_per_s": len(ids) / (enqueued - started),
            "failed": failed,
            "worker_cpu_s_per_msg": (cpu_seconds(workers.proc.pid) - cpu_workers) / len(ids),
            "sandbox_cpu_s_per_msg": (cpu_seconds(sandbox.proc.pid) - cpu_sandbox) / len(ids),
        }
        self.stop_profiler(profiler)
        return out

    def profiler(self, label: str, workers: Service) -> Profiler | None:
        """A py-spy profile of the worker processes from now, with --profile; else None."""
        if self.profile_dir is None:
            return None
        profiler = Profiler(self.profile_dir, label, workers.proc.pid)
        profiler.start()
        return profiler

    def stop_profiler(self, profiler: Profiler | None) -> None:
        if profiler is not None:
            profiler.stop()
            log(f"profile of {profiler.name}:\n{summarize(profiler.files)}")

    def run_cosmos(self, latency_ms: int, base_url: str, sandbox: Service, measure_memory: bool) -> dict:
        prefix = f"bench-{latency_ms}ms-{uuid.uuid4().hex[:8]}"
        workers = self.start_workers(f"workers-{latency_ms}ms", base_url, prefix, self.states)
        producer = self.producer(prefix, base_url)
        sampler = RssSampler([workers.proc.pid])
        sampler.start()
        out: dict = {}
        try:
            wait_sent(
                producer,
                producer.send_bulk([MESSAGE] * WARMUP_MESSAGES)
                + [producer.send_sms(**MESSAGE) for _ in range(WARMUP_MESSAGES // 10)],
            )

            log(f"latency {latency_ms} ms: send_bulk of {self.messages} messages")
            bulk = self.timed_bulk(producer, workers, sandbox, f"bulk-{latency_ms}ms")
            out["bulk_msgs_per_s"] = bulk["msgs_per_s"]
            out["bulk_enqueue_in_run_msgs_per_s"] = bulk["enqueue_in_run_msgs_per_s"]
            out["bulk_failed"] = bulk["failed"]
            out["worker_cpu_s_per_msg"] = bulk["worker_cpu_s_per_msg"]
            out["sandbox_cpu_s_per_msg"] = bulk["sandbox_cpu_s_per_msg"]

            singles = max(1, self.messages // 4)
            log(f"latency {latency_ms} ms: loop of {singles} send_sms")
            profiler = self.profiler(f"single-{latency_ms}ms", workers)
            cpu_workers = cpu_seconds(workers.proc.pid)
            started = time.perf_counter()
            ids = [producer.send_sms(**MESSAGE) for _ in range(singles)]
            enqueued = time.perf_counter()
            finished, failed = wait_sent(producer, ids)
            out["single_worker_cpu_s_per_msg"] = (cpu_seconds(workers.proc.pid) - cpu_workers) / len(ids)
            self.stop_profiler(profiler)
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
        out["worker_processes"] = default_bulk_processes() + 1
        return out

    # --- each cost flipped ---------------------------------------------------------------
    def run_costs(self, latency_ms: int, names: list[str], main: dict | None) -> dict:
        """send_bulk of N with one cost flipped from the main runs' state, the others as they were.

        The main run at the same latency gives the other half of each pair.
        """
        out: dict = {}
        sandbox, base_url = self.start_sandbox(latency_ms)
        try:
            for cost in (BY_NAME[n] for n in names if BY_NAME[n].where == "bulk"):
                if not supported(cost):
                    out[cost.name] = {"supported": False, "what": cost.what}
                    continue
                states = {**self.states, cost.name: not self.states[cost.name]}
                applied = self.apply_redis_costs(states)
                prefix = f"bench-cost-{cost.name}-{uuid.uuid4().hex[:8]}"
                workers = self.start_workers(
                    f"workers-{cost.name}-{'on' if states[cost.name] else 'off'}", base_url, prefix, states
                )
                try:
                    producer = self.producer(prefix, base_url, states)
                    wait_sent(producer, producer.send_bulk([MESSAGE] * WARMUP_MESSAGES))
                    log(
                        f"latency {latency_ms} ms: send_bulk of {self.messages} with {cost.name} "
                        f"{'on' if states[cost.name] else 'off'}"
                    )
                    flipped = self.timed_bulk(producer, workers, sandbox, f"cost-{cost.name}")
                finally:
                    workers.stop()
                flipped["costs_applied"] = applied
                entry = {
                    "supported": True,
                    "what": cost.what,
                    "latency_ms": latency_ms,
                    "on" if states[cost.name] else "off": flipped,
                }
                if main is not None:
                    entry["off" if states[cost.name] else "on"] = {
                        "msgs_per_s": main["bulk_msgs_per_s"],
                        "worker_cpu_s_per_msg": main["worker_cpu_s_per_msg"],
                        "failed": main["bulk_failed"],
                        "costs_applied": main["costs_applied"],
                    }
                out[cost.name] = entry
        finally:
            self.apply_redis_costs(self.states)
            sandbox.stop()
        return out

    # --- all the way to delivered ----------------------------------------------------------
    def run_delivered(self, latency_ms: int, forwarding: list[bool]) -> dict:
        """send_bulk of N with receipts pushed by the sandbox through our receiver, until every record
        is `delivered`; with forwarding on, each message carries the application's own callback."""
        out: dict = {}
        self.apply_redis_costs(self.states)
        sandbox, base_url = self.start_sandbox(latency_ms, receipt_delay_s=RECEIPT_DELAY_S)
        app = AppReceiver()
        try:
            for forward in forwarding:
                label = f"delivered-forwarding-{'on' if forward else 'off'}"
                prefix = f"bench-{label}-{uuid.uuid4().hex[:8]}"
                port = free_port()
                webhook = {
                    "COSMOS_WEBHOOK_URL": f"http://127.0.0.1:{port}/delivery-status",
                    "COSMOS_WEBHOOK_SECRET": self.webhook_secret,
                }
                if forward:
                    webhook["COSMOS_APP_WEBHOOK_SECRET"] = self.app_webhook_secret
                receiver = self.start(
                    f"receiver-{label}",
                    cosmos_cmd("webhook", "--port", str(port)),
                    self.env(COSMOS_REDIS_PREFIX=prefix, **worker_env(self.states), **webhook),
                )
                wait_for(
                    lambda r=receiver, p=port: r.check_alive() and _answers_health(p), 30, "the receiver to answer"
                )
                workers = self.start_workers(f"workers-{label}", base_url, prefix, self.states, **webhook)
                try:
                    producer = self.producer(prefix, base_url, **webhook)
                    callback = app.url if forward else None
                    wait_state(producer, producer.send_bulk([MESSAGE] * WARMUP_MESSAGES), DELIVERED)
                    log(
                        f"latency {latency_ms} ms: send_bulk of {self.messages} to `delivered`, forwarding "
                        f"{'on' if forward else 'off'}"
                    )
                    forwards_before = app.count
                    receiver_cpu = cpu_seconds(receiver.proc.pid)
                    figures = self.timed_bulk(producer, workers, sandbox, label, until=DELIVERED, callback=callback)
                    figures["receiver_cpu_s_per_msg"] = (cpu_seconds(receiver.proc.pid) - receiver_cpu) / self.messages
                    figures["forwards_received"] = app.count - forwards_before
                finally:
                    workers.stop()
                    receiver.stop()
                out["forwarding_on" if forward else "forwarding_off"] = figures
        finally:
            app.stop()
            sandbox.stop()
        out["latency_ms"] = latency_ms
        out["receipt_delay_s"] = RECEIPT_DELAY_S
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
        # Imported here: it reads BENCH_BASELINE_REDIS_URL at import, set by main().
        from bench import baseline

        prefix = f"baseline-{latency_ms}ms-{uuid.uuid4().hex[:8]}"
        env = self.env(
            BENCH_BASELINE_REDIS_URL=self.redis_url,
            BENCH_BASELINE_PREFIX=prefix,
            BENCH_BASELINE_SMS_URL=f"{base_url}/v1.0/sms/",
        )
        worker = self.start(
            f"baseline-{latency_ms}ms",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.baseline",
                "worker",
                "--pool",
                "threads",
                "-c",
                str(baseline.CONCURRENCY),
                "--hostname",
                f"{prefix}@%h",
            ],
            env,
        )
        client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        log(f"latency {latency_ms} ms: naive baseline, {self.messages} messages")
        wait_for(
            lambda: worker.check_alive() and client.get(baseline.ready_key(prefix)),
            60,
            "the baseline worker to be ready",
        )
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
    return wait_state(producer, ids, ("sent",))


def wait_state(producer: SmsProducer, ids: list[str], until: tuple[str, ...]) -> tuple[float, dict[str, int]]:
    """Poll states in pipelined batches until every job reached one of `until` or ended otherwise;
    returns when that was seen, and the count of jobs that ended otherwise, per state."""
    pending = list(ids)
    failed: dict[str, int] = {}
    last_progress = time.perf_counter()
    while pending:
        still = []
        for start in range(0, len(pending), POLL_BATCH):
            batch = pending[start : start + POLL_BATCH]
            for job_id, state in zip(batch, producer.ledger.states(batch)):
                if state in until:
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
    return {
        "rate_per_s": LIGHT_RATE_PER_S,
        "messages": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1],
    }


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
        "redis_msgid_key_bytes": client.memory_usage(producer.keys.message_id(str(sample.get("message_id", "")))) or 0,
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


class AppReceiver(ThreadingHTTPServer):
    """The application's own callback endpoint, in this process: answers 204 to every forward, counts them."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _AppHandler)
        threading.Thread(target=self.serve_forever, name="app-receiver", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/sms-status"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _AppHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.count += 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args):
        pass


def _answers_health(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500
    except requests.RequestException:
        return False


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
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages", type=int, default=None, help=f"messages per throughput figure (default {DEFAULT_MESSAGES:,})"
    )
    parser.add_argument("--latencies", default="0,100", help="sandbox latencies in ms, comma-separated")
    parser.add_argument(
        "--light-s",
        type=float,
        default=None,
        help=f"seconds of the {LIGHT_RATE_PER_S} msg/s latency run (default {LIGHT_DURATION_S:g})",
    )
    parser.add_argument(
        "--memory-records",
        type=int,
        default=None,
        help=f"records of the Redis memory figure (default {MEMORY_RECORDS:,})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="COST=on|off",
        help="a cost's state in the main runs (default: as shipped); costs: " + ", ".join(c.name for c in COSTS),
    )
    parser.add_argument(
        "--costs", default="all", help="costs to price by a run with each flipped (comma-separated, `all` or `none`)"
    )
    parser.add_argument(
        "--costs-latency",
        type=int,
        default=None,
        help="sandbox latency of the cost runs (default: the first of --latencies)",
    )
    parser.add_argument(
        "--no-delivered", action="store_true", help="skip the run to `delivered` (receipts through the receiver)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run for CI: a few hundred messages, latency 0 only, 2 s light load, no cost runs "
        "and no run to `delivered`",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object on stdout (the table on stderr)")
    parser.add_argument(
        "--json-out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the results so far to FILE after every phase (a run cut short keeps them)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="py-spy the worker processes during each bulk run; raw stacks into DIR",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = args.messages or 400
        args.latencies = "0"
        args.light_s = args.light_s or 2.0
        args.memory_records = args.memory_records or 1_000
        args.costs = "none" if args.costs == "all" else args.costs
        args.no_delivered = True
    else:
        args.messages = args.messages or DEFAULT_MESSAGES
        args.light_s = args.light_s or LIGHT_DURATION_S
        args.memory_records = args.memory_records or MEMORY_RECORDS
    args.latency_list = [int(x) for x in args.latencies.split(",") if x.strip()]
    if args.messages < 4 or not args.latency_list:
        parser.error("need at least 4 messages and one latency")
    try:
        args.states = parse_states(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    if args.costs == "all":
        args.cost_list = [c.name for c in COSTS]
    elif args.costs == "none":
        args.cost_list = []
    else:
        args.cost_list = [x.strip() for x in args.costs.split(",") if x.strip()]
        unknown = [x for x in args.cost_list if x not in BY_NAME]
        if unknown:
            parser.error(f"--costs: unknown {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    args.costs_latency = args.latency_list[0] if args.costs_latency is None else args.costs_latency
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="cosmos-bench-"))
    bench = Bench(work_dir, args.messages, args.light_s, args.memory_records, args.states)
    bench.profile_dir = args.profile
    facts = machine_facts()
    results: dict = {
        "machine": facts,
        "messages": args.messages,
        "quick": args.quick,
        "scenarios": [],
        "states": {k: (v if supported(BY_NAME[k]) else None) for k, v in bench.states.items()},
        "appendfsync_shipped": bench.appendfsync,
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    ok = False

    def save() -> None:
        if args.json_out is not None:
            args.json_out.write_text(json.dumps(results, indent=2))

    try:
        redis_service, bench.redis_url = start_redis(work_dir)
        bench.services.append(redis_service)
        bench.redis = redis.Redis.from_url(bench.redis_url, decode_responses=True)
        # The feeding side of the baseline reads its broker from here when bench.baseline is imported.
        os.environ["BENCH_BASELINE_REDIS_URL"] = bench.redis_url
        for index, latency in enumerate(args.latency_list):
            results["scenarios"].append(bench.run_latency(latency, measure_memory=index == 0))
            save()
        first = results["scenarios"][0]
        results["redis_bytes_per_record"] = first["redis_bytes_per_record"]
        if args.cost_list:
            main_run = next((r for r in results["scenarios"] if r["latency_ms"] == args.costs_latency), None)
            results["costs"] = bench.run_costs(args.costs_latency, args.cost_list, main_run)
            save()
        if not args.no_delivered:
            forwarding = [bench.states["forwarding"]]
            if "forwarding" in args.cost_list and supported(BY_NAME["forwarding"]):
                forwarding.append(not bench.states["forwarding"])
            results["delivered"] = bench.run_delivered(args.latency_list[0], forwarding)
        facts["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        ok = True
        save()
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
