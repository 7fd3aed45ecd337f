-- Move a consumer group that fell behind the events stream's bound to the first available entry
-- (nothing if it is not behind). Arguments: ledger.schema SCRIPT_ARGS['events_skip']. Returns 1 | 0.
local stream, group = key('events'), A.group
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end
local info = redis.call('XINFO', 'STREAM', stream)
local before = tonumber(field(info, 'entries-added')) - tonumber(field(info, 'length'))
local first = field(info, 'first-entry')
if not first then return 0 end
for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  if field(g, 'name') == group then
    local last = field(g, 'last-delivered-id')
    local lms, lseq = string.match(last, '^(%d+)-(%d+)$')
    local fms, fseq = string.match(first[1], '^(%d+)-(%d+)$')
    lms, lseq, fms, fseq = tonumber(lms), tonumber(lseq), tonumber(fms), tonumber(fseq)
    if lms < fms or (lms == fms and lseq < fseq) then
      redis.call('XGROUP', 'SETID', stream, group, '0', 'ENTRIESREAD', before)
      return 1
    end
  end
end
return 0
