//! The fleet's shared law state on Redis (docs/law.md § Scaling out): nonces, decisions,
//! reservations, jobs and day counters that every agent of a federation reads and writes, so
//! the replay window and the quotas hold across all of them.
//!
//! Owns the key layout, the Lua scripts and the store's time. Every change is one script, run
//! atomically by the server with the server's `TIME` (never an agent's clock) for expiry and
//! the clock's high-water mark. The judgement stays in Rust (one implementation, shared with the
//! embedded store): a decision is a read step (sweep, nonce, usage), the judgement, then a
//! commit step that re-checks, atomically, that the nonce is still unused and the usage the
//! judgement saw is still the usage — else nothing is written and the decision is made again
//! (compare-and-set, [`MAX_TRIES`] times, then `state-contended`). So two agents never both
//! accept one nonce, and what they allow together never exceeds a quota.
//!
//! Losing state never reopens the replay window: a `birth` key is set by the first agent at the
//! server's time; a flushed or restarted-empty Redis has none, and the next step sets it anew
//! (orders issued before it plus the skew are `state-too-new`). Writes lost to a failover (a
//! replica promoted without them) are caught by a sequence number every commit raises: an agent
//! that has seen a higher one than the server now has moves the birth forward. Either way the
//! call that notices answers a store error (the engine checked the old birth), and the next
//! decides under the new one.
//!
//! Redis Cluster is refused at connection: a script may touch one hash slot only, and the
//! federation-wide counters share every decision's step (docs/law.md says why).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use crate::time::Instant;

use super::decide::{Ceiling, Usage};
use super::message::AckStatus;
use super::store::{
    AckFacts, AckOutcome, AckRefusal, Fill, Holds, Judged, LawStore, NonceKey, OrderFacts,
    Recorded, StateStats, StoreError, Timing, TreatyUsage, CLOCK_TOLERANCE,
};
use super::Decision;

/// Compare-and-set attempts before a decision gives up (`state-contended`).
pub const MAX_TRIES: usize = 16;
/// Connections kept open to the server (more are opened under load and dropped after).
const POOL: usize = 8;
/// The key prefix: every key the store writes starts with it.
pub const PREFIX: &str = "treaty:law:";
/// The environment variable holding the server's password (never a flag or the URL).
pub const PASSWORD_ENV: &str = "TREATY_AGENT_REDIS_PASSWORD";

/// Errors of the Redis store, as [`StoreError`]s with the server named.
fn unavailable(url: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        store: url.to_owned(),
        reason: crate::text::escape(crate::text::clip(&why.to_string(), 300)).into_owned(),
    }
}

/// Where the store connects, and how long one step may take.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://HOST:PORT/DB` or `rediss://…` (TLS); without a password.
    pub url: String,
    /// The password, from a file or [`PASSWORD_ENV`].
    pub password: Option<String>,
    /// Connecting, and each step's reply: past it the step fails (the order is not decided).
    pub timeout: Duration,
    /// The prefix of every key ([`PREFIX`] unless several federations share one server).
    pub prefix: String,
}

/// The shared store: see the module doc.
pub struct RedisStore {
    shown: String,
    prefix: String,
    client: redis::Client,
    timeout: Duration,
    pool: Mutex<Vec<redis::Connection>>,
    birth: AtomicI64,
    high_water: AtomicI64,
    /// The highest commit sequence number this agent has seen.
    seen: AtomicU64,
    /// Tests only: the script's time instead of the server's (see [`RedisStore::pin_time`]).
    pinned: AtomicI64,
    /// The server process last connected to (its `run_id`): another one (a restart, a
    /// promoted replica) may lack writes, and the scripts then move the birth.
    server: Mutex<String>,
    /// The data epoch last seen (an operator's clear starts a new one).
    epoch: Mutex<String>,
}

/// The shared prelude of every script: the time, the birth, the sweep, counters.
const PRELUDE: &str = r#"
local P = ARGV[1]
local pinned = tonumber(ARGV[2])
local t
if pinned > 0 then t = pinned else t = tonumber(redis.call('TIME')[1]) end
local min_seq = tonumber(ARGV[3])
local known_birth = tonumber(ARGV[4])
local server = ARGV[5]
local birth = tonumber(redis.call('GET', P .. 'birth'))
local seq = tonumber(redis.call('GET', P .. 'seq')) or 0
local reborn = false
-- A birth after state was lost or cleared: never before an order decided in the old state
-- could have been issued. An agent's clock may run 2 s ahead of this server's (beyond that it
-- decides nothing), and orders are judged on the agent's clock: so the server's time now and
-- its latest change, each plus those 2 s; and strictly after every birth known.
local old_hw = tonumber(redis.call('GET', P .. 'hw'))
local function next_birth(was)
  local b = t + 2
  if old_hw and b < old_hw + 2 then b = old_hw + 2 end
  if known_birth > 0 and b <= known_birth then b = known_birth + 1 end
  if was and b <= was then b = was + 1 end
  return b
end
if birth == nil or seq < min_seq or redis.call('GET', P .. 'server') ~= server
  or redis.call('EXISTS', P .. 'epoch') == 0 then
  -- Lost state (flushed, restarted, restored, or a replica promoted, which may lack the last
  -- writes: another server process, by its run_id), or data of an older layout (no epoch):
  -- born again (so every agent notices, even within a second).
  reborn = true
  birth = next_birth(birth)
  redis.call('SET', P .. 'birth', birth)
  redis.call('SET', P .. 'server', server)
  if redis.call('EXISTS', P .. 'epoch') == 0 then redis.call('SET', P .. 'epoch', '0') end
  if seq < min_seq then seq = min_seq; redis.call('SET', P .. 'seq', seq) end
