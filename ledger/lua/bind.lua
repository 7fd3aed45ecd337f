-- The fleet's SMPP bind slots: one key per slot, held under a lease its holder renews.
-- A slot is taken only once its old lease has ended (SET NX), so the fleet never holds more than
-- `slots` binds, even while a vanished holder's session lingers at the SMSC until its lease ends.
-- Arguments: ledger.schema SCRIPT_ARGS['bind']; action is acquire | renew | release | count.
-- Returns: acquire -> slot number or -1; renew/release -> 1 or 0; count -> slots held now.
local action, holder, slots, lease_ms, slot = A.action, A.holder, tonumber(A.slots), tonumber(A.lease_ms), A.slot
if action == 'acquire' then
  for i = 0, slots - 1 do
    if redis.call('SET', key('smpp', 'bind', i), holder, 'NX', 'PX', lease_ms) then
      count(C.smpp_binds)
      return i
    end
  end
  return -1
end
if action == 'renew' then
  if redis.call('GET', key('smpp', 'bind', slot)) ~= holder then return 0 end
  redis.call('PEXPIRE', key('smpp', 'bind', slot), lease_ms)
  return 1
end
if action == 'release' then
  if redis.call('GET', key('smpp', 'bind', slot)) ~= holder then return 0 end
  redis.call('DEL', key('smpp', 'bind', slot))
  return 1
end
if action == 'count' then
  local held = 0
  for i = 0, math.min(slots, 64) - 1 do
    if redis.call('EXISTS', key('smpp', 'bind', i)) == 1 then held = held + 1 end
  end
  return held
end
return redis.error_reply('unknown action ' .. tostring(action))
