-- The retention sweep: remove up to `limit` records whose retention ended, with their index entries
-- and set members, and take them out of the live counts in the same step.
-- args: limit. Returns how many records it removed.
local limit = tonumber(arg(1))
local t = now()
local removed = 0
for _, job in ipairs(redis.call('ZRANGEBYSCORE', key('retention'), '-inf', t, 'LIMIT', 0, limit)) do
  local j = load(job, F.message_id, F.extra_ids)
  if j[F.state] then
    forget(j)
    removed = removed + 1
  else
    redis.call('ZREM', key('retention'), job)
  end
end
if removed > 0 then count(C.swept, removed) end
return removed