end
-- (A birth may be ahead of the server's time now; the high-water mark never is.)
local hw = old_hw or t
-- The data of this epoch: an operator's clear starts a new one (all at once, whatever the
-- state's size); the old one's keys are unlinked after, in batches.
local E = redis.call('GET', P .. 'epoch') or '0'
local D = P .. 'x' .. E .. ':'
local function day(s)
  local z = math.floor(s / 86400) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp + 3
  if m > 12 then m = m - 12 end
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02d', y, m, d)
end
local function num(k) return tonumber(redis.call('GET', k)) or 0 end
local function add(k, v)
  local x = num(k) + v
  if x < 0 then x = 0 end
  redis.call('SET', k, string.format('%d', x), 'EX', 259200)
end
local function release(h)
  add(D .. 'day:' .. h.day .. '/' .. h.treaty_id, -tonumber(h.gpu))
  add(D .. 'fday:' .. h.day, -tonumber(h.gpu))
  add(D .. 'rday:' .. h.day .. '/' .. h.requester, -tonumber(h.credits))
end
local function hash(k)
  local a = redis.call('HGETALL', k)
  if #a == 0 then return nil end
  local h = {}
  for i = 1, #a, 2 do h[a[i]] = a[i + 1] end
  return h
end
local function drop_reservation(id, h)
  redis.call('DEL', D .. 'r:' .. id)
  redis.call('ZREM', D .. 'rz', id)
  redis.call('SREM', D .. 'ts:' .. h.treaty_id, id)
end
local function ended(order, sha, timed_out)
  local k = D .. 'e:' .. order
  redis.call('HSET', k, 'sha', sha, 'timed_out', timed_out)
  local exp = redis.call('EXPIRETIME', D .. 'd:' .. order)
  if exp > 0 then redis.call('EXPIREAT', k, exp) else redis.call('EXPIRE', k, 86400) end
end
-- The provider's answers per treaty and 5-minute slot (kept two hours; the window is one).
local function count_fill(treaty, at, field)
  local k = D .. 'fill:' .. (at - at % 300) .. '/' .. treaty
  redis.call('HINCRBY', k, field, 1)
  redis.call('EXPIRE', k, 7200)
end
-- Reservations past their time: a reservation's quota is released; a job past its deadline is
-- closed as timed out (its GPU hours stay counted).
local function sweep()
  local ids = redis.call('ZRANGEBYSCORE', D .. 'rz', '-inf', '(' .. t)
  for _, id in ipairs(ids) do
    local h = hash(D .. 'r:' .. id)
    if h then
      drop_reservation(id, h)
      if h.phase == 'running' then
        redis.call('HINCRBY', D .. 'c:' .. h.treaty_id, 'jobs_timed_out', 1)
        ended(h.order_id, h.sha, '1')
      else
        redis.call('HINCRBY', D .. 'c:' .. h.treaty_id, 'reservations_expired', 1)
        release(h)
        count_fill(h.treaty_id, tonumber(h['until']), 'u')
      end
    else
      redis.call('ZREM', D .. 'rz', id)
    end
  end
end
-- Figures go back as decimal strings: cjson writes numbers with 14 significant digits.
local function dec(x) return string.format('%d', x) end
local function usage(treaty, requester, today)
  return {
    treaty_gpu_milli_hours_today = dec(num(D .. 'day:' .. today .. '/' .. treaty)),
    treaty_concurrent_jobs = dec(redis.call('SCARD', D .. 'ts:' .. treaty)),
    federation_gpu_milli_hours_today = dec(num(D .. 'fday:' .. today)),
    federation_concurrent_jobs = dec(redis.call('ZCARD', D .. 'rz')),
    requester_credits_today = dec(num(D .. 'rday:' .. today .. '/' .. requester)),
  }
end
local function reply(x)
  x.t = t; x.birth = birth; x.seq = seq; x.hw = hw; x.epoch = E
  return cjson.encode(x)
end
-- A change judged under another birth than the server's now is not written.
local function judged_under(b) return (not reborn) and tonumber(b) == birth end
"#;

/// Step one of a decision: the nonce, the order id, then (swept) the usage at the server's
/// time. ARGV 6..: nonce id, digest, order id, treaty, requester.
const READ: &str = r#"
if t + 2 < hw then return reply({state = 'behind'}) end
local n = hash(D .. 'n:' .. ARGV[6])
if n then
  if n.digest == ARGV[7] then
    local d = redis.call('HGET', D .. 'd:' .. n.order, 'json')
    if d then return reply({state = 'repeat', decision = d}) end
  end
  return reply({state = 'replayed', order = n.order})
end
if redis.call('EXISTS', D .. 'd:' .. ARGV[8]) == 1 then return reply({state = 'taken'}) end
sweep()
return reply({state = 'new', day = day(t), usage = usage(ARGV[9], ARGV[10], day(t))})
"#;

/// Step two: the same checks again, the usage now against what the judgement stands on (see
/// [`Holds`]), then the nonce, the decision and (allowed) the reservation, all or nothing.
/// ARGV 6..: nonce id, digest, order id, treaty, requester, forget-after, allowed, decision
/// JSON, gpu, credits, order sha, max job, reservation ttl, the five usage figures judged, the
/// day judged, the birth judged under, then the mode (`exact`: the figures judged; `admit`:
/// every figure under its ceiling; `refuse`: every figure the denial named still over it;
/// `always`), the five ceilings (decimal; '' none; 'never') in ARGV 27..31, and in ARGV 32..36
/// which figures were over when judged ('1').
const COMMIT: &str = r#"
if t + 2 < hw then return reply({state = 'behind'}) end
if not judged_under(ARGV[25]) then return reply({state = 'reborn'}) end
if redis.call('EXISTS', D .. 'n:' .. ARGV[6]) == 1 then return reply({state = 'conflict'}) end
if redis.call('EXISTS', D .. 'd:' .. ARGV[8]) == 1 then return reply({state = 'conflict'}) end
sweep()
local today = day(t)
if today ~= ARGV[24] then return reply({state = 'conflict'}) end
local u = usage(ARGV[9], ARGV[10], today)
local figs = {u.treaty_gpu_milli_hours_today, u.treaty_concurrent_jobs,
  u.federation_gpu_milli_hours_today, u.federation_concurrent_jobs, u.requester_credits_today}
-- Decimal strings compared exactly (no float rounding): shorter is smaller.
local function under(fig, c)
  if c == '' then return true end
  if c == 'never' then return false end
  if #fig ~= #c then return #fig < #c end
  -- Byte by byte (Lua's `<=` on strings follows the server's collation locale).
  for i = 1, #fig do
    local x, y = fig:byte(i), c:byte(i)
    if x ~= y then return x < y end
  end
  return true
end
local mode = ARGV[26]
local stands
if mode == 'exact' then
  stands = true
  for i = 1, 5 do if figs[i] ~= ARGV[18 + i] then stands = false end end
elseif mode == 'always' then
  stands = true
else
  if mode == 'admit' then
    stands = true
    for i = 1, 5 do if not under(figs[i], ARGV[26 + i]) then stands = false end end
  elseif mode == 'refuse' then
    -- Every figure the denial named (ARGV 32..36) is still over its ceiling: the same
    -- denials would be made now.
    stands = true
    for i = 1, 5 do
      if ARGV[31 + i] == '1' and under(figs[i], ARGV[26 + i]) then stands = false end
    end
  else return reply({state = 'bad-mode'}) end
end
if not stands then return reply({state = 'conflict'}) end
local forget = tonumber(ARGV[11]) + 2
if forget < t + 60 then forget = t + 60 end
local ttl = tonumber(ARGV[18])
local keep = forget
if ARGV[12] == '1' and t + ttl + 60 > keep then keep = t + ttl + 60 end
redis.call('HSET', D .. 'n:' .. ARGV[6], 'digest', ARGV[7], 'order', ARGV[8])
redis.call('EXPIREAT', D .. 'n:' .. ARGV[6], forget)
redis.call('HSET', D .. 'd:' .. ARGV[8], 'json', ARGV[13], 'allowed', ARGV[12], 'treaty', ARGV[9])
redis.call('EXPIREAT', D .. 'd:' .. ARGV[8], keep)
if ARGV[12] == '1' then
  local h = {order_id = ARGV[8], treaty_id = ARGV[9], requester = ARGV[10], gpu = ARGV[14],
             credits = ARGV[15], day = today}
  add(D .. 'day:' .. today .. '/' .. h.treaty_id, tonumber(h.gpu))
  add(D .. 'fday:' .. today, tonumber(h.gpu))
  add(D .. 'rday:' .. today .. '/' .. h.requester, tonumber(h.credits))
  redis.call('HINCRBY', D .. 'c:' .. h.treaty_id, 'allowed', 1)
  local id = h.treaty_id .. '/' .. h.order_id
  redis.call('HSET', D .. 'r:' .. id, 'phase', 'reserved', 'until', t + ttl, 'order_id', h.order_id,
    'treaty_id', h.treaty_id, 'requester', h.requester, 'gpu', h.gpu, 'credits', h.credits,
    'day', today, 'sha', ARGV[16], 'max_job', ARGV[17])
  redis.call('ZADD', D .. 'rz', t + ttl, id)
  redis.call('SADD', D .. 'ts:' .. h.treaty_id, id)
end
seq = redis.call('INCR', P .. 'seq')
if t > hw or not old_hw then hw = t; redis.call('SET', P .. 'hw', t) end
return reply({state = 'first'})
"#;

/// An ACK or a completion (the transitions of `State::ack`). ARGV 6..: treaty, order id, order
/// sha, status, used (or ''), operator's max job.
const ACK: &str = r#"
if t + 2 < hw then return reply({state = 'behind'}) end
if reborn then return reply({state = 'reborn'}) end
local treaty, order, sha, status = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local id = treaty .. '/' .. order
local r = hash(D .. 'r:' .. id)
if not r then
  local d = hash(D .. 'd:' .. order)
  if not d or d.allowed ~= '1' or d.treaty ~= treaty then return reply({state = 'unknown-order'}) end
  local e = hash(D .. 'e:' .. order)
  if not e then return reply({state = 'reservation-expired'}) end
  if e.sha ~= sha then return reply({state = 'other-order'}) end
  if e.timed_out == '1' then return reply({state = 'job-timed-out'}) end
  if status == 'completed' or status == 'failed' then return reply({state = 'repeat'}) end
  return reply({state = 'already-accepted'})
end
if r.sha ~= sha then return reply({state = 'other-order'}) end
local untl = tonumber(r['until'])
local out
if r.phase == 'reserved' and t > untl then return reply({state = 'reservation-expired'}) end
if r.phase == 'running' and t > untl then return reply({state = 'job-timed-out'}) end
if r.phase == 'reserved' then
  if status == 'accepted' then
    local limit = tonumber(r.max_job)
    if tonumber(ARGV[11]) < limit then limit = tonumber(ARGV[11]) end
    local u2 = t + limit
    redis.call('HSET', D .. 'r:' .. id, 'phase', 'running', 'until', u2)
    redis.call('ZADD', D .. 'rz', u2, id)
    redis.call('HINCRBY', D .. 'c:' .. treaty, 'acks_accepted', 1)
    count_fill(treaty, t, 'f')
    local dk = D .. 'd:' .. order
    if redis.call('EXPIRETIME', dk) < u2 + 60 then redis.call('EXPIREAT', dk, u2 + 60) end
    out = 'running'
  elseif status == 'rejected' then
    drop_reservation(id, r)
    release(r)
    count_fill(treaty, t, 'u')
    out = 'released'
  else
    return reply({state = 'not-running'})
  end
else
  if status == 'accepted' then return reply({state = 'repeat'}) end
  if status == 'rejected' then return reply({state = 'already-accepted'}) end
  drop_reservation(id, r)
  local held = tonumber(r.gpu)
  local used = held
  if ARGV[10] ~= '' and tonumber(ARGV[10]) < held then used = tonumber(ARGV[10]) end
  add(D .. 'day:' .. r.day .. '/' .. r.treaty_id, used - held)
  add(D .. 'fday:' .. r.day, used - held)
  ended(order, sha, '0')
  out = 'ended'
end
sweep()
seq = redis.call('INCR', P .. 'seq')
if t > hw or not old_hw then hw = t; redis.call('SET', P .. 'hw', t) end
return reply({state = out})
"#;

/// A treaty's usage now (swept first). ARGV 6: treaty.
const USAGE: &str = r#"
sweep()
local treaty = ARGV[6]
local today = day(t)
local c = hash(D .. 'c:' .. treaty) or {}
local reserved, running = 0, 0
for _, id in ipairs(redis.call('SMEMBERS', D .. 'ts:' .. treaty)) do
  local ph = redis.call('HGET', D .. 'r:' .. id, 'phase')
  if ph == 'running' then running = running + 1 elseif ph == 'reserved' then reserved = reserved + 1 end
end
return reply({usage = {
  gpu_milli_hours_today = dec(num(D .. 'day:' .. today .. '/' .. treaty)),
  reserved = dec(reserved), running = dec(running),
  reservations_expired = c.reservations_expired or '0',
  jobs_timed_out = c.jobs_timed_out or '0',
  acks_accepted = c.acks_accepted or '0',
  allowed = c.allowed or '0',
}})
"#;

/// A decision by nonce and digest, or by order id. ARGV 6..: mode ('nonce' or 'order'), key,
/// digest.
const LOOKUP: &str = r#"
local order = ARGV[7]
if ARGV[6] == 'nonce' then
  local n = hash(D .. 'n:' .. ARGV[7])
  if not n or n.digest ~= ARGV[8] then return reply({}) end
  order = n.order
end
local d = redis.call('HGET', D .. 'd:' .. order, 'json')
if not d then return reply({}) end
return reply({decision = d})
"#;

/// A treaty's fill over the window (swept first, so reservations past their time count as
/// unanswered). ARGV 6: treaty.
const FILL: &str = r#"
sweep()
local cur = t - t % 300
local f, u = 0, 0
for k = 0, 11 do
  local h = hash(D .. 'fill:' .. (cur - k * 300) .. '/' .. ARGV[6])
  if h then f = f + tonumber(h.f or '0'); u = u + tonumber(h.u or '0') end
end
return reply({stats = {filled = dec(f), unfilled = dec(u)}})
"#;

/// Operators' figures that a script can take without walking the state: the reservations
/// and jobs (bounded by the concurrency quotas). Nonces and decisions are counted by SCAN
/// from the client, in batches (a script must stay short: the server serves no one while it
/// runs).
const STATS: &str = r#"
local reserved, running = 0, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', D .. 'rz', t, '+inf')) do
  local ph = redis.call('HGET', D .. 'r:' .. id, 'phase')
  if ph == 'running' then running = running + 1 elseif ph == 'reserved' then reserved = reserved + 1 end
end
return reply({stats = {reserved = dec(reserved), running = dec(running)}})
"#;

/// An operator's clear: a new epoch (the old one's data is no longer read, all at once) and a
/// birth strictly after the old one and never before the latest change; the sequence number
/// rises (every agent sees a change). The old epoch's keys are unlinked after, by the client.
const CLEAR: &str = r#"
birth = next_birth(birth)
E = tostring(redis.call('INCR', P .. 'epoch'))
redis.call('SET', P .. 'birth', birth)
seq = redis.call('INCR', P .. 'seq')
return reply({state = 'cleared'})
"#;

/// What every script answers.
#[derive(Debug, Deserialize)]
struct Reply {
    t: i64,
    birth: i64,
    seq: u64,
    hw: i64,
    #[serde(default)]
    state: String,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    day: Option<String>,
    #[serde(default)]
    usage: Option<serde_json::Value>,
    #[serde(default)]
    stats: Option<serde_json::Value>,
    #[serde(default)]
    epoch: String,
}

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{PRELUDE}\n{body}"))
}

