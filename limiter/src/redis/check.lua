-- Decides all limits of one request atomically, with the Redis server's clock.
-- Same arithmetic as limiter/src/algorithm.cpp: one table of tests runs on both.
--
-- KEYS[i]   one key per limit: <prefix><limit>:<identifier>
-- ARGV[1]   "" to use the server clock (always, in production), or a time in
--           microseconds (tests only)
-- ARGV[2]   "1" to consume when allowed, "0" to only look, "2" to consume and report
--           what each limit added (Cluster: a refund takes exactly that back)
-- ARGV[3..] five values per limit: algorithm (0 sliding_log, 1 sliding_window,
--           2 token_bucket), requests, window_ms, burst, shadow (0/1)
-- Returns   { now_ms, then per limit: allowed (0/1), remaining, reset_ms, retry_after_ms }
--           and with ARGV[2] "2", then per limit what it added: the sliding_log member,
--           the sliding_window index, the token_bucket interval in us; -1 for nothing
--
-- All numbers stay below 2^53 (limits are validated), where Lua doubles are exact.

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
local consume_allowed = ARGV[2] ~= '0'
local report = ARGV[2] == '2'

local function int(x) return string.format('%.0f', x) end

-- sliding_log: sorted set of ms scores; an entry at t counts while now - window < t.
local function eval_log(key, n, w)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - w))
  local count = redis.call('ZCARD', key)
  if count < n then return 1, n - count - 1, now + w, 0 end
  local entry = redis.call('ZRANGE', key, count - n, count - n, 'WITHSCORES')
  local retry = tonumber(entry[2]) + w - now
  return 0, 0, now + retry, retry
end

local function consume_log(key, w)
  -- Members are microsecond stamps, unique per key even within one millisecond.
  local member = now_us
  while redis.call('ZADD', key, 'NX', int(now), int(member)) == 0 do member = member + 1 end
  redis.call('PEXPIRE', key, w)
  return member
end

-- sliding_window: hash {w = window index, c = its count, p = previous count}.
local function load_window(key, w)
  local cw = floor_div(now, w)
  local v = redis.call('HMGET', key, 'w', 'c', 'p')
  local sw, c, p = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
  if sw == cw then return cw, c, p end
  if sw == cw - 1 then return cw, 0, c end
  return cw, 0, 0
end

local function eval_window(key, n, w)
  local cw, c, p = load_window(key, w)
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
  local cw, c, p = load_window(key, w)
  redis.call('HSET', key, 'w', int(cw), 'c', int(c + 1), 'p', int(p))
  redis.call('PEXPIRE', key, int((cw + 2) * w - now))
  return cw
end

-- token_bucket (GCRA), microseconds; the emission interval rounds up.
local function emission(n, w) return ceil_div(w * 1000, n) end

local function eval_bucket(key, n, w, burst)
  local t = emission(n, w)
  local tat = math.max(tonumber(redis.call('GET', key)) or 0, now_us)
  local new_tat = tat + t
  local allow_at = new_tat - burst * t
  if now_us >= allow_at then
    return 1, floor_div(now_us - allow_at, t), ceil_div(new_tat, 1000), 0
  end
  local retry = ceil_div(allow_at - now_us, 1000)
  return 0, 0, now + retry, retry
end

local function consume_bucket(key, n, w)
  local tat = math.max(tonumber(redis.call('GET', key)) or 0, now_us)
  local t = emission(n, w)
  local new_tat = tat + t
  redis.call('SET', key, int(new_tat), 'PX', int(ceil_div(new_tat, 1000) - now + 1))
  return t
end

local out = { now }
local allowed = {}
local enforced_ok = true
for i, key in ipairs(KEYS) do
  local b = 2 + (i - 1) * 5
  local algo, n, w = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local burst, shadow = tonumber(ARGV[b + 4]), ARGV[b + 5] == '1'
  if burst <= 0 then burst = n end
  local ok, remaining, reset, retry
  if algo == 0 then ok, remaining, reset, retry = eval_log(key, n, w)
  elseif algo == 1 then ok, remaining, reset, retry = eval_window(key, n, w)
  else ok, remaining, reset, retry = eval_bucket(key, n, w, burst) end
  allowed[i] = ok
  if ok == 0 and not shadow then enforced_ok = false end
  out[#out + 1] = ok
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
end

local added = {}
if consume_allowed and enforced_ok then
  for i, key in ipairs(KEYS) do
    if allowed[i] == 1 then
      local b = 2 + (i - 1) * 5
      local algo, n, w = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
      if algo == 0 then added[i] = consume_log(key, w)
      elseif algo == 1 then added[i] = consume_window(key, w)
      else added[i] = consume_bucket(key, n, w) end
    end
  end
end
if report then
  for i = 1, #KEYS do out[#out + 1] = added[i] or -1 end
end
return out
