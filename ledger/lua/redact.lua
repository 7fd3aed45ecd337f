-- Redact one record (one-way): the caller computed the redacted values; this applies them if the
-- record still holds `expected_to`, drops its number-index entry and idempotency key, and queues it
-- for the archive. args: job, expected_to, to, text, idem, callback. Returns 1 if redacted.
local job, expected = arg(1), arg(2)
local j = load(job)
if not j[F.state] or j[F.to] ~= expected then return 0 end
local t = now()
redis.call('ZREM', key('idx', 'to', expected), job)
if j[F.idem] and j[F.idem] ~= '' then
  local ik = key('idem', j[F.idem])
  local owner = redis.call('GET', ik)
  if owner and string.sub(owner, 1, #job + 1) == job .. '|' then redis.call('DEL', ik) end
end
redis.call('HSET', j.jk, F.to, arg(3), F.text, arg(4), F.redacted, 1, F.updated_ts, t)
if arg(5) ~= '' then redis.call('HSET', j.jk, F.idem, arg(5)) end
if arg(6) ~= '' then redis.call('HSET', j.jk, F.callback, arg(6)) end
to_archive(job, t)
return 1
