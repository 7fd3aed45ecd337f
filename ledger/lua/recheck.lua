-- Just before a request that waited for its rate slot: whether sending was paused meanwhile.
-- A lease taken before an account, operator or budget pause must not send after it; it is given back
-- like an unused one (not an attempt), and the job waits in its retry set.
-- Arguments: ledger.schema SCRIPT_ARGS['recheck'] (probe '1': this request is the pause's probe).
-- Returns {go} | {wait, why} | {skip, why}
local job, owner, probe = A.job, A.owner, A.probe == '1'
local j = load(job, F.owner)
if j[F.state] ~= S.sending or j[F.owner] ~= owner then return {V.skip, 'lost_lease'} end
local t = now()
local why
if operator_paused(j[F.lane]) then
  why = 'operator_paused'
elseif budget_paused(t) then
  why = 'budget_paused'
elseif not probe and redis.call('HEXISTS', PAUSE, 'account') == 1 then
  why = 'account_paused'
else
  return {V.go}
end
redis.call('HINCRBY', j.jk, F.attempts, -1)
count(C.attempts, -1)
redis.call('HDEL', j.jk, F.inflight)
move(j, S.retrying, t, {due = t})
return {V.wait, why}
