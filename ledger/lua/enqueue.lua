-- Write up to ENQUEUE_STEP new outcome records (the durable outbox) and their broker messages, atomically.
-- Arguments: ledger.schema SCRIPT_ARGS['enqueue'] (batch_id '' for none; `jobs` counts the rows), then the
-- `jobs` rows, then a count and the `messages` rows (SCRIPT_ROWS['enqueue']; first and last are 1-based job
-- positions a message carries). A message is pushed only when one of its jobs is new, so repeating a call
-- (its reply lost, or a batch resumed) sends nothing twice. A job with a send_at ('' for none) is scheduled:
-- no broker message (the producer gives it none), its deadline counted from send_at.
-- Returns {'ok', job, created, ...} | {'conflict', index, job, key} | {'batch_conflict'} | {'batch_cancelled'}
local batch, batch_fp, batch_total, n = A.batch_id, A.batch_fingerprint, tonumber(A.batch_total), tonumber(A.jobs)
local t = now()
if batch ~= '' then
  local bk = key('batch', batch)
  local b = redis.call('HMGET', bk, 'fingerprint', 'cancelled')
  if b[1] and b[1] ~= batch_fp then return {'batch_conflict'} end
  if b[2] == '1' then return {'batch_cancelled'} end
  if not b[1] then redis.call('HSET', bk, 'fingerprint', batch_fp, 'total', batch_total, 'created_ts', t) end
  local latest = 0
  for i = 1, n do latest = math.max(latest, tonumber(ARGV[ROWS_AT + (i - 1) * ROW.jobs.width - 1 + ROW.jobs.send_at]) or 0) end
  if latest > (tonumber(redis.call('HGET', bk, 'send_until')) or 0) then redis.call('HSET', bk, 'send_until', latest) end
end
-- First pass decides every idempotency key, so a conflict changes nothing.
local reuse, seen = {}, {}
for i = 1, n do
  local b = ROWS_AT + (i - 1) * ROW.jobs.width - 1
  local idem, fp = ARGV[b + ROW.jobs.idem], ARGV[b + ROW.jobs.fingerprint]
  if idem ~= '' then
    local owner = seen[idem] or redis.call('GET', key('idem', idem))
    if owner then
      local sep = string.find(owner, '|', 1, true)
      local other, ofp = string.sub(owner, 1, sep - 1), string.sub(owner, sep + 1)
      if ofp ~= fp then return {'conflict', tostring(i - 1), other, idem} end
      reuse[i] = other
    else
      seen[idem] = ARGV[b + ROW.jobs.job_id] .. '|' .. fp
    end
  end
end
local result, created = {'ok'}, {}
for i = 1, n do
  local b = ROWS_AT + (i - 1) * ROW.jobs.width - 1
  local job = ARGV[b + ROW.jobs.job_id]
  -- The job this row names: the idempotency key's owner, or its own id.
  local target = reuse[i] or job
  local f = redis.call('HMGET', key('job', target), F.state, F.last_error)
  if f[1] == S.cancelled and f[2] == CR.unreplicated then
    -- Withdrawn before any worker took it: the repeated call records it again. Its broker message is
    -- this row's only when the ids agree; the caller publishes one for a key owned by another id.
    local j = load(target, F.send_at)
    redis.call('HDEL', j.jk, F.last_error)
    move(j, S.queued, t)
    if j[F.send_at] then schedule(j, tonumber(j[F.send_at])) end
    created[i] = target == job
    table.insert(result, target); table.insert(result, '1')
  elseif f[1] then
    -- The key's job, or a retried call whose first try did run: never reset a live record.
    table.insert(result, target); table.insert(result, '0')
  else
    local idem, to, send_at = ARGV[b + ROW.jobs.idem], ARGV[b + ROW.jobs.to], tonumber(ARGV[b + ROW.jobs.send_at])
    local jk = key('job', job)
    redis.call('HSET', jk, F.lane, ARGV[b + ROW.jobs.lane], F.to, to, F['from'], ARGV[b + ROW.jobs.sender],
      F.text, ARGV[b + ROW.jobs.text], F.created_ts, t,
      F.expires_ts, (send_at or t) + tonumber(ARGV[b + ROW.jobs.expires_in_s]), F.attempts, 0)
    if send_at then redis.call('HSET', jk, F.send_at, send_at) end
    if ARGV[b + ROW.jobs.callback] ~= '' then redis.call('HSET', jk, F.callback, ARGV[b + ROW.jobs.callback]) end
    if ARGV[b + ROW.jobs.forward] == '1' then redis.call('HSET', jk, F.forward, 1) end
    if batch ~= '' then redis.call('HSET', jk, F.batch, batch) end
    if idem ~= '' then
      redis.call('HSET', jk, F.idem, idem)
      redis.call('SET', key('idem', idem), job .. '|' .. ARGV[b + ROW.jobs.fingerprint])
    end
    redis.call('ZADD', key('idx', 'created'), t, job)
    redis.call('ZADD', key('idx', 'to', to), t, job)
    local j = {id = job, jk = jk}
    j[F.created_ts] = t
    j[F.lane] = ARGV[b + ROW.jobs.lane]
    if batch ~= '' then j[F.batch] = batch end
    move(j, S.queued, t)
    if send_at then schedule(j, send_at) end
    created[i] = true
    table.insert(result, job); table.insert(result, '1')
  end
end
-- The broker messages land in the same atomic step as their records.
local mb = ROWS_AT + n * ROW.jobs.width
for k = 0, tonumber(ARGV[mb]) - 1 do
  local o = mb + k * ROW.messages.width
  local first, last = tonumber(ARGV[o + ROW.messages.first]), tonumber(ARGV[o + ROW.messages.last])
  for i = first, last do
    if created[i] then redis.call('LPUSH', ARGV[o + ROW.messages.queue], ARGV[o + ROW.messages.message]); break end
  end
end
return result
