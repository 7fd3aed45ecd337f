"""Records reach the archive through real workers and stay findable after Redis lets them go."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
from click.testing import CliRunner

from archive.rows import RECORD_FIELDS
from cli.main import cli
from producers.producer import SmsProducer
from tests.support.polling import wait_for

TO_A, TO_B, TO_C = "031110000000101", "031110000000202", "031110000000303"
PRICE = 0.05


def run(env: dict[str, str], *args: str) -> tuple[str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def history(env, *args: str) -> list[dict]:
    return json.loads(run(env, "history", "--json", *args)[0])


def test_records_archived_after_retention_are_found_exported_and_counted(
    archive_env, settings_for, sandbox_factory, workers, receiver_factory, tmp_path
):
    sandbox = sandbox_factory("--price", str(PRICE))
    env = {**archive_env, "COSMOS_API_URL": sandbox.api_url, "COSMOS_RETENTION_S": "1"}
    producer = SmsProducer(settings_for(COSMOS_API_URL=sandbox.api_url))
    sandbox.script(TO_C, "failed")
    receiver = receiver_factory(COSMOS_RETENTION_S="1")  # receipts write the retention too
    workers.start(**{**env, **receiver.env})
    batch = f"camp-{env['COSMOS_REDIS_PREFIX']}"
    bulk = producer.send_bulk(
        [{"to": TO_A if i % 2 else TO_B, "sender": "Shop", "text": f"offer {i}"} for i in range(12)], batch_id=batch
    )
    # The singles come once the batch is sent, so a time window can tell them apart.
    wait_for(lambda: all(producer.get_status(j) is None for j in bulk), timeout=30, what="the batch archived")
    dead = producer.send_sms(to=TO_C, sender="Bank", text="doomed")
    code = producer.send_sms(to=TO_A, sender="Bank", text="code 1234", idempotency_key="login-42")
    jobs = [*bulk, dead, code]

    # Retention ends a second after each final state: a record leaves Redis only once archived.
    wait_for(lambda: all(producer.get_status(j) is None for j in jobs), timeout=30, what="records archived and swept")

    everything = history(env, "--limit", "1000")
    assert sorted(r["job_id"] for r in everything) == sorted(jobs)
    assert [r["created_at"] for r in everything] == sorted((r["created_at"] for r in everything), reverse=True)
    by_id = {r["job_id"]: r for r in everything}
    assert by_id[dead]["state"] == "dead" and by_id[dead]["dead_reason"] == "failed"
    assert by_id[code]["state"] == "delivered" and by_id[code]["price"] == PRICE
    assert by_id[code]["idempotency_key"] == "login-42" and by_id[code]["redacted"] is False

    assert {r["job_id"] for r in history(env, "--to", TO_A)} == {*bulk[1::2], code}
    assert [r["job_id"] for r in history(env, "--message-id", by_id[code]["message_id"])] == [code]
    assert {r["job_id"] for r in history(env, "--batch", batch)} == set(bulk)
    assert [r["job_id"] for r in history(env, "--state", "dead")] == [dead]
    window = ("--since", by_id[bulk[0]]["created_at"], "--until", by_id[dead]["created_at"])
    assert {r["job_id"] for r in history(env, *window)} == set(bulk)

    # Keyset pages: every record once, in order.
    pages: list[str] = []
    after: list[str] = []
    while True:
        out, err = run(env, "history", "--json", "--limit", "4", *after)
        pages += [r["job_id"] for r in json.loads(out)]
        cursor = [line.split("--after ", 1)[1] for line in err.splitlines() if line.startswith("next:")]
        if not cursor:
            break
        after = ["--after", cursor[0]]
    assert pages == [r["job_id"] for r in everything]

    # Export: the same rows, field for field, in CSV and Parquet.
    since, until = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"
    out, _ = run(env, "export", "--since", since, "--until", until)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(jobs)
    exported = {r["job_id"]: r for r in rows}
    assert exported[code]["to"] == TO_A and exported[code]["text"] == "code 1234"
    assert exported[code]["message_id"] == by_id[code]["message_id"]
    assert float(exported[code]["price"]) == PRICE and exported[code]["state"] == "delivered"
    assert exported[dead]["dead_reason"] == "failed" and exported[dead]["batch_id"] == ""
    assert {r["batch_id"] for r in rows if r["job_id"] in bulk} == {batch}
    parquet = tmp_path / "export.parquet"
    run(env, "export", "--since", since, "--until", until, "--format", "parquet", "--output", str(parquet))
    table = pq.read_table(parquet).to_pylist()
    assert len(table) == len(jobs)
    from_parquet = {r["job_id"]: r for r in table}
    for job_id, record in by_id.items():  # every field of the outcome record, exactly, in both formats
        expected = {**record, "history": json.dumps(record["history"])}
        for field in RECORD_FIELDS:
            assert from_parquet[job_id][field] == expected[field], (job_id, field)
            shown = expected[field]
            as_csv = "" if shown is None else str(shown)
            assert exported[job_id][field] == as_csv, (job_id, field)

    # Spend from the daily facts.
    groups = json.loads(run(env, "spend", "--by", "sender", "--json")[0])
    assert {g["key"]: (g["messages"], g["accepted"], g["delivered"]) for g in groups} == {
        "Bank": (2, 1, 1),
        "Shop": (12, 12, 12),
    }
    assert round(sum(g["price"] for g in groups), 6) == round(13 * PRICE, 6)
    [per_batch] = [g for g in json.loads(run(env, "spend", "--by", "batch", "--json")[0]) if g["key"] == batch]
    assert (per_batch["messages"], per_batch["price"]) == (12, round(12 * PRICE, 6))
    listed = json.loads(run(env, "batch", "list", "--json")[0])
    assert [b["batch_id"] for b in listed] == [batch]

    # Erasure: the number's rows are redacted in the archive, one-way, and audited.
    out, _ = run(env, "forget", "--to", TO_A)
    assert "7 archived row(s)" in out
    assert history(env, "--to", TO_A) == []
    erased = history(env, "--message-id", by_id[code]["message_id"])[0]
    assert erased["to"] == "************101" and erased["redacted"] is True
    assert erased["idempotency_key"].startswith("sha256:") and "login-42" not in json.dumps(erased)
    out, _ = run(env, "export", "--since", since, "--until", until)
    assert "code 1234" not in out and "*********" in out
    audited = producer.ledger.redis.xrevrange(producer.keys.audit, count=1)
    assert audited[0][1]["action"] == "forget"  # type: ignore[index]
