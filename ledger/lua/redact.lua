-- Redact one record (one-way): the caller computed the redacted values; this applies them if the
-- record still holds `expected_to`, drops its number-index entry (stale or not) and idempotency key,
-- and queues it for the archive. Arguments: ledger.schema SCRIPT_ARGS['redact']. Returns 1 if redacted.
local job, expected = A.job, A.expected_to
redis.call('ZREM', key('idx', 'to', expected), job)
local j = load(job)
if not j[F.state] or j[F.to] ~= expected then return 0 end
local t = now()
if j[F.idem] and j[F.idem] ~= '' then
  local ik = key('idem', j[F.idem])
  local owner = redis.call('GET', ik)
  if owner and string.sub(owner, 1, #job + 1) == job .. '|' then redis.call('DEL', ik) end
end
redis.call('HSET', j.jk, F.to, A.to, F.text, A.text, F.redacted, 1, F.updated_ts, t)
if A.idem ~= '' then redis.call('HSET', j.jk, F.idem, A.idem) end
if A.callback ~= '' then redis.call('HSET', j.jk, F.callback, A.callback) end
to_archive(job, t)
return 1
