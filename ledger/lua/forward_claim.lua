-- Claim up to `limit` due forwards, each pushed `claim_grace_s` ahead: invisible to other workers, and
-- due again if this claim's worker dies mid-POST. Given-up forwards past their retention go on the side,
-- at most `prune_limit` a call.
-- Arguments: ledger.schema SCRIPT_ARGS['forward_claim']. Returns flat rows of REPLY_ROWS['forward_claim'].
local due, failed = key('forwards', 'due'), key('forwards', 'failed')
local limit, grace, prune = tonumber(A.limit), tonumber(A.claim_grace_s), tonumber(A.prune_limit)
local t = now()
for _, id in ipairs(redis.call('ZRANGE', failed, '-inf', t - RETENTION, 'BYSCORE', 'LIMIT', 0, prune)) do
  redis.call('ZREM', failed, id)
  redis.call('DEL', key('fwd', id))
end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', due, '-inf', t, 'BYSCORE', 'LIMIT', 0, limit)) do
  local fields = redis.call('HGETALL', key('fwd', id))
  if #fields == 0 then
    redis.call('ZREM', due, id)
  else
    redis.call('ZADD', due, t + grace, id)
    out[#out + 1] = id
    out[#out + 1] = fields
  end
end
return out
