-- Decides the limits of one request - or of several requests, one after the other
-- (a batch) - atomically, with the Redis server's clock read once.
-- Same arithmetic as limiter/src/algorithm.cpp: one table of tests runs on both.
--
-- decide(keys, argv), at the end, decides one call. The build wraps this file twice
-- (limiter/CMakeLists.txt): as a script for EVAL/EVALSHA, which runs the whole file
-- on every call, and as a function library for FUNCTION LOAD and FCALL (Redis 7.0 and
-- newer), whose functions are created once. What a call reads is set at the start of
-- decide(), or written before it is read (the tables reused per check); only the
-- parsed limit strings serve from one call to the next.
--
-- KEYS      one key per limit, the checks' keys one after the other:
--           <prefix><limit>:<identifier>
-- ARGV[1]   "" to use the server clock (always, in production), or a time in
--           microseconds (tests only)
-- ARGV[2..] per check, in order: its number of limits n; its mode: "1" to consume when
--           allowed, "0" to only look, "2" to consume and report what each limit added
--           (Cluster: a refund takes exactly that back), "3" to consume unconditionally
--           (a debit: what a response used, even past the limit) - followed, when a
--           request weighs more than one unit in some limit or takes a slot, by one
--           word per limit: its cost, or for a concurrency limit the id of the slot the
--           request takes: "1 5 1 gw1.0.2a"; then one string per limit, "algorithm
--           requests window_ms burst shadow" (algorithm 0 sliding_log, 1 sliding_window,
--           2 token_bucket, 3 concurrency; shadow 0/1), parsed once per call
-- Returns   { now_ms, then per check, per limit: allowed (0/1), remaining, reset_ms,
--           retry_after_ms (for a debit: the usage after it, as a one-unit request
--           would see it); and for a check with "2", per limit what it added: the
--           sliding_log entry's stamp, the sliding_window index, the token_bucket interval in
--           us; -1 for nothing }
--
-- Each check sees what the checks before it in the batch consumed, as if it had come
-- alone after them. All numbers stay below 2^53 (limits are validated), where Lua
-- doubles are exact.

