-- KEYS: window, state, breakers set. ARGV: name, rule, ns, limit, per_ms,
-- documents, when_ms ('' = now), auto_resume: counts made while Redis was
-- away, replayed.
-- `when_ms` (a replayed count's time) is clamped to now; code 1 = tripped now.
local limit, per, docs = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
local at = now
if ARGV[7] and ARGV[7] ~= '' then at = math.min(tonumber(ARGV[7]), now) end
meta(KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], limit, per, ARGV[8])
local st = load(KEYS[1], KEYS[2], per, now)
local code = 0
if not st.allow_until and docs > 0 then
  local counted = docs
  if st.allow_docs > 0 then
    local covered = math.min(st.allow_docs, counted)
    st.allow_docs = st.allow_docs - covered; counted = counted - covered
    redis.call('HSET', KEYS[2], 'allow_docs', st.allow_docs)
  end
  if counted > 0 and at > now - per then
    local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
    redis.call('ZADD', KEYS[1], at, counted .. ':' .. seq)
    st.used = redis.call('HINCRBY', KEYS[2], 'used', counted)
    if not st.last or at > st.last then
      st.last = at; redis.call('HSET', KEYS[2], 'last', at)
    end
    if not st.tripped_at and st.used >= limit then
      redis.call('HSET', KEYS[2], 'tripped_at', now); st.tripped_at = now; code = 1
    end
  end
end
touch(KEYS[1], KEYS[2], per, st, now)
return describe(code, st, per, now, ARGV[1])
