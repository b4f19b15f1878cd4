#include "fetch/fetch_plan.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <sstream>

#include "crypto/crc32.hpp"

namespace fusproxy::server::fetch {

// --- present_map ----------------------------------------------------------------------------

bool present_map::insert(std::uint64_t begin, std::uint64_t end, std::uint32_t crc) {
  if (begin >= end || end > total_) return false;
  auto next = runs_.lower_bound(begin);
  if (next != runs_.end() && next->first < end) return false;
  auto prev = next == runs_.begin() ? runs_.end() : std::prev(next);
  if (prev != runs_.end() && prev->second.end > begin) return false;

  present_ += end - begin;
  std::uint64_t run_begin = begin;
  run merged{end, crc};
  if (prev != runs_.end() && prev->second.end == begin) {
    merged.crc = crypto::crc32_combine(prev->second.crc, crc, end - begin);
    run_begin = prev->first;
    runs_.erase(prev);
  }
  if (next != runs_.end() && next->first == end) {
    merged.crc = crypto::crc32_combine(merged.crc, next->second.crc, next->second.end - end);
    merged.end = next->second.end;
    runs_.erase(next);
  }
  runs_.emplace(run_begin, merged);
  return true;
}

std::uint64_t present_map::present_until(std::uint64_t pos) const {
  auto it = runs_.upper_bound(pos);
  if (it == runs_.begin()) return pos;
  --it;
  return it->second.end > pos ? it->second.end : pos;
}

bool present_map::contains(std::uint64_t begin, std::uint64_t end) const {
  return begin >= end || present_until(begin) >= end;
}

std::uint64_t present_map::first_missing(std::uint64_t pos) const {
  if (pos >= total_) return total_;
  return present_until(pos);
}

std::uint64_t present_map::next_present(std::uint64_t pos) const {
  auto it = runs_.upper_bound(pos);
  return it == runs_.end() ? total_ : it->first;
}

std::optional<std::uint32_t> present_map::whole_crc() const {
  if (!complete()) return std::nullopt;
  if (total_ == 0) return 0u;
  return runs_.begin()->second.crc;
}

std::string present_map::serialize() const {
  std::string out = "fusproxy-present 1 " + std::to_string(total_) + "\n";
  for (const auto& [begin, r] : runs_)
    out += std::to_string(begin) + " " + std::to_string(r.end) + " " + std::to_string(r.crc) + "\n";
  return out;
}

std::optional<present_map> present_map::parse(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string magic;
  int version = 0;
  std::uint64_t total = 0;
  if (!(in >> magic >> version >> total) || magic != "fusproxy-present" || version != 1)
    return std::nullopt;
  present_map m(total);
  std::uint64_t begin = 0, end = 0;
  std::uint32_t crc = 0;
  while (in >> begin) {
    if (!(in >> end >> crc) || !m.insert(begin, end, crc)) return std::nullopt;
  }
  if (!in.eof()) return std::nullopt;
  return m;
}

// --- fetch_plan -----------------------------------------------------------------------------

namespace {
std::uint64_t round_chunk(std::uint64_t c) {
  c -= c % 16;
  return c < 16 ? 16 : c;
}
}  // namespace

fetch_plan::fetch_plan(std::uint64_t total, std::uint64_t chunk_size)
    : present_(total), chunk_(round_chunk(chunk_size)) {}

fetch_plan::fetch_plan(present_map present, std::uint64_t chunk_size)
    : present_(std::move(present)), chunk_(round_chunk(chunk_size)) {}

namespace {
// The entry of `m` holding pos, or end().
template <class Map>
auto holding_pos(Map& m, std::uint64_t pos) {
  auto it = m.upper_bound(pos);
  if (it == m.begin()) return m.end();
  --it;
  return it->second.end > pos ? it : m.end();
}
}  // namespace

bool fetch_plan::taken(std::uint64_t pos) const {
  return holding_pos(claimed_, pos) != claimed_.end() ||
         holding_pos(landing_, pos) != landing_.end();
}

std::optional<std::uint64_t> fetch_plan::first_free(std::uint64_t pos, std::uint64_t limit) const {
  limit = std::min(limit, total());
  while (pos < limit) {
    pos = present_.first_missing(pos);
    if (pos >= limit) break;
    if (auto c = holding_pos(claimed_, pos); c != claimed_.end()) {
      pos = c->second.end;
      continue;
    }
    if (auto r = holding_pos(landing_, pos); r != landing_.end()) {
      pos = r->second.end;
      continue;
    }
    return pos;
  }
  return std::nullopt;
}

std::uint64_t fetch_plan::unclaimed_bytes(std::uint64_t limit) const {
  limit = std::min(limit, total());
  std::uint64_t n = 0;
  auto pos = first_free(0, limit);
  while (pos && *pos < limit) {
    std::uint64_t end = std::min(limit, present_.next_present(*pos));
    if (auto c = claimed_.upper_bound(*pos); c != claimed_.end()) end = std::min(end, c->first);
    if (auto r = landing_.upper_bound(*pos); r != landing_.end()) end = std::min(end, r->first);
    n += end - *pos;
    pos = first_free(end, limit);
  }
  return n;
}

std::map<std::uint64_t, fetch_plan::held>::iterator fetch_plan::claim_of(worker_id w) {
  return std::find_if(claimed_.begin(), claimed_.end(),
                      [w](const auto& c) { return c.second.owner == w; });
}
std::map<std::uint64_t, fetch_plan::held>::const_iterator fetch_plan::claim_of(worker_id w) const {
  return std::find_if(claimed_.begin(), claimed_.end(),
                      [w](const auto& c) { return c.second.owner == w; });
}

std::optional<byte_range> fetch_plan::claim(worker_id w, std::uint64_t limit, std::uint64_t size,
                                            std::uint64_t stop) {
  if (claim_of(w) != claimed_.end() || helpers_.count(w)) return std::nullopt;
  std::optional<std::uint64_t> pos;
  std::uint64_t interest_end = UINT64_MAX;  // a sparse claim ends with its interest
  if (!sparse_) {
    for (auto want : wanted_) {
      want -= want % 16;  // ranges upstream are whole blocks
      if ((pos = first_free(want, want + chunk_))) break;
    }
  }
  if (!pos) {
    if (auto in = first_free_interest()) {
      pos = in->first;
      if (sparse_) interest_end = in->second;
    }
  }
  if (!pos && !sparse_) pos = first_free(0, std::min(limit, total()));
  if (!pos) return std::nullopt;
  size = size ? size - size % 16 : chunk_;
  if (size < 16) size = 16;
  // End on the chunk grid when that still leaves something (tidy ranges, fewer odd pieces).
  std::uint64_t end = *pos + size;
  if (end - end % chunk_ > *pos) end -= end % chunk_;
  if (*pos < stop && stop < total()) end = std::min(end, stop + (16 - stop % 16) % 16);
  end = std::min({end, interest_end, total(), present_.next_present(*pos)});
  if (auto next = claimed_.upper_bound(*pos); next != claimed_.end())
    end = std::min(end, next->first);
  if (auto next = landing_.upper_bound(*pos); next != landing_.end())
    end = std::min(end, next->first);
  claimed_.emplace(*pos, held{end, w});
  return byte_range{*pos, end};
}

std::optional<byte_range> fetch_plan::holding(worker_id w) const {
  if (auto h = helpers_.find(w); h != helpers_.end()) w = h->second;
  auto c = claim_of(w);
  if (c == claimed_.end()) return std::nullopt;
  return byte_range{c->first, c->second.end};
}

std::optional<worker_id> fetch_plan::helper_of(worker_id w) const {
  for (const auto& [helper, victim] : helpers_)
    if (victim == w) return helper;
  return std::nullopt;
}

std::optional<worker_id> fetch_plan::victim_of(worker_id w) const {
  if (auto h = helpers_.find(w); h != helpers_.end()) return h->second;
  return std::nullopt;
}

std::vector<std::pair<worker_id, byte_range>> fetch_plan::claims() const {
  std::vector<std::pair<worker_id, byte_range>> out;
  for (const auto& [b, c] : claimed_) out.emplace_back(c.owner, byte_range{b, c.end});
  return out;
}

std::vector<std::pair<worker_id, byte_range>> fetch_plan::split_candidates(
    std::uint64_t stop) const {
  if (!has_unclaimed()) return claims();
  std::vector<std::pair<worker_id, byte_range>> out;
  if (stop < total() && !has_unclaimed(stop)) {
    for (const auto& [b, c] : claimed_)
      if (b < stop) out.emplace_back(c.owner, byte_range{b, c.end});
    return out;
  }
  if (wanted_.empty()) return out;
  const std::uint64_t want = *wanted_.begin();
  for (const auto& [b, c] : claimed_)
    if (c.end > want) {
      out.emplace_back(c.owner, byte_range{b, c.end});
      break;
    }
  return out;
}

std::optional<byte_range> fetch_plan::hedge(worker_id helper, worker_id victim) {
  if (helper == victim || holding(helper) || helper_of(victim) || helpers_.count(victim))
    return std::nullopt;
  auto c = claim_of(victim);
  if (c == claimed_.end()) return std::nullopt;
  helpers_.emplace(helper, victim);
  return byte_range{c->first, c->second.end};
}

std::optional<byte_range> fetch_plan::split(worker_id thief, worker_id victim, std::uint64_t at) {
  at -= at % 16;
  if (thief == victim || holding(thief) || helper_of(victim)) return std::nullopt;
  auto c = claim_of(victim);
  if (c == claimed_.end() || at <= c->first || at >= c->second.end) return std::nullopt;
  const std::uint64_t end = c->second.end;
  c->second.end = at;
  claimed_.emplace(at, held{end, thief});
  return byte_range{at, end};
}

fetch_plan::reservation fetch_plan::reserve(worker_id w, byte_range batch) {
  reservation out{{batch.begin, batch.begin}, std::nullopt};
  if (batch.empty()) return out;
  auto h = helpers_.find(w);
  auto c = claim_of(h != helpers_.end() ? h->second : w);
  if (c == claimed_.end()) return out;
  const std::uint64_t cursor = c->first, end = c->second.end;
  // Bytes before the cursor are landed or being landed (by w earlier, or by the victim a
  // helper races); a batch starting past the cursor would leave a hole: not w's to land.
  if (batch.end <= cursor || batch.begin > cursor) return out;
  if (h != helpers_.end()) {
    // The helper's first block past the victim's cursor: the claim is the helper's now.
    out.cut = h->second;
    helpers_.erase(h);
    c->second.owner = w;
  }
  const std::uint64_t land_end = std::min(batch.end, end);
  out.land = {cursor, land_end};
  landing_.emplace(cursor, held{land_end, w});
  claimed_.erase(c);
  if (land_end < end) {
    claimed_.emplace(land_end, held{end, w});
  } else {
    // The claim is done: a helper racing it has nothing left (the caller cuts it).
    for (auto it = helpers_.begin(); it != helpers_.end(); ++it)
      if (it->second == w) {
        helpers_.erase(it);
        break;
      }
  }
  return out;
}

bool fetch_plan::landed(worker_id w, std::uint64_t begin, std::uint64_t end, std::uint32_t crc) {
  auto r = landing_.find(begin);
  if (r == landing_.end() || r->second.end != end || r->second.owner != w) return false;
  if (!present_.insert(begin, end, crc)) return false;
  landing_.erase(r);
  return true;
}

void fetch_plan::unreserve(worker_id w, byte_range r) {
  auto it = landing_.find(r.begin);
  if (it != landing_.end() && it->second.end == r.end && it->second.owner == w) landing_.erase(it);
}

void fetch_plan::release(worker_id w) {
  if (helpers_.erase(w)) return;  // a helper: the victim keeps its claim
  auto c = claim_of(w);
  if (c == claimed_.end()) return;
  if (auto helper = helper_of(w)) {
    helpers_.erase(*helper);
    c->second.owner = *helper;  // the helper's GET covers it already
    return;
  }
  claimed_.erase(c);
}

namespace {
constexpr std::string_view synced_line = "synced\n";
}

std::string serialize_saved_map(const present_map& present, bool synced) {
  auto text = present.serialize();
  if (synced) text += synced_line;
  return text;
}

std::optional<saved_map> parse_saved_map(std::string_view text) {
  saved_map out;
  if (text.size() > synced_line.size() && text.ends_with(synced_line) &&
      text[text.size() - synced_line.size() - 1] == '\n') {
    out.synced = true;
    text.remove_suffix(synced_line.size());
  }
  auto present = present_map::parse(text);
  if (!present) return std::nullopt;
  out.present = std::move(*present);
  return out;
}

bool fetch_plan::restore(std::uint64_t begin, std::uint64_t end, std::uint32_t crc) {
  if (begin >= end) return false;
  for (const auto* m : {&claimed_, &landing_}) {
    auto it = m->lower_bound(end);
    if (it != m->begin() && std::prev(it)->second.end > begin) return false;
  }
  return present_.insert(begin, end, crc);
}

std::uint64_t fetch_plan::claimed_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [b, c] : claimed_) n += c.end - b;
  for (const auto& [b, c] : landing_) n += c.end - b;
  return n;
}

