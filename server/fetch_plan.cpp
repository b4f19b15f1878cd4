#include "server/fetch_plan.hpp"

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

bool fetch_plan::is_claimed(std::uint64_t pos) const {
  auto it = claimed_.upper_bound(pos);
  if (it == claimed_.begin()) return false;
  --it;
  return it->second > pos;
}

std::optional<std::uint64_t> fetch_plan::first_free(std::uint64_t pos, std::uint64_t limit) const {
  limit = std::min(limit, total());
  while (pos < limit) {
    pos = present_.first_missing(pos);
    if (pos >= limit) break;
    auto it = claimed_.upper_bound(pos);
    if (it != claimed_.begin()) {
      auto c = std::prev(it);
      if (c->second > pos) {
        pos = c->second;
        continue;
      }
    }
    return pos;
  }
  return std::nullopt;
}

byte_range fetch_plan::claim_from(std::uint64_t pos) {
  std::uint64_t end = std::min((pos / chunk_ + 1) * chunk_, total());
  end = std::min(end, present_.next_present(pos));
  if (auto next = claimed_.upper_bound(pos); next != claimed_.end())
    end = std::min(end, next->first);
  claimed_.emplace(pos, end);
  return {pos, end};
}

std::optional<byte_range> fetch_plan::claim(std::uint64_t limit) {
  for (auto w : wanted_) {
    w -= w % 16;  // ranges upstream are whole blocks
    if (auto p = first_free(w, w + chunk_)) return claim_from(*p);
  }
  if (auto p = first_free(0, std::min(limit, total()))) return claim_from(*p);
  return std::nullopt;
}

bool fetch_plan::landed(std::uint64_t begin, std::uint64_t end, std::uint32_t crc) {
  if (begin >= end) return false;
  auto it = claimed_.upper_bound(begin);
  if (it == claimed_.begin()) return false;
  --it;
  const std::uint64_t cb = it->first, ce = it->second;
  if (begin < cb || end > ce) return false;
  if (!present_.insert(begin, end, crc)) return false;
  // Split the claim around what landed (usually its front).
  claimed_.erase(it);
  if (cb < begin) claimed_.emplace(cb, begin);
  if (end < ce) claimed_.emplace(end, ce);
  return true;
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
  auto it = claimed_.lower_bound(end);
  if (it != claimed_.begin() && std::prev(it)->second > begin) return false;
  return present_.insert(begin, end, crc);
}

void fetch_plan::release(byte_range rest) {
  if (rest.empty()) return;
  auto it = claimed_.upper_bound(rest.begin);
  if (it == claimed_.begin()) return;
  --it;
  const std::uint64_t cb = it->first, ce = it->second;
  if (rest.begin < cb || rest.begin >= ce) return;
  const std::uint64_t re = std::min(rest.end, ce);
  claimed_.erase(it);
  if (cb < rest.begin) claimed_.emplace(cb, rest.begin);
  if (re < ce) claimed_.emplace(re, ce);
}

std::uint64_t fetch_plan::claimed_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [b, e] : claimed_) n += e - b;
  return n;
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

connection_governor::connection_governor(unsigned max, unsigned grow_after)
    : max_(max ? max : 1), target_(max_), grow_after_(grow_after ? grow_after : 1) {}

void connection_governor::shed(double rate) {
  ++sheds_;
  // Several workers refused at once count once: shed again only after a chunk finished.
  if (!shed_armed_) return;
  shed_armed_ = false;
  target_ = std::max(1u, target_ / 2);
  since_change_ = 0;
  rate_at_change_ = rate;
}

void connection_governor::chunk_done(double rate) {
  shed_armed_ = true;
  if (target_ >= max_) return;
  if (++since_change_ < grow_after_) return;
  if (rate + 1 >= 0.9 * rate_at_change_) {
    ++target_;
    since_change_ = 0;
    rate_at_change_ = rate;
  }
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
