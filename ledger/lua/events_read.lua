-- Atomically: is the consumer group behind the events stream's bound? If not, read what is new.
-- Arguments: ledger.schema SCRIPT_ARGS['events_read'].
-- Returns {'missed', estimate or -1, first id} | {'ok', last generated id, XREADGROUP reply} | {'nogroup'}
local stream, group, consumer, count = key('events'), A.group, A.consumer, A.count
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end
local function id_less(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
if redis.call('EXISTS', stream) == 0 then return {'nogroup'} end
local mine
for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  if field(g, 'name') == group then mine = g end
end
if not mine then return {'nogroup'} end
local info = redis.call('XINFO', 'STREAM', stream)
local first = field(info, 'first-entry')
local last_delivered = field(mine, 'last-delivered-id')
if first and id_less(last_delivered, first[1]) then
  -- Every entry after the group's position is still in the stream; any other was trimmed unread.
  local entries_read = field(mine, 'entries-read')
  local missed = -1
  if entries_read then
    missed = tonumber(field(info, 'entries-added')) - tonumber(entries_read) - tonumber(field(info, 'length'))
  end
  if missed ~= 0 then return {'missed', tostring(missed), first[1]} end
end
local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')
return {'ok', field(info, 'last-generated-id'), reply}
