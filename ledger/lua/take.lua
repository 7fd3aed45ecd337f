-- A single-lane task's job with up to `limit` single-job messages waiting behind it, leased in one
-- atomic step: a message leaves the broker list only with its job's lease (or its verdict) written.
-- Arguments: ledger.schema SCRIPT_ARGS['take']: begin's, for the task's own job, then the broker list,
-- how many to take and the task name of a single-job message. `begin_job(A)` is begin.lua's body.
-- Returns {own begin reply, {job, owner, begin reply}...}; other messages go back where consumers read next.
-- The reply is kept for TAKE_TTL_S under the owner: a call repeated after its reply was lost
-- (redis-py's retry) answers the same instead of taking more.
local kept = key('take', A.owner)
local done = redis.call('GET', kept)
if done then return cjson.decode(done) end
local out = {begin_job(A)}
local taken = tonumber(A.limit) > 0 and redis.call('RPOP', A.queue, A.limit) or false
local others = {}
for k, message in ipairs(taken or {}) do
  local ok, m = pcall(cjson.decode, message)
  local headers = ok and type(m) == 'table' and m.headers
  local id = type(headers) == 'table' and headers.task == A.task and type(headers.argsrepr) == 'string'
    and string.match(headers.argsrepr, "^%['([%w%-]+)'%]$")
  if id then
    local a = {}
    for name, value in pairs(A) do a[name] = value end
    a.job, a.owner, a.count_delivery = id, A.owner .. ':' .. k, '0'
    table.insert(out, {id, a.owner, begin_job(a)})
  else
    table.insert(others, 1, message)  -- the first taken goes back last: consumers read it first again
  end
end
if #others > 0 then redis.call('RPUSH', A.queue, unpack(others)) end
redis.call('SET', kept, cjson.encode(out), 'EX', TAKE_TTL_S)
return out
