-- The archive has these records as read: each leaves the to-archive set only if it did not change
-- since (its score is still the one read), and is marked archived, so the sweep may remove it.
-- args: n, then n pairs (job, score as read). Returns how many left the set.
local n = tonumber(arg(1))
local pk = key('archive', 'pending')
local done = 0
for i = 1, n do
  local job, score = arg(2 * i), tonumber(arg(2 * i + 1))
  local current = redis.call('ZSCORE', pk, job)
  if current and tonumber(current) == score then
    redis.call('ZREM', pk, job)
    local jk = key('job', job)
    if redis.call('EXISTS', jk) == 1 then redis.call('HSET', jk, F.archived, 1) end
    done = done + 1
  end
end
return done
