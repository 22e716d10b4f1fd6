-- KEYS: window, state. ARGV: documents, duration_ms (0 = none), the allowance's cap.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local per = num(redis.call('HGET', KEYS[2], 'per'))
local now = now_ms()
local st = load(KEYS[1], KEYS[2], per, now)
local docs, dur = tonumber(ARGV[1]), tonumber(ARGV[2])
-- The allowance saturates at ARGV[3] (kMaxAllowanceDocuments): never wraps.
if docs > 0 then
  local have = num(redis.call('HGET', KEYS[2], 'allow_docs'))
  redis.call('HSET', KEYS[2], 'allow_docs', math.min(have + docs, tonumber(ARGV[3])))
end
if dur > 0 then st.allow_until = now + dur; redis.call('HSET', KEYS[2], 'allow_until', st.allow_until) end
redis.call('HDEL', KEYS[2], 'tripped_at')
touch(KEYS[1], KEYS[2], per, st, now)
return 1
