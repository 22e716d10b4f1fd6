-- KEYS: breakers set. ARGV: prefix. One described state per live breaker;
-- names whose state expired leave the set.
local out = {}
local now = now_ms()
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local w = ARGV[1] .. ':budget:' .. name .. ':w'
  local s = ARGV[1] .. ':budget:' .. name .. ':s'
  if redis.call('EXISTS', s) == 0 then
    redis.call('SREM', KEYS[1], name)
  else
    local per = num(redis.call('HGET', s, 'per'))
    out[#out + 1] = describe(0, load(w, s, per, now), per, now, name)
  end
end
return out
