-- Shared by every ledger script (after the generated schema): keys, clock, options, the one state move.
-- Keys are derived from the prefix inside the script: cosmos-sms targets one Redis, not a cluster.
-- COMMON (generated): the arguments every script gets first; each script's own are `A.<name>`.
-- clock_offset_s: seconds added to Redis TIME (0 outside tests, which move the clock with it).
local P = COMMON.prefix
local RETENTION, EVENTS_MAXLEN, GRACE = tonumber(COMMON.retention_s), tonumber(COMMON.events_maxlen),
  tonumber(COMMON.grace_s)
local CLOCK_OFFSET = tonumber(COMMON.clock_offset_s)
-- The budget: the boundaries of three consecutive budget days (computed in Python, which knows time
-- zones), the daily message cap and price cap (micro-dollars; 0 = none).
local BUDGET_DAYS = {tonumber(COMMON.budget_yesterday), tonumber(COMMON.budget_today),
  tonumber(COMMON.budget_tomorrow), tonumber(COMMON.budget_after)}
local MESSAGE_CAP, PRICE_CAP = tonumber(COMMON.message_cap), tonumber(COMMON.price_cap)
local function key(...) return P .. ':' .. table.concat({...}, ':') end
local COUNTERS = key('counters')
local BACKSTOP_S = 86400  -- EXPIRE fires a day after the sweep should have removed a record

local function now()
  local t = redis.call('TIME')  -- one clock for every worker on every machine
  return tonumber(t[1]) + tonumber(t[2]) / 1000000 + CLOCK_OFFSET
end

-- A job's fields by name: j[F.state], j.id, j.jk. The move needs state, lane, batch, forward, dead_reason,
-- and its timeline entry created_ts.
local BASIC = {F.state, F.lane, F.batch, F.forward, F.dead_reason, F.to, F.idem, F.created_ts}
local function load(job, ...)
  local names = {unpack(BASIC)}
  for _, n in ipairs({...}) do table.insert(names, n) end
  local jk = key('job', job)
  local values = redis.call('HMGET', jk, unpack(names))
  local j = {id = job, jk = jk}
  for i, n in ipairs(names) do j[n] = values[i] end
  return j
end

local function count(name, by) redis.call('HINCRBY', COUNTERS, name, by or 1) end

-- COSMOS's timestamp form, "YYYY-MM-DD HH:MM:SS" at UTC, from epoch seconds (Redis Lua has no os.date).
local function cosmos_time(ts)
  local secs = math.floor(ts)
  local days, rem = math.floor(secs / 86400), secs % 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02d %02d:%02d:%02d', y, m, d, math.floor(rem / 3600),
    math.floor(rem % 3600 / 60), rem % 60)
end

local function observe(name, seconds)
  local le = '+Inf'
  for _, b in ipairs(BUCKETS) do if seconds <= b then le = tostring(b); break end end
  local hk = key('histograms')
  redis.call('HINCRBY', hk, name .. ':' .. le, 1)
  redis.call('HINCRBYFLOAT', hk, name .. ':sum', seconds)
  redis.call('HINCRBY', hk, name .. ':count', 1)
end

