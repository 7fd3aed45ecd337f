-- Today's budget day: an operator's resume, and the log lines its warnings still owe.
-- Arguments: ledger.schema SCRIPT_ARGS['budget'].
-- resume: lift the budget pause until the day ends -> {'ok', reason} | {'refused', why}
-- announce: warning levels reached today whose log line is not written yet, marked written now
--   -> flat {level, reason, messages, price_micros, ...}
local action, by = A.action, A.by
local t = now()
local dk = budget_day(t)

if action == 'resume' then
  local reason = dk and budget_paused(t)
  if not reason then return {'refused', 'sending is not paused by the budget'} end
  redis.call('HSET', dk, BF.resumed, cjson.encode({by = by, ts = t}))
  return {'ok', reason}
elseif action == 'announce' then
  local out = {}
  if not dk then return out end
  local b = redis.call('HMGET', dk, BF.messages, BF.price)
  local m, p = tonumber(b[1]) or 0, tonumber(b[2]) or 0
  for _, level in ipairs(BUDGET_LEVELS) do
    if redis.call('HEXISTS', dk, BF['warned_' .. level]) == 1
        and redis.call('HSETNX', dk, BF['logged_' .. level], 1) == 1 then
      for _, v in ipairs({level, cap_reached(m, p, level) or '', m, p}) do table.insert(out, v) end
    end
  end
  return out
end
return redis.error_reply('unknown action ' .. action)
