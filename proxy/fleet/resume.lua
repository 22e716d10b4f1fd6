-- KEYS: window, state. Closes a tripped breaker, keeping its window's
-- counts. Returns 0 when there is no such breaker, 1 when it was tripped,
-- 2 when it was not.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local was = redis.call('HDEL', KEYS[2], 'tripped_at')
local per = num(redis.call('HGET', KEYS[2], 'per'))
local now = now_ms()
touch(KEYS[1], KEYS[2], per, load(KEYS[1], KEYS[2], per, now), now)
if was == 1 then return 1 end
return 2