bool fetch_plan::wanted_in(std::uint64_t begin, std::uint64_t end) const {
  auto it = wanted_.lower_bound(begin);
  return it != wanted_.end() && *it < end;
}

void fetch_plan::add_interest(std::uint64_t begin, std::uint64_t end) {
  begin -= begin % 16;
  end = std::min(total(), (end + 15) / 16 * 16);
  if (begin < end) interests_.emplace(begin, end);
}

void fetch_plan::remove_interest(std::uint64_t begin, std::uint64_t end) {
  begin -= begin % 16;
  end = std::min(total(), (end + 15) / 16 * 16);
  if (auto it = interests_.find({begin, end}); it != interests_.end()) interests_.erase(it);
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> fetch_plan::first_free_interest() const {
  for (const auto& [b, e] : interests_)
    if (auto pos = first_free(b, e)) return std::pair{*pos, e};
  return std::nullopt;
}

bool fetch_plan::has_work(std::uint64_t limit) const {
  if (first_free_interest()) return true;
  if (sparse_) return false;
  return first_free(0, limit).has_value();
}

void fetch_plan::want(std::uint64_t pos) {
  wanted_.insert(pos);
}

void fetch_plan::unwant(std::uint64_t pos) {
  if (auto it = wanted_.find(pos); it != wanted_.end()) wanted_.erase(it);
}

// --- retry_policy ---------------------------------------------------------------------------

retry_policy::retry_policy(retry_settings s, std::uint64_t chunks)
    : s_(s), budget_(64 + 4 * chunks) {}

std::optional<std::chrono::milliseconds> retry_policy::on_failure(
    unsigned& streak, bool progressed, std::chrono::seconds retry_after) {
  ++failures_;
  if (failures_ > budget_) return std::nullopt;
  if (progressed) streak = 0;
  ++streak;
  if (streak > s_.attempts) return std::nullopt;
  std::chrono::milliseconds delay{0};
  if (streak > 1) {
    delay = s_.base;
    for (unsigned i = 2; i < streak && delay < s_.max; ++i) delay *= 2;
    delay = std::min(delay, s_.max);
  }
  return std::max<std::chrono::milliseconds>(delay, retry_after);
}

// --- connection_governor --------------------------------------------------------------------

connection_governor::connection_governor(unsigned ceiling, unsigned start, clock::time_point now,
                                         clock::duration probe, clock::duration hold)
    : ceiling_(ceiling ? ceiling : 1),
      target_(std::clamp(start, 1u, ceiling_)),
      probe_(probe),
      hold_(hold),
      since_(now),
      hold_until_(now) {}

void connection_governor::shed(unsigned working, clock::time_point now) {
  ++sheds_;
  const unsigned before = target_;
  target_ = std::max(1u, std::min(target_ > 1 ? target_ - 1 : 1u, working));
  if (probing_ && target_ < before) probing_ = false;
  hold_until_ = now + hold_;
  since_ = now;
}

void connection_governor::tick(clock::time_point now, double rate, bool saturated) {
  if (now - since_ < probe_) return;
  if (probing_) {
    probing_ = false;
    since_ = now;
    const unsigned before = target_ - step_;
    const double per_connection = before ? base_rate_ / before : 0;
    const double needed = std::max(0.10 * base_rate_, 0.5 * step_ * per_connection);
    if (!(rate >= base_rate_ + needed && base_rate_ > 0)) {
      target_ = before;
      backoff_ = std::min(backoff_ * 2, 64u);
      ++undone_;
      since_ = now + probe_ * (backoff_ - 1);  // wait longer before the next probe
      return;
    }
    backoff_ = 1;
    ++grown_;
    // Kept: the rate just measured is the next probe's base, so the next step starts now
    // rather than after another interval of waiting (a link that scales reaches the
    // ceiling in one interval per step).
  }
  if (!saturated || target_ >= ceiling_ || now < hold_until_ || rate <= 0) return;
  step_ = std::min(target_, ceiling_ - target_);
  base_rate_ = rate;
  target_ += step_;
  probing_ = true;
  since_ = now;
}

// --- connection_rates -----------------------------------------------------------------------

namespace {
constexpr auto rate_bucket = std::chrono::milliseconds(100);
}

void connection_rates::opened(worker_id w, clock::time_point now) {
  open_[w] = conn{now, now, now};
}

void connection_rates::received(worker_id w, std::uint64_t n, clock::time_point now) {
  auto it = open_.find(w);
  if (it == open_.end()) return;
  auto& c = it->second;
  if (!c.got_byte) {
    c.got_byte = true;
    c.first_byte = now;
    const auto latency = now - c.opened;
    ttfb_ = ttfb_ == clock::duration::zero() ? latency : (ttfb_ * 3 + latency) / 4;
  }
  c.last_byte = now;
  c.bytes += n;
  if (!c.samples.empty() && now - c.samples.back().first < rate_bucket)
    c.samples.back().second += n;
  else
    c.samples.emplace_back(now, n);
  const auto horizon = now - window_ - rate_bucket;
  auto keep = std::find_if(c.samples.begin(), c.samples.end(),
                           [&](const auto& x) { return x.first >= horizon; });
  c.samples.erase(c.samples.begin(), keep);
}

void connection_rates::closed(worker_id w, clock::time_point now) {
  auto it = open_.find(w);
  if (it == open_.end()) return;
  const auto& c = it->second;
  // From the GET (the first-byte latency is part of what a connection costs); only GETs
  // that carried some bytes say something about the link's per-connection rate.
  const double secs = std::max(std::chrono::duration<double>(now - c.opened).count(), 1e-3);
  if (c.got_byte && c.bytes >= (64u << 10)) {
    const double r = static_cast<double>(c.bytes) / secs;
    finished_rate_ = finished_rate_ == 0 ? r : 0.75 * finished_rate_ + 0.25 * r;
  }
  open_.erase(it);
}

bool connection_rates::is_open(worker_id w) const {
  return open_.count(w) > 0;
}

double connection_rates::rate(worker_id w, clock::time_point now) const {
  auto it = open_.find(w);
  if (it == open_.end() || !it->second.got_byte) return 0;
  const auto& c = it->second;
  std::uint64_t sum = 0;
  for (const auto& [t, n] : c.samples)
    if (t >= now - window_) sum += n;
  // Over the window, or since the first byte when younger (the first read's bytes count
  // from the GET: they took the first-byte latency to come).
  const auto span = std::max<clock::duration>(std::min(window_, now - c.opened), rate_bucket);
  return static_cast<double>(sum) / std::chrono::duration<double>(span).count();
}

connection_rates::clock::duration connection_rates::idle(worker_id w, clock::time_point now) const {
  auto it = open_.find(w);
  if (it == open_.end()) return clock::duration::zero();
  return now - it->second.last_byte;
}

connection_rates::clock::duration connection_rates::receiving(worker_id w,
                                                              clock::time_point now) const {
  auto it = open_.find(w);
  if (it == open_.end() || !it->second.got_byte) return clock::duration::zero();
  return now - it->second.first_byte;
}

std::vector<std::pair<worker_id, double>> connection_rates::rates(clock::time_point now) const {
  std::vector<std::pair<worker_id, double>> out;
  for (const auto& [w, c] : open_) out.emplace_back(w, rate(w, now));
  return out;
}

double connection_rates::typical_rate(clock::time_point now,
                                      std::optional<worker_id> except) const {
  std::vector<double> r;
  for (const auto& [w, c] : open_)
    if (w != except && receiving(w, now) >= window_ / 2) r.push_back(rate(w, now));
  if (r.empty()) return finished_rate_;
  std::nth_element(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(r.size() / 2), r.end());
  return r[r.size() / 2];
}

connection_rates::clock::duration connection_rates::stall_after() const {
  return std::clamp<clock::duration>(ttfb_ * 4, std::chrono::milliseconds(750),
                                     std::chrono::seconds(4));
}

std::vector<slow_verdict> find_slow(const connection_rates& rates,
                                    const std::vector<worker_id>& holders,
                                    connection_rates::clock::time_point now) {
  std::vector<slow_verdict> out;
  for (auto w : holders) {
    if (!rates.is_open(w)) continue;
    // Compared with the others (alone, with what the job's finished GETs had).
    const double typical = rates.typical_rate(now, w);
    if (rates.idle(w, now) >= rates.stall_after()) {
      out.push_back({w, true});
      continue;
    }
    // The rate of a connection that received for less than a window says little.
    if (typical > 0 && rates.receiving(w, now) >= std::chrono::milliseconds(500) &&
        rates.rate(w, now) * slow_factor < typical)
      out.push_back({w, false});
  }
  return out;
}

std::optional<split_choice> pick_split(const std::vector<std::pair<worker_id, byte_range>>& claims,
                                       const connection_rates& rates,
                                       connection_rates::clock::time_point now,
                                       std::uint64_t min_bytes,
                                       connection_rates::clock::duration min_time) {
  const double typical = rates.typical_rate(now);
  std::optional<split_choice> best;
  double best_time = 0;
  for (const auto& [w, r] : claims) {
    const std::uint64_t left = r.size();
    if (left < 2 * min_bytes) continue;
    double own = rates.rate(w, now);
    if (own <= 0) own = typical;
    if (own <= 0) continue;
    const double t = static_cast<double>(left) / own;
    if (best && t <= best_time) continue;
    // Both finish together: the victim keeps the share its rate carries.
    const double thief = typical > 0 ? typical : own;
    std::uint64_t keep =
        static_cast<std::uint64_t>(static_cast<double>(left) * own / (own + thief));
    keep = std::clamp<std::uint64_t>(keep, min_bytes, left - min_bytes);
    const double saved = t - static_cast<double>(keep) / own;
    if (saved < std::chrono::duration<double>(min_time).count()) continue;
    best = split_choice{w, r.begin + keep - keep % 16};
    best_time = t;
  }
  return best;
}

split_bounds split_worth(std::uint64_t first_claim, double typical_rate,
                         connection_rates::clock::duration first_byte_latency) {
  using namespace std::chrono_literals;
  return {std::max<std::uint64_t>(2 * first_claim, static_cast<std::uint64_t>(typical_rate / 4)),
          std::max<connection_rates::clock::duration>(first_byte_latency * 3 + 100ms, 250ms)};
}

std::uint64_t follow_window(unsigned connections, std::uint64_t start, std::uint64_t max) {
  return std::max<std::uint64_t>(64u << 20,
                                 2ull * connections * std::min<std::uint64_t>(max, 16 * start));
}

std::uint64_t follow_claim_max(std::uint64_t window, unsigned connections, std::uint64_t grid) {
  grid = std::max<std::uint64_t>(grid, 16);
  const std::uint64_t share = window / (2ull * std::max(connections, 1u));
  return std::max(grid, share - share % grid);
}

std::uint64_t claim_size(std::uint64_t start, std::uint64_t max, std::uint64_t previous) {
  start = std::max<std::uint64_t>(16, start - start % 16);
  max = std::max(max, start);
  const std::uint64_t size = previous == 0 ? start : std::clamp(4 * previous, start, max);
  return size - size % 16;
}

// --- token_bucket ---------------------------------------------------------------------------

token_bucket::token_bucket(std::uint64_t bytes_per_second, clock::time_point now)
    : rate_(bytes_per_second), tokens_(static_cast<double>(bytes_per_second) / 10), last_(now) {}

token_bucket::clock::duration token_bucket::take(std::uint64_t n, clock::time_point now) {
  if (rate_ == 0) return clock::duration::zero();
  const double burst = static_cast<double>(rate_) / 10;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(burst, tokens_ + elapsed * static_cast<double>(rate_));
  tokens_ -= static_cast<double>(n);
  if (tokens_ >= 0) return clock::duration::zero();
  return std::chrono::duration_cast<clock::duration>(
      std::chrono::duration<double>(-tokens_ / static_cast<double>(rate_)));
}

// --- rate_meter -----------------------------------------------------------------------------

void rate_meter::add(std::uint64_t bytes, clock::time_point now) {
  constexpr auto bucket = std::chrono::milliseconds(100);
  if (!samples_.empty() && now - samples_.back().first < bucket)
    samples_.back().second += bytes;
  else
    samples_.emplace_back(now, bytes);
  const auto horizon = now - window_;
  auto keep = std::find_if(samples_.begin(), samples_.end(),
                           [&](const auto& s) { return s.first >= horizon; });
  samples_.erase(samples_.begin(), keep);
}

double rate_meter::rate(clock::time_point now) const {
  if (samples_.empty()) return 0;
  std::uint64_t sum = 0;
  for (const auto& s : samples_)
    if (s.first >= now - window_) sum += s.second;
  const auto span =
      std::max<clock::duration>(now - samples_.front().first, std::chrono::milliseconds(500));
  return static_cast<double>(sum) / std::chrono::duration<double>(span).count();
}

}  // namespace fusproxy::server::fetch