static SCRIPTS: std::sync::LazyLock<[redis::Script; 8]> = std::sync::LazyLock::new(|| {
    [
        script(READ),
        script(COMMIT),
        script(ACK),
        script(USAGE),
        script(LOOKUP),
        script(STATS),
        script(CLEAR),
        script(FILL),
    ]
});

/// The scripts, by their place in [`SCRIPTS`].
#[derive(Debug, Clone, Copy)]
enum Script {
    Read = 0,
    Commit = 1,
    Ack = 2,
    Usage = 3,
    Lookup = 4,
    Stats = 5,
    Clear = 6,
    Fill = 7,
}

/// How a step treats a birth that changed under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Births {
    /// The engine judged the call against the birth it knew: a new one fails the call.
    Judged,
    /// The opening learns the birth.
    Learning,
    /// An operator's command: any birth (a clear makes one).
    Operator,
}

/// Keys counted or unlinked per SCAN batch, and the most an operator's count examines.
const SCAN_BATCH: usize = 1_000;
const MAX_COUNTED: u64 = 50_000_000;

/// The epoch of a data key `PREFIX x<digits>:…`, if it is one.
fn epoch_of(prefix: &str, key: &str) -> Option<u64> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('x')?;
    let (digits, _) = rest.split_once(':')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `s` as a literal in a SCAN pattern.
