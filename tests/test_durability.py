"""Durable acknowledgements and the start-up checks about them, on a real primary and replica."""

from __future__ import annotations

import pytest

from config.errors import EnqueueFailed, SettingsError
from ledger.scripts import Scripts
from ledger.store import Ledger, NewJob
from producers.producer import SmsProducer
from tests.support.polling import wait_for
from tests.support.redis_server import start_private_redis
from worker.startup_checks import check_redis_role, check_redis_safety


@pytest.fixture(scope="module")
def primary_and_replica(tmp_path_factory):
    # No diskless-sync delay: the replica is in sync at once, not after 5 s.
    primary = start_private_redis(tmp_path_factory.mktemp("primary"), "--repl-diskless-sync-delay", "0")
    replica = start_private_redis(tmp_path_factory.mktemp("replica"), "--replicaof", "127.0.0.1", str(primary.port))
    client = primary.client()
    wait_for(lambda: client.wait(1, 100) == 1, timeout=15, what="the replica to be in sync")
    yield primary, replica
    replica.stop(graceful=False)
    primary.stop(graceful=False)


def _job(job_id: str) -> NewJob:
    return NewJob(job_id, "single", "033334445566770", "Shop", "hello", None, False, None, "fp", 60)


class DurableScripts(Scripts):
    """The ledger's scripts with every call followed by WAIT, as the lead wires it: what each WAIT saw."""

    def __init__(self, client, replicas: int, timeout_ms: int):
        super().__init__(client)
        self.replicas, self.timeout_ms = replicas, timeout_ms
        self.acked: list[int] = []

    def run(self, name, *args):
        result, acked = self.run_durably(name, args, self.replicas, self.timeout_ms)
        self.acked.append(acked)
        return result

    def run_many(self, name, calls):
        results, acked = self.run_many_durably(name, calls, self.replicas, self.timeout_ms)
        self.acked.append(acked)
        return results


def _ledger(client, settings, replicas: int, timeout_ms: int) -> Ledger:
    ledger = Ledger(client, settings)
    ledger._scripts = DurableScripts(client, replicas, timeout_ms)
    return ledger


def test_run_durably_waits_for_the_replica_in_the_same_round_trip(primary_and_replica, settings):
    primary, replica = primary_and_replica
    primary.client().script_flush()  # the first call must load the script and still wait
    ledger = _ledger(primary.client(), settings, replicas=1, timeout_ms=2000)
    assert ledger.enqueue([_job("durable-1")]) == [("durable-1", True)]
    assert ledger.begin("durable-1", "owner", count_delivery=True).verdict == "go"
    assert isinstance(ledger._scripts, DurableScripts) and ledger._scripts.acked == [1, 1]
    assert replica.client().exists(ledger.keys.job("durable-1"))


def test_run_durably_reports_too_few_replicas_when_the_wait_times_out(primary_and_replica, settings):
    primary, _ = primary_and_replica
    ledger = _ledger(primary.client(), settings, replicas=2, timeout_ms=100)
    ledger.enqueue([_job("durable-2")])
    ledger.begin_many(["durable-2"], ["owner"], count_delivery=True)
    assert isinstance(ledger._scripts, DurableScripts)
    assert ledger._scripts.acked == [1, 1]  # only one replica exists: the caller must not count on it
    scripts = Scripts(primary.client())
    assert scripts.run_many_durably("enqueue", [], replicas=0, timeout_ms=100) == ([], 0)


def test_a_replica_is_refused_as_redis_url(primary_and_replica):
    primary, replica = primary_and_replica
    check_redis_role(primary.client())
    with pytest.raises(SettingsError) as err:
        check_redis_role(replica.client())
    assert "REDIS_URL" in str(err.value) and "replica" in str(err.value)


def test_writes_that_are_not_durable_are_warned_about(primary_and_replica):
    primary, _ = primary_and_replica
    client = primary.client()
    client.config_set("appendonly", "yes")
    client.config_set("appendfsync", "everysec")
    try:
        assert any("appendfsync is 'everysec'" in w for w in check_redis_safety(client, min_replicas=0))
        assert not any("appendfsync" in w for w in check_redis_safety(client, min_replicas=1))
        assert any("COSMOS_REDIS_MIN_REPLICAS is 2 but 1" in w for w in check_redis_safety(client, min_replicas=2))
        client.config_set("appendfsync", "always")
        assert check_redis_safety(client, min_replicas=0) == []
    finally:
        client.config_set("appendonly", "no")


def _producer(settings_for, primary, replicas: int) -> SmsProducer:
    return SmsProducer(
        settings_for(REDIS_URL=primary.url, COSMOS_REDIS_MIN_REPLICAS=str(replicas), COSMOS_REDIS_WAIT_TIMEOUT_MS="100")
    )


