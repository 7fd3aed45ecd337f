-- Claim up to `limit` due forwards, each pushed `claim_grace_s` ahead: invisible to other workers, and
-- due again if this claim's worker dies mid-POST. Given-up forwards past their retention go on the side,
-- at most `prune_limit` a call.
-- First, the forwards the last claim's worker held back without a request (their destination busy or its
-- breaker open) go back, each due after its own delay: a slow destination costs one call a round.
-- Arguments: ledger.schema SCRIPT_ARGS['forward_claim'], then the `held` rows. Returns flat rows of
-- REPLY_ROWS['forward_claim'].
local due, failed = key('forwards', 'due'), key('forwards', 'failed')
local limit, grace, prune = tonumber(A.limit), tonumber(A.claim_grace_s), tonumber(A.prune_limit)
local t = now()
for i = 0, tonumber(A.held) - 1 do
  local at = ROWS_AT + i * ROW.held.width - 1
  -- XX: a forward completed meanwhile stays gone.
  redis.call('ZADD', due, 'XX', t + tonumber(ARGV[at + ROW.held.delay_s]), ARGV[at + ROW.held.fwd_id])
end
for _, id in ipairs(redis.call('ZRANGE', failed, '-inf', t - RETENTION, 'BYSCORE', 'LIMIT', 0, prune)) do
  redis.call('ZREM', failed, id)
  redis.call('DEL', key('fwd', id))
end
-- A job's forwards go out in order: one superseded by a later state of the job is dropped, and a later
-- one waits while an earlier one is in flight (claimed, not yet completed or rescheduled).
local function drop(id)
  redis.call('DEL', key('fwd', id))
  redis.call('ZREM', due, id)
end
local function in_order(id, fields)
  local f = {}
  for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
  local seq = tonumber(f.seq)
  if not seq then return true end
  local latest = tonumber(redis.call('HGET', key('job', f.job), F.fwd_seq) or '') or seq
  if seq < latest then drop(id); return false end
  for k = seq - 1, 1, -1 do
    local older = f.job .. '.' .. k
    local claimed = redis.call('HGET', key('fwd', older), 'claimed_until')
    if claimed and tonumber(claimed) > t then
      redis.call('ZADD', due, t + 1, id)
      return false
    end
    drop(older)
  end
  return true
end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', due, '-inf', t, 'BYSCORE', 'LIMIT', 0, limit)) do
  local fields = redis.call('HGETALL', key('fwd', id))
  if #fields == 0 then
    redis.call('ZREM', due, id)
  elseif in_order(id, fields) then
    redis.call('ZADD', due, t + grace, id)
    redis.call('HSET', key('fwd', id), 'claimed_until', t + grace)
    out[#out + 1] = id
    out[#out + 1] = fields
  end
end
return out
