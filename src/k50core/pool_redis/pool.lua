#!lua name=k50pool
-- Number pools in Redis: every state change of a pool is one of these functions, run atomically
-- by the server. KEYS of every call are one pool's four keys, which share a hash tag
-- ({ns:pool}), so each call touches one cluster slot:
--   KEYS[1] free: sorted set of the pool's numbers (slot ids) by the instant each may be claimed
--           (0: never leased; else its lease's end + cooldown; quarantined: later)
--   KEYS[2] rec:  hash slot id -> the number's lease record (MessagePack, see rec_new)
--   KEYS[3] who:  hash holder (visitor id) -> slot id of their latest lease
--   KEYS[4] meta: hash: counters (claims, shares, defaults), epoch, run (server run id), qu
-- Times are integer milliseconds from the hosts' clocks (ARGV), so tests can inject them.

local NEVER, LEASED, RETIRED = 0, 2, 3
local GEN_MASK = 262143
-- record fields
local KIND, GEN, SHARED, UNTIL, NUMBER, POOL, RULE, START, LAST, HOLDER, SESSION, END0 = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12

local booted = nil  -- this server process's run id, read once per load of the library

local function rec_get(keys, slot)
    local raw = redis.call('HGET', keys[2], slot)
    if not raw then return nil end
    return cmsgpack.unpack(raw)
end

local function rec_put(keys, slot, r)
    redis.call('HSET', keys[2], slot, cmsgpack.pack(r))
end

-- Epoch: a restarted server (a new run id) may have lost its last second of writes (AOF
-- everysec). Then every number of the pool is quarantined until now + hold + cooldown: a lease
-- granted in the lost second cannot be granted again while it may live; hosts re-assert the
-- live leases they know (k50_assert), which gives those back their records.
local function epoch(keys, now, hold, cooldown)
    if booted == nil then
        booted = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or '?'
    end
    local run, ep = unpack(redis.call('HMGET', keys[4], 'run', 'epoch'))
    if run == booted then return tonumber(ep) end
    ep = (tonumber(ep) or 0) + 1
    if run then  -- not the pool's first use: this server restarted
        local q = now + hold + cooldown
        local all = redis.call('ZRANGE', keys[1], 0, -1, 'WITHSCORES')
        for i = 1, #all, 2 do
            if tonumber(all[i + 1]) < q then redis.call('ZADD', keys[1], q, all[i]) end
        end
        redis.call('HSET', keys[4], 'qu', q)
    end
    redis.call('HSET', keys[4], 'run', booted, 'epoch', ep)
    return ep
end

local function moved(r)
    return r[LAST] > r[START] or r[UNTIL] ~= r[END0]
end

local function flat(r)
    return {r[GEN], r[SHARED], r[UNTIL], r[NUMBER], r[RULE], r[START], r[LAST], r[HOLDER], r[SESSION], r[KIND], r[END0]}
end

local function renewed(keys, slot, r, now, hold, cooldown)
    if now + hold > r[UNTIL] then r[UNTIL] = now + hold end
    if now > r[LAST] then r[LAST] = now end
    rec_put(keys, slot, r)
    redis.call('ZADD', keys[1], r[UNTIL] + cooldown, slot)
end

-- a new lease of ``slot`` (its old record ``r``) for this holder; the replaced lease if it moved
local function lease_new(keys, slot, r, now, hold, cooldown, rule, holder, session, shared)
    local old = {}
    if r[KIND] == LEASED and moved(r) then old = flat(r) end
    if r[HOLDER] ~= '' and redis.call('HGET', keys[3], r[HOLDER]) == slot then
        redis.call('HDEL', keys[3], r[HOLDER])  -- who keeps each number's latest holder only
    end
    r[KIND], r[GEN], r[SHARED] = LEASED, (r[GEN] + 1) % (GEN_MASK + 1), shared
    r[UNTIL], r[RULE], r[START], r[LAST], r[END0] = now + hold, rule, now, now, now + hold
    r[HOLDER], r[SESSION] = holder, session
    rec_put(keys, slot, r)
    redis.call('ZADD', keys[1], now + hold + cooldown, slot)
    if holder ~= '' then redis.call('HSET', keys[3], holder, slot) end
    return old
end

local function reply(status, ep, slot, r, old)
    local out = {status, ep, tonumber(slot)}
    for _, v in ipairs(flat(r)) do out[#out + 1] = v end
    for _, v in ipairs(old or {}) do out[#out + 1] = v end
    return out
end

-- the holder's live lease in this pool, renewed; nil if none
local function back(keys, now, hold, cooldown, holder)
    if holder == '' then return nil end
    local slot = redis.call('HGET', keys[3], holder)
    if not slot then return nil end
    local r = rec_get(keys, slot)
    if not r or r[KIND] ~= LEASED or now >= r[UNTIL] or r[HOLDER] ~= holder then return nil end
    renewed(keys, slot, r, now, hold, cooldown)
    return slot, r
end

-- One new visitor at ``now``: their live lease if they have one (lookup '1'), else the free
-- number idle longest, else (policy share) a join of the least recently active lease.
local function claim_one(keys, ep, now, hold, cooldown, rule, holder, session, policy, lookup)
    if lookup == '1' then
        local slot, r = back(keys, now, hold, cooldown, holder)
        if slot then return reply('back', ep, slot, r) end
    end
    local free = redis.call('ZRANGE', keys[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, 1)
    if #free > 0 then
        local slot = free[1]
        local r = rec_get(keys, slot)
        local old = lease_new(keys, slot, r, now, hold, cooldown, rule, holder, session, 0)
        return reply('claim', ep, slot, r, old)  -- counted by the caller (a batch: once)
    end
    if policy ~= 'share' then return {'none', ep} end
    redis.call('HINCRBY', keys[4], 'shares', 1)
    local first = redis.call('ZRANGE', keys[1], 0, 0)
    if #first == 0 then return {'none', ep} end
    local slot = first[1]
    local r = rec_get(keys, slot)
    if r[KIND] ~= LEASED then return {'none', ep} end
    if now < r[UNTIL] then  -- still held: join it (a join is not the holder's activity)
        r[SHARED] = 1
        if now + hold > r[UNTIL] then r[UNTIL] = now + hold end
        rec_put(keys, slot, r)
        redis.call('ZADD', keys[1], r[UNTIL] + cooldown, slot)
        return reply('join', ep, slot, r)
    end
    if now < tonumber(redis.call('HGET', keys[4], 'qu') or 0) then return {'none', ep} end  -- quarantined
    local old = lease_new(keys, slot, r, now, hold, cooldown, rule, holder, session, 1)
    return reply('sharenew', ep, slot, r, old)
end

-- ARGV: now hold cooldown rule holder session policy(claim|share) lookup(0|1)
-- A new visitor (see claim_one). One round trip.
local function claim(keys, args)
    local now, hold, cooldown = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
    if redis.call('HEXISTS', keys[4], 'setup') == 0 then return {'unset', 0} end  -- lost: the host sets it up again
    local ep = epoch(keys, now, hold, cooldown)
    local out = claim_one(keys, ep, now, hold, cooldown, tonumber(args[4]), args[5], args[6], args[7], args[8])
    if out[1] == 'claim' then redis.call('HINCRBY', keys[4], 'claims', 1) end
    return out
end

-- ARGV: hold cooldown policy, then (now rule holder session lookup) per new visitor: the claims a
-- host gathered while its previous round trip was out, one after the other in the order given,
-- exactly as that many k50_claim calls would run. Reply: each claim's k50_claim reply.
local function claim_many(keys, args)
    local hold, cooldown, policy = tonumber(args[1]), tonumber(args[2]), args[3]
    local out = {}
    if redis.call('HEXISTS', keys[4], 'setup') == 0 then
        for _ = 4, #args, 5 do out[#out + 1] = {'unset', 0} end
        return out
    end
    local latest = 0
    for i = 4, #args, 5 do
        local t = tonumber(args[i])
        if t > latest then latest = t end
    end
    local ep = epoch(keys, latest, hold, cooldown)
    local claimed = 0
    for i = 4, #args, 5 do
        local one = claim_one(keys, ep, tonumber(args[i]), hold, cooldown, tonumber(args[i + 1]), args[i + 2],
                              args[i + 3], policy, args[i + 4])
        if one[1] == 'claim' then claimed = claimed + 1 end
        out[#out + 1] = one
    end
    if claimed > 0 then redis.call('HINCRBY', keys[4], 'claims', claimed) end
    return out
end

-- ARGV: now hold cooldown holder -- the holder's live lease here, renewed
local function find(keys, args)
    local now, hold, cooldown = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
    local ep = epoch(keys, now, hold, cooldown)
    local slot, r = back(keys, now, hold, cooldown, args[4])
    if slot then return reply('back', ep, slot, r) end
    return {'none', ep}
end

-- ARGV: now hold cooldown, then (slot gen first last until) per lease: renewals made on a host
-- since its last write, one write per lease however often it was renewed there. A lease renews
-- if it is still the slot's (gen) and was alive at its first renewal. Reply: epoch, then
-- (until shared) per lease, until 0 for a lease gone.
local function renew(keys, args)
    local now, hold, cooldown = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
    local out = {epoch(keys, now, hold, cooldown)}
    for i = 4, #args, 5 do
        local slot, gen, first, last, untl = args[i], tonumber(args[i + 1]), tonumber(args[i + 2]),
                                              tonumber(args[i + 3]), tonumber(args[i + 4])
        local r = rec_get(keys, slot)
        if r and r[KIND] == LEASED and r[GEN] == gen and first < r[UNTIL] then
            if untl > r[UNTIL] then r[UNTIL] = untl end
            if last > r[LAST] then r[LAST] = last end
            rec_put(keys, slot, r)
            redis.call('ZADD', keys[1], r[UNTIL] + cooldown, slot)
            out[#out + 1] = r[UNTIL]
            out[#out + 1] = r[SHARED]
        else
            out[#out + 1] = 0
            out[#out + 1] = 0
        end
    end
    return out
end

-- ARGV: now hold cooldown, then (slot gen start until last shared rule holder session) per lease:
-- a host's live leases after an epoch change. A record that lost the lease gets it back, unless
-- the slot holds another live lease meanwhile.
local function assert_leases(keys, args)
    local now, hold, cooldown = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
    local out = {epoch(keys, now, hold, cooldown)}
    for i = 4, #args, 9 do
        local slot, gen, start, untl = args[i], tonumber(args[i + 1]), tonumber(args[i + 2]), tonumber(args[i + 3])
        local r = rec_get(keys, slot)
        local ok = 0
        if r and r[KIND] ~= RETIRED and untl > now then
            if r[GEN] == gen and r[START] == start then
                if untl > r[UNTIL] then r[UNTIL] = untl end
                if r[KIND] ~= LEASED then r[KIND] = LEASED end
                ok = 1
            elseif not (r[KIND] == LEASED and now < r[UNTIL]) then
                r[KIND], r[GEN], r[START], r[UNTIL], r[END0] = LEASED, gen, start, untl, untl
                r[LAST], r[SHARED], r[RULE] = tonumber(args[i + 4]), tonumber(args[i + 5]), tonumber(args[i + 6])
                r[HOLDER], r[SESSION] = args[i + 7], args[i + 8]
                if r[HOLDER] ~= '' then redis.call('HSET', keys[3], r[HOLDER], slot) end
                ok = 1
            end
            if ok == 1 then
                rec_put(keys, slot, r)
                local s = tonumber(redis.call('ZSCORE', keys[1], slot) or 0)
                if r[UNTIL] + cooldown > s then redis.call('ZADD', keys[1], r[UNTIL] + cooldown, slot) end
            end
        end
        out[#out + 1] = ok
    end
    return out
end

-- ARGV: now cooldown pool quarantine, then (slot number) per number the pool has now: set-up and
-- reload. New numbers enter never leased (claimable from ``quarantine`` on, when a host sets up
-- again a pool Redis lost); retired ones come back; numbers no longer listed retire, a live lease
-- of theirs ending now. Reply: the records of the leases cut (slot then fields each).
local function setup(keys, args)
    local now, cooldown, pool, q = tonumber(args[1]), tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
    local wanted = {}
    redis.call('HSET', keys[4], 'setup', 1)
    if q > 0 then redis.call('HSET', keys[4], 'qu', q) end
    for i = 5, #args, 2 do
        local slot, number = args[i], args[i + 1]
        wanted[slot] = true
        local r = rec_get(keys, slot)
        if not r then
            r = {NEVER, 0, 0, 0, number, pool, 0, 0, 0, '', '', 0}
            rec_put(keys, slot, r)
            redis.call('ZADD', keys[1], 'NX', q, slot)
        elseif r[KIND] == RETIRED then
            r[KIND] = (r[UNTIL] > 0) and LEASED or NEVER
            r[SHARED] = 0
            r[NUMBER], r[POOL] = number, pool
            rec_put(keys, slot, r)
            redis.call('ZADD', keys[1], (r[UNTIL] > 0) and (r[UNTIL] + cooldown) or 0, slot)
        end
    end
    local out = {}
    local all = redis.call('HKEYS', keys[2])
    for _, slot in ipairs(all) do
        if not wanted[slot] then
            local r = rec_get(keys, slot)
            if r[KIND] ~= RETIRED then
                local cut = r[KIND] == LEASED and r[UNTIL] > now
                if cut then r[UNTIL], r[END0] = now, now end
                r[KIND] = RETIRED
                rec_put(keys, slot, r)
                redis.call('ZREM', keys[1], slot)
                if cut then
                    out[#out + 1] = tonumber(slot)
                    for _, v in ipairs(flat(r)) do out[#out + 1] = v end
                end
            end
        end
    end
    return out
end

-- ARGV: slot... -> (slot, fields) of each existing record (read only)
local function records(keys, args)
    local out = {}
    local slots = args
    if #slots == 0 then slots = redis.call('HKEYS', keys[2]) end
    for _, slot in ipairs(slots) do
        local r = rec_get(keys, slot)
        if r then
            out[#out + 1] = tonumber(slot)
            for _, v in ipairs(flat(r)) do out[#out + 1] = v end
        end
    end
    return out
end

-- ARGV: now cooldown -> numbers, leased, cooling, claims, shares, defaults, epoch
local function stats(keys, args)
    local now, cooldown = tonumber(args[1]), tonumber(args[2])
    local n = redis.call('ZCARD', keys[1])
    local leased = redis.call('ZCOUNT', keys[1], '(' .. (now + cooldown), '+inf')
    local cooling = redis.call('ZCOUNT', keys[1], '(' .. now, now + cooldown)
    local c = redis.call('HMGET', keys[4], 'claims', 'shares', 'defaults', 'epoch')
    return {n, leased, cooling, tonumber(c[1] or 0), tonumber(c[2] or 0), tonumber(c[3] or 0), tonumber(c[4] or 0)}
end

-- ARGV: n -> count n visits given the default number (exhausted, or Redis was unreachable)
local function defaults(keys, args)
    return redis.call('HINCRBY', keys[4], 'defaults', tonumber(args[1]))
end

-- KEYS[1] the namespace's registry; ARGV: a tag key to keep if it has none, then 'p:<pool>' or
-- 'n:<number>' names -> the kept key, then each name's id (pools and numbers each counted from 0)
local function register(keys, args)
    local key = redis.call('HGET', keys[1], 'tagkey')
    if not key then
        key = args[1]
        redis.call('HSET', keys[1], 'tagkey', key)
    end
    local out = {key}
    for i = 2, #args do
        local id = redis.call('HGET', keys[1], args[i])
        if not id then
            local counter = (string.sub(args[i], 1, 1) == 'p') and 'next_pool' or 'next_slot'
            id = redis.call('HINCRBY', keys[1], counter, 1) - 1
            redis.call('HSET', keys[1], args[i], id)
        end
        out[#out + 1] = tonumber(id)
    end
    return out
end

redis.register_function('k50_register', register)
redis.register_function('k50_claim', claim)
redis.register_function('k50_claim_many', claim_many)
redis.register_function('k50_find', find)
redis.register_function('k50_renew', renew)
redis.register_function('k50_assert', assert_leases)
redis.register_function('k50_setup', setup)
redis.register_function{function_name = 'k50_records', callback = records, flags = {'no-writes'}}
redis.register_function{function_name = 'k50_stats', callback = stats, flags = {'no-writes'}}
redis.register_function('k50_defaults', defaults)
