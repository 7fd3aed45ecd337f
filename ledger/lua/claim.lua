-- The reconciler's pick, one worker at a time, at most `limit` jobs per kind and call:
-- 1. due retries, per lane, single first, unless something holds sending back (a pause, an open
--    breaker: then only its one probe goes; the quiet hours: no bulk; a budget pause: none), so waiting
--    costs nothing per job;
-- 2. waiting jobs whose deadline passed, ended `expired` on the spot (EXPIRE_STEP a call);
-- 3. leases whose owner died;
-- 4. queued jobs whose broker message is evidently lost: none left in their lane.
-- Each pick is pushed `GRACE` into the future first, so a lost publish recurs.
-- Scheduled jobs are none of these: release.lua hands them over when due.
-- Arguments: ledger.schema SCRIPT_ARGS['claim']. Returns flat rows of REPLY_ROWS['claim'].
local limit, probe_interval = tonumber(A.limit), tonumber(A.probe_interval_s)
local lists = {single = A.single_list, bulk = A.bulk_list}
local t = now()
local quiet = quiet_until(t, A.quiet_start, A.quiet_end, A.quiet_next_start, A.quiet_next_end)
local out = {}
local function pick(job, lane, why)
  table.insert(out, job); table.insert(out, lane); table.insert(out, why)
end

-- How many due retries may go now: all (limit), one probe, or none.
local allowance = limit
local account = redis.call('HMGET', PAUSE, 'account', 'probe_ts')
if budget_paused(t) then
  allowance = 0  -- no probe either: an accepted one would cost a message
elseif account[1] then
  allowance = ((tonumber(account[2]) or 0) + probe_interval <= t) and 1 or 0
else
  local b = redis.call('HMGET', BREAKER, 'state', 'open_until', 'probe_until')
  if b[1] == 'open' and (tonumber(b[2]) or 0) > t then allowance = 0
  elseif b[1] == 'open' or b[1] == 'half_open' then
    allowance = ((tonumber(b[3]) or 0) > t) and 0 or 1
  end
end
for _, lane in ipairs({'single', 'bulk'}) do
  if allowance > 0 and not operator_paused(lane) and not (lane == 'bulk' and quiet) then
    local rk = key('retry', lane)
    for _, job in ipairs(redis.call('ZRANGEBYSCORE', rk, '-inf', t, 'LIMIT', 0, allowance)) do
      if redis.call('HGET', key('job', job), F.state) == S.retrying then
        redis.call('ZADD', rk, t + GRACE, job)
        pick(job, lane, 'due')
        allowance = allowance - 1
      else
        redis.call('ZREM', rk, job)
      end
    end
  end
end

-- Ending a job is a whole state move (~80 us): at most EXPIRE_STEP a call, and a row saying more are due.
local past = redis.call('ZRANGEBYSCORE', key('deadlines'), '-inf', t, 'LIMIT', 0, EXPIRE_STEP)
if #past == EXPIRE_STEP then pick('', '', 'more_expired') end
for _, job in ipairs(past) do
  local j = load(job, F.expires_ts)
  if WAITING[j[F.state]] and (tonumber(j[F.expires_ts]) or 0) <= t then
    move(j, S.expired, t)
  else
    redis.call('ZREM', key('deadlines'), job)
  end
end

for _, job in ipairs(redis.call('ZRANGEBYSCORE', key('leases'), '-inf', t, 'LIMIT', 0, limit)) do
  local f = redis.call('HMGET', key('job', job), F.state, F.lane, F.lease_ts)
  if f[1] == S.sending and (tonumber(f[3]) or 0) <= t then
    redis.call('ZADD', key('leases'), t + GRACE, job)
    timeline({id = job, jk = key('job', job)}, 'republished', {'why', 'lease_expired'}, t)
    pick(job, f[2], 'lease_expired')
  else
    redis.call('ZREM', key('leases'), job)
  end
end

-- A healthy backlog is never republished: a queued job past its grace counts as lost only when its
-- lane holds no message at all. Its message may still sit unacked in a worker that died (kombu
-- would restore it only after the visibility timeout): a second message then costs one skipped
-- task, never a second send, because the lease decides who sends.
-- After Redis restarted (`lost_horizon_s` > 0) any message may be gone, the list's others included:
-- every queued job recorded before now is republished at once (a spare message costs a skipped task).
local horizon = tonumber(A.lost_horizon_s)
for _, lane in ipairs({'single', 'bulk'}) do
  if horizon > 0 or redis.call('LLEN', lists[lane]) == 0 then
    local ok = key('outbox', lane)
    for _, job in ipairs(redis.call('ZRANGEBYSCORE', ok, '-inf', t + horizon, 'LIMIT', 0, limit)) do
      if redis.call('HGET', key('job', job), F.state) == S.queued then
        redis.call('ZADD', ok, t + GRACE, job)
        timeline({id = job, jk = key('job', job)}, 'republished', {'why', 'broker message lost'}, t)
        pick(job, lane, 'stale_queued')
      else
        redis.call('ZREM', ok, job)
      end
    end
  end
end
return out
