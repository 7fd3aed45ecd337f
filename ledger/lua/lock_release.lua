-- Release a lock (`{P}:lock:<name>`) only if this holder's token still owns it.
-- Arguments: ledger.schema SCRIPT_ARGS['lock_release']. Returns 1 when released, else 0.
local lk = key('lock', A.name)
if redis.call('GET', lk) == A.token then return redis.call('DEL', lk) end
return 0