fn glob_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisStore {
    /// Connects, refuses a Redis Cluster, and makes sure the store has a birth (set now, at
    /// the server's time, when the server has none).
    pub fn open(cfg: &RedisConfig) -> Result<RedisStore, StoreError> {
        // Named in errors and logs: never with a password someone put in it anyway.
        let shown = match cfg.url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}"),
                None => cfg.url.clone(),
            },
            None => cfg.url.clone(),
        };
        let mut info = redis::IntoConnectionInfo::into_connection_info(cfg.url.as_str())
            .map_err(|e| unavailable(&shown, format!("not a Redis URL: {e}")))?;
        if info.redis_settings().password().is_some() {
            return Err(unavailable(
                &shown,
                format!("the URL carries a password; give it in {PASSWORD_ENV} or a file instead"),
            ));
        }
        if let Some(p) = &cfg.password {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(|e| unavailable(&shown, e))?;
        let store = RedisStore {
            shown,
            prefix: cfg.prefix.clone(),
            client,
            timeout: cfg.timeout,
            pool: Mutex::new(Vec::new()),
            birth: AtomicI64::new(i64::MAX),
            high_water: AtomicI64::new(i64::MAX),
            seen: AtomicU64::new(0),
            pinned: AtomicI64::new(0),
            server: Mutex::new(String::new()),
            epoch: Mutex::new(String::new()),
        };
        // Reachable now: learn the birth. Down: the store is made anyway and decides nothing
        // (every call fails, readiness says why) until the server answers — never a local
        // fallback. A Cluster is refused either way, now or on the first connection.
        match store.step(
            Script::Lookup,
            Births::Learning,
            None,
            &["order".into(), String::new(), String::new()],
        ) {
            Ok(_) | Err(StoreError::Unavailable { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// Tests only: scripts take `t` as their time instead of the server's `TIME` (0: the
    /// server's). Not a flag, not in the configuration.
    #[doc(hidden)]
    pub fn pin_time(&self, t: i64) {
        self.pinned.store(t, Ordering::Relaxed);
    }

    fn connection(&self) -> Result<redis::Connection, StoreError> {
        if let Some(c) = self.pool.lock().ok().and_then(|mut p| p.pop()) {
            return Ok(c);
        }
        let c = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| unavailable(&self.shown, e))?;
        let mut c = c;
        c.set_read_timeout(Some(self.timeout))
            .and_then(|()| c.set_write_timeout(Some(self.timeout)))
            .map_err(|e| unavailable(&self.shown, e))?;
        // Every new connection: the server must be one the guarantees hold on, and which
        // process it is.
        let server: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut c)
            .map_err(|e| unavailable(&self.shown, e))?;
        let field = |text: &str, k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let version = field(&server, "redis_version:");
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let refuse = |reason: String| StoreError::Unsupported {
            store: self.shown.clone(),
            reason,
        };
        if major < 7 {
            return Err(refuse(format!(
                "Redis {version}: 7.0 or later is needed (EXPIRETIME; a script that fails half-way is not rolled back)"
            )));
        }
        let cluster: String = redis::cmd("INFO")
            .arg("cluster")
            .query(&mut c)
            .map_err(|e| unavailable(&self.shown, e))?;
        if cluster.contains("cluster_enabled:1") {
            return Err(refuse(
                "this is a Redis Cluster: not supported (one script must reach the federation-wide counters; docs/law.md § Scaling out)".into(),
            ));
        }
        let memory: String = redis::cmd("INFO")
            .arg("memory")
            .query(&mut c)
            .map_err(|e| unavailable(&self.shown, e))?;
        let policy = field(&memory, "maxmemory_policy:");
        if policy != "noeviction" {
            return Err(refuse(format!(
                "maxmemory-policy is {policy:?}: only noeviction keeps nonces and day counters from being evicted (replays, quotas reset); set maxmemory-policy noeviction"
            )));
        }
        if let Ok(mut s) = self.server.lock() {
            *s = field(&server, "run_id:");
        }
        Ok(c)
    }

    fn give_back(&self, c: redis::Connection) {
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < POOL {
                p.push(c);
            }
        }
    }

    /// Runs script `which` with the prelude's arguments and `args`, for a call the engine
    /// judged; a connection that failed is dropped, not reused.
    fn run(
        &self,
        which: Script,
        at: Option<Instant>,
        args: &[String],
    ) -> Result<Reply, StoreError> {
        self.step(which, Births::Judged, at, args)
    }

    /// Runs a script; `at` is the instant the engine judged with, when the call has one.
    fn step(
        &self,
        which: Script,
        births: Births,
        at: Option<Instant>,
        args: &[String],
    ) -> Result<Reply, StoreError> {
        let mut c = self.connection()?;
        let mut inv = SCRIPTS[which as usize].prepare_invoke();
        let server = self.server.lock().map(|s| s.clone()).unwrap_or_default();
        inv.arg(&self.prefix)
            .arg(match self.pinned.load(Ordering::Relaxed) {
                // A simulated fleet (crate::time::sim; never in a release build, where this is
                // always the server's `TIME`) runs each script at the instant its agent judged:
                // the processes share one machine's clock, and at a simulated rate every
                // millisecond of latency would otherwise read as seconds of skew.
                0 => crate::time::simulated_now().map_or(0, |n| at.unwrap_or(n).unix()),
                p => p,
            })
            .arg(self.seen.load(Ordering::Relaxed))
            .arg(match self.birth.load(Ordering::Relaxed) {
                i64::MAX => 0,
                b => b,
            })
            .arg(server);
        for a in args {
            inv.arg(a);
        }
        let text: String = inv
            .invoke(&mut c)
            .map_err(|e| unavailable(&self.shown, e))?;
        self.give_back(c);
        let r: Reply = crate::json::from_str(&text)
            .map_err(|e| unavailable(&self.shown, format!("a script answered {e}")))?;
        self.seen.fetch_max(r.seq, Ordering::Relaxed);
        self.high_water.store(r.hw, Ordering::Relaxed);
        let before = self.birth.swap(r.birth, Ordering::Relaxed);
        // A later epoch is an operator's clear (a lost state starts again at none).
        let cleared = self
            .epoch
            .lock()
            .map(|mut e| {
                let was = std::mem::replace(&mut *e, r.epoch.clone());
                r.epoch.parse::<u64>().unwrap_or(0) > was.parse::<u64>().unwrap_or(u64::MAX)
            })
            .unwrap_or(false);
        // Learnt or changed while a call ran: the engine judged it against a birth it did not
        // have (not decided; the next call is judged against the new one). Only the opening
        // may learn it quietly, and an operator's command may make one.
        let quiet = match births {
            Births::Judged => false,
            Births::Learning => before == i64::MAX,
            Births::Operator => true,
        };
        if before != r.birth && !quiet {
            let why = if before == i64::MAX {
                format!("the shared state answered for the first time (born at {}): this call is not decided, the next is", r.birth)
            } else if cleared {
                format!("an operator cleared the shared state (born again at {}): this call is not decided; orders issued before then plus the skew are refused", r.birth)
            } else {
                format!("the shared state was lost (born again at {}): orders issued before then plus the skew are refused", r.birth)
            };
            return Err(unavailable(&self.shown, why));
        }
        Ok(r)
    }

    fn lookup(&self, mode: &str, key: &str, digest: &str) -> Result<Option<Decision>, StoreError> {
        let r = self.run(
            Script::Lookup,
            None,
            &[mode.into(), key.into(), digest.into()],
        )?;
        self.decision(r.decision)
    }

    fn decision(&self, d: Option<String>) -> Result<Option<Decision>, StoreError> {
        d.map(|s| {
            crate::json::from_str(&s)
                .map_err(|e| unavailable(&self.shown, format!("a stored decision: {e}")))
        })
        .transpose()
    }
}

impl RedisStore {
    /// Walks the keys matching `pattern` by SCAN, a batch at a time (the server answers
    /// others between batches), calling `each` with the connection and the batch until it
    /// answers `false` or the walk ends; answers whether it ended.
    fn scan(
        &self,
        pattern: &str,
        mut each: impl FnMut(&mut redis::Connection, Vec<String>) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let mut c = self.connection()?;
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query(&mut c)
                .map_err(|e| unavailable(&self.shown, e))?;
            if !each(&mut c, keys)? {
                self.give_back(c);
                return Ok(false);
            }
            if next == 0 {
                self.give_back(c);
                return Ok(true);
            }
            cursor = next;
        }
    }

    /// Counts the keys of the current epoch whose kind is `kind` (`n` nonces, `d` decisions);
    /// stops at [`MAX_COUNTED`] examined (then `partial`).
    fn count(&self, epoch: &str, kind: &str) -> Result<(u64, bool), StoreError> {
        let pattern = format!("{}x{epoch}:{kind}:*", glob_literal(&self.prefix));
        let (mut n, mut examined) = (0u64, 0u64);
        let ended = self.scan(&pattern, |_, keys| {
            n += keys.len() as u64;
            examined += SCAN_BATCH as u64;
            Ok(examined < MAX_COUNTED)
        })?;
        Ok((n, !ended))
    }

    /// Unlinks every key of an epoch older than the current one (an operator's clear leaves
    /// the old one's; so does a clear that stopped half-way), in batches. The current epoch is
    /// read again before each batch, and only keys `PREFIX x<digits>:` with a smaller number
    /// go: a clear running meanwhile, or another federation's prefix that starts with this
    /// one, loses nothing. Answers how many went.
    pub fn unlink_old_epochs(&self) -> Result<u64, StoreError> {
        let pattern = format!("{}x*", glob_literal(&self.prefix));
        let mut gone = 0u64;
        self.scan(&pattern, |c, keys| {
            let current: u64 = redis::cmd("GET")
                .arg(format!("{}epoch", self.prefix))
                .query::<Option<String>>(c)
                .map_err(|e| unavailable(&self.shown, e))?
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            let old: Vec<&String> = keys
                .iter()
                .filter(|k| epoch_of(&self.prefix, k).is_some_and(|e| e < current))
                .collect();
            if !old.is_empty() {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(&old)
                    .query(c)
                    .map_err(|e| unavailable(&self.shown, e))?;
                gone += n;
            }
            Ok(true)
        })?;
        Ok(gone)
    }
}

fn nonce_id(k: &NonceKey) -> String {
    format!("{}/{}", k.keyid, k.nonce)
}

/// The figures a script answered (decimal strings), each required: a missing or malformed
/// one is a store error, never zero.
fn usage_of(v: &serde_json::Value, birth: i64) -> Option<Usage> {
    let n = |k: &str| v[k].as_str()?.parse::<u64>().ok();
    Some(Usage {
        store_birth: birth,
        treaty_gpu_milli_hours_today: n("treaty_gpu_milli_hours_today")?,
        treaty_concurrent_jobs: n("treaty_concurrent_jobs")?,
        federation_gpu_milli_hours_today: n("federation_gpu_milli_hours_today")?,
        federation_concurrent_jobs: n("federation_concurrent_jobs")?,
        requester_credits_today: n("requester_credits_today")?,
    })
}

impl LawStore for RedisStore {
    fn birth(&self) -> Instant {
        let b = self.birth.load(Ordering::Relaxed);
        Instant::from_unix(b).unwrap_or(Instant::MAX)
    }

    fn high_water(&self) -> Instant {
        Instant::from_unix(self.high_water.load(Ordering::Relaxed)).unwrap_or(Instant::MAX)
    }