-- Integer division that stays exact where a / b alone rounds (large a, large b).
local function floor_div(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function ceil_div(a, b) return -floor_div(-a, b) end

-- Exact for every integer below 2^53: '%d' writes the number as a C long, not as a
-- float (which would also be slower).
local function int(x) return string.format('%d', x) end

-- The call's arguments and clock, set by decide() at the start of each call.
local KEYS, ARGV
local now_us, now, now_s

-- A key's state is read from Redis once per call and kept here while the call's checks
-- use it; what they consumed is written back once, at the end (store()).
local state   -- key -> the algorithm's state in this call
local dirty   -- keys to write back, in order

local function touch(key, st)
  if not st.dirty then st.dirty = true; dirty[#dirty + 1] = key end
end

-- sliding_log: sorted set of ms scores; an entry at t counts while now - window < t.
-- Members are "<stamp>:<units>" - the stamp a microsecond number unique per key - and
-- the member "#" keeps the total of the units, scored -total: scores of entries are
-- positive, so that trimming (0 .. now - window] never touches it, and a check reads
-- the total instead of counting the set. What the checks of one call consume in one
-- key shares one entry (they share the server's now): one ZADD per key per call, not
-- one per request. A check of mode "2" (its entry may be refunded) gets its own.
-- Entries without ":" (written one per request by earlier versions) count one unit
-- each.
local function units_of(member) return tonumber(string.match(member, ':(%d+)$')) or 1 end

local function load_log(key, w)
  local st = state[key]
  if st and st.algo == 0 then return st end
  local cut = now - w
  local count, changed
  -- The total (scored -total, first) and the oldest entry: in the common case nothing
  -- has left the window, and these are all the call reads.
  local head = redis.call('ZRANGE', key, 0, 1, 'WITHSCORES')
  local has_total = head[1] == '#'
  -- A write comes first, here: under maxmemory Redis refuses (OOM) only a script's
  -- first write that may take memory, so an EVAL with a sliding_log key goes on past
  -- it and is decided in Redis, as when every call trimmed first (an FCALL is refused
  -- whole, before it starts). An existing key's TTL moves now (store() sets a new
  -- key's); a new key is trimmed below.
  if has_total then
    redis.call('PEXPIRE', key, w)
    count = -tonumber(head[2])
    if head[4] and tonumber(head[4]) <= cut then
      local cut_s = int(cut)
      local gone = redis.call('ZRANGEBYSCORE', key, '(0', cut_s)
      for _, m in ipairs(gone) do count = count - units_of(m) end
      redis.call('ZREMRANGEBYSCORE', key, '(0', cut_s)
      changed = true
    end
  end
  if not has_total or count < 0 then
    -- New, written by an earlier version, or a total that no longer adds up (entries
    -- some other writer added without it): count every entry.
    local cut_s = int(cut)
    redis.call('ZREMRANGEBYSCORE', key, '(0', cut_s)
    count = 0
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, '(' .. cut_s, '+inf')) do count = count + units_of(m) end
    changed = has_total or count > 0
  end
  st = { count = count, member = now_us - 1, w = w, algo = 0, pending = 0, has_total = has_total }
  state[key] = st
  -- The total stays true even when this call consumes nothing.
  if changed then touch(key, st) end
  return st
end

local function eval_log(key, n, w, cost)
  local count = load_log(key, w).count
  if count + cost <= n then return 1, n - count - cost, now + w, 0 end
  -- The request fits once the oldest entries holding `need` units have left. Units
  -- added by this call are not in the set yet: they leave last, with stamp now.
  local need, freed, from, retry = count + cost - n, 0, 0, w
  local found = false
  while not found do
    local page = redis.call('ZRANGEBYSCORE', key, '(0', '+inf', 'WITHSCORES', 'LIMIT', from, 64)
    if #page == 0 then break end
    for i = 1, #page, 2 do
      freed = freed + units_of(page[i])
      if freed >= need then
        retry, found = tonumber(page[i + 1]) + w - now, true
        break
      end
    end
    from = from + 64
  end
  return 0, 0, now + retry, retry
end

-- Adds an entry of `units` stamped now; returns its stamp.
local function add_log_entry(key, st, units)
  local member = st.member + 1
  local suffix = ':' .. int(units)
  while redis.call('ZADD', key, 'NX', now_s, int(member) .. suffix) == 0 do member = member + 1 end
  st.member = member
  return member
end

-- `own`: the units get an entry of their own now (its stamp is returned, for a
-- refund); else they join the call's shared entry, written by store().
local function consume_log(key, w, units, own)
  local st = load_log(key, w)
  st.count = st.count + units
  touch(key, st)
  if own then return add_log_entry(key, st, units) end
  st.pending = st.pending + units
  return -1
end

-- sliding_window: hash {w = window index, c = its count, p = previous count}.
local function load_window(key, w)
  local st = state[key]
  if st and st.algo == 1 then return st end
  local cw = floor_div(now, w)
  local v = redis.call('HMGET', key, 'w', 'c', 'p')
  local sw, c, p = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
  if sw == cw - 1 then c, p = 0, c elseif sw ~= cw then c, p = 0, 0 end
  st = { cw = cw, c = c, p = p, w = w, algo = 1 }
  state[key] = st
  return st
end

local function eval_window(key, n, w, cost)
  local st = load_window(key, w)
  local cw, c, p = st.cw, st.c, st.p
  local elapsed = now - cw * w
  local weighted = p * (w - elapsed) + c * w
  if weighted + cost * w <= n * w then
    return 1, floor_div(n * w - weighted - cost * w, w), (cw + 2) * w, 0
  end
  local retry
  if c + cost <= n then
    retry = (w - floor_div((n - cost - c) * w, p)) - elapsed
  else
    retry = (w - elapsed) + (w - floor_div((n - cost) * w, c))
  end
  return 0, 0, now + retry, retry
end

-- At most 2^52 / w units per window (exact doubles; as algorithm.cpp).
local function consume_window(key, w, units)
  local st = load_window(key, w)
  st.c = math.min(st.c + units, floor_div(4503599627370496, w))
  touch(key, st)
  return st.cw
end

-- token_bucket (GCRA), microseconds; the emission interval rounds up.
local function emission(n, w) return ceil_div(w * 1000, n) end

local function load_bucket(key)
  local st = state[key]
  if st and st.algo == 2 then return st end
  st = { tat = math.max(tonumber(redis.call('GET', key)) or 0, now_us), algo = 2 }
  state[key] = st
  return st
end

local function eval_bucket(key, n, w, burst, cost)
  local t = emission(n, w)
  local new_tat = load_bucket(key).tat + cost * t
  local allow_at = new_tat - burst * t
  if now_us >= allow_at then
    return 1, floor_div(now_us - allow_at, t), ceil_div(new_tat, 1000), 0
  end
  local retry = ceil_div(allow_at - now_us, 1000)
  return 0, 0, now + retry, retry
end

-- At most 2^51 us ahead (as algorithm.cpp).
local function consume_bucket(key, n, w, units)
  local st = load_bucket(key)
  local t = emission(n, w)
  local before = st.tat
  st.tat = math.min(st.tat + units * t, now_us + 2251799813685248)
  touch(key, st)
  return st.tat - before
end

-- concurrency: sorted set of slot ids scored by the end of their lease (ms); a slot
-- counts while its lease runs, so the slots of a gateway that died free themselves.
local function load_slots(key)
  local st = state[key]
  if st and st.algo == 3 then return st end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_s)
  st = { count = redis.call('ZCARD', key), algo = 3 }
  state[key] = st
  return st
