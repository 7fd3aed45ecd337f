-- Lift the reasons an operator may lift from one number's suppression: `operator` and `blacklist`
-- always, `opt_out` (the recipient's own STOP) only with force. The number leaves the list once no
-- reason remains. A number suppressed before reasons were kept has none: it counts as `operator`.
-- Arguments: ledger.schema SCRIPT_ARGS['unsuppress']. Returns `removed`, `kept` (a reason remains) or `absent`.
local number = A.number
local SUPPRESSED, reasons = key('suppressed'), key('suppression', number)
if redis.call('SISMEMBER', SUPPRESSED, number) == 0 and redis.call('EXISTS', reasons) == 0 then return 'absent' end
redis.call('HDEL', reasons, 'operator', 'blacklist')
if A.force == '1' then redis.call('HDEL', reasons, 'opt_out') end
if redis.call('HLEN', reasons) == 0 then
  redis.call('SREM', SUPPRESSED, number)
  return 'removed'
end
return 'kept'