    fn decide(
        &self,
        facts: &OrderFacts,
        now: Instant,
        timing: Timing,
        judge: &mut dyn FnMut(&Usage) -> Judged,
    ) -> Result<Recorded, StoreError> {
        let h = &facts.hold;
        let (nonce, digest) = (nonce_id(&facts.key), hex::encode(facts.digest));
        let base = [
            nonce.clone(),
            digest.clone(),
            h.order_id.clone(),
            h.treaty_id.clone(),
            h.requester.clone(),
        ];
        for _ in 0..MAX_TRIES {
            let r = self.run(Script::Read, Some(now), &base)?;
            match r.state.as_str() {
                "behind" => return Ok(Recorded::ClockBehind { high_water: r.hw }),
                "repeat" => {
                    if let Some(d) = self.decision(r.decision)? {
                        return Ok(Recorded::Repeat(d));
                    }
                    continue;
                }
                "replayed" => {
                    return Ok(Recorded::Replayed {
                        original_order: r.order.unwrap_or_default(),
                    })
                }
                "taken" => return Ok(Recorded::OrderIdTaken),
                "new" => {}
                other => {
                    return Err(unavailable(
                        &self.shown,
                        format!("a script answered {other:?}"),
                    ))
                }
            }
            // The order's times were judged on this agent's clock; its nonce expires on the
            // server's. Apart by more than the tolerance, a nonce could be forgotten while
            // this agent still takes its order for valid: not decided.
            if (now.unix() - r.t).abs() > CLOCK_TOLERANCE {
                return Err(unavailable(
                    &self.shown,
                    format!(
                        "this agent's clock ({}) and the shared state's server ({}) differ by more than {CLOCK_TOLERANCE} s: fix the clocks (NTP)",
                        now.unix(),
                        r.t
                    ),
                ));
            }
            let u = usage_of(
                r.usage.as_ref().unwrap_or(&serde_json::Value::Null),
                r.birth,
            )
            .ok_or_else(|| unavailable(&self.shown, "a script answered malformed figures"))?;
            let Judged { decision, holds } = judge(&u);
            let json = serde_json::to_string(&decision)
                .map_err(|e| unavailable(&self.shown, e.to_string()))?;
            let mut args: Vec<String> = base.to_vec();
            args.extend([
                facts.forget_after.to_string(),
                if decision.allowed { "1" } else { "0" }.into(),
                json,
                h.gpu_milli_hours.to_string(),
                h.credits.to_string(),
                h.order_sha256.clone(),
                h.max_job_seconds.min(timing.max_job_seconds).to_string(),
                timing.reservation_ttl_seconds.to_string(),
                u.treaty_gpu_milli_hours_today.to_string(),
                u.treaty_concurrent_jobs.to_string(),
                u.federation_gpu_milli_hours_today.to_string(),
                u.federation_concurrent_jobs.to_string(),
                u.requester_credits_today.to_string(),
                r.day.unwrap_or_default(),
                r.birth.to_string(),
            ]);
            // Where the judgement stands (an allowance given without ceilings stands only at
            // the very figures judged).
            let (mode, ceilings) = match (decision.allowed, holds) {
                (_, Holds::WhileAdmitted(c)) => ("admit", Some(c)),
                (_, Holds::WhileRefused(c)) => ("refuse", Some(c)),
                (false, Holds::Regardless) => ("always", None),
                (true, Holds::Regardless) => ("exact", None),
            };
            args.push(mode.into());
            let ceil = |c: Ceiling| match c {
                Ceiling::Unlimited => String::new(),
                Ceiling::AtMost(n) => n.to_string(),
                Ceiling::Never => "never".into(),
            };
            match ceilings {
                Some(c) => {
                    args.extend([
                        ceil(c.treaty_gpu_milli_hours_today),
                        ceil(c.treaty_concurrent_jobs),
                        ceil(c.federation_gpu_milli_hours_today),
                        ceil(c.federation_concurrent_jobs),
                        ceil(c.requester_credits_today),
                    ]);
                    // Which figures were over their ceilings when judged.
                    let over = |c: Ceiling, used: u64| if c.admits(used) { "0" } else { "1" };
                    args.extend(
                        [
                            over(
                                c.treaty_gpu_milli_hours_today,
                                u.treaty_gpu_milli_hours_today,
                            ),
                            over(c.treaty_concurrent_jobs, u.treaty_concurrent_jobs),
                            over(
                                c.federation_gpu_milli_hours_today,
                                u.federation_gpu_milli_hours_today,
                            ),
                            over(c.federation_concurrent_jobs, u.federation_concurrent_jobs),
                            over(c.requester_credits_today, u.requester_credits_today),
                        ]
                        .map(String::from),
                    );
                }
                None => args.extend(std::iter::repeat_n(String::new(), 10)),
            }
            let c = self.run(Script::Commit, Some(now), &args)?;
            match c.state.as_str() {
                "first" => return Ok(Recorded::First(decision)),
                "behind" => return Ok(Recorded::ClockBehind { high_water: c.hw }),
                "reborn" => {
                    return Err(unavailable(
                        &self.shown,
                        "the shared state was lost while this order was judged: not decided",
                    ))
                }
                // Another agent changed the nonce, the order id or the usage meanwhile.
                "conflict" => continue,
                other => {
                    return Err(unavailable(
                        &self.shown,
                        format!("the commit script answered {other:?}"),
                    ))
                }
            }
        }
        Err(StoreError::Contended { tries: MAX_TRIES })
    }

    fn ack(
        &self,
        ack: &AckFacts,
        now: Instant,
        timing: Timing,
    ) -> Result<Result<AckOutcome, AckRefusal>, StoreError> {
        let status = match ack.status {
            AckStatus::Accepted => "accepted",
            AckStatus::Rejected => "rejected",
            AckStatus::Completed => "completed",
            AckStatus::Failed => "failed",
        };
        let r = self.run(
            Script::Ack,
            Some(now),
            &[
                ack.treaty_id.into(),
                ack.order_id.into(),
                ack.order_sha256.into(),
                status.into(),
                ack.used_gpu_milli_hours
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
                timing.max_job_seconds.to_string(),
            ],
        )?;
        let order_id = || ack.order_id.to_owned();
        Ok(match r.state.as_str() {
            "running" => Ok(AckOutcome::Running),
            "released" => Ok(AckOutcome::Released),
            "ended" => Ok(AckOutcome::Ended),
            "repeat" => Ok(AckOutcome::Repeat),
            "behind" => Err(AckRefusal::ClockBehind { high_water: r.hw }),
            "reborn" => {
                return Err(unavailable(
                    &self.shown,
                    "the shared state was lost: the ACK is not applied",
                ))
            }
            "unknown-order" => Err(AckRefusal::UnknownOrder {
                treaty_id: ack.treaty_id.into(),
                order_id: order_id(),
            }),
            "reservation-expired" => Err(AckRefusal::ReservationExpired {
                order_id: order_id(),
            }),
            "other-order" => Err(AckRefusal::OtherOrder {
                order_id: order_id(),
            }),
            "job-timed-out" => Err(AckRefusal::JobTimedOut {
                order_id: order_id(),
            }),
            "already-accepted" => Err(AckRefusal::AlreadyAccepted {
                order_id: order_id(),
            }),
            "not-running" => Err(AckRefusal::NotRunning {
                order_id: order_id(),
            }),
            other => {
                return Err(unavailable(
                    &self.shown,
                    format!("a script answered {other:?}"),
                ))
            }
        })
    }

    fn recorded(&self, key: &NonceKey, digest: &[u8; 32]) -> Result<Option<Decision>, StoreError> {
        self.lookup("nonce", &nonce_id(key), &hex::encode(digest))
    }

    fn order(&self, order_id: &str) -> Result<Option<Decision>, StoreError> {
        self.lookup("order", order_id, "")
    }

    fn healthy(&self) -> Result<(), String> {
        let mut c = self.connection().map_err(|e| e.to_string())?;
        let pong: Result<String, _> = redis::cmd("PING").query(&mut c);
        match pong {
            Ok(_) => {
                self.give_back(c);
                Ok(())
            }
            Err(e) => Err(unavailable(&self.shown, e).to_string()),
        }
    }

    fn usage(&self, treaty_id: &str, now: Instant) -> Result<TreatyUsage, StoreError> {
        let r = self.run(Script::Usage, Some(now), &[treaty_id.into()])?;
        let v = r.usage.unwrap_or_default();
        let bad = || unavailable(&self.shown, "a script answered malformed figures");
        let n = |k: &str| -> Result<u64, StoreError> {
            v[k].as_str().and_then(|x| x.parse().ok()).ok_or_else(bad)
        };
        Ok(TreatyUsage {
            gpu_milli_hours_today: n("gpu_milli_hours_today")?,
            reserved: n("reserved")?,
            running: n("running")?,
            reservations_expired: n("reservations_expired")?,
            jobs_timed_out: n("jobs_timed_out")?,
            acks_accepted: n("acks_accepted")?,
            allowed: n("allowed")?,
        })
    }

