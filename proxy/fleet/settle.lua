-- KEYS: window, state. ARGV: name, seq, counted (the entry's documents
-- now), score, new_counted, allowance_refund, extra, documents. Settles one
-- reservation: its entry becomes new_counted (if still in the window),
-- unused allowance goes back, documents beyond the bound are added now.
-- Code 1 = this tripped the breaker; an expired breaker returns {0}.
local per = num(redis.call('HGET', KEYS[2], 'per'))
if per == 0 then return {0} end
local now = now_ms()
local st = load(KEYS[1], KEYS[2], per, now)
local seq, old, score = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local new, refund, extra = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if seq ~= '0' and redis.call('ZREM', KEYS[1], old .. ':' .. seq) == 1 then
  if new > 0 then redis.call('ZADD', KEYS[1], score, new .. ':' .. seq) end
  st.used = redis.call('HINCRBY', KEYS[2], 'used', new - old)
end
if refund > 0 then
  st.allow_docs = redis.call('HINCRBY', KEYS[2], 'allow_docs', refund)
end
if extra > 0 and not st.allow_until then
  local covered = math.min(st.allow_docs, extra)
  if covered > 0 then
    st.allow_docs = redis.call('HINCRBY', KEYS[2], 'allow_docs', -covered)
  end
  local counted = extra - covered
  if counted > 0 then
    local s2 = redis.call('HINCRBY', KEYS[2], 'seq', 1)
    redis.call('ZADD', KEYS[1], now, counted .. ':' .. s2)
    st.used = redis.call('HINCRBY', KEYS[2], 'used', counted)
    st.last = now; redis.call('HSET', KEYS[2], 'last', now)
  end
end
local code = 0
if tonumber(ARGV[8]) > 0 and not st.tripped_at and not st.allow_until and st.used >= st.limit then
  redis.call('HSET', KEYS[2], 'tripped_at', now); st.tripped_at = now; code = 1
end
touch(KEYS[1], KEYS[2], per, st, now)
return describe(code, st, per, now, ARGV[1])
