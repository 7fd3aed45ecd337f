-- Apply a delivery receipt to the job its token named, idempotently, never backwards.
-- A message_id other than the job's own is evidence of another send only when an attempt of the job
-- had an unknown outcome (`doubt`); otherwise it is refused and changes nothing. The same rule
-- holds for a job that ended without a send. A receipt's price counts only within its bound (`deliver`).
-- Arguments: ledger.schema SCRIPT_ARGS['receipt']. Returns one of RECEIPT_RESULTS.
local job, to, status, mid, price, stamp = A.job, A.to, A.status, A.message_id, A.price, A.receipt_timestamp
local j = load(job, F.message_id, F.rcpt_msgid, F.doubt)
local state = j[F.state]
if not state then return R.unknown_job end
if j[F.to] ~= to then return R.to_mismatch end
local t = now()
local own = j[F.message_id]
local doubt = j[F.doubt] == '1'

if state == S.sent then
  if not own or own == '' then
    -- Marked sent by an operator without a message_id: this receipt names it.
    redis.call('HSET', j.jk, F.message_id, mid)
    redis.call('SET', key('msgid', mid), job, 'EX', RETENTION + BACKSTOP_S)
    own = mid
  end
  if own == mid then deliver(j, status, price, stamp, t); return R.applied end
  if doubt then return extra_send(j, mid) end
  return R.refused_foreign
end
if state == S.delivered or state == S.not_delivered then
  if own == mid then return R.duplicate end
  if doubt then return extra_send(j, mid) end
  return R.refused_foreign
end
if LATE_OK[state] then
  -- The provider's word wins over our bookkeeping where a send may have gone out unseen: after an
  -- attempt with an unknown outcome. A job COSMOS refused for good, or never sent, has no such attempt.
  if not doubt then return R.refused_foreign end
  if own and own ~= '' and own ~= mid then return extra_send(j, mid) end
  settle_sent(j, mid, 0, t, true)
  deliver(j, status, price, stamp, t)
  return R.late
end
if state == S.held then
  -- The held attempt did go out: the receipt settles it.
  if not doubt then return R.refused_foreign end
  settle_sent(j, mid, 0, t)
  deliver(j, status, price, stamp, t)
  return R.settled
end
if state == S.sending then
  -- COSMOS was faster than our Redis write; keep it. Recording `sent` applies it, and `begin`
  -- settles the job with it rather than send again.
  if j[F.rcpt_msgid] == mid then return R.duplicate end
  redis.call('HSET', j.jk, F.rcpt_status, status, F.rcpt_msgid, mid, F.rcpt_price, price, F.rcpt_ts, stamp)
  timeline(j, 'receipt', {'status', status, 'note', 'before the acceptance: kept'}, t)
  return R.pending
end
-- queued / retrying: nobody is sending it now. Only an attempt with an unknown outcome explains it.
if not doubt then return R.refused_foreign end
settle_sent(j, mid, 0, t)
deliver(j, status, price, stamp, t)
return R.settled
