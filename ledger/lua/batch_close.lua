-- Mark a batch cancelled, so `enqueue` refuses it new members; nothing if there is no such batch.
-- Arguments: ledger.schema SCRIPT_ARGS['batch_close']. Returns 1 when closed, 0 for an unknown batch.
local bk = key('batch', A.batch_id)
if redis.call('HEXISTS', bk, 'total') == 0 then return 0 end
redis.call('HSET', bk, 'cancelled', 1)
return 1
