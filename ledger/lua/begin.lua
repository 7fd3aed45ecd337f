-- Decide, in one round trip, whether this worker may make the next HTTP attempt for a job,
-- and if so take (or renew) its lease and its rate slot.
-- Arguments and the `go` reply: ledger.schema SCRIPT_ARGS / SCRIPT_REPLIES['begin'].
-- Otherwise returns {busy, wait_s} | {wait, why} | {skip, why} | {held} | {dead, reason} | {expired} | {sent}
local job, owner = A.job, A.owner
local lease_s, policy = tonumber(A.lease_s), A.policy
local max_attempts, poison_n, count_delivery = tonumber(A.max_attempts), tonumber(A.poison_deliveries),
  A.count_delivery == '1'
local rate, bulk_ahead = tonumber(A.rate), tonumber(A.bulk_ahead_s)
local probe_s, max_resends = tonumber(A.probe_s), tonumber(A.max_ambiguous_resends)
local probe_interval = tonumber(A.probe_interval_s)
local j = load(job, F.owner, F.lease_ts, F.inflight, F.deliveries, F.expires_ts, F.attempts, F.from, F.text,
  F.callback, F.due_ts, F.resend_next, F.ambiguous_resends, F.rcpt_msgid, F.doubt, F.send_at)
local state = j[F.state]
if not state then return {V.skip, 'missing'} end
local t = now()
local renewing, lost_in_flight = false, false

-- Whether an attempt whose outcome is unknown may be repeated, or the job must wait for an operator.
local function may_resend()
  return policy ~= 'hold' and (tonumber(j[F.ambiguous_resends]) or 0) < max_resends
end

if state == S.sending then
  if j[F.owner] == owner then
    renewing = true
  elseif (tonumber(j[F.lease_ts]) or 0) > t then
    return {V.skip, 'leased'}
  elseif j[F.inflight] == '1' then
    -- Its owner died with a request on the wire: COSMOS may have accepted it.
    remember(j.jk, 'lease_expired/0/0')
    timeline(j, 'attempt', {'status', 'lease_expired', 'note', 'worker lost during the attempt'}, t)
    redis.call('HSET', j.jk, F.last_error, 'worker lost during an attempt (ambiguous)', F.doubt, 1)
    redis.call('HDEL', j.jk, F.inflight)
    count(C.ambiguous_attempts)
    lost_in_flight = true
  end
elseif WAITING[state] then
  if state == S.retrying and (tonumber(j[F.due_ts]) or 0) > t + 0.05 then return {V.skip, 'not_due'} end
  -- Never before send_at, whatever message brought it here.
  if state == S.queued and (tonumber(j[F.send_at]) or 0) > t then return {V.skip, 'scheduled'} end
else
  return {V.skip, state}
end

-- COSMOS already reported this job: settle it, never send it again.
if j[F.rcpt_msgid] and settle_stored_receipt(j, t, j[F.doubt] == '1' or lost_in_flight) then return {V.sent} end
if (tonumber(j[F.expires_ts]) or 0) <= t then move(j, S.expired, t); return {V.expired} end
if redis.call('SISMEMBER', key('suppressed'), j[F.to]) == 1 then
  move(j, S.dead, t, {reason = DR.suppressed}); return {V.dead, DR.suppressed}
end
if not renewing and count_delivery and (tonumber(j[F.deliveries]) or 0) >= poison_n then
  move(j, S.dead, t, {reason = DR.poison}); return {V.dead, DR.poison}
end
if lost_in_flight then
  -- Poison first: a job that keeps killing its workers is diagnosed as such, not held.
  if not may_resend() then move(j, S.held, t); return {V.held} end
  j[F.resend_next] = '1'
end
local attempts = tonumber(j[F.attempts]) or 0
if attempts >= max_attempts then
  move(j, S.dead, t, {reason = DR.retries_exhausted}); return {V.dead, DR.retries_exhausted}
end

-- Wait without spending the attempt budget: the job waits in its lane's retry set. The reconciler
-- releases it when `until_ts` comes and nothing (a pause, an open breaker) holds sending back.
local function defer(until_ts, why)
  move(j, S.retrying, t, {due = until_ts, event = 'waiting', tl = {'why', why, 'until', until_ts}})
  return {V.wait, why}
