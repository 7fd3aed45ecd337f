-- Shared by every ledger script (prepended to each): prefix, clock, state moves, retention.
-- Keys are derived from the prefix inside the script: cosmos-sms targets one Redis, not a cluster.
local P = ARGV[1]
local function key(...) return P .. ':' .. table.concat({...}, ':') end
local COUNTERS = key('counters')

local function now()
  local t = redis.call('TIME')  -- one clock for every worker on every machine
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local FINAL = {delivered = true, not_delivered = true, dead = true, expired = true, cancelled = true}

local function move(jk, old, new, t)
  redis.call('HSET', jk, 'state', new, 'updated_ts', t)
  if old then redis.call('HINCRBY', COUNTERS, 'state:' .. old, -1) end
  redis.call('HINCRBY', COUNTERS, 'state:' .. new, 1)
end

-- Retention counts from the final state (and from `sent`, which may never see a receipt).
local function retain(jk, retention)
  redis.call('EXPIRE', jk, retention)
  local idem = redis.call('HGET', jk, 'idem')
  if idem and idem ~= '' then redis.call('EXPIRE', key('idem', idem), retention) end
end

local function release(jk, job)
  redis.call('HDEL', jk, 'owner', 'lease_ts', 'due_ts')
  redis.call('HSET', jk, 'inflight', 0, 'crashes', 0)
  redis.call('ZREM', key('leases'), job)
  redis.call('ZREM', key('due'), job)
end

-- A bounded attempt history: the last 10 "status/http/ms" entries, ';'-separated.
local function remember(jk, entry)
  local h = redis.call('HGET', jk, 'history')
  h = (h and h ~= '') and (h .. ';' .. entry) or entry
  local _, n = string.gsub(h, ';', '')
  if n >= 10 then h = string.sub(h, string.find(h, ';', 1, true) + 1) end
  redis.call('HSET', jk, 'history', h)
end

local BUCKETS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600}
local function observe(name, seconds)
  local le = '+Inf'
  for _, b in ipairs(BUCKETS) do if seconds <= b then le = tostring(b); break end end
  local hk = key('histograms')
  redis.call('HINCRBY', hk, name .. ':' .. le, 1)
  redis.call('HINCRBYFLOAT', hk, name .. ':sum', seconds)
  redis.call('HINCRBY', hk, name .. ':count', 1)
end

local function dead(jk, job, old, reason, t, retention)
  move(jk, old, 'dead', t)
  redis.call('HSET', jk, 'dead_reason', reason)
  release(jk, job)
  redis.call('ZADD', key('dead'), t, job)
  redis.call('HINCRBY', COUNTERS, 'dead:' .. reason, 1)
  retain(jk, retention)
end

-- A receipt for the job's own message_id moves sent -> delivered | not_delivered.
local function deliver(jk, job, status, price, stamp, t, retention)
  local sent_ts = tonumber(redis.call('HGET', jk, 'sent_ts') or t)
  local old_price = tonumber(redis.call('HGET', jk, 'price') or 0) or 0
  move(jk, 'sent', status, t)
  redis.call('HSET', jk, 'delivery_status', status, 'price', price, 'receipt_timestamp', stamp, 'delivered_ts', t)
  redis.call('HDEL', jk, 'rcpt_status', 'rcpt_msgid', 'rcpt_price', 'rcpt_ts')
  redis.call('HINCRBYFLOAT', COUNTERS, 'total_price', (tonumber(price) or 0) - old_price)
  observe('receipt', math.max(0, t - sent_ts))
  retain(jk, retention)
end

-- A message_id that is not the recorded one proves another send went out: count it once.
local function extra_send(jk, job, message_id, retention)
  local seen = redis.call('HGET', jk, 'extra_ids') or ''
  if string.find(';' .. seen .. ';', ';' .. message_id .. ';', 1, true) then return 'duplicate' end
  redis.call('HSET', jk, 'extra_ids', seen == '' and message_id or (seen .. ';' .. message_id))
  redis.call('HINCRBY', jk, 'extra_sends', 1)
  redis.call('HINCRBY', COUNTERS, 'extra_sends', 1)
  redis.call('SET', key('msgid', message_id), job, 'EX', retention)
  return 'extra'
end

-- The circuit breaker, shared by every worker: consecutive transient failures open it.
local BREAKER = key('breaker')
local function breaker_success()
  local b = redis.call('HMGET', BREAKER, 'state', 'failures')
  if (b[1] and b[1] ~= 'closed') or (tonumber(b[2]) or 0) > 0 then
    redis.call('HSET', BREAKER, 'state', 'closed', 'failures', 0)
    redis.call('HDEL', BREAKER, 'probe_until')
    return b[1] ~= 'closed' and b[1] and 'closed' or ''
  end
  return ''
end
local function breaker_failure(threshold, open_s, t)
  local failures = redis.call('HINCRBY', BREAKER, 'failures', 1)
  local state = redis.call('HGET', BREAKER, 'state') or 'closed'
  if state == 'half_open' or (state == 'closed' and failures >= threshold) then
    redis.call('HSET', BREAKER, 'state', 'open', 'open_until', t + open_s)
    redis.call('HDEL', BREAKER, 'probe_until')
    redis.call('HINCRBY', COUNTERS, 'breaker_opened', 1)
    return 'open'
  end
  return ''
end
