-- The retention sweep: remove up to `limit` records whose retention ended, with their index entries
-- and set members, and take them out of the live counts in the same step. With an archive, a record
-- the archive does not have yet stays (queued for it) and is looked at again a minute later.
-- Arguments: ledger.schema SCRIPT_ARGS['sweep']. Returns how many records it removed.
local limit = tonumber(A.limit)
local t = now()
local removed, budget = 0, limit
local RECHECK_S = 60
-- Final states by their retention deadline; `sent` jobs (no receipt ever came) by their sent time.
for _, set in ipairs({{'retention', t}, {'awaiting', t - RETENTION}}) do
  local jobs = redis.call('ZRANGEBYSCORE', key(set[1]), '-inf', set[2], 'LIMIT', 0, budget)
  budget = budget - #jobs
  for _, job in ipairs(jobs) do
    local j = load(job, F.message_id, F.extra_ids)
    if not j[F.state] then
      redis.call('ZREM', key(set[1]), job)
    elseif archived_or_queue(j, t) then
      forget(j)
      removed = removed + 1
    else
      if set[1] == 'retention' then redis.call('ZADD', key('retention'), t + RECHECK_S, job) end
      redis.call('EXPIRE', j.jk, BACKSTOP_S)  -- the backstop waits for the archive too
    end
  end
  if budget <= 0 then break end
end
if removed > 0 then count(C.swept, removed) end
return removed