def test_an_unreplicated_enqueue_is_withdrawn_and_raises(primary_and_replica, settings_for):
    primary, _ = primary_and_replica
    producer = _producer(settings_for, primary, replicas=2)  # only one replica exists
    with pytest.raises(EnqueueFailed) as failed:
        producer.send_sms("033334445566770", "Shop", "hello")
    [job_id] = [k.split(":")[-1] for k in primary.client().scan_iter(f"{producer.keys.prefix}:job:*")]
    # The withdraw reached too few replicas as well: a failover could bring the job back, so it may stand.
    assert failed.value.job_ids == [job_id]
    record = producer.get_status(job_id)
    assert record is not None and (record["state"], record["last_error"]) == ("cancelled", "unreplicated")


def test_a_repeated_keyed_send_records_the_withdrawn_job_again_or_raises(primary_and_replica, settings_for):
    primary, _ = primary_and_replica
    late = _producer(settings_for, primary, replicas=2)  # a replica late past the WAIT timeout
    with pytest.raises(EnqueueFailed):
        late.send_sms("033334445566770", "Shop", "hello", idempotency_key="K-1")
    with pytest.raises(EnqueueFailed):
        late.send_sms("033334445566770", "Shop", "hello", idempotency_key="K-1")  # never a withdrawn job back

    producer = _producer(settings_for, primary, replicas=1)
    job_id = producer.send_sms("033334445566770", "Shop", "hello", idempotency_key="K-1")

    record = producer.get_status(job_id)
    assert record is not None and (record["state"], record["last_error"]) == ("queued", None)
    # Its broker message is there: a worker gets it, not only the reconciler's lost-message rule.
    queued = primary.client().lrange(producer.keys.broker_queue_key("single"), 0, -1)
    assert any(job_id in str(m) for m in queued)


def test_keyed_members_of_a_repeated_batch_are_recorded_again(primary_and_replica, settings_for):
    primary, _ = primary_and_replica
    messages = [
        {"to": "033334445566770", "sender": "Shop", "text": f"k{i}", "idempotency_key": f"BK-{i}"} for i in range(3)
    ]
    with pytest.raises(EnqueueFailed):
        _producer(settings_for, primary, replicas=2).send_bulk(messages, batch_id="keyed-batch")

    producer = _producer(settings_for, primary, replicas=1)
    ids = producer.send_bulk(messages, batch_id="keyed-batch")

    assert producer.ledger.states(ids) == ["queued"] * 3


def test_a_batch_withdrawn_for_replication_is_recorded_again_when_repeated(primary_and_replica, settings_for):
    primary, _ = primary_and_replica
    messages = [{"to": "033334445566770", "sender": "Shop", "text": f"m{i}"} for i in range(3)]
    with pytest.raises(EnqueueFailed) as failed:
        _producer(settings_for, primary, replicas=2).send_bulk(messages, batch_id="replicated-batch")
    assert failed.value.batch_id == "replicated-batch"

    producer = _producer(settings_for, primary, replicas=1)
    ids = producer.send_bulk(messages, batch_id="replicated-batch")
    assert set(producer.ledger.states(ids)) == {"queued"}
    batch = producer.get_batch("replicated-batch")
    assert batch is not None and batch["states"] == {"queued": 3}


def test_a_lease_too_few_replicas_hold_is_given_back_without_a_send(primary_and_replica, settings_for):
    primary, _ = primary_and_replica
    job_id = _producer(settings_for, primary, replicas=1).send_sms("033334445566770", "Shop", "hello")
    ledger = _producer(settings_for, primary, replicas=2).ledger
    attempt = ledger.begin(job_id, "owner", count_delivery=True)
    assert (attempt.verdict, attempt.detail) == ("wait", "unreplicated")
    record = ledger.get(job_id)
    assert record is not None
    assert (record["state"], record["attempts"], record["last_error"]) == ("retrying", 0, "unreplicated")


def test_an_acceptance_waits_for_the_replicas_before_the_worker_moves_on(primary_and_replica, settings_for):
    primary, replica = primary_and_replica
    producer = _producer(settings_for, primary, replicas=1)
    job_id = producer.send_sms("033334445566770", "Shop", "accepted")
    ledger = producer.ledger
    assert ledger.begin(job_id, "w", count_delivery=True).verdict == "go"

    [result] = ledger.finish_each([ledger.finish_args(job_id, "w", "accepted", message_id="M-1", price=0.01)])

    assert result == ("sent", "")
    # The WAIT rode the outcome's own pipeline: the replica has the acceptance when the writer answers.
    assert replica.client().hget(ledger.keys.job(job_id), "state") == "sent"
    late = _producer(settings_for, primary, replicas=2).ledger  # one replica exists: the wait falls short
    other = producer.send_sms("033334445566770", "Shop", "accepted too")
    assert late.begin(other, "w", count_delivery=True).verdict == "wait"  # a lease too few hold: given back
    assert ledger.begin(other, "w", count_delivery=True).verdict == "go"
    late.finish_each([late.finish_args(other, "w", "accepted", message_id="M-2", price=0.01)])
    assert int(late.counters()["unreplicated_acceptances"]) == 1