end

local function eval_slots(key, n, cost)
  local count = load_slots(key).count
  if count + cost <= n then return 1, n - count - cost, now + 1000, 0 end
  return 0, 0, now + 1000, 1000
end

local function consume_slot(key, w, slot)
  local st = load_slots(key)
  redis.call('ZADD', key, int(now + w), slot)
  st.count = st.count + 1
  st.w = w
  touch(key, st)
  return 1
end

-- Writes back what the call consumed, once per key.
local function store()
  for _, key in ipairs(dirty) do
    local st = state[key]
    if st.algo == 0 then
      if st.pending > 0 then
        -- The shared entry and the total in one ZADD. It adds the entry, and the
        -- total when there was none; fewer means the stamp was taken (the clock
        -- went back, or a test's injected one stood still) and the entry merged
        -- with an older one of the same units: it gets another stamp.
        local member = st.member + 1
        local added = redis.call('ZADD', key, now_s, int(member) .. ':' .. int(st.pending), int(-st.count), '#')
        st.member = member
        if added < (st.has_total and 1 or 2) then add_log_entry(key, st, st.pending) end
      elseif st.count > 0 then
        redis.call('ZADD', key, int(-st.count), '#')
      else
        redis.call('ZREM', key, '#')
      end
      if not st.has_total then redis.call('PEXPIRE', key, st.w) end
    elseif st.algo == 3 then
      redis.call('PEXPIRE', key, st.w)  -- the set outlives its latest lease
    elseif st.algo == 1 then
      redis.call('HSET', key, 'w', int(st.cw), 'c', int(st.c), 'p', int(st.p))
      redis.call('PEXPIRE', key, int((st.cw + 2) * st.w - now))
    else
      redis.call('SET', key, int(st.tat), 'PX', int(ceil_div(st.tat, 1000) - now + 1))
    end
  end
end

local out, o               -- the reply, and #out
local allowed, added = {}, {}  -- per check, reused

-- A limit's parameters, "algorithm requests window_ms burst shadow", parsed once per
-- distinct string: in a call, and as a function for as long as it stays loaded (at
-- most 256 strings kept).
local params, nparams = {}, 0
local function limit_of(s)
  local l = params[s]
  if l then return l end
  if nparams >= 256 then params, nparams = {}, 0 end
  nparams = nparams + 1
  local algo, n, w, burst, shadow = string.match(s, '^(%d+) (%d+) (%d+) (%d+) ([01])$')
  l = { algo = tonumber(algo), n = tonumber(n), w = tonumber(w), burst = tonumber(burst),
        shadow = shadow == '1' }
  if l.burst <= 0 then l.burst = l.n end
  l.quota = l.algo == 2 and l.burst or l.n
  params[s] = l
  return l
end

local function evaluate(key, l, cost)
  local algo = l.algo
  if cost > l.quota then return 0, 0, now + l.w, l.w end  -- never fits
  if algo == 0 then return eval_log(key, l.n, l.w, cost)
  elseif algo == 1 then return eval_window(key, l.n, l.w, cost)
  elseif algo == 2 then return eval_bucket(key, l.n, l.w, l.burst, cost)
  else return eval_slots(key, l.n, cost) end
end

-- `slot`: the id a concurrency limit's slot takes (a debit, or '_', takes none).
local function consume(key, l, units, slot, own)
  if units <= 0 then return -1 end
  local algo = l.algo
  if algo == 0 then return consume_log(key, l.w, units, own)
  elseif algo == 1 then return consume_window(key, l.w, units)
  elseif algo == 2 then return consume_bucket(key, l.n, l.w, units)
  elseif slot and slot ~= '_' then return consume_slot(key, l.w, slot)
  else return -1 end
end

local costs, words = {}, {}  -- per check, reused
local function out4(ok, remaining, reset, retry)
  out[o + 1] = ok
  out[o + 2] = remaining
  out[o + 3] = reset
  out[o + 4] = retry
  o = o + 4
end

-- One check: the limits KEYS[k + 1 .. k + n], their parameters ARGV[b + 1 .. b + n].
local function check(k, n, b, mode_arg)
  local mode = string.sub(mode_arg, 1, 1)
  if #mode_arg == 1 then  -- the common case: every limit weighs one unit, no slot
    for j = 1, n do words[j] = '1'; costs[j] = 1 end
  else
    local i = 0
    for word in string.gmatch(string.sub(mode_arg, 3), '%S+') do i = i + 1; words[i] = word end
    for j = i + 1, n do words[j] = '1' end
    for j = 1, n do costs[j] = tonumber(words[j]) or 1 end
  end
  if mode == '3' then
    for j = 1, n do
      local key, l = KEYS[k + j], limit_of(ARGV[b + j])
      consume(key, l, costs[j], nil)
      out4(evaluate(key, l, 1))
    end
    return
  end
  local enforced_ok = true
  for j = 1, n do
    local l = limit_of(ARGV[b + j])
    if l.algo == 3 then costs[j] = 1 end  -- its word is the slot id
    local ok, remaining, reset, retry = evaluate(KEYS[k + j], l, costs[j])
    allowed[j] = ok
    if ok == 0 and not l.shadow then enforced_ok = false end
    out4(ok, remaining, reset, retry)
  end
  local take = mode ~= '0' and enforced_ok
  for j = 1, n do
    added[j] = -1
    if take and allowed[j] == 1 then
      added[j] = consume(KEYS[k + j], params[ARGV[b + j]], costs[j], words[j], mode == '2')
    end
  end
  if mode == '2' then
    for j = 1, n do o = o + 1; out[o] = added[j] end
  end
end

-- Runs. A batch often repeats one check: the requests of one hot client, on the same
-- keys, each of one unit (mode "1", no words). When the next m checks are that same
-- check and all m fit at once, they are decided together: one evaluation and one
-- consumption of m units per limit, instead of m of each. Each check still answers
-- what it would have alone after the ones before it: the i-th (from 0) of a run sees
-- i more units used, so its remaining is one less than the one before; its reset is
-- the run's (a token_bucket's moves one emission interval per check). A run that does
-- not fit at once is decided one check at a time, as any other.
local last  -- #ARGV
local function same_check(k, a, k2, a2, n)
  if ARGV[a2] ~= ARGV[a] or ARGV[a2 + 1] ~= '1' then return false end
  for j = 1, n do
    if KEYS[k2 + j] ~= KEYS[k + j] or ARGV[a2 + 1 + j] ~= ARGV[a + 1 + j] then return false end
  end
  return true
