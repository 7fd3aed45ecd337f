"""Benchmark of cosmos-sms against a naive Celery app, on one machine: `python -m bench.run`."""
