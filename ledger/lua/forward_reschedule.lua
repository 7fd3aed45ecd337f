-- A forward's next try in `delay_s` (its attempt counted when `attempted`), or given up into the failed
-- set once its retry window (`max_age_s` since created, or since an operator's retry) has passed.
-- Arguments: ledger.schema SCRIPT_ARGS['forward_reschedule']. Returns 'rescheduled' | 'failed' | 'gone'.
local due, failed = key('forwards', 'due'), key('forwards', 'failed')
local id, delay, err = A.fwd_id, tonumber(A.delay_s), A.error
local fk = key('fwd', id)
local t = now()
if redis.call('EXISTS', fk) == 0 then
  redis.call('ZREM', due, id)
  return 'gone'
end
redis.call('HDEL', fk, 'claimed_until')  -- no longer in flight: a later forward of the job may go
if A.attempted == '1' then redis.call('HINCRBY', fk, 'attempts', 1) end
if err ~= '' then redis.call('HSET', fk, 'last_error', err, 'last_attempt_ts', t) end
local since = tonumber(redis.call('HGET', fk, 'retry_ts') or redis.call('HGET', fk, 'created_ts') or t)
if t - since >= tonumber(A.max_age_s) then
  redis.call('ZREM', due, id)
  redis.call('ZADD', failed, t, id)
  redis.call('HSET', fk, 'failed_ts', t)
  redis.call('EXPIRE', fk, RETENTION)
  return 'failed'
end
redis.call('ZADD', due, t + delay, id)
return 'rescheduled'