    fn fill(&self, treaty_id: &str, now: Instant) -> Result<Fill, StoreError> {
        let r = self.run(Script::Fill, Some(now), &[treaty_id.into()])?;
        let v = r.stats.unwrap_or_default();
        let n = |k: &str| v[k].as_str().and_then(|x| x.parse::<u64>().ok());
        match (n("filled"), n("unfilled")) {
            (Some(filled), Some(unfilled)) => Ok(Fill { filled, unfilled }),
            _ => Err(unavailable(
                &self.shown,
                "a script answered malformed figures",
            )),
        }
    }

    fn stats(&self, now: Instant) -> Result<StateStats, StoreError> {
        let r = self.step(Script::Stats, Births::Operator, Some(now), &[])?;
        let v = r.stats.unwrap_or_default();
        let n = |k: &str| v[k].as_str().and_then(|x| x.parse::<u64>().ok());
        let (Some(reserved), Some(running)) = (n("reserved"), n("running")) else {
            return Err(unavailable(
                &self.shown,
                "a script answered malformed figures",
            ));
        };
        let (nonces, p1) = self.count(&r.epoch, "n")?;
        let (decisions, p2) = self.count(&r.epoch, "d")?;
        Ok(StateStats {
            birth: r.birth,
            high_water: r.hw,
            seq: r.seq,
            nonces,
            decisions,
            reserved,
            running,
            partial: p1 || p2,
        })
    }

    /// One script starts a new epoch and moves the birth (see the CLEAR script); the old epoch's
    /// keys are unlinked after, in batches (a failure there leaves them unread, and the next
    /// clear unlinks them).
    fn clear(&self, now: Instant) -> Result<Instant, StoreError> {
        let r = self.step(Script::Clear, Births::Operator, Some(now), &[])?;
        if r.state != "cleared" {
            return Err(unavailable(
                &self.shown,
                format!("the clear script answered {:?}", r.state),
            ));
        }
        // The clear is done (for the whole fleet) once the script ran: removing the old
        // epoch's keys is housekeeping, and a failure there is said, not the clear's.
        if let Err(e) = self.unlink_old_epochs() {
            tracing::warn!("{}: the cleared state's old keys were not all removed ({e}); they are never read, and the next clear removes them", self.shown);
        }
        Instant::from_unix(r.birth)
            .ok_or_else(|| unavailable(&self.shown, format!("a birth out of range: {}", r.birth)))
    }
}

/// Nonces are kept [`CLOCK_TOLERANCE`] past their orders' validity, like the embedded store.
const _: () = assert!(CLOCK_TOLERANCE == 2);

#[cfg(test)]
mod tests {
    //! Against a real `redis-server` each test starts on loopback (installed by .ci/setup; a
    //! missing server fails the test, it never skips).
    use super::*;
    use crate::law::decide::Ceilings;
    use crate::law::store::{Hold, MemStore};

    /// A `redis-server` on a free loopback port, without persistence; killed on drop.
    struct Server {
        child: std::process::Child,
        port: u16,
    }

    impl Server {
        fn start() -> Server {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("port")
                .port();
            Server::on(port)
        }

        fn on(port: u16) -> Server {
            let child = std::process::Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--port", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server (installed by .ci/setup) must be on PATH");
            // Owned at once, so a server that never listens is still killed and reaped.
            let server = Server { child, port };
            for _ in 0..200 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!("redis-server never listened on {port}");
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/0", self.port)
        }

        fn cli(&self, args: &[&str]) {
            let c = redis::Client::open(self.url()).expect("client");
            let mut con = c.get_connection().expect("connection");
            let mut cmd = redis::cmd(args[0]);
            for a in &args[1..] {
                cmd.arg(*a);
            }
            let _: redis::Value = cmd.query(&mut con).expect("command");
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn store(s: &Server, prefix: &str) -> RedisStore {
        RedisStore::open(&RedisConfig {
            url: s.url(),
            password: None,
            timeout: Duration::from_millis(300),
            prefix: prefix.into(),
        })
        .expect("open")
    }

    const T0: i64 = 1_900_000_000;

    fn at(t: i64) -> Instant {
        Instant::from_unix(t).expect("time")
    }

    fn facts(order: u32, nonce: u32, t: i64) -> OrderFacts {
        OrderFacts {
            key: NonceKey {
                keyid: "k".into(),
                nonce: format!("n{nonce}"),
            },
            digest: [u8::try_from(order % 250).unwrap_or(0); 32],
            hold: Hold {
                order_id: format!("o{order}"),
                treaty_id: if order.is_multiple_of(3) { "A" } else { "B" }.into(),
                requester: format!("r{}", order % 2),
                gpu_milli_hours: 100 + u64::from(order % 7),
                credits: 10,
                day: super::super::store::day(at(t)),
                order_sha256: hex::encode([u8::try_from(order % 250).unwrap_or(0); 32]),
                max_job_seconds: 300,
            },
            forget_after: T0 + 1_000_000,
        }
    }

    fn decision(f: &OrderFacts, allowed: bool) -> Decision {
        Decision {
            order_id: f.hold.order_id.clone(),
            treaty_id: f.hold.treaty_id.clone(),
            requester: f.hold.requester.clone(),
            allowed,
            denials: vec![],
            decided_at: String::new(),
            commit: "c".into(),
            root_version: 1,
            snapshot_version: None,
        }
    }

    /// A quota-like judge: allow while the treaty has fewer than 3 jobs and under 2,000
    /// milli-GPU-hours today.
    fn judge(f: &OrderFacts) -> impl FnMut(&Usage) -> Judged + '_ {
        move |u: &Usage| {
            let c = Ceilings {
                treaty_gpu_milli_hours_today: Ceiling::AtMost(1_999),
                treaty_concurrent_jobs: Ceiling::AtMost(2),
                federation_gpu_milli_hours_today: Ceiling::Unlimited,
                federation_concurrent_jobs: Ceiling::Unlimited,
                requester_credits_today: Ceiling::Unlimited,
            };
            let allowed = c.admit(u);
            Judged {
                decision: decision(f, allowed),
                holds: if allowed {
                    Holds::WhileAdmitted(c)
                } else {
                    Holds::WhileRefused(c)
                },
            }
        }
    }

