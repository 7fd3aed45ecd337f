-- Move given-up forwards back to due, each with a new retry window from now.
-- Arguments: ledger.schema SCRIPT_ARGS['forward_retry'], then the `ids` rows. Returns how many moved.
local due, failed = key('forwards', 'due'), key('forwards', 'failed')
local t = now()
local moved = 0
for i = 0, tonumber(A.ids) - 1 do
  local id = ARGV[ROWS_AT + i * ROW.ids.width + ROW.ids.fwd_id - 1]
  local fk = key('fwd', id)
  if redis.call('ZREM', failed, id) == 1 and redis.call('EXISTS', fk) == 1 then
    redis.call('PERSIST', fk)
    redis.call('HDEL', fk, 'failed_ts')
    redis.call('HSET', fk, 'retry_ts', t)
    redis.call('ZADD', due, t, id)
    moved = moved + 1
  end
end
return moved
