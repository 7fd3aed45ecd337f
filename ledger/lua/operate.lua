-- Operator and producer actions on one job: cancel, withdraw, requeue, resend, mark_sent, purge.
-- Arguments: ledger.schema SCRIPT_ARGS['operate']. Returns {'ok', lane} or {'refused', why}.
local action, job, expires_in, cancel_reason, by = A.action, A.job, tonumber(A.expires_in_s), A.cancel_reason, A.by
local j = load(job, F.message_id, F.extra_ids)
local state = j[F.state]
if not state then return {'refused', 'unknown job'} end
local t = now()

local function fresh_start(event)
  redis.call('HSET', j.jk, F.attempts, 0, F.expires_ts, t + expires_in)
  redis.call('HDEL', j.jk, F.deliveries, F.inflight, F.owner, F.lease_ts, F.due_ts, F.resend_next)
  move(j, S.queued, t, {event = event, tl = {'by', by}})
  count(C.requeued)
  return {'ok', j[F.lane]}
end

if action == 'cancel' or action == 'withdraw' then
  -- withdraw: the producer's compare-and-set when its enqueue was not replicated in time.
  if action == 'withdraw' and state ~= S.queued then return {'refused', 'job is ' .. state} end
  if not WAITING[state] and state ~= S.held then return {'refused', 'job is ' .. state} end
  redis.call('HSET', j.jk, F.last_error, cancel_reason)
  move(j, S.cancelled, t, {tl = {'reason', cancel_reason ~= 'cancelled' and cancel_reason or '', 'by', by}})
  return {'ok', j[F.lane]}
elseif action == 'requeue' then
  if state ~= S.dead then return {'refused', 'job is ' .. state .. ', not dead'} end
  if j[F.dead_reason] == DR.suppressed and redis.call('SISMEMBER', key('suppressed'), j[F.to]) == 1 then
    return {'refused', 'its number is still on the suppression list'}
  end
  return fresh_start('requeued')
elseif action == 'resend' then
  if state ~= S.held then return {'refused', 'job is ' .. state .. ', not held'} end
  redis.call('HINCRBY', j.jk, F.ambiguous_resends, 1)
  count(C.ambiguous_resends)
  return fresh_start('resent')
elseif action == 'mark_sent' then
  if state ~= S.held then return {'refused', 'job is ' .. state .. ', not held'} end
  budget_count(t, 1, 0, t)  -- the operator's word that it was accepted; its price is unknown
  move(j, S.sent, t, {event = 'marked_sent', tl = {'by', by}})
  redis.call('HSET', j.jk, F.sent_ts, t, F.last_error, 'marked sent by an operator')
  return {'ok', j[F.lane]}
elseif action == 'purge' then
  if state ~= S.dead then return {'refused', 'job is ' .. state .. ', not dead'} end
  forget(j)
  return {'ok', j[F.lane]}
end
return redis.error_reply('unknown action ' .. action)
