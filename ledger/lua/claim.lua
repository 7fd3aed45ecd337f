-- The scheduler's pick, one worker at a time: jobs due for (re)publishing and leases whose
-- owner died. Each pick is pushed `grace_s` into the future first, so a lost publish recurs.
-- ARGV: prefix, grace_s, limit. Returns a flat list: job, lane, reason, ...
local grace, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local t = now()
local out = {}
local busy = {}
local function lane_busy(lane)
  if busy[lane] == nil then
    busy[lane] = redis.call('LLEN', P .. ':celery:' .. P .. '.' .. lane) > 0
  end
  return busy[lane]
end
for _, job in ipairs(redis.call('ZRANGEBYSCORE', key('due'), '-inf', t, 'LIMIT', 0, limit)) do
  local f = redis.call('HMGET', key('job', job), 'state', 'lane')
  if f[1] == 'retrying' then
    redis.call('ZADD', key('due'), t + grace, job)
    table.insert(out, job); table.insert(out, f[2]); table.insert(out, 'due')
  elseif f[1] == 'queued' then
    -- Its first publish may still be in the broker queue: only a drained lane proves it lost.
    redis.call('ZADD', key('due'), t + grace, job)
    if not lane_busy(f[2]) then
      table.insert(out, job); table.insert(out, f[2]); table.insert(out, 'stale_queued')
    end
  else
    redis.call('ZREM', key('due'), job)
  end
end
for _, job in ipairs(redis.call('ZRANGEBYSCORE', key('leases'), '-inf', t, 'LIMIT', 0, limit)) do
  local f = redis.call('HMGET', key('job', job), 'state', 'lane', 'lease_ts')
  if f[1] == 'sending' and (tonumber(f[3]) or 0) <= t then
    redis.call('ZADD', key('leases'), t + grace, job)
    table.insert(out, job); table.insert(out, f[2]); table.insert(out, 'lease_expired')
  else
    redis.call('ZREM', key('leases'), job)
  end
end
return out
