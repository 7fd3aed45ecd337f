-- Record the outcome of one HTTP attempt (or the end of a burst) in one round trip.
-- Arguments and reply: ledger.schema SCRIPT_ARGS / SCRIPT_REPLIES['finish'] ({result, breaker_change}).
-- kind: accepted | permanent | transient | ambiguous | account | defer | release
local job, owner, kind, status = A.job, A.owner, A.kind, A.status
local http, latency_ms, message_id, price, err = A.http, A.latency_ms, A.message_id, A.price, A.error
local policy = A.policy
local threshold, open_s = tonumber(A.breaker_threshold), tonumber(A.breaker_open_s)
local cap_s, delay_s = tonumber(A.breaker_cap_s), tonumber(A.delay_s)
local max_resends, route = tonumber(A.max_ambiguous_resends), A.route
local j = load(job, F.owner, F.message_id, F.rcpt_msgid, F.ambiguous_resends, F.doubt, F.attempts)
local provider_status = A.provider_status  -- for people: the attempt history
local state = j[F.state]
if not state then return {R.missing, ''} end
local t = now()
if kind ~= K.defer and kind ~= K.release then
  remember(j.jk, status .. '/' .. http .. '/' .. latency_ms .. '/' .. route .. '/' .. provider_status)
  timeline(j, 'attempt', {'n', j[F.attempts] or '', 'status', status, 'http', http ~= '0' and http or '',
    'ms', latency_ms, 'route', route or '', 'error', kind ~= K.accepted and string.sub(err, 1, 120) or ''}, t)
  redis.call('HDEL', j.jk, F.inflight)
  redis.call('HSET', j.jk, F.route, route)
  count('attempt:' .. route .. ':' .. kind)
  observe('attempt', (tonumber(latency_ms) or 0) / 1000)
  if route == 'smpp' then observe('smpp_submit', (tonumber(latency_ms) or 0) / 1000) end
end

if kind == K.accepted then
  local change = breaker_success()
  redis.call('HDEL', PAUSE, 'account', 'probe_ts')  -- COSMOS takes our requests again
  if state == S.sent or state == S.delivered or state == S.not_delivered then
    -- Another attempt of this job was recorded first: this one is an extra send.
    if j[F.message_id] ~= message_id then
      local extra = extra_send(j, message_id)
      if extra == R.extra then budget_count(t, 1, micros(price), t) end  -- it cost a send too
      return {extra, change}
    end
    return {R.duplicate, change}
  end
  settle_sent(j, message_id, price, t, LATE_OK[state])
  if j[F.rcpt_msgid] then
    if j[F.rcpt_msgid] == message_id then
      local r = redis.call('HMGET', j.jk, F.rcpt_status, F.rcpt_price, F.rcpt_ts)
      deliver(j, r[1], r[2], r[3], t)
    else
      -- Another message_id is evidence of another send only after an attempt with an unknown outcome.
      if j[F.doubt] == '1' then extra_send(j, j[F.rcpt_msgid]) end
      redis.call('HDEL', j.jk, F.rcpt_status, F.rcpt_msgid, F.rcpt_price, F.rcpt_ts)
    end
  end
  return {R.sent, change}
end

-- From here on the attempt did not prove a send; only the lease owner may move the job.
if state ~= S.sending or j[F.owner] ~= owner then return {R.lost_lease, ''} end
-- A receipt arrived meanwhile: this attempt (its outcome unknown) or an earlier one was accepted after all.
if settle_stored_receipt(j, t, j[F.doubt] == '1' or kind == K.ambiguous) then return {R.sent, ''} end

if kind == K.permanent then
  local change = breaker_success()
  redis.call('HSET', j.jk, F.last_error, err)
  if http == '0' and provider_status == '' then  -- refused before any request (large_request): not an attempt
    redis.call('HINCRBY', j.jk, F.attempts, -1)
    count(C.attempts, -1)
  end
  if status == 'blacklist' then
    redis.call('SADD', key('suppressed'), j[F.to])
    redis.call('HSETNX', key('suppression', j[F.to]), 'blacklist', t)
  end
  move(j, S.dead, t, {reason = status})
  return {R.dead, change}
end
if kind == K.account then
  -- Our credentials or endpoint are wrong: true of every message, so sending pauses; the job waits.
  redis.call('HSET', j.jk, F.last_error, err)
  if status == 'unauthorized' then count(C.unauthorized) end
  local reason = status == 'unauthorized' and AP.unauthorized or AP.endpoint_not_found
  local newly = redis.call('HSETNX', PAUSE, 'account', cjson.encode({reason = reason, ts = t})) == 1
  move(j, S.retrying, t, {due = t, event = 'waiting', tl = {'why', 'account_paused', 'reason', reason}})
  return {R.paused, newly and 'paused' or ''}
end
if kind == K.transient or kind == K.ambiguous then
  local change = breaker_failure(threshold, open_s, cap_s, t)
  redis.call('HSET', j.jk, F.last_error, err)
  count(C.transient_failures)
  if kind == K.ambiguous then
    count(C.ambiguous_attempts)
    redis.call('HSET', j.jk, F.doubt, 1)
    if policy == 'hold' or (tonumber(j[F.ambiguous_resends]) or 0) >= max_resends then
      move(j, S.held, t)
      return {R.held, change}
    end
    redis.call('HSET', j.jk, F.resend_next, 1)
  end
  return {R.retry, change}
end
if kind == K.defer then
  move(j, S.retrying, t, {due = t + delay_s, event = 'retry_scheduled', tl = {'until', t + delay_s}})
  count(C.retries)
  return {R.retrying, ''}
end
if kind == K.release then
  if status == 'throttled' then count(C.smpp_throttled) end
  -- A lease given back before any request (too few replicas held it): not an attempt.
  redis.call('HINCRBY', j.jk, F.attempts, -1)
  count(C.attempts, -1)
  redis.call('HSET', j.jk, F.last_error, err)
  move(j, S.retrying, t, {due = t + delay_s, event = 'waiting', tl = {'why', err, 'until', t + delay_s}})
  return {R.retrying, ''}
end
return redis.error_reply('unknown kind ' .. kind)