-- The job's timeline, kept in the job's own hash (no key of its own: ~150 B a delivered record).
-- Entry k (1-based) is "<ms since created>|<event>[|name=value...]" in field TL .. slot: the first
-- TIMELINE_HEAD entries keep theirs, later ones rotate over TIMELINE_TAIL slots; F.timeline_n counts
-- every entry ever written, so readers know what was left out. Names are shortened by TLN, times
-- (TLT) are stored as ms since created, and an entry stays under the hash's listpack value limit.
-- fields: a flat list {name, value, ...}; empty values are left out. Any script may call it.
local function timeline(j, event, fields, t)
  t = t or now()
  if not j[F.created_ts] then j[F.created_ts] = redis.call('HGET', j.jk, F.created_ts) end
  local base = tonumber(j[F.created_ts]) or t
  local function ms(ts) return string.format('%d', math.floor((ts - base) * 1000 + 0.5)) end
  local parts = {ms(t), event}
  fields = fields or {}
  for i = 1, #fields, 2 do
    local name, v = fields[i], fields[i + 1]
    if v ~= nil and v ~= '' and v ~= false then
      if TLT[name] then v = ms(tonumber(v)) end
      parts[#parts + 1] = (TLN[name] or name) .. '=' .. (string.gsub(tostring(v), '[|\n]', '/'))
    end
  end
  local n = redis.call('HINCRBY', j.jk, F.timeline_n, 1)
  local slot = n <= TIMELINE_HEAD and n - 1 or TIMELINE_HEAD + (n - 1 - TIMELINE_HEAD) % TIMELINE_TAIL
  redis.call('HSET', j.jk, TL .. slot, string.sub(table.concat(parts, '|'), 1, TIMELINE_ENTRY_MAX))
end

-- A bounded attempt history: the last HISTORY_LEN "status/http/ms" entries, ';'-separated.
local function remember(jk, entry)
  local h = redis.call('HGET', jk, F.history)
  h = (h and h ~= '') and (h .. ';' .. entry) or entry
  local _, n = string.gsub(h, ';', '')
  if n >= HISTORY_LEN then h = string.sub(h, string.find(h, ';', 1, true) + 1) end
  redis.call('HSET', jk, F.history, h)
end

-- Retention counts from `sent` and from the final state; the sweep removes the record, EXPIRE is a
-- backstop. A `sent` job's retention is read from the awaiting set (its score is sent_ts), so it
-- is not indexed twice.
local function retain(j, t, indexed)
  if indexed then redis.call('ZADD', key('retention'), t + RETENTION, j.id) end
  redis.call('EXPIRE', j.jk, RETENTION + BACKSTOP_S)
  if j[F.idem] and j[F.idem] ~= '' then redis.call('EXPIRE', key('idem', j[F.idem]), RETENTION + BACKSTOP_S) end
  if j[F.batch] then
    -- A batch outlives its members scheduled furthest ahead, so cancel_batch finds it until they go.
    local bk = key('batch', j[F.batch])
    local ahead = math.max(0, (tonumber(redis.call('HGET', bk, 'send_until')) or 0) - t)
    redis.call('EXPIRE', bk, math.ceil(RETENTION + BACKSTOP_S + ahead))
  end
end
local function unretain(j)
  redis.call('ZREM', key('retention'), j.id)
  redis.call('PERSIST', j.jk)
  if j[F.idem] and j[F.idem] ~= '' then redis.call('PERSIST', key('idem', j[F.idem])) end
end

-- The archive: a record is written once final and again after every later change. The identity
-- key (written when a process first opens its archive) turns archiving on for this prefix.
local archiving = nil
local function archive_on()
  if archiving == nil then archiving = redis.call('EXISTS', key('archive', 'identity')) == 1 end
  return archiving
end
local function to_archive(job, t)
  if archive_on() then redis.call('ZADD', key('archive', 'pending'), t, job) end
end
-- A `sent` record is due for the archive shortly before its retention ends (its receipt may never
-- come); LT keeps an earlier due time, so a change waiting to be written is not postponed.
local ARCHIVE_AHEAD_S = 300
local function to_archive_later(job, t)
  if archive_on() then
    redis.call('ZADD', key('archive', 'pending'), 'LT', t + math.max(0, RETENTION - ARCHIVE_AHEAD_S), job)
  end
end
-- May the record leave Redis? Only once the archive has it and no change waits; else it is queued.
local function archived_or_queue(j, t)
  if not archive_on() then return true end
  local pk = key('archive', 'pending')
  if redis.call('ZSCORE', pk, j.id) then return false end
  if redis.call('HGET', j.jk, F.archived) == '1' then return true end
  redis.call('ZADD', pk, t, j.id)
  return false
end

-- The application's callback hears every final state: the intent lands with the state itself.
local function forward_intent(j, new, t)
  local r = redis.call('HMGET', j.jk, F.callback, F.message_id, F.price, F.receipt_timestamp)
  if not r[1] then return end
  local seq = redis.call('HINCRBY', j.jk, F.fwd_seq, 1)
  local fid = j.id .. '.' .. seq
  local payload = {status = new, to = j[F.to], message_id = r[2] or cjson.null,
    price = tonumber(r[3] or '') or cjson.null, job_id = j.id,
    message_timestamp = ((new == S.delivered or new == S.not_delivered) and r[4]) or cosmos_time(t)}
  if new == S.dead then payload.dead_reason = j[F.dead_reason] end
  payload.sequence = seq  -- a later state of the job has a higher one; forward_claim never sends an older after it
  redis.call('HSET', key('fwd', fid), 'job', j.id, 'url', r[1], 'payload', cjson.encode(payload),
    'webhook_id', 'msg_' .. fid, 'attempts', 0, 'created_ts', t, 'seq', seq)
  redis.call('ZADD', key('forwards', 'due'), t, fid)
end

-- The one state move. Leaving a state undoes its memberships, entering one makes them; counters,
-- the batch's counts, the events stream, retention and forwards all follow from here.
-- o: due (retrying), lease_ts (sending), reason (dead), late (an overturned final state); for the
-- timeline, event (what moved it, default the new state's name) and tl (its fields, a flat list).
local function move(j, new, t, o)
  o = o or {}
  local old, jk, job = j[F.state], j.jk, j.id
  local tl = {unpack(o.tl or {})}
  if o.event and o.event ~= new then table.insert(tl, 1, new); table.insert(tl, 1, 'state') end
  if new == S.dead then table.insert(tl, 'reason'); table.insert(tl, o.reason) end
  if o.late then table.insert(tl, 'late'); table.insert(tl, '1') end
  timeline(j, o.event or new, tl, t)
  if old == new and new == S.retrying then  -- only a new due time
    redis.call('HSET', jk, F.due_ts, o.due)
    redis.call('ZADD', key('retry', j[F.lane]), o.due, job)
    return
  end
  if old == S.queued or old == S.retrying then redis.call('ZREM', key('deadlines'), job) end
  if old == S.queued then
    redis.call('ZREM', key('outbox', j[F.lane]), job)
    redis.call('ZREM', key('scheduled', j[F.lane]), job)
    redis.call('ZREM', key('quiet'), job)
    redis.call('HDEL', jk, F.waiting)
  elseif old == S.sending then
    -- An outcome was recorded: that delivery did not crash its worker (poison counts only crashes).
    -- Absent reads as 0 / not in flight: a record keeps only fields that say something.
    redis.call('HDEL', jk, F.owner, F.lease_ts, F.inflight, F.deliveries)
    redis.call('ZREM', key('leases'), job)
  elseif old == S.retrying then
    redis.call('HDEL', jk, F.due_ts)
    redis.call('ZREM', key('retry', j[F.lane]), job)
    redis.call('ZREM', key('quiet'), job)
    redis.call('HDEL', jk, F.waiting)
  elseif old == S.sent then redis.call('ZREM', key('awaiting'), job)
  elseif old == S.dead then
    redis.call('ZREM', key('dead'), job)
    count('dead:' .. j[F.dead_reason], -1)
    redis.call('HDEL', jk, F.dead_reason)
  elseif old == S.held then redis.call('ZREM', key('held'), job)
  end
  if old == S.sent or FINAL[old] then unretain(j) end

  redis.call('HSET', jk, F.state, new, F.updated_ts, t)
  local lane = j[F.lane]
  if old then count('state:' .. old, -1); count('lane:' .. lane .. ':' .. old, -1) end
  count('state:' .. new)
  count('lane:' .. lane .. ':' .. new)
  -- Monotonic: what rate() charts, untouched by the retention sweep.
  if OUTCOMES[new] then count('outcome:' .. new .. ':' .. lane) end
  if j[F.batch] then
    local bk = key('batch', j[F.batch])
    if old then redis.call('HINCRBY', bk, 'state:' .. old, -1) end
    redis.call('HINCRBY', bk, 'state:' .. new, 1)
  end

  if new == S.queued or new == S.retrying then
    local exp = redis.call('HGET', jk, F.expires_ts)
    redis.call('ZADD', key('deadlines'), exp, job)
  end
  if new == S.queued then redis.call('ZADD', key('outbox', j[F.lane]), t + GRACE, job)
  elseif new == S.sending then redis.call('ZADD', key('leases'), o.lease_ts, job)
  elseif new == S.retrying then
    redis.call('HSET', jk, F.due_ts, o.due)
    redis.call('ZADD', key('retry', j[F.lane]), o.due, job)
  elseif new == S.sent then
    redis.call('ZADD', key('awaiting'), t, job)
    retain(j, t, false)
  elseif new == S.dead then
    j[F.dead_reason] = o.reason
    redis.call('HSET', jk, F.dead_reason, o.reason)
    redis.call('ZADD', key('dead'), t, job)
    count('dead:' .. o.reason)
    count('dead_total:' .. o.reason)
  elseif new == S.held then redis.call('ZADD', key('held'), t, job)
  end
  if o.late then
    redis.call('HSET', jk, F.late, 1)
    count(C.late)
  end
  if FINAL[new] or FINAL[old] then to_archive(job, t) elseif new == S.sent then to_archive_later(job, t) end
  if FINAL[new] then
    retain(j, t, true)
    if j[F.forward] == '1' then forward_intent(j, new, t) end
  end
  if EVENTS_MAXLEN > 0 then
    -- The entry id is the time (ms), so no `ts` field: 10,000 records' events are ~60 B a record smaller.
    local ev = {'job', job, 'state', new, 'prev', old or ''}
    if new == S.dead then table.insert(ev, 'reason'); table.insert(ev, o.reason) end
    if j[F.batch] then table.insert(ev, 'batch'); table.insert(ev, j[F.batch]) end
    if o.late then table.insert(ev, 'late'); table.insert(ev, '1') end
    redis.call('XADD', key('events'), 'MAXLEN', '~', EVENTS_MAXLEN, '*', unpack(ev))
  end
  j[F.state] = new
end

-- Budgets. The hash of the budget day holding `ts`, that day's end and start; nil outside the days passed.
local function budget_day(ts)
  for i = 1, 3 do
    if ts >= BUDGET_DAYS[i] and ts < BUDGET_DAYS[i + 1] then
      return key('budget', string.format('%d', BUDGET_DAYS[i])), BUDGET_DAYS[i + 1], BUDGET_DAYS[i]
    end
  end
  return nil
end
local function micros(price)
  local p = tonumber(price) or 0
  if p <= 0 then return 0 end
  return math.floor(p * 1000000 + 0.5)
end

-- Which cap a day has reached `level` percent of (the price cap first), or nil.
local function cap_reached(messages, price, level)
  if PRICE_CAP > 0 and price * 100 >= level * PRICE_CAP then return BP.daily_budget end
  if MESSAGE_CAP > 0 and messages * 100 >= level * MESSAGE_CAP then return BP.daily_message_cap end
  return nil
end

-- Why the budget holds sending back now, or nil. An operator's resume lifts it until the day ends.
local function budget_paused(t)
  if MESSAGE_CAP <= 0 and PRICE_CAP <= 0 then return nil end
  local dk = budget_day(t)
  if not dk then return nil end
  local b = redis.call('HMGET', dk, BF.messages, BF.price, BF.resumed)
  if b[3] then return nil end
  return cap_reached(tonumber(b[1]) or 0, tonumber(b[2]) or 0, 100)
end

-- Count acceptances and price (micro-dollars) on the budget day of `ts`; on today's, warn once per
-- level with a `budget` event (the log line follows from the reconciler, which reads the marks).
local function budget_count(ts, messages, price, t)
  if messages == 0 and price == 0 then return end
  local dk, ends, starts = budget_day(ts)
  if not dk then return end
  local m = redis.call('HINCRBY', dk, BF.messages, messages)
  local p = redis.call('HINCRBY', dk, BF.price, price)
  redis.call('EXPIREAT', dk, math.floor(ends) + BUDGET_KEEP_S)
  if dk ~= budget_day(t) then return end
  for _, level in ipairs(BUDGET_LEVELS) do
    local reason = cap_reached(m, p, level)
    if reason and redis.call('HSETNX', dk, BF['warned_' .. level], t) == 1 and EVENTS_MAXLEN > 0 then
      local cap = reason == BP.daily_budget and string.format('%.6f', PRICE_CAP / 1000000) or MESSAGE_CAP
      redis.call('XADD', key('events'), 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'kind', 'budget', 'level', level,
        'reason', reason, 'messages', m, 'price', string.format('%.6f', p / 1000000), 'cap', cap,
        'day', string.format('%d', starts))
    end
  end
end

-- Settle a job as sent with `mid`: the acceptance (or the provider's later word) is recorded once here,
-- and counted on today's budget at its price.
local function settle_sent(j, mid, price, t, late)
  budget_count(t, 1, micros(price), t)
  move(j, S.sent, t, {late = late})
  redis.call('HSET', j.jk, F.message_id, mid, F.price, price, F.sent_ts, t)
  redis.call('HDEL', j.jk, F.last_error, F.resend_next)
  redis.call('HINCRBYFLOAT', COUNTERS, C.total_price, tonumber(price) or 0)
  redis.call('SET', key('msgid', mid), j.id, 'EX', RETENTION + BACKSTOP_S)
  local created = tonumber(redis.call('HGET', j.jk, F.created_ts) or t)
  observe('send', math.max(0, t - created))
end

-- A receipt for the job's own message_id moves sent -> delivered | not_delivered.
-- Its price replaces the acceptance's only within [0, max(1.00, 10 x the accepted price)] US dollars:
-- a wrong or forged price must not move the spend; outside it the receipt applies without its price.
local function deliver(j, status, price, stamp, t)
  local r = redis.call('HMGET', j.jk, F.sent_ts, F.price)
  local old_price = tonumber(r[2] or 0) or 0
  price = tonumber(price)
  if not price or price ~= price or price < 0 or price > math.max(1.0, 10 * old_price) then
    count(C.receipt_price_refused)
    price = old_price
  end
  -- Stored as Lua prints it ('0.05'): HSET of a number writes 17 digits ('0.050000000000000003').
  local stored = tostring(price)
  do
    -- The budget's count moves by at most the accepted price, on the acceptance's budget day.
    local accepted = micros(old_price)
    local delta = math.max(-accepted, math.min(accepted, micros(price) - accepted))
    budget_count(tonumber(r[1]) or t, 0, delta, t)
  end
  redis.call('HSET', j.jk, F.delivery_status, status, F.price, stored, F.receipt_timestamp, stamp, F.delivered_ts, t)
  -- A receipt ends the time in which a begin or finish reply can be lost and asked again: its kept
  -- reply goes, so a delivered record stays small.
  redis.call('HDEL', j.jk, F.rcpt_status, F.rcpt_msgid, F.rcpt_price, F.rcpt_ts, F.call, F.call_reply)
  redis.call('HINCRBYFLOAT', COUNTERS, C.total_price, (tonumber(price) or 0) - old_price)
  observe('receipt', math.max(0, t - tonumber(r[1] or t)))
  move(j, status, t, {event = 'receipt'})
end

-- A receipt kept while the job was being sent settles it, before any new request goes out.
-- It is evidence only of an attempt whose outcome is unknown (`evidence`); otherwise it is dropped.
local function settle_stored_receipt(j, t, evidence)
  local r = redis.call('HMGET', j.jk, F.rcpt_status, F.rcpt_msgid, F.rcpt_price, F.rcpt_ts)
  if not r[2] then return false end
  if not evidence then
    redis.call('HDEL', j.jk, F.rcpt_status, F.rcpt_msgid, F.rcpt_price, F.rcpt_ts)
    return false
  end
  settle_sent(j, r[2], 0, t)
  deliver(j, r[1], r[3], r[4], t)
  return true
end

-- A message_id that is not the recorded one proves another send went out: count it once, keep a few.
local function extra_send(j, message_id)
  local seen = redis.call('HGET', j.jk, F.extra_ids) or ''
  if string.find(';' .. seen .. ';', ';' .. message_id .. ';', 1, true) then return R.duplicate end
  local n = tonumber(redis.call('HINCRBY', j.jk, F.extra_sends, 1))
  if FINAL[j[F.state]] then to_archive(j.id, now()) end
  count(C.extra_sends)
  timeline(j, 'extra_send', {'message_id', message_id})
  if n <= MAX_EXTRA_IDS then
    redis.call('HSET', j.jk, F.extra_ids, seen == '' and message_id or (seen .. ';' .. message_id))
  end
  return R.extra
end

-- The circuit breaker, shared by every worker: consecutive transient failures open it; each
-- reopening doubles the open interval up to the backoff cap.
local BREAKER = key('breaker')
local function breaker_success()
  local b = redis.call('HMGET', BREAKER, 'state', 'failures')
  if (b[1] and b[1] ~= 'closed') or (tonumber(b[2]) or 0) > 0 then
    redis.call('HSET', BREAKER, 'state', 'closed', 'failures', 0, 'streak', 0)
    redis.call('HDEL', BREAKER, 'probe_until')
    return b[1] ~= 'closed' and b[1] and 'closed' or ''
  end
  return ''
end
local function breaker_failure(threshold, open_s, cap_s, t)
  local failures = redis.call('HINCRBY', BREAKER, 'failures', 1)
  local b = redis.call('HMGET', BREAKER, 'state', 'streak')
  local state = b[1] or 'closed'
  if state == 'half_open' or (state == 'closed' and failures >= threshold) then
    local streak = tonumber(b[2] or 0) or 0
    local interval = math.min(open_s * 2 ^ streak, math.max(open_s, cap_s))
    redis.call('HSET', BREAKER, 'state', 'open', 'open_until', t + interval, 'streak', streak + 1)
    redis.call('HDEL', BREAKER, 'probe_until')
    count(C.breaker_opened)
    return 'open'
  end
  return ''
end

-- Pauses: an operator's (per lane or all; only an operator lifts it) and the account's (COSMOS
-- refused our credentials or endpoint; lifted by an accepted probe).
local PAUSE = key('pause')
local function operator_paused(lane)
  local p = redis.call('HMGET', PAUSE, 'op:all', 'op:' .. lane)
  return p[1] ~= false or p[2] ~= false
end

-- Remove a record with everything that points at it, and take it out of the live counts.
-- j needs F.message_id and F.extra_ids loaded besides the basics.
local function forget(j)
  local job, state = j.id, j[F.state]
  count('state:' .. state, -1)
  count('lane:' .. j[F.lane] .. ':' .. state, -1)
  if state == S.dead then count('dead:' .. j[F.dead_reason], -1) end
  if j[F.batch] then redis.call('HINCRBY', key('batch', j[F.batch]), 'state:' .. state, -1) end
  for _, set in ipairs({'retention', 'leases', 'deadlines', 'awaiting', 'dead', 'held'}) do
    redis.call('ZREM', key(set), job)
  end
  redis.call('ZREM', key('retry', j[F.lane]), job)
  redis.call('ZREM', key('outbox', j[F.lane]), job)
  redis.call('ZREM', key('scheduled', j[F.lane]), job)
  redis.call('ZREM', key('quiet'), job)
  redis.call('ZREM', key('idx', 'created'), job)
  redis.call('ZREM', key('idx', 'to', j[F.to]), job)
  if j[F.idem] and j[F.idem] ~= '' then
    local ik = key('idem', j[F.idem])
    local owner = redis.call('GET', ik)
    if owner and string.sub(owner, 1, #job + 1) == job .. '|' then redis.call('DEL', ik) end
  end
  local ids = (j[F.message_id] or '') .. ';' .. (j[F.extra_ids] or '')
  for mid in string.gmatch(ids, '[^;]+') do
    if redis.call('GET', key('msgid', mid)) == job then redis.call('DEL', key('msgid', mid)) end
  end
  redis.call('DEL', j.jk)
end

-- Scheduled sends: a queued job whose send_at is ahead has no broker message and no lost-message
-- check; it waits in its lane's scheduled set until the reconciler releases it (release.lua).
local function schedule(j, at)
  redis.call('ZREM', key('outbox', j[F.lane]), j.id)
  redis.call('ZADD', key('scheduled', j[F.lane]), at, j.id)
  redis.call('HSET', j.jk, F.waiting, 'send_at')
  timeline(j, 'waiting', {'why', 'send_at', 'until', at})
end

-- Quiet hours arrive as two windows of epoch seconds (start, end, start, end; zeros for none),
-- computed in Python with zoneinfo. Returns when the window in force at t ends, or nil.
local function quiet_until(t, s1, e1, s2, e2)
  if tonumber(s1) <= t and t < tonumber(e1) then return tonumber(e1) end
  if tonumber(s2) <= t and t < tonumber(e2) then return tonumber(e2) end
  return nil
end

-- A waiting bulk job met inside the quiet hours waits in the quiet set, scored by when it was due
-- (released in that order when the window ends); its state, attempts and deadline are untouched.
-- j needs F.send_at, F.created_ts and F.due_ts loaded.
local function hold_for_quiet(j, t)
  local state, due = j[F.state], nil
  if state == S.sending then  -- taken over from a lost worker: it waits like a due retry
    move(j, S.retrying, t, {due = t})
    j[F.due_ts] = t
    state = S.retrying
  end
  if state == S.queued then
    redis.call('ZREM', key('outbox', j[F.lane]), j.id)
    redis.call('ZREM', key('scheduled', j[F.lane]), j.id)  -- due, and reached a worker before its release
    due = tonumber(j[F.send_at]) or tonumber(j[F.created_ts]) or t
  else
    redis.call('ZREM', key('retry', j[F.lane]), j.id)
    due = tonumber(j[F.due_ts]) or t
  end
  redis.call('ZADD', key('quiet'), due, j.id)
  redis.call('HSET', j.jk, F.waiting, 'quiet_hours')
  timeline(j, 'waiting', {'why', 'quiet_hours'}, t)
end