end

-- Whether `m` more units fit in limit l at key now (no retry computed: cheap).
local function fits(key, l, m)
  local algo, n, w = l.algo, l.n, l.w
  if m > l.quota then return false end
  if algo == 0 then return load_log(key, w).count + m <= n
  elseif algo == 1 then
    local st = load_window(key, w)
    return st.p * (w - (now - st.cw * w)) + (st.c + m) * w <= n * w
  else
    local t = emission(n, w)
    return now_us >= load_bucket(key).tat + (m - l.burst) * t
  end
end

local first_rem, bucket_tat, bucket_t = {}, {}, {}  -- per limit of a run, reused
-- The run of the check at ARGV[a] (keys from KEYS[k + 1]): how many checks it decided,
-- 0 when none (not a run, or not all of it fits).
local function run(k, n, a)
  local m, stride = 1, n + 2
  while a + m * stride <= last and same_check(k, a, k + m * n, a + m * stride, n) do m = m + 1 end
  if m == 1 then return 0, 1 end
  for j = 1, n do
    local l = limit_of(ARGV[a + 1 + j])
    if l.shadow or l.algo == 3 then return 0, m end
    for i = 1, j - 1 do if KEYS[k + i] == KEYS[k + j] then return 0, m end end
    if not fits(KEYS[k + j], l, m) then return 0, m end
  end
  for j = 1, n do
    local key, l = KEYS[k + j], params[ARGV[a + 1 + j]]
    local _, remaining = evaluate(key, l, m)
    first_rem[j] = remaining + m - 1
    if l.algo == 2 then
      bucket_tat[j], bucket_t[j] = load_bucket(key).tat, emission(l.n, l.w)
    end
    consume(key, l, m, '1', false)
  end
  for i = 0, m - 1 do
    for j = 1, n do
      local l = params[ARGV[a + 1 + j]]
      local reset
      if l.algo == 0 then reset = now + l.w
      elseif l.algo == 1 then reset = (state[KEYS[k + j]].cw + 2) * l.w
      else reset = ceil_div(bucket_tat[j] + (i + 1) * bucket_t[j], 1000) end
      out4(1, first_rem[j] - i, reset, 0)
    end
  end
  return m, m
end

-- One call: FCALL's keys and args, or EVAL's KEYS and ARGV.
local function decide(keys, argv)
  KEYS, ARGV, last = keys, argv, #argv
  if ARGV[1] == '' then
    local t = redis.call('TIME')
    now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  else
    now_us = tonumber(ARGV[1])
  end
  now = floor_div(now_us, 1000)
  now_s = int(now)
  state, dirty = {}, {}
  out, o = { now }, 1
  local k, a = 0, 2
  local plain_until = 0  -- checks before this ARGV index are decided one at a time
  while a <= last do
    local n = tonumber(ARGV[a])
    local done, seen = 0, 0
    if a >= plain_until and ARGV[a + 1] == '1' then done, seen = run(k, n, a) end
    if done > 0 then
      k = k + done * n
      a = a + done * (n + 2)
    else
      if seen > 1 then plain_until = a + seen * (n + 2) end
      check(k, n, a + 1, ARGV[a + 1])
      k = k + n
      a = a + 2 + n
    end
  end
  store()
  return out
end
