-- Decides the limits of one request - or of several requests, one after the other
-- (a batch) - atomically, with the Redis server's clock read once.
-- Same arithmetic as limiter/src/algorithm.cpp: one table of tests runs on both.
--
-- KEYS      one key per limit, the checks' keys one after the other:
--           <prefix><limit>:<identifier>
-- ARGV[1]   "" to use the server clock (always, in production), or a time in
--           microseconds (tests only)
-- ARGV[2..] per check, in order: its number of limits n; "1" to consume when allowed,
--           "0" to only look, "2" to consume and report what each limit added
--           (Cluster: a refund takes exactly that back); then one string per limit,
--           "algorithm requests window_ms burst shadow" (algorithm 0 sliding_log,
--           1 sliding_window, 2 token_bucket; shadow 0/1), parsed once per call
-- Returns   { now_ms, then per check, per limit: allowed (0/1), remaining, reset_ms,
--           retry_after_ms; and for a check with "2", per limit what it added: the
--           sliding_log member, the sliding_window index, the token_bucket interval in
--           us; -1 for nothing }
--
-- Each check sees what the checks before it in the batch consumed, as if it had come
-- alone after them. All numbers stay below 2^53 (limits are validated), where Lua
-- doubles are exact.

if redis.replicate_commands then redis.replicate_commands() end

-- Integer division that stays exact where a / b alone rounds (large a, large b).
local function floor_div(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function ceil_div(a, b) return -floor_div(-a, b) end

local now_us
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now_us = tonumber(ARGV[1])
end
local now = floor_div(now_us, 1000)

-- Exact for every integer below 2^53: '%d' writes the number as a C long, not as a
-- float (which would also be slower).
local function int(x) return string.format('%d', x) end
local now_s = int(now)

-- A key's state is read from Redis once per call and kept here while the call's checks
-- use it; what they consumed is written back once, at the end (store()).
local state = {}   -- key -> the algorithm's state in this call
local dirty = {}   -- keys to write back, in order

local function touch(key, st)
  if not st.dirty then st.dirty = true; dirty[#dirty + 1] = key end
end

-- sliding_log: sorted set of ms scores; an entry at t counts while now - window < t.
-- Members are microsecond stamps, unique per key even within one millisecond: added
-- by ZADD at once (the set is the state); only the expiry waits for the end.
local function load_log(key, w)
  local st = state[key]
  if st and st.algo == 0 then return st end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - w))
  st = { count = redis.call('ZCARD', key), member = now_us - 1, w = w, algo = 0 }
  state[key] = st
  return st
end

local function eval_log(key, n, w)
  local count = load_log(key, w).count
  if count < n then return 1, n - count - 1, now + w, 0 end
  local entry = redis.call('ZRANGE', key, count - n, count - n, 'WITHSCORES')
  local retry = tonumber(entry[2]) + w - now
  return 0, 0, now + retry, retry
end

local function consume_log(key, w)
  local st = load_log(key, w)
  local member = st.member + 1
  while redis.call('ZADD', key, 'NX', now_s, int(member)) == 0 do member = member + 1 end
  st.member = member
  st.count = st.count + 1
  touch(key, st)
  return member
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

local function eval_window(key, n, w)
  local st = load_window(key, w)
  local cw, c, p = st.cw, st.c, st.p
  local elapsed = now - cw * w
  local weighted = p * (w - elapsed) + c * w
  if weighted + w <= n * w then
    return 1, floor_div(n * w - weighted - w, w), (cw + 2) * w, 0
  end
  local retry
  if c + 1 <= n then
    retry = (w - floor_div((n - 1 - c) * w, p)) - elapsed
  else
    retry = (w - elapsed) + (w - floor_div((n - 1) * w, c))
  end
  return 0, 0, now + retry, retry
end

local function consume_window(key, w)
  local st = load_window(key, w)
  st.c = st.c + 1
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

local function eval_bucket(key, n, w, burst)
  local t = emission(n, w)
  local new_tat = load_bucket(key).tat + t
  local allow_at = new_tat - burst * t
  if now_us >= allow_at then
    return 1, floor_div(now_us - allow_at, t), ceil_div(new_tat, 1000), 0
  end
  local retry = ceil_div(allow_at - now_us, 1000)
  return 0, 0, now + retry, retry
end

local function consume_bucket(key, n, w)
  local st = load_bucket(key)
  local t = emission(n, w)
  st.tat = st.tat + t
  touch(key, st)
  return t
end

-- Writes back what the call consumed, once per key.
local function store()
  for _, key in ipairs(dirty) do
    local st = state[key]
    if st.algo == 0 then
      redis.call('PEXPIRE', key, st.w)
    elseif st.algo == 1 then
      redis.call('HSET', key, 'w', int(st.cw), 'c', int(st.c), 'p', int(st.p))
      redis.call('PEXPIRE', key, int((st.cw + 2) * st.w - now))
    else
      redis.call('SET', key, int(st.tat), 'PX', int(ceil_div(st.tat, 1000) - now + 1))
    end
  end
end

local out = { now }
local o = 1                -- #out
local allowed, added = {}, {}  -- per check, reused

-- A limit's parameters, "algorithm requests window_ms burst shadow", parsed once per
-- distinct string in a call.
local params = {}
local function limit_of(s)
  local l = params[s]
  if l then return l end
  local algo, n, w, burst, shadow = string.match(s, '^(%d+) (%d+) (%d+) (%d+) ([01])$')
  l = { algo = tonumber(algo), n = tonumber(n), w = tonumber(w), burst = tonumber(burst), shadow = shadow == '1' }
  if l.burst <= 0 then l.burst = l.n end
  params[s] = l
  return l
end

-- One check: the limits KEYS[k + 1 .. k + n], their parameters ARGV[b + 1 .. b + n].
local function check(k, n, b, mode)
  local enforced_ok = true
  for i = 1, n do
    local key, l = KEYS[k + i], limit_of(ARGV[b + i])
    local algo = l.algo
    local ok, remaining, reset, retry
    if algo == 0 then ok, remaining, reset, retry = eval_log(key, l.n, l.w)
    elseif algo == 1 then ok, remaining, reset, retry = eval_window(key, l.n, l.w)
    else ok, remaining, reset, retry = eval_bucket(key, l.n, l.w, l.burst) end
    allowed[i] = ok
    if ok == 0 and not l.shadow then enforced_ok = false end
    out[o + 1] = ok
    out[o + 2] = remaining
    out[o + 3] = reset
    out[o + 4] = retry
    o = o + 4
  end
  local consume = mode ~= '0' and enforced_ok
  for i = 1, n do
    added[i] = -1
    if consume and allowed[i] == 1 then
      local key, l = KEYS[k + i], params[ARGV[b + i]]
      local algo = l.algo
      if algo == 0 then added[i] = consume_log(key, l.w)
      elseif algo == 1 then added[i] = consume_window(key, l.w)
      else added[i] = consume_bucket(key, l.n, l.w) end
    end
  end
  if mode == '2' then
    for i = 1, n do o = o + 1; out[o] = added[i] end
  end
end

local k, a, last = 0, 2, #ARGV
while a <= last do
  local n = tonumber(ARGV[a])
  check(k, n, a + 1, ARGV[a + 1])
  k = k + n
  a = a + 2 + n
end
store()
return out