    /// An operator's clear: everything of the old epoch goes at once (and its keys after),
    /// the birth moves strictly forward and never before the latest change, exactly as the
    /// embedded store's; an agent that decided before learns it on its next call (which is
    /// not decided) and then decides under the new birth.
    #[test]
    fn an_operators_clear_forgets_everything_and_moves_the_birth() {
        let server = Server::start();
        let agent = store(&server, "clr:");
        let op = store(&server, "clr:");
        let mem = MemStore::new(at(T0 - 10));
        let timing = Timing {
            reservation_ttl_seconds: 30,
            max_job_seconds: 120,
        };
        let t = T0 + 50;
        agent.pin_time(t);
        op.pin_time(t);
        for i in 0..12 {
            let f = facts(i, i, t);
            let a = agent
                .decide(&f, at(t), timing, &mut judge(&f))
                .expect("redis");
            let b = mem.decide(&f, at(t), timing, &mut judge(&f)).expect("mem");
            assert_eq!(a, b, "order {i}");
        }
        let (rs, ms) = (
            op.stats(at(t)).expect("stats"),
            mem.stats(at(t)).expect("mem"),
        );
        assert_eq!((rs.nonces, rs.decisions), (12, 12));
        assert_eq!(
            (
                rs.nonces,
                rs.decisions,
                rs.reserved,
                rs.running,
                rs.high_water
            ),
            (
                ms.nonces,
                ms.decisions,
                ms.reserved,
                ms.running,
                ms.high_water
            )
        );
        assert!(rs.reserved > 0, "the judge allowed some: {rs:?}");
        // A clear at a time behind the latest change still births after it.
        op.pin_time(t - 1);
        let birth = op.clear(at(t - 1)).expect("clear");
        let mb = mem.clear(at(t - 1)).expect("mem clear");
        // Past the latest change by the 2 s an agent's clock may lead the server's (an order
        // decided then was issued at most that much plus the skew later); never before the
        // embedded store's.
        assert!(
            birth.unix() > rs.birth && birth.unix() >= rs.high_water + CLOCK_TOLERANCE,
            "{birth:?} {rs:?}"
        );
        assert!(birth >= mb);
        let after = op.stats(at(t)).expect("stats");
        assert_eq!(
            (
                after.nonces,
                after.decisions,
                after.reserved,
                after.running,
                after.birth
            ),
            (0, 0, 0, 0, birth.unix())
        );
        assert!(after.seq > rs.seq, "the sequence number rises: {after:?}");
        // Only the store's own meta keys are left (birth, seq, server, hw, epoch).
        let c = redis::Client::open(server.url()).expect("client");
        let mut con = c.get_connection().expect("connection");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("clr:*")
            .query(&mut con)
            .expect("keys");
        assert!(keys.iter().all(|k| !k.starts_with("clr:x")), "{keys:?}");
        // The agent that decided before: its next call is not decided, and says why.
        let f = facts(0, 0, t);
        match agent.decide(&f, at(t), timing, &mut judge(&f)) {
            Err(StoreError::Unavailable { reason, .. }) => {
                assert!(reason.contains("an operator cleared"), "{reason}")
            }
            other => panic!("decided across a clear: {other:?}"),
        }
        // Then it decides under the new birth (the engine refuses this old order as
        // state-too-new: it was issued before the birth).
        let mut seen = 0;
        let r = agent
            .decide(&f, at(t), timing, &mut |u: &Usage| {
                seen = u.store_birth;
                Judged::regardless(decision(&f, false))
            })
            .expect("decides");
        assert!(matches!(r, Recorded::First(_)), "{r:?}");
        assert_eq!(seen, birth.unix());
        // A second clear moves it again (strictly).
        let again = op.clear(at(t)).expect("clear");
        assert!(again > birth);
        // A clear's unlinking never takes the current epoch's keys (a clear that ran meanwhile
        // made them) nor another prefix that starts with this one.
        let f = facts(50, 50, t);
        agent
            .decide(&f, at(t), timing, &mut judge(&f))
            .expect_err("notices the clear");
        assert!(matches!(
            agent.decide(&f, at(t), timing, &mut judge(&f)),
            Ok(Recorded::First(_))
        ));
        server.cli(&["SET", "clr:xfed:n:keep", "1"]);
        op.unlink_old_epochs().expect("unlink");
        let s = op.stats(at(t)).expect("stats");
        assert_eq!((s.nonces, s.decisions), (1, 1), "{s:?}");
        let kept: Option<String> = redis::cmd("GET")
            .arg("clr:xfed:n:keep")
            .query(&mut con)
            .expect("get");
        assert_eq!(kept.as_deref(), Some("1"));
    }

    /// The scripts are the embedded state machine's transitions: the same decisions, ACKs,
    /// clock steps (reservations expiring, jobs timing out, days turning) give the same
    /// answers and the same usage as the in-memory store.
    #[test]
    fn the_scripts_make_the_same_transitions_as_the_embedded_store() {
        let server = Server::start();
        let r = store(&server, "diff:");
        let m = MemStore::new(at(T0 - 10));
        let timing = Timing {
            reservation_ttl_seconds: 30,
            max_job_seconds: 120,
        };
        let mut t = T0;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut kinds = [0usize; 4];
        let mut fills = 0;
        let mut acks = std::collections::BTreeMap::<String, usize>::new();
        let mut allowed: Vec<u32> = Vec::new();
        for step in 0..600u32 {
            t += i64::try_from(next(20)).unwrap_or(0) + if step % 97 == 0 { 40_000 } else { 0 };
            r.pin_time(t);
            let order = u32::try_from(next(60)).unwrap_or(0);
            match next(3) {
                0 => {
                    // A third of the time the order's own nonce (a resubmission, if it was
                    // decided before), else any (a replay, if that nonce was used).
                    let nonce = if next(3) == 0 {
                        order + 1_000
                    } else {
                        u32::try_from(next(70)).unwrap_or(0)
                    };
                    let f = facts(order, nonce, t);
                    let a = r.decide(&f, at(t), timing, &mut judge(&f)).expect("redis");
                    let b = m.decide(&f, at(t), timing, &mut judge(&f)).expect("mem");
                    assert_eq!(format!("{a:?}"), format!("{b:?}"), "step {step}");
                    if matches!(&a, Recorded::First(d) if d.allowed) {
                        allowed.push(order);
                    }
                    kinds[match a {
                        Recorded::First(_) => 0,
                        Recorded::Repeat(_) => 1,
                        Recorded::Replayed { .. } => 2,
                        _ => 3,
                    }] += 1;
                }
                _ => {
                    // Mostly an order that was allowed (so jobs start and end), sometimes any.
                    let order = match allowed.len() {
                        0 => order,
                        n if next(5) > 0 => {
                            allowed[n - 1 - usize::try_from(next(n.min(4) as u64)).unwrap_or(0)]
                        }
                        _ => order,
                    };
                    let f = facts(order, 0, t);
                    let status = [
                        AckStatus::Accepted,
                        AckStatus::Rejected,
                        AckStatus::Completed,
                        AckStatus::Failed,
                    ][usize::try_from(next(4)).unwrap_or(0)];
                    let ack = AckFacts {
                        treaty_id: &f.hold.treaty_id,
                        order_id: &f.hold.order_id,
                        order_sha256: &f.hold.order_sha256,
                        status,
                        used_gpu_milli_hours: Some(next(200)),
                    };
                    let a = r.ack(&ack, at(t), timing).expect("redis");
                    let b = m.ack(&ack, at(t), timing).expect("mem");
                    assert_eq!(format!("{a:?}"), format!("{b:?}"), "step {step}");
                    let k = format!("{a:?}");
                    *acks
                        .entry(
                            k.split([' ', '(', ')'])
                                .filter(|w| !w.is_empty())
                                .take(2)
                                .collect::<Vec<_>>()
                                .join(" "),
                        )
                        .or_default() += 1;
                }
            }
            for treaty in ["A", "B"] {
                assert_eq!(
                    r.usage(treaty, at(t)).expect("redis"),
                    m.usage(treaty, at(t)).expect("mem"),
                    "step {step}, treaty {treaty}"
                );
                let f = r.fill(treaty, at(t)).expect("redis");
                assert_eq!(
                    f,
                    m.fill(treaty, at(t)).expect("mem"),
                    "step {step}, fill of {treaty}"
                );
                fills += f.filled.min(f.unfilled);
            }
        }
        // The fill window held answers of both kinds at once, many times.
        assert!(fills > 20, "{fills}");
        // The sequence did reach every kind of answer.
        assert!(kinds.iter().take(3).all(|k| *k > 5), "{kinds:?}");
        for outcome in [
            "Ok Running",
            "Ok Released",
            "Ok Ended",
            "Ok Repeat",
            "Err ReservationExpired",
            "Err JobTimedOut",
            "Err UnknownOrder",
        ] {
            assert!(
                acks.get(outcome).is_some_and(|n| *n >= 3),
                "{outcome}: {acks:?}"
            );
        }
    }

    fn order_facts(order: u32) -> OrderFacts {
        let mut f = facts(order, order, T0);
        f.hold.treaty_id = "A".into();
        f
    }

    /// Four agents' worth of stores on one Redis, each nonce sent to two of them at once, a
    /// quota of 25 concurrent jobs: exactly one first decision per nonce, and no more allowed
    /// than the quota, whatever the interleaving.
    /// Both ways a judgement is committed: with ceilings (the quota re-checked at commit) and
    /// without (the figures must be the very ones judged).
    #[test]
    fn agents_sharing_one_redis_never_both_take_a_nonce_or_overspend_a_quota() {
        let server = Server::start();
        for ceilings in [true, false] {
            share_one_redis(&server, ceilings);
        }
    }

