"""Per-message callback tokens: COSMOS signs nothing, so our callback URL carries the proof.

The token is the job id plus an HMAC of it under the webhook secret, with a key id so the
secret before the last rotation keeps verifying (receipts can arrive hours later).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

PARAM_JOB, PARAM_KID, PARAM_SIG = "cosmos_job", "cosmos_kid", "cosmos_sig"


def key_id(secret: str) -> str:
    """A short public name of a secret, so the receiver knows which key to check."""
    return hashlib.sha256(b"cosmos-kid:" + secret.encode()).hexdigest()[:8]


def signature(secret: str, job_id: str) -> str:
    return hmac.new(secret.encode(), b"cosmos-receipt:" + job_id.encode(), hashlib.sha256).hexdigest()[:32]


def callback_url(base_url: str, job_id: str, secret: str) -> str:
    """`base_url` with the job's token appended as query parameters, keeping any it had."""
    parts = urlsplit(base_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(PARAM_JOB, job_id), (PARAM_KID, key_id(secret)), (PARAM_SIG, signature(secret, job_id))]
    return urlunsplit(parts._replace(query=urlencode(query)))


def verify(params: dict[str, str], secrets: list[str]) -> str | None:
    """The job id a token names, if it is signed by one of `secrets` (current first)."""
    job_id, kid, sig = params.get(PARAM_JOB), params.get(PARAM_KID), params.get(PARAM_SIG)
    if not (job_id and kid and sig) or len(job_id) > 64 or not (kid.isascii() and sig.isascii()):
        return None  # compare_digest refuses non-ASCII str: a forged token must not become a 500
    for secret in secrets:
        if secret and hmac.compare_digest(kid, key_id(secret)):
            return job_id if hmac.compare_digest(sig, signature(secret, job_id)) else None
    return None
