-- Decide, in one round trip, whether this worker may make the next HTTP attempt for a job,
-- and if so take (or renew) its lease.
-- ARGV: prefix, job, owner, lease_s, policy, max_attempts, poison_n, count_delivery,
--       breaker_open_s, rate, rate_inline_max_s, retention_s, probe_s
-- Returns {'go', attempt, to, from, text, callback, created_ts} | {'sleep', s} | {'wait', until}
--       | {'skip', why} | {'held'} | {'dead', reason} | {'expired'}
local job, owner = ARGV[2], ARGV[3]
local lease_s, policy = tonumber(ARGV[4]), ARGV[5]
local max_attempts, poison_n, count_delivery = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'
local open_s, rate, inline_max = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local retention, probe_s = tonumber(ARGV[12]), tonumber(ARGV[13])
local jk = key('job', job)
local f = redis.call('HMGET', jk, 'state', 'owner', 'lease_ts', 'inflight', 'crashes', 'expires_ts',
  'attempts', 'to', 'from', 'text', 'callback', 'due_ts', 'ambiguous_pending', 'created_ts')
local state = f[1]
if not state then return {'skip', 'missing'} end
local t = now()
local renewing = false

if state == 'sending' then
  if f[2] == owner then
    renewing = true
  elseif (tonumber(f[3]) or 0) > t then
    return {'skip', 'leased'}
  elseif f[4] == '1' then
    -- Its owner died with a request on the wire: COSMOS may have accepted it.
    remember(jk, 'lease_expired/0/0')
    redis.call('HSET', jk, 'last_error', 'worker lost during an attempt (ambiguous)', 'inflight', 0)
    redis.call('HINCRBY', COUNTERS, 'ambiguous_attempts', 1)
    if policy == 'hold' then
      move(jk, state, 'held', t)
      release(jk, job)
      redis.call('ZADD', key('held'), t, job)
      return {'held'}
    end
    f[13] = '1'
  end
elseif state == 'queued' or state == 'retrying' then
  if state == 'retrying' and (tonumber(f[12]) or 0) > t + 0.05 then return {'skip', 'not_due'} end
else
  return {'skip', state}
end

if (tonumber(f[6]) or 0) <= t then
  move(jk, state, 'expired', t)
  release(jk, job)
  retain(jk, retention)
  return {'expired'}
end
if redis.call('SISMEMBER', key('suppressed'), f[8]) == 1 then
  dead(jk, job, state, 'suppressed', t, retention)
  return {'dead', 'suppressed'}
end
if not renewing and count_delivery and (tonumber(f[5]) or 0) >= poison_n then
  dead(jk, job, state, 'poison', t, retention)
  return {'dead', 'poison'}
end
local attempts = tonumber(f[7]) or 0
if attempts >= max_attempts then
  dead(jk, job, state, 'retries_exhausted', t, retention)
  return {'dead', 'retries_exhausted'}
end

-- Wait without spending the attempt budget: the job goes to the due set.
local function defer(until_ts)
  if state ~= 'retrying' then move(jk, state, 'retrying', t) end
  release(jk, job)
  redis.call('HSET', jk, 'due_ts', until_ts)
  redis.call('ZADD', key('due'), until_ts, job)
  return {'wait', tostring(until_ts)}
end

local b = redis.call('HMGET', BREAKER, 'state', 'open_until', 'probe_until')
if b[1] == 'open' and (tonumber(b[2]) or 0) > t then
  return defer(tonumber(b[2]) + math.random() * open_s * 0.2)
elseif b[1] == 'open' or b[1] == 'half_open' then
  if (tonumber(b[3]) or 0) > t then return defer(tonumber(b[3]) + math.random() * open_s * 0.2) end
  -- This attempt is the half-open probe; the others wait for its verdict.
  redis.call('HSET', BREAKER, 'state', 'half_open', 'probe_until', t + probe_s)
end

if rate > 0 then
  local cap = math.max(1, rate / 10)  -- a small burst keeps every 1 s window near the rate
  local r = redis.call('HMGET', key('rate'), 'tokens', 'ts')
  local tokens = math.min(cap, (tonumber(r[1]) or cap) + (t - (tonumber(r[2]) or t)) * rate)
  if tokens < 1 then
    redis.call('HSET', key('rate'), 'tokens', tokens, 'ts', t)
    local wait = (1 - tokens) / rate
    if wait > inline_max then return defer(t + wait + math.random() * inline_max) end
    return {'sleep', tostring(wait)}
  end
  redis.call('HSET', key('rate'), 'tokens', tokens - 1, 'ts', t)
end

if f[13] == '1' then
  redis.call('HINCRBY', jk, 'ambiguous_resends', 1)
  redis.call('HINCRBY', COUNTERS, 'ambiguous_resends', 1)
  redis.call('HDEL', jk, 'ambiguous_pending')
end
if state ~= 'sending' then move(jk, state, 'sending', t) end
if not renewing and count_delivery then redis.call('HINCRBY', jk, 'crashes', 1) end
local lease_ts = t + lease_s
redis.call('HSET', jk, 'owner', owner, 'lease_ts', lease_ts, 'inflight', 1, 'attempts', attempts + 1, 'updated_ts', t)
redis.call('HDEL', jk, 'due_ts')
redis.call('ZADD', key('leases'), lease_ts, job)
redis.call('ZREM', key('due'), job)
redis.call('HINCRBY', COUNTERS, 'attempts', 1)
return {'go', tostring(attempts + 1), f[8], f[9], f[10], f[11] or '', f[14]}
