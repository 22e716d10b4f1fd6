-- KEYS: breakers set, then window and state of each request. ARGV: force
-- (1/0), the number of requests, then per request: name, rule, ns, limit,
-- per_ms, documents, everything_left, unbounded, enforced, at_least, auto_resume.
-- All or none, as policy::BudgetBook::reserve: every enforced request must
-- fit, or none is reserved (unless forced). Returns {reserved, {state,
-- {seq, amount, from_allowance, score}}...}. Codes as admission_from_code.
local force, n = ARGV[1] == '1', tonumber(ARGV[2])
local now = now_ms()
local reqs, fits = {}, true
for i = 1, n do
  local b = 2 + (i - 1) * 11
  local r = {name = ARGV[b + 1], rule = ARGV[b + 2], ns = ARGV[b + 3],
    limit = tonumber(ARGV[b + 4]), per = tonumber(ARGV[b + 5]), docs = tonumber(ARGV[b + 6]),
    everything = ARGV[b + 7] == '1', unbounded = ARGV[b + 8] == '1',
    enforced = ARGV[b + 9] == '1', at_least = tonumber(ARGV[b + 10]),
    w = KEYS[2 * i], s = KEYS[2 * i + 1]}
  meta(r.s, KEYS[1], r.name, r.rule, r.ns, r.limit, r.per, ARGV[b + 11])
  local st = load(r.w, r.s, r.per, now)
  local code, amount = 0, r.docs
  if st.allow_until then amount = 0
  elseif not r.unbounded and not r.everything and st.allow_docs > 0 and r.docs <= st.allow_docs then code = 0
  elseif st.tripped_at then code = 1
  else
    local left = r.limit - st.used + st.allow_docs
    if r.unbounded or r.docs > left or (r.everything and left <= 0) then
      if left > 0 then code = 3
      elseif r.docs == 0 and not r.unbounded and not r.everything then code = 0
      else code = 2; redis.call('HSET', r.s, 'tripped_at', now); st.tripped_at = now end
    elseif r.everything then amount = math.max(left, r.docs) end
  end
  r.code, r.amount, r.st = code, amount, st
  if code ~= 0 and r.enforced then fits = false end
  reqs[i] = r
end
local reserved = fits or force
local out = {reserved and 1 or 0}
for i = 1, n do
  local r, seq, from_allow = reqs[i], 0, 0
  local st, amount = r.st, 0
  if reserved and not st.allow_until then
    amount = r.amount
    if r.code ~= 0 then amount = math.max(r.docs, r.at_least) end
    from_allow = math.min(st.allow_docs, amount)
    if from_allow > 0 then
      st.allow_docs = st.allow_docs - from_allow
      redis.call('HSET', r.s, 'allow_docs', st.allow_docs)
    end
    local counted = amount - from_allow
    if counted > 0 then
      seq = redis.call('HINCRBY', r.s, 'seq', 1)
      redis.call('ZADD', r.w, now, counted .. ':' .. seq)
      st.used = redis.call('HINCRBY', r.s, 'used', counted)
      st.last = now; redis.call('HSET', r.s, 'last', now)
    end
  end
  touch(r.w, r.s, r.per, st, now)
  out[i + 1] = {describe(r.code, st, r.per, now, r.name), {seq, amount, from_allow, now}}
end
return out
