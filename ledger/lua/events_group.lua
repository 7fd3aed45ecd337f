-- Create a consumer group of the events stream (idempotent) at '$' or at the first available entry,
-- with a consistent entries-read so that entries trimmed before the group existed never count as missed.
-- Arguments: ledger.schema SCRIPT_ARGS['events_group']. Returns 'created' | 'exists'.
local stream, group, start = key('events'), A.group, A.start
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end
local created = redis.pcall('XGROUP', 'CREATE', stream, group, '$', 'MKSTREAM')
if type(created) == 'table' and created.err then
  if string.find(created.err, 'BUSYGROUP') then return 'exists' end
  return redis.error_reply(created.err)
end
-- Redis 7.0 leaves entries-read unset for a group made at '$': set it, the check above needs it.
local info = redis.call('XINFO', 'STREAM', stream)
local added = tonumber(field(info, 'entries-added'))
if start == '0' then
  redis.call('XGROUP', 'SETID', stream, group, '0', 'ENTRIESREAD', added - tonumber(field(info, 'length')))
else
  redis.call('XGROUP', 'SETID', stream, group, '$', 'ENTRIESREAD', added)
end
return 'created'