end

local lane = j[F.lane]
-- Quiet hours hold bulk jobs (never singles) until the window ends, without spending an attempt.
if lane == 'bulk' and not renewing
    and quiet_until(t, A.quiet_start, A.quiet_end, A.quiet_next_start, A.quiet_next_end) then
  if j[F.resend_next] == '1' then redis.call('HSET', j.jk, F.resend_next, 1) end
  hold_for_quiet(j, t)
  return {V.skip, 'quiet_hours'}
end
if operator_paused(lane) then return defer(t, 'operator_paused') end
-- Before the account's probe: a probe COSMOS accepts costs a message too.
if budget_paused(t) then return defer(t, 'budget_paused') end
local probe = false
local account = redis.call('HMGET', PAUSE, 'account', 'probe_ts')
if account[1] then
  -- One probe every probe interval, shared by every worker, rotating over the waiting jobs.
  if (tonumber(account[2]) or 0) + probe_interval > t then return defer(t, 'account_paused') end
  redis.call('HSET', PAUSE, 'probe_ts', t)
  probe = true
else
  local b = redis.call('HMGET', BREAKER, 'state', 'open_until', 'probe_until')
  if b[1] == 'open' and (tonumber(b[2]) or 0) > t then
    return defer(tonumber(b[2]), 'breaker_open')
  elseif b[1] == 'open' or b[1] == 'half_open' then
    if (tonumber(b[3]) or 0) > t then return defer(tonumber(b[3]), 'breaker_probe') end
    -- This attempt is the half-open probe; the others wait for its verdict.
    redis.call('HSET', BREAKER, 'state', 'half_open', 'probe_until', t + probe_s)
  end
end

-- The global rate: a virtual schedule of request slots. A single-lane attempt takes the next
-- single slot at once (singles never queue behind bulk); bulk takes slots at most `bulk_ahead`
-- seconds ahead, so a burst of bulk can delay a single by no more than that.
local delay = 0
if rate > 0 then
  local interval = 1 / rate
  local r = redis.call('HMGET', key('rate'), 'tat', 'single_tat')
  local tat = math.max(tonumber(r[1]) or t, t)
  local slot
  if lane == 'single' then
    slot = math.max(tonumber(r[2]) or t, t)
    redis.call('HSET', key('rate'), 'single_tat', slot + interval)
  else
    slot = tat
    if slot > t + bulk_ahead then
      timeline(j, 'waiting', {'why', 'rate_slot', 'until', slot - bulk_ahead}, t)
      return {V.busy, tostring(slot - bulk_ahead - t)}
    end
  end
  redis.call('HSET', key('rate'), 'tat', tat + interval)
  redis.call('PEXPIRE', key('rate'), 60000)
  delay = slot - t
  if delay >= 0.001 then timeline(j, 'waiting', {'why', 'rate_slot', 'ms', math.floor(delay * 1000)}, t) end
end

if j[F.resend_next] == '1' then
  redis.call('HINCRBY', j.jk, F.ambiguous_resends, 1)
  count(C.ambiguous_resends)
  redis.call('HDEL', j.jk, F.resend_next)
end
local lease_ts = t + lease_s + delay
if state ~= S.sending then
  move(j, S.sending, t, {lease_ts = lease_ts, tl = probe and {'probe', '1'} or {'n', attempts + 1}})
else
  redis.call('ZADD', key('leases'), lease_ts, job)
end
if not renewing and count_delivery then redis.call('HINCRBY', j.jk, F.deliveries, 1) end
if probe then
  count(C.probes)
else
  attempts = attempts + 1
  count(C.attempts)
end
redis.call('HSET', j.jk, F.owner, owner, F.lease_ts, lease_ts, F.inflight, 1, F.attempts, attempts, F.updated_ts, t)
return reply{verdict = V.go, attempt = tostring(attempts), to = j[F.to], sender = j[F.from], text = j[F.text],
  callback = j[F.callback] or '', delay_s = tostring(delay),
  probe = probe and '1' or '0', forward = j[F.forward] or ''}
