-- Write a batch of new outcome records (the durable outbox) in one round trip.
-- ARGV: prefix, grace_s, n, then per job: job_id, idem, fingerprint, lane, to, from, text, callback, expires_in_s,
--       then m, then m pairs of (broker list, message) pushed when any job was created
local grace = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = now()
local W = 9
local result = {'ok'}
local seen = {}
-- First pass decides every idempotency key, so a conflict changes nothing.
local reuse = {}
for i = 0, n - 1 do
  local b = 3 + i * W
  local idem, fp = ARGV[b + 2], ARGV[b + 3]
  if idem ~= '' then
    local owner = seen[idem] or redis.call('GET', key('idem', idem))
    if owner then
      local sep = string.find(owner, '|', 1, true)
      local job, ofp = string.sub(owner, 1, sep - 1), string.sub(owner, sep + 1)
      if ofp ~= fp then return {'conflict', tostring(i), job, idem} end
      reuse[i] = job
    else
      seen[idem] = ARGV[b + 1] .. '|' .. fp
    end
  end
end
local created = 0
for i = 0, n - 1 do
  local b = 3 + i * W
  local job = ARGV[b + 1]
  if not reuse[i] and redis.call('EXISTS', key('job', job)) == 1 then
    -- A retried call whose first try did run (its reply was lost): never reset a live record.
    reuse[i] = job
  end
  if reuse[i] then
    table.insert(result, reuse[i]); table.insert(result, '0')
  else
    local idem = ARGV[b + 2]
    local jk = key('job', job)
    redis.call('HSET', jk, 'job_id', job, 'state', 'queued', 'lane', ARGV[b + 4], 'to', ARGV[b + 5],
      'from', ARGV[b + 6], 'text', ARGV[b + 7], 'created_ts', t, 'updated_ts', t,
      'expires_ts', t + tonumber(ARGV[b + 9]), 'attempts', 0)
    if ARGV[b + 8] ~= '' then redis.call('HSET', jk, 'callback', ARGV[b + 8]) end
    if idem ~= '' then
      redis.call('HSET', jk, 'idem', idem)
      redis.call('SET', key('idem', idem), job .. '|' .. ARGV[b + 3])
    end
    redis.call('ZADD', key('due'), t + grace, job)
    created = created + 1
    table.insert(result, job); table.insert(result, '1')
  end
end
if created > 0 then
  redis.call('HINCRBY', COUNTERS, 'state:queued', created)
  -- The broker messages land in the same atomic step as their records.
  local m_base = 3 + n * W
  for j = 0, tonumber(ARGV[m_base + 1]) - 1 do
    redis.call('LPUSH', ARGV[m_base + 2 + j * 2], ARGV[m_base + 3 + j * 2])
  end
end
return result
