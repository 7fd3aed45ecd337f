-- SMPP receipts carry the provider's message_id only. `match`: the job it names, or keep the receipt
-- (it may come before its submit_sm_resp is recorded) in `smpp:early` for `keep_s`, at most `max_kept`.
-- `due`: kept receipts whose job is now known (to apply), and those past `keep_s` dropped as unmatched.
-- Arguments: ledger.schema SCRIPT_ARGS['smpp_receipt']; action is match | due | done | kept.
-- Returns: match -> {job, to} or {} (kept); due -> flat {job, to, message_id, status, timestamp, ...}
local action = A.action
local EARLY, EARLY_DATA = key('smpp', 'early'), key('smpp', 'early_data')
local t = now()
if action == 'match' then
  local mid, status, stamp, max_kept = A.message_id, A.status, A.timestamp, tonumber(A.max_kept)
  local job = redis.call('GET', key('msgid', mid))
  if job then
    count(C.smpp_receipts)
    return {job, redis.call('HGET', key('job', job), F.to) or ''}
  end
  if redis.call('HEXISTS', EARLY_DATA, mid) == 0 then
    redis.call('HSET', EARLY_DATA, mid, cjson.encode({status, stamp, t}))
    redis.call('ZADD', EARLY, t + 1, mid)
    count(C.smpp_receipts_kept)
    if redis.call('ZCARD', EARLY) > max_kept then
      local oldest = redis.call('ZPOPMIN', EARLY)
      redis.call('HDEL', EARLY_DATA, oldest[1])
      count(C.smpp_receipts_unmatched)
    end
  end
  return {}
end
if action == 'due' then
  local limit, keep_s = tonumber(A.limit), tonumber(A.keep_s)
  local out = {}
  for _, mid in ipairs(redis.call('ZRANGEBYSCORE', EARLY, '-inf', t, 'LIMIT', 0, math.min(limit, STEP))) do
    local data = cjson.decode(redis.call('HGET', EARLY_DATA, mid) or '["","",0]')
    local job = redis.call('GET', key('msgid', mid))
    if job then
      for _, v in ipairs({job, redis.call('HGET', key('job', job), F.to) or '', mid, data[1], data[2]}) do
        table.insert(out, v)
      end
      -- Retried until applied: the caller removes it (`done`) once the receipt is in the record.
      redis.call('ZADD', EARLY, t + 5, mid)
      count(C.smpp_receipts)
    elseif t - tonumber(data[3]) > keep_s then
      redis.call('ZREM', EARLY, mid)
      redis.call('HDEL', EARLY_DATA, mid)
      count(C.smpp_receipts_unmatched)
    else
      redis.call('ZADD', EARLY, t + 1, mid)
    end
  end
  return out
end
if action == 'done' then
  redis.call('ZREM', EARLY, A.message_id)
  return redis.call('HDEL', EARLY_DATA, A.message_id)
end
if action == 'kept' then return redis.call('ZCARD', EARLY) end
return redis.error_reply('unknown action ' .. tostring(action))
