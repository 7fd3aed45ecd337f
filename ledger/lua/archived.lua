-- The archive has these records as read: each leaves the to-archive set only if it did not change
-- since (its score is still the one read), and is marked archived, so the sweep may remove it.
-- Arguments: ledger.schema SCRIPT_ARGS['archived'], then the `pairs` rows. Returns how many left the set.
local pk = key('archive', 'pending')
local done = 0
for i = 0, tonumber(A.pairs) - 1 do
  local at = ROWS_AT + i * ROW.pairs.width
  local job, score = ARGV[at + ROW.pairs.job - 1], tonumber(ARGV[at + ROW.pairs.score - 1])
  local current = redis.call('ZSCORE', pk, job)
  if current and tonumber(current) == score then
    redis.call('ZREM', pk, job)
    local jk = key('job', job)
    if redis.call('EXISTS', jk) == 1 then redis.call('HSET', jk, F.archived, 1) end
    done = done + 1
  end
end
return done
