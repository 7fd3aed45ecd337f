-- Record an inbound (mobile-originated) message, and what an opt-out word does to the suppression list.
-- `inbound` is a stream trimmed to the records' retention; the events stream gets a `kind` `inbound` entry.
-- The suppression list keeps each number's reasons in `suppression:<number>` (reason -> since), so
-- START/UNSTOP undo only what an opt-out did: a number suppressed for another reason stays suppressed.
-- Arguments: ledger.schema SCRIPT_ARGS['inbound']; word is opt_out | opt_in | ''.
-- With a url (COSMOS_INBOUND_URL), a forward intent POSTs it to the application.
-- Returns the inbound entry id.
local sender, to, text, word, url = A.sender, A.to, A.text, A.word, A.url
local t = now()
local ms = math.floor(t * 1000)
local id = redis.call('XADD', key('inbound'), 'MINID', '~', ms - RETENTION * 1000, '*',
  'from', sender, 'to', to, 'text', text, 'word', word)
count(C.smpp_inbound)
local SUPPRESSED, reasons = key('suppressed'), key('suppression', sender)
if word == 'opt_out' then
  if redis.call('SISMEMBER', SUPPRESSED, sender) == 1 and redis.call('EXISTS', reasons) == 0 then
    redis.call('HSET', reasons, 'operator', t)  -- suppressed before reasons were kept: not ours to undo
  end
  redis.call('HSETNX', reasons, 'opt_out', t)
  redis.call('SADD', SUPPRESSED, sender)
elseif word == 'opt_in' then
  if redis.call('HDEL', reasons, 'opt_out') == 1 and redis.call('HLEN', reasons) == 0 then
    redis.call('SREM', SUPPRESSED, sender)
  end
end
if url ~= '' then
  -- A forward intent like a final state's: the forwarder POSTs it (signed, retried) to COSMOS_INBOUND_URL.
  local fid = 'in.' .. id
  local payload = {from = sender, to = to, text = text, received_at = string.gsub(cosmos_time(t), ' ', 'T') .. 'Z'}
  redis.call('HSET', key('fwd', fid), 'job', '', 'url', url, 'payload', cjson.encode(payload),
    'webhook_id', 'msg_' .. fid, 'attempts', 0, 'created_ts', t)
  redis.call('ZADD', key('forwards', 'due'), t, fid)
end
if EVENTS_MAXLEN > 0 then
  redis.call('XADD', key('events'), 'MAXLEN', '~', EVENTS_MAXLEN, '*',
    'kind', 'inbound', 'inbound_id', id, 'from', sender, 'word', word)
end
return id
