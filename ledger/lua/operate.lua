-- Operator and producer actions on one job: cancel, requeue, resend, mark_sent, purge.
-- ARGV: prefix, action, job, grace_s, expires_in_s, retention_s
-- Returns {'ok', lane} or {'refused', why}
local action, job = ARGV[2], ARGV[3]
local grace, expires_in, retention = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local jk = key('job', job)
local f = redis.call('HMGET', jk, 'state', 'lane', 'dead_reason', 'to', 'idem')
local state = f[1]
if not state then return {'refused', 'unknown job'} end
local t = now()

local function fresh_start()
  move(jk, state, 'queued', t)
  redis.call('HSET', jk, 'attempts', 0, 'crashes', 0, 'inflight', 0, 'expires_ts', t + expires_in)
  redis.call('HDEL', jk, 'dead_reason', 'owner', 'lease_ts', 'due_ts', 'ambiguous_pending')
  redis.call('PERSIST', jk)
  if f[5] and f[5] ~= '' then redis.call('PERSIST', key('idem', f[5])) end
  redis.call('ZREM', key('dead'), job)
  redis.call('ZREM', key('held'), job)
  redis.call('ZADD', key('due'), t + grace, job)
  redis.call('HINCRBY', COUNTERS, 'requeued', 1)
  return {'ok', f[2]}
end

if action == 'cancel' then
  if state ~= 'queued' and state ~= 'retrying' and state ~= 'held' then return {'refused', 'job is ' .. state} end
  move(jk, state, 'cancelled', t)
  release(jk, job)
  redis.call('ZREM', key('held'), job)
  retain(jk, retention)
  return {'ok', f[2]}
elseif action == 'requeue' then
  if state ~= 'dead' then return {'refused', 'job is ' .. state .. ', not dead'} end
  if f[3] == 'suppressed' and redis.call('SISMEMBER', key('suppressed'), f[4]) == 1 then
    return {'refused', 'its number is still on the suppression list'}
  end
  redis.call('HINCRBY', COUNTERS, 'dead:' .. f[3], -1)
  return fresh_start()
elseif action == 'resend' then
  if state ~= 'held' then return {'refused', 'job is ' .. state .. ', not held'} end
  redis.call('HINCRBY', jk, 'ambiguous_resends', 1)
  redis.call('HINCRBY', COUNTERS, 'ambiguous_resends', 1)
  return fresh_start()
elseif action == 'mark_sent' then
  if state ~= 'held' then return {'refused', 'job is ' .. state .. ', not held'} end
  move(jk, state, 'sent', t)
  redis.call('HSET', jk, 'sent_ts', t, 'last_error', 'marked sent by an operator')
  redis.call('ZREM', key('held'), job)
  retain(jk, retention)
  return {'ok', f[2]}
elseif action == 'purge' then
  if state ~= 'dead' then return {'refused', 'job is ' .. state .. ', not dead'} end
  redis.call('HINCRBY', COUNTERS, 'state:dead', -1)
  redis.call('HINCRBY', COUNTERS, 'dead:' .. f[3], -1)
  redis.call('ZREM', key('dead'), job)
  if f[5] and f[5] ~= '' then redis.call('DEL', key('idem', f[5])) end
  redis.call('DEL', jk)
  return {'ok', f[2]}
end
return redis.error_reply('unknown action ' .. action)
