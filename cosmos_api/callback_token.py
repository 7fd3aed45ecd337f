"""Per-message callback tokens: COSMOS signs nothing, so our callback URL carries the proof.

The token is the job id and an expiry plus an HMAC of both under the webhook secret, with a key id
so the secret before the last rotation keeps verifying (receipts can arrive hours later). The
expiry (the attempt's time plus the retention) keeps a token from outliving its record: a batch's
job ids repeat when its id is used again, and an old token must not speak for the new job.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

PARAM_JOB, PARAM_EXP, PARAM_KID, PARAM_SIG = "cosmos_job", "cosmos_exp", "cosmos_kid", "cosmos_sig"
TOKEN_PARAMS = (PARAM_JOB, PARAM_EXP, PARAM_KID, PARAM_SIG)


def key_id(secret: str) -> str:
    """A short public name of a secret, so the receiver knows which key to check."""
    return hashlib.sha256(b"cosmos-kid:" + secret.encode()).hexdigest()[:8]


def signature(secret: str, job_id: str, expires_ts: int) -> str:
    message = b"cosmos-receipt:" + job_id.encode() + b":" + str(expires_ts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def callback_url(base_url: str, job_id: str, secret: str, *, expires_ts: float) -> str:
    """`base_url` with the job's token appended as query parameters, keeping any it had.

    `expires_ts`: epoch seconds after which the receiver refuses the token; rounded up to a whole
    second, never down (cut down, a short retention left a receipt a fraction of a second)."""
    expires = math.ceil(expires_ts)
    parts = urlsplit(base_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [
        (PARAM_JOB, job_id),
        (PARAM_EXP, str(expires)),
        (PARAM_KID, key_id(secret)),
        (PARAM_SIG, signature(secret, job_id, expires)),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def verify(params: dict[str, str], secrets: list[str], now: float) -> str | None:
    """The job id a token names, if it is signed by one of `secrets` (current first) and not expired."""
    job_id, exp = params.get(PARAM_JOB), params.get(PARAM_EXP)
    kid, sig = params.get(PARAM_KID), params.get(PARAM_SIG)
    if not (job_id and exp and kid and sig) or len(job_id) > 64 or not (kid.isascii() and sig.isascii()):
        return None  # compare_digest refuses non-ASCII str: a forged token must not become a 500
    if not (exp.isascii() and exp.isdigit() and len(exp) <= 12) or int(exp) < now:
        return None
    for secret in secrets:
        if secret and hmac.compare_digest(kid, key_id(secret)):
            return job_id if hmac.compare_digest(sig, signature(secret, job_id, int(exp))) else None
    return None
