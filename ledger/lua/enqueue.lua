-- Write up to ENQUEUE_STEP new outcome records (the durable outbox) and their broker messages, atomically.
-- args: batch_id ('' for none), batch_fingerprint, batch_total, n, then per job: job_id, idem, fingerprint,
--       lane, to, from, text, callback, forward, expires_in_s, send_at ('' or epoch seconds: scheduled,
--       no broker message; its deadline counts from it); then m, then per message: first, last
--       (1-based job positions it carries), broker list, message. A message is pushed only when one of
--       its jobs is new, so repeating a call (its reply lost, or a batch resumed) sends nothing twice.
-- Returns {'ok', job, created, ...} | {'conflict', index, job, key} | {'batch_conflict'} | {'batch_cancelled'}
local batch, batch_fp, batch_total, n = arg(1), arg(2), tonumber(arg(3)), tonumber(arg(4))
local t = now()
local W = 11
if batch ~= '' then
  local bk = key('batch', batch)
  local b = redis.call('HMGET', bk, 'fingerprint', 'cancelled')
  if b[1] and b[1] ~= batch_fp then return {'batch_conflict'} end
  if b[2] == '1' then return {'batch_cancelled'} end
  if not b[1] then redis.call('HSET', bk, 'fingerprint', batch_fp, 'total', batch_total, 'created_ts', t) end
  local latest = 0
  for i = 1, n do latest = math.max(latest, tonumber(ARGV[BASE + 4 + (i - 1) * W + 11]) or 0) end
  if latest > (tonumber(redis.call('HGET', bk, 'send_until')) or 0) then redis.call('HSET', bk, 'send_until', latest) end
end
-- First pass decides every idempotency key, so a conflict changes nothing.
local reuse, seen = {}, {}
for i = 1, n do
  local b = BASE + 4 + (i - 1) * W
  local idem, fp = ARGV[b + 2], ARGV[b + 3]
  if idem ~= '' then
    local owner = seen[idem] or redis.call('GET', key('idem', idem))
    if owner then
      local sep = string.find(owner, '|', 1, true)
      local other, ofp = string.sub(owner, 1, sep - 1), string.sub(owner, sep + 1)
      if ofp ~= fp then return {'conflict', tostring(i - 1), other, idem} end
      reuse[i] = other
    else
      seen[idem] = ARGV[b + 1] .. '|' .. fp
    end
  end
end
local result, created = {'ok'}, {}
for i = 1, n do
  local b = BASE + 4 + (i - 1) * W
  local job = ARGV[b + 1]
  local revive = false
  if not reuse[i] then
    local f = redis.call('HMGET', key('job', job), F.state, F.last_error)
    if f[1] == S.cancelled and f[2] == CR.unreplicated then
      revive = true  -- withdrawn before any worker took it: the repeated call records it again
    elseif f[1] then
      reuse[i] = job  -- a retried call whose first try did run: never reset a live record
    end
  end
  if revive then
    local j = load(job, F.send_at)
    redis.call('HDEL', j.jk, F.last_error)
    move(j, S.queued, t)
    if j[F.send_at] then schedule(j, tonumber(j[F.send_at])) end
    created[i] = true
    table.insert(result, job); table.insert(result, '1')
  elseif reuse[i] then
    table.insert(result, reuse[i]); table.insert(result, '0')
  else
    local idem, to, send_at = ARGV[b + 2], ARGV[b + 5], tonumber(ARGV[b + 11])
    local jk = key('job', job)
    redis.call('HSET', jk, F.lane, ARGV[b + 4], F.to, to, F['from'], ARGV[b + 6],
      F.text, ARGV[b + 7], F.created_ts, t, F.expires_ts, (send_at or t) + tonumber(ARGV[b + 10]), F.attempts, 0)
    if send_at then redis.call('HSET', jk, F.send_at, send_at) end
    if ARGV[b + 8] ~= '' then redis.call('HSET', jk, F.callback, ARGV[b + 8]) end
    if ARGV[b + 9] == '1' then redis.call('HSET', jk, F.forward, 1) end
    if batch ~= '' then redis.call('HSET', jk, F.batch, batch) end
    if idem ~= '' then
      redis.call('HSET', jk, F.idem, idem)
      redis.call('SET', key('idem', idem), job .. '|' .. ARGV[b + 3])
    end
    redis.call('ZADD', key('idx', 'created'), t, job)
    redis.call('ZADD', key('idx', 'to', to), t, job)
    local j = {id = job, jk = jk}
    j[F.lane] = ARGV[b + 4]
    if batch ~= '' then j[F.batch] = batch end
    move(j, S.queued, t)
    if send_at then schedule(j, send_at) end
    created[i] = true
    table.insert(result, job); table.insert(result, '1')
  end
end
-- The broker messages land in the same atomic step as their records.
local mb = BASE + 4 + n * W
for k = 0, tonumber(ARGV[mb + 1]) - 1 do
  local o = mb + 1 + k * 4
  local first, last = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
  for i = first, last do
    if created[i] then redis.call('LPUSH', ARGV[o + 3], ARGV[o + 4]); break end
  end
end
return result
