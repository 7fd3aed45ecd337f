# cosmos-sms: one image for every process (worker, webhook, console, flower, sandbox); the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY config ./config
COPY cosmos_api ./cosmos_api
COPY ledger ./ledger
COPY archive ./archive
COPY producers ./producers
COPY worker ./worker
COPY receipts ./receipts
COPY sandbox ./sandbox
COPY cli ./cli
COPY console ./console
COPY bench ./bench
COPY demo ./demo
# The versions the test suite passed with (constraints.txt), not whatever is newest today.
RUN pip install -c constraints.txt . \
    && useradd --create-home --uid 10001 cosmos
# Never root: a compromised receiver must not own the container.
USER cosmos

CMD ["cosmos-sms", "worker"]
