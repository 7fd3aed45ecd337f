-- Hand due scheduled jobs to the broker, and the bulk jobs the quiet hours held once they end:
-- at most `limit` per call, singles first, each set in due order. A released job gets the
-- lost-message check (its lane's outbox set) from now, as if just enqueued; the reconciler writes
-- its broker message (ledger/outbox.py). While the quiet hours are on, due bulk jobs move to the
-- quiet set with their send_at as the score, so the window's end releases everything in due order.
-- Arguments: ledger.schema SCRIPT_ARGS['release']. Returns flat rows of REPLY_ROWS['release'] (why:
-- 'scheduled' | 'quiet_ended').
local limit = tonumber(A.limit)
local t = now()
local quiet = quiet_until(t, A.quiet_start, A.quiet_end, A.quiet_next_start, A.quiet_next_end)
local out, budget = {}, limit
local function release(job, lane, why)
  redis.call('ZADD', key('outbox', lane), t + GRACE, job)
  redis.call('HDEL', key('job', job), F.waiting)
  timeline({id = job, jk = key('job', job)}, 'released', {'why', why}, t)
  table.insert(out, job); table.insert(out, lane); table.insert(out, why)
end

for _, lane in ipairs({'single', 'bulk'}) do
  local sk = key('scheduled', lane)
  local due = budget > 0 and redis.call('ZRANGEBYSCORE', sk, '-inf', t, 'WITHSCORES', 'LIMIT', 0, budget) or {}
  for i = 1, #due, 2 do
    local job = due[i]
    redis.call('ZREM', sk, job)
    budget = budget - 1
    if redis.call('HGET', key('job', job), F.state) == S.queued then
      if lane == 'bulk' and quiet then
        redis.call('ZADD', key('quiet'), due[i + 1], job)
        redis.call('HSET', key('job', job), F.waiting, 'quiet_hours')
        timeline({id = job, jk = key('job', job)}, 'waiting', {'why', 'quiet_hours'}, t)
      else release(job, lane, 'scheduled') end
    end
  end
end

if not quiet and budget > 0 then
  local qk = key('quiet')
  for _, job in ipairs(redis.call('ZRANGE', qk, 0, budget - 1)) do
    redis.call('ZREM', qk, job)
    local f = redis.call('HMGET', key('job', job), F.state, F.due_ts)
    if f[1] == S.queued then release(job, 'bulk', 'quiet_ended')
    elseif f[1] == S.retrying then
      redis.call('ZADD', key('retry', 'bulk'), tonumber(f[2]) or t, job)
      redis.call('HDEL', key('job', job), F.waiting)
      timeline({id = job, jk = key('job', job)}, 'released', {'why', 'quiet_ended'}, t)
    end
  end
end
return out