    fn share_one_redis(server: &Server, with_ceilings: bool) {
        let prefix = format!("fleet{with_ceilings}:");
        let stores: Vec<std::sync::Arc<RedisStore>> = (0..4)
            .map(|_| {
                let s = store(server, &prefix);
                s.pin_time(T0);
                std::sync::Arc::new(s)
            })
            .collect();
        let timing = Timing {
            reservation_ttl_seconds: 3_600,
            max_job_seconds: 3_600,
        };
        let firsts = std::sync::atomic::AtomicUsize::new(0);
        let allowed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|sc| {
            for w in 0..8usize {
                let (stores, firsts, allowed) = (&stores, &firsts, &allowed);
                sc.spawn(move || {
                    // Worker w sends nonces w/2, w/2 + 4, …: two workers per nonce, on two
                    // different stores.
                    for k in 0..40u32 {
                        let order = u32::try_from(w / 2).unwrap_or(0) + 4 * k;
                        let f = order_facts(order);
                        let s = &stores[(w + usize::try_from(k).unwrap_or(0)) % 4];
                        let mut judge = |u: &Usage| {
                            let c = Ceilings {
                                treaty_gpu_milli_hours_today: Ceiling::Unlimited,
                                treaty_concurrent_jobs: Ceiling::AtMost(24),
                                federation_gpu_milli_hours_today: Ceiling::Unlimited,
                                federation_concurrent_jobs: Ceiling::Unlimited,
                                requester_credits_today: Ceiling::Unlimited,
                            };
                            let d = decision(&f, c.admit(u));
                            let holds = match (with_ceilings, d.allowed) {
                                (false, _) => Holds::Regardless,
                                (true, true) => Holds::WhileAdmitted(c),
                                (true, false) => Holds::WhileRefused(c),
                            };
                            Judged { decision: d, holds }
                        };
                        match s.decide(&f, at(T0), timing, &mut judge) {
                            Ok(Recorded::First(d)) => {
                                firsts.fetch_add(1, Ordering::Relaxed);
                                if d.allowed {
                                    allowed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Ok(Recorded::Repeat(_)) => {}
                            other => panic!("order {order}: {other:?}"),
                        }
                    }
                });
            }
        });
        assert_eq!(
            firsts.load(Ordering::Relaxed),
            160,
            "one first decision per nonce"
        );
        assert_eq!(allowed.load(Ordering::Relaxed), 25, "exactly the quota");
        let u = stores[0].usage("A", at(T0)).expect("usage");
        assert_eq!((u.allowed, u.reserved), (25, 25));
    }

    /// State lost on the server — flushed, or writes lost to a failover (its sequence number
    /// behind what an agent saw) — moves the birth forward; the call that notices decides
    /// nothing, the next one decides under the new birth.
    #[test]
    fn lost_shared_state_moves_the_birth_and_the_noticing_call_decides_nothing() {
        let server = Server::start();
        let s = store(&server, "birth:");
        let timing = Timing {
            reservation_ttl_seconds: 60,
            max_job_seconds: 60,
        };
        s.pin_time(T0);
        let born = s.birth();
        let f = order_facts(1);
        assert!(matches!(
            s.decide(&f, at(T0), timing, &mut judge(&f)),
            Ok(Recorded::First(_))
        ));
        // Flushed.
        server.cli(&["FLUSHALL"]);
        s.pin_time(T0 + 100);
        let f2 = order_facts(2);
        let e = s.decide(&f2, at(T0 + 100), timing, &mut judge(&f2));
        assert!(
            matches!(&e, Err(StoreError::Unavailable { reason, .. }) if reason.contains("lost")),
            "{e:?}"
        );
        // Born again past now by the 2 s an agent's clock may lead the server's.
        assert_eq!(s.birth(), at(T0 + 100 + CLOCK_TOLERANCE));
        assert!(s.birth() > born);
        assert!(matches!(
            s.decide(&f2, at(T0 + 100), timing, &mut judge(&f2)),
            Ok(Recorded::First(_))
        ));
        // Another server process (restarted with its data, or a replica promoted): its run_id
        // differs from the one the state was written under.
        server.cli(&["SET", "birth:server", "another-process"]);
        s.pin_time(T0 + 150);
        let f5 = order_facts(5);
        let e = s.decide(&f5, at(T0 + 150), timing, &mut judge(&f5));
        assert!(matches!(&e, Err(StoreError::Unavailable { .. })), "{e:?}");
        assert_eq!(s.birth(), at(T0 + 150 + CLOCK_TOLERANCE));
        // Writes lost to a failover: the sequence number went back.
        server.cli(&["SET", "birth:seq", "0"]);
        s.pin_time(T0 + 200);
        let f3 = order_facts(3);
        let e = s.decide(&f3, at(T0 + 200), timing, &mut judge(&f3));
        assert!(matches!(&e, Err(StoreError::Unavailable { .. })), "{e:?}");
        assert_eq!(s.birth(), at(T0 + 200 + CLOCK_TOLERANCE));
        // The honest twin: nothing lost, the birth stays.
        let f4 = order_facts(4);
        assert!(matches!(
            s.decide(&f4, at(T0 + 200), timing, &mut judge(&f4)),
            Ok(Recorded::First(_))
        ));
        assert_eq!(s.birth(), at(T0 + 200 + CLOCK_TOLERANCE));
    }

    /// Redis down at the start: no store (never a local fallback). Lost mid-run: each call
    /// fails within the timeout and health says so; back (empty, no persistence): decisions
    /// resume under a new birth. Paused (`CLIENT PAUSE`): a call fails within its timeout.
    #[test]
    fn redis_down_lost_or_paused_fails_closed_within_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let cfg = RedisConfig {
            url: format!("redis://127.0.0.1:{port}/0"),
            password: None,
            timeout: Duration::from_millis(300),
            prefix: "down:".into(),
        };
        let timing = Timing {
            reservation_ttl_seconds: 60,
            max_job_seconds: 60,
        };
        // Down at the start: a store that decides nothing and is not healthy.
        let s = RedisStore::open(&cfg).expect("made without the server");
        s.pin_time(T0);
        assert!(s.healthy().is_err());
        let f = order_facts(1);
        let e = s.decide(&f, at(T0), timing, &mut judge(&f));
        assert!(matches!(&e, Err(StoreError::Unavailable { .. })), "{e:?}");
        let server = Server::on(port);
        assert!(s.healthy().is_ok());
        // The first answer teaches the birth: that call decides nothing, the next decides.
        let e = s.decide(&f, at(T0), timing, &mut judge(&f));
        assert!(
            matches!(&e, Err(StoreError::Unavailable { reason, .. }) if reason.contains("first time")),
            "{e:?}"
        );
        assert!(matches!(
            s.decide(&f, at(T0), timing, &mut judge(&f)),
            Ok(Recorded::First(_))
        ));
        assert!(s.healthy().is_ok());
        drop(server);
        let started = std::time::Instant::now();
        let f2 = order_facts(2);
        assert!(s.decide(&f2, at(T0), timing, &mut judge(&f2)).is_err());
        assert!(s.healthy().is_err());
        assert!(started.elapsed() < Duration::from_secs(3));

        let server = Server::on(port);
        // The first call sees the new (empty) server's birth and decides nothing.
        assert!(s.decide(&f2, at(T0), timing, &mut judge(&f2)).is_err());
        let r = s.decide(&f2, at(T0), timing, &mut judge(&f2));
        assert!(matches!(r, Ok(Recorded::First(_))), "{r:?}");

        server.cli(&["CLIENT", "PAUSE", "3000", "ALL"]);
        let started = std::time::Instant::now();
        let f3 = order_facts(3);
        let e = s.decide(&f3, at(T0), timing, &mut judge(&f3));
        assert!(matches!(&e, Err(StoreError::Unavailable { .. })), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            started.elapsed()
        );
    }

    /// A password in the URL is refused (it would be a flag); a Redis Cluster is refused.
    #[test]
    fn a_password_in_the_url_is_refused() {
        let e = RedisStore::open(&RedisConfig {
            url: "redis://:secret@127.0.0.1:1/0".into(),
            password: None,
            timeout: Duration::from_millis(100),
            prefix: PREFIX.into(),
        })
        .err()
        .expect("refused");
        assert!(e.to_string().contains(PASSWORD_ENV), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    /// The order's times are judged on the agent's clock, its nonce expires on the server's:
    /// apart by more than the tolerance, nothing is decided (its honest twin: within it).
    #[test]
    fn an_agent_clock_apart_from_the_server_decides_nothing() {
        let server = Server::start();
        let s = store(&server, "clock:");
        let timing = Timing {
            reservation_ttl_seconds: 60,
            max_job_seconds: 60,
        };
        s.pin_time(T0 + 10);
        let f = order_facts(1);
        let e = s.decide(&f, at(T0), timing, &mut judge(&f));
        assert!(
            matches!(&e, Err(StoreError::Unavailable { reason, .. }) if reason.contains("clock")),
            "{e:?}"
        );
        assert!(matches!(
            s.decide(&f, at(T0 + 9), timing, &mut judge(&f)),
            Ok(Recorded::First(_))
        ));
    }

    /// A server that may evict keys (nonces, day counters) is refused at the start, with the
    /// setting to change; its honest twin (noeviction, the default) opens.
    #[test]
    fn a_server_that_may_evict_keys_is_refused() {
        let server = Server::start();
        server.cli(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]);
        let e = RedisStore::open(&RedisConfig {
            url: server.url(),
            password: None,
            timeout: Duration::from_millis(300),
            prefix: "evict:".into(),
        })
        .err()
        .expect("refused");
        assert!(
            matches!(&e, StoreError::Unsupported { reason, .. } if reason.contains("noeviction")),
            "{e}"
        );
        server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
        let _ = store(&server, "evict:");
    }
}
