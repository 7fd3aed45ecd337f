-- Apply a delivery receipt to the job its token named, idempotently, never backwards.
-- ARGV: prefix, job, to, status, message_id, price, receipt_timestamp, retention_s
-- Returns: applied | pending | duplicate | extra | settled_held | unknown_job | to_mismatch
local job, to, status, mid, price, stamp = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local retention = tonumber(ARGV[8])
local jk = key('job', job)
local f = redis.call('HMGET', jk, 'state', 'to', 'message_id', 'rcpt_msgid')
local state = f[1]
if not state then return 'unknown_job' end
if f[2] ~= to then return 'to_mismatch' end
local t = now()

if state == 'sent' then
  if not f[3] or f[3] == '' then
    -- Marked sent by an operator without a message_id: this receipt names it.
    redis.call('HSET', jk, 'message_id', mid)
    redis.call('SET', key('msgid', mid), job, 'EX', retention)
    f[3] = mid
  end
  if f[3] == mid then deliver(jk, job, status, price, stamp, t, retention); return 'applied' end
  return extra_send(jk, job, mid, retention)
end
if FINAL[state] then
  if f[3] == mid then return 'duplicate' end
  return extra_send(jk, job, mid, retention)
end
if state == 'held' then
  -- The held attempt did go out: the receipt settles it.
  move(jk, state, 'sent', t)
  redis.call('HSET', jk, 'message_id', mid, 'price', price, 'sent_ts', t)
  redis.call('ZREM', key('held'), job)
  redis.call('HINCRBYFLOAT', COUNTERS, 'total_price', tonumber(price) or 0)
  redis.call('SET', key('msgid', mid), job, 'EX', retention)
  deliver(jk, job, status, price, stamp, t, retention)
  return 'settled_held'
end
if state == 'retrying' or state == 'queued' then
  -- Nobody is sending it now and it did go out (an ambiguous attempt was accepted):
  -- settle it rather than send it again.
  move(jk, state, 'sent', t)
  redis.call('HDEL', jk, 'owner', 'lease_ts', 'due_ts', 'ambiguous_pending')
  redis.call('ZREM', key('due'), job)
  redis.call('HSET', jk, 'message_id', mid, 'price', price, 'sent_ts', t)
  redis.call('HINCRBYFLOAT', COUNTERS, 'total_price', tonumber(price) or 0)
  redis.call('SET', key('msgid', mid), job, 'EX', retention)
  deliver(jk, job, status, price, stamp, t, retention)
  return 'applied'
end
-- sending: COSMOS was faster than our Redis write. Keep it; recording `sent` applies it.
if f[4] == mid then return 'duplicate' end
redis.call('HSET', jk, 'rcpt_status', status, 'rcpt_msgid', mid, 'rcpt_price', price, 'rcpt_ts', stamp)
return 'pending'
