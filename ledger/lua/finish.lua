-- Record the outcome of one HTTP attempt (or the end of a burst) in one round trip.
-- ARGV: prefix, job, owner, kind, status, http, latency_ms, message_id, price, error,
--       policy, retention_s, breaker_threshold, breaker_open_s, delay_s (defer)
-- kind: accepted | permanent | transient | ambiguous | defer
-- Returns {result, breaker_change}
local job, owner, kind, status = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local http, latency_ms, message_id, price, err = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local policy, retention = ARGV[11], tonumber(ARGV[12])
local threshold, open_s, delay_s = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local jk = key('job', job)
local f = redis.call('HMGET', jk, 'state', 'owner', 'message_id', 'created_ts', 'rcpt_status', 'rcpt_msgid',
  'rcpt_price', 'rcpt_ts', 'to')
local state = f[1]
if not state then return {'missing', ''} end
local t = now()
if kind ~= 'defer' then
  remember(jk, status .. '/' .. http .. '/' .. latency_ms)
  redis.call('HSET', jk, 'inflight', 0)
end

-- Settle a job as sent with `mid`, then apply a receipt that came early for it.
local function settle_sent(mid, mprice)
  move(jk, state, 'sent', t)
  release(jk, job)
  redis.call('HSET', jk, 'message_id', mid, 'price', mprice, 'sent_ts', t)
  redis.call('HDEL', jk, 'last_error', 'ambiguous_pending')
  redis.call('HINCRBYFLOAT', COUNTERS, 'total_price', tonumber(mprice) or 0)
  redis.call('SET', key('msgid', mid), job, 'EX', retention)
  redis.call('ZREM', key('held'), job)
  observe('send', math.max(0, t - (tonumber(f[4]) or t)))
  retain(jk, retention)
  if f[5] then
    if f[6] == mid then
      deliver(jk, job, f[5], f[7], f[8], t, retention)
    else
      extra_send(jk, job, f[6], retention)
      redis.call('HDEL', jk, 'rcpt_status', 'rcpt_msgid', 'rcpt_price', 'rcpt_ts')
    end
  end
end

if kind == 'accepted' then
  local change = breaker_success()
  if state == 'sent' or FINAL[state] then
    -- Another attempt of this job was recorded first: this one is an extra send.
    if f[3] ~= message_id then return {extra_send(jk, job, message_id, retention), change} end
    return {'duplicate', change}
  end
  settle_sent(message_id, price)
  return {'sent', change}
end

-- From here on the attempt did not prove a send; only the lease owner may move the job.
if state ~= 'sending' or f[2] ~= owner then return {'lost_lease', ''} end

if f[5] and f[6] then
  -- A receipt arrived while we were retrying: an earlier ambiguous attempt was accepted.
  state = 'sending'
  settle_sent(f[6], f[7])
  return {'sent', ''}
end

if kind == 'permanent' then
  local change = breaker_success()
  redis.call('HSET', jk, 'last_error', err)
  if http == '0' then  -- refused before any request (large_request): not an attempt
    redis.call('HINCRBY', jk, 'attempts', -1)
    redis.call('HINCRBY', COUNTERS, 'attempts', -1)
  end
  if status == 'blacklist' then redis.call('SADD', key('suppressed'), f[9]) end
  if status == 'unauthorized' then redis.call('HINCRBY', COUNTERS, 'unauthorized', 1) end
  dead(jk, job, state, status, t, retention)
  return {'dead', change}
end
if kind == 'transient' or kind == 'ambiguous' then
  local change = breaker_failure(threshold, open_s, t)
  redis.call('HSET', jk, 'last_error', err)
  redis.call('HINCRBY', COUNTERS, 'transient_failures', 1)
  if kind == 'ambiguous' then
    redis.call('HINCRBY', COUNTERS, 'ambiguous_attempts', 1)
    if policy == 'hold' then
      move(jk, state, 'held', t)
      release(jk, job)
      redis.call('ZADD', key('held'), t, job)
      return {'held', change}
    end
    redis.call('HSET', jk, 'ambiguous_pending', 1)
  end
  return {'retry', change}
end
if kind == 'defer' then
  local next_due = t + delay_s
  move(jk, state, 'retrying', t)
  release(jk, job)
  redis.call('HSET', jk, 'due_ts', next_due)
  redis.call('ZADD', key('due'), next_due, job)
  redis.call('HINCRBY', COUNTERS, 'retries', 1)
  return {'retrying', ''}
end
return redis.error_reply('unknown kind ' .. kind)
