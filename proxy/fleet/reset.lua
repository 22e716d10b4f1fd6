-- KEYS: window, state. Returns 0 when there is no such breaker.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], 'tripped_at', 'allow_docs', 'allow_until', 'last')
redis.call('HSET', KEYS[2], 'used', 0)
return 1
