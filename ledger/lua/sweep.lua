-- The retention sweep: remove up to `limit` records whose retention ended, with their index entries
-- and set members, and take them out of the live counts in the same step.
-- Arguments: ledger.schema SCRIPT_ARGS['sweep']. Returns how many records it removed.
local limit = tonumber(A.limit)
local t = now()
local removed = 0
-- Final states by their retention deadline; `sent` jobs (no receipt ever came) by their sent time.
for _, set in ipairs({{'retention', t}, {'awaiting', t - RETENTION}}) do
  for _, job in ipairs(redis.call('ZRANGEBYSCORE', key(set[1]), '-inf', set[2], 'LIMIT', 0, limit - removed)) do
    local j = load(job, F.message_id, F.extra_ids)
    if j[F.state] then
      forget(j)
      removed = removed + 1
    else
      redis.call('ZREM', key(set[1]), job)
    end
  end
  if removed >= limit then break end
end
if removed > 0 then count(C.swept, removed) end
return removed
