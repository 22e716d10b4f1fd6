-- Shared by the budget scripts. A window is a sorted set of entries scored
-- by their time in ms, each member "<documents>:<seq>", plus a hash with the
-- running sum (used), the breaker (tripped_at), the operator's allowance
-- (allow_docs, allow_until), the newest entry (last), the rule's numbers and
-- whether a tripped breaker closes by itself once drained (auto = 1).
-- The logic mirrors policy::BudgetBook line by line.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(v) return tonumber(v) or 0 end
local function load(w, s, per, now)
  local gone = redis.call('ZRANGEBYSCORE', w, '-inf', now - per)
  if #gone > 0 then
    local sum = 0
    for _, m in ipairs(gone) do sum = sum + num(string.match(m, '^(%d+):')) end
    redis.call('ZREMRANGEBYSCORE', w, '-inf', now - per)
    redis.call('HINCRBY', s, 'used', -sum)
  end
  local f = redis.call('HMGET', s, 'used', 'tripped_at', 'allow_docs', 'allow_until', 'last', 'rule', 'ns', 'limit', 'auto')
  local st = {used = math.max(num(f[1]), 0), tripped_at = tonumber(f[2]),
    allow_docs = num(f[3]), allow_until = tonumber(f[4]), last = tonumber(f[5]),
    rule = f[6] or '', ns = f[7] or '', limit = num(f[8]), auto = f[9] == '1'}
  if st.auto and st.tripped_at and st.used == 0 and now >= st.tripped_at + per then
    redis.call('HDEL', s, 'tripped_at'); st.tripped_at = nil
  end
  if st.allow_until and now >= st.allow_until then
    redis.call('HDEL', s, 'allow_until'); st.allow_until = nil
  end
  return st
end
local function touch(w, s, per, st, now)
  -- A tripped breaker that only an operator closes must not expire open.
  if st.tripped_at and not st.auto then
    redis.call('PERSIST', w); redis.call('PERSIST', s)
    return
  end
  local ttl = 2 * per + 60000
  if st.allow_until and st.allow_until > now then ttl = ttl + st.allow_until - now end
  redis.call('PEXPIRE', w, ttl); redis.call('PEXPIRE', s, ttl)
end
local function describe(code, st, per, now, name)
  local drains = -1
  if st.used > 0 and st.last then drains = st.last + per end
  return {code, st.used, st.limit, per, st.tripped_at or -1, drains, st.allow_docs,
          st.allow_until or -1, now, st.rule, st.ns, name, st.auto and 1 or 0}
end
local function meta(s, set, name, rule, ns, limit, per, auto)
  redis.call('HSET', s, 'rule', rule, 'ns', ns, 'limit', limit, 'per', per, 'auto', auto)
  redis.call('SADD', set, name)
end
