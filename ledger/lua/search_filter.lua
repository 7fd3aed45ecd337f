-- Read-only: which of the `jobs` rows (job ids) have a record that matches state, dead reason, number,
-- batch, created range and (scheduled '1') being queued with a send_at ('' for a filter not asked).
-- At most SCAN_LIMIT rows a call.
-- Arguments: ledger.schema SCRIPT_ARGS['search_filter'], then the rows. Returns the matching rows' positions.
local state, reason, number, batch = A.state, A.reason, A.number, A.batch
local since, till, scheduled = tonumber(A.since), tonumber(A.until_ts), A.scheduled == '1'
local out = {}
for i = 1, tonumber(A.jobs) do
  local job = ARGV[ROWS_AT + (i - 1) * ROW.jobs.width + ROW.jobs.job - 1]
  local f = redis.call('HMGET', key('job', job), F.state, F.dead_reason, F.to, F.batch, F.created_ts, F.send_at)
  local ok = f[1] ~= false
  if ok and scheduled and (f[1] ~= S.queued or not f[6]) then ok = false end
  if ok and state ~= '' and f[1] ~= state then ok = false end
  if ok and reason ~= '' and f[2] ~= reason then ok = false end
  if ok and number ~= '' and f[3] ~= number then ok = false end
  if ok and batch ~= '' and f[4] ~= batch then ok = false end
  if ok and (since or till) then
    local ts = tonumber(f[5]) or 0
    if (since and ts < since) or (till and ts > till) then ok = false end
  end
  if ok then out[#out + 1] = i end
end
return out
