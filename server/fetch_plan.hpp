#pragma once
// The pure core of a fetch job (no I/O, no clocks of its own): which cipher bytes of a build
// are on disk (with the CRC-32 of each present run), which ranges workers hold, what the next
// worker should fetch (bytes readers wait for first, then the lowest missing), the retry
// and back-off policy, the adaptive connection count and the upstream bandwidth cap.
//
// Coordinates: plain byte i and cipher byte i are the same offset (ECB: cipher block k is
// plain block k; the final cipher block holds the plain tail plus the PKCS#7 pad), so one
// map in cipher coordinates [0, cipher_size) tells which plain bytes are on disk too: plain
// [a, b) is present when cipher [a, b) is.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/ranges.hpp"

namespace fusproxy::server::fetch {

using crypto::byte_range;

// The cipher bytes present, as disjoint runs [begin, end) each with the CRC-32 of its
// bytes; touching runs merge (crc32_combine), so a complete file is one run whose CRC is
// the file's. Issue 6 persists it (serialize/parse).
class present_map {
 public:
  struct run {
    std::uint64_t end;
    std::uint32_t crc;
  };

  explicit present_map(std::uint64_t total = 0) : total_(total) {}

  std::uint64_t total() const { return total_; }
  // Adds [begin, end) with the CRC-32 of those cipher bytes. False (nothing changes) when it
  // is empty, outside [0, total) or overlaps a present run.
  bool insert(std::uint64_t begin, std::uint64_t end, std::uint32_t crc);
  // Whether every byte of [begin, end) is present (an empty range is).
  bool contains(std::uint64_t begin, std::uint64_t end) const;
  // End of the present run holding `pos` (pos itself when pos is missing).
  std::uint64_t present_until(std::uint64_t pos) const;
  // First missing byte at or after `pos` (total when none).
  std::uint64_t first_missing(std::uint64_t pos) const;
  // Start of the first present run after `pos` (total when none); pos must be missing.
  std::uint64_t next_present(std::uint64_t pos) const;
  std::uint64_t present_bytes() const { return present_; }
  bool complete() const { return present_ == total_; }
  // The CRC-32 of the whole file, once complete.
  std::optional<std::uint32_t> whole_crc() const;
  const std::map<std::uint64_t, run>& runs() const { return runs_; }

  // "fusproxy-present 1 TOTAL\nBEGIN END CRC\n..." and back; nullopt on anything malformed.
  std::string serialize() const;
  static std::optional<present_map> parse(std::string_view text);

 private:
  std::uint64_t total_;
  std::uint64_t present_ = 0;
  std::map<std::uint64_t, run> runs_;  // begin -> run
};

// A job's saved map (the .map file beside its part file): the present runs, and whether
// the part file was synced before it was written (a graceful stop: the runs are on disk).
// A map saved while fetching is not: after a power loss its runs may be missing from the
// disk, so a resumed job checks them first. Format: present_map's, plus a last line
// "synced" when synced.
struct saved_map {
  present_map present;
  bool synced = false;
};
std::string serialize_saved_map(const present_map& present, bool synced);
std::optional<saved_map> parse_saved_map(std::string_view text);

// What the workers of one job fetch next. Claims are disjoint from each other and from the
// present bytes; a claim never crosses a chunk boundary (multiples of chunk_size).
class fetch_plan {
 public:
  // chunk_size is rounded down to a multiple of 16 (at least 16).
  fetch_plan(std::uint64_t total, std::uint64_t chunk_size);
  explicit fetch_plan(present_map present, std::uint64_t chunk_size);

  const present_map& present() const { return present_; }
  std::uint64_t chunk_size() const { return chunk_; }
  std::uint64_t total() const { return present_.total(); }
  std::uint64_t chunk_count() const { return (total() + chunk_ - 1) / chunk_; }

  // The next range for a worker (marked claimed), or nullopt when every missing byte is
  // claimed. Bytes waiting readers need come first: for each wanted position (lowest
  // first) the first unclaimed missing byte within a chunk after it (read-ahead); then the
  // lowest unclaimed missing byte. The claim runs to the end of that byte's chunk, or to
  // the next claimed or present byte if sooner.
  // Bytes at or above `limit` are not claimed (readers' wanted bytes excepted): the fetch
  // window while clients follow the job.
  std::optional<byte_range> claim(std::uint64_t limit = UINT64_MAX);
  // Whether any missing byte is still unclaimed.
  bool has_unclaimed() const { return first_free(0, total()).has_value(); }
  // [begin, end) of a claim landed with that CRC. False when it was not claimed or
  // overlaps present bytes (a bug: nothing changes).
  bool landed(std::uint64_t begin, std::uint64_t end, std::uint32_t crc);
  // Bytes already on disk, checked again (a resumed map after an unclean stop): present
  // with that CRC. False when they overlap present or claimed bytes (nothing changes).
  bool restore(std::uint64_t begin, std::uint64_t end, std::uint32_t crc);
  // A worker gives back the unfetched rest of its claim (after a failure or a stall).
  void release(byte_range rest);
  std::uint64_t claimed_bytes() const;

  // Readers: a reader waits for `pos` (a multiset: several readers may want one byte).
  void want(std::uint64_t pos);
  void unwant(std::uint64_t pos);
  std::size_t wanted_count() const { return wanted_.size(); }

 private:
  bool is_claimed(std::uint64_t pos) const;
  // First byte at or after pos that is neither present nor claimed, below `limit`.
  std::optional<std::uint64_t> first_free(std::uint64_t pos, std::uint64_t limit) const;
  byte_range claim_from(std::uint64_t pos);

  present_map present_;
  std::uint64_t chunk_;
  std::map<std::uint64_t, std::uint64_t> claimed_;  // begin -> end
  std::multiset<std::uint64_t> wanted_;
};

// Retries of one job's workers. A failure after the worker received bytes retries at once
// (a dropped connection resumes where it stopped); consecutive failures without progress
// back off exponentially (base, 2 base, 4 base … max), never below upstream's Retry-After;
// more than `attempts` of them in a row, or more failures in total than
// total_budget(chunks), fail the job.
struct retry_settings {
  std::chrono::milliseconds base{1000};
  std::chrono::milliseconds max{30'000};
  unsigned attempts = 8;  // consecutive failures without progress, per worker
};

class retry_policy {
 public:
  explicit retry_policy(retry_settings s, std::uint64_t chunks);
  // One worker's failure. `streak` is that worker's count of consecutive failures without
  // progress (updated here); `progressed` whether it received bytes since its last failure.
  // The delay before retrying, or nullopt: give up (the job fails).
  std::optional<std::chrono::milliseconds> on_failure(unsigned& streak, bool progressed,
                                                      std::chrono::seconds retry_after);
  std::uint64_t failures() const { return failures_; }
  std::uint64_t total_budget() const { return budget_; }

 private:
  retry_settings s_;
  std::uint64_t budget_;
  std::uint64_t failures_ = 0;
};

// How many workers may hold a connection: starts at the maximum; a 429/503 halves it (at
// least 1); after `grow_after` chunks finished since the last change, at an aggregate
// rate no worse than before that change (within 10 %), it grows by one.
class connection_governor {
 public:
  explicit connection_governor(unsigned max, unsigned grow_after = 4);
  unsigned target() const { return target_; }
  unsigned max() const { return max_; }
  // Upstream refused a connection (429/503); `rate` is the aggregate bytes/s measured now.
  void shed(double rate);
  // A chunk (or claim) finished; `rate` is the aggregate bytes/s measured now.
  void chunk_done(double rate);
  std::uint64_t sheds() const { return sheds_; }

 private:
  unsigned max_;
  unsigned target_;
  unsigned grow_after_;
  unsigned since_change_ = 0;
  double rate_at_change_ = 0;
  bool shed_armed_ = true;
  std::uint64_t sheds_ = 0;
};

// One token bucket for the whole job (--upstream-max-bps): a worker that received n bytes
// asks how long to pause so that the job stays under the rate. 0 bytes/s: never pauses.
class token_bucket {
 public:
  using clock = std::chrono::steady_clock;
  token_bucket(std::uint64_t bytes_per_second, clock::time_point now);
  std::uint64_t rate() const { return rate_; }
  // Takes n bytes; the pause that keeps the average rate (zero when under it). The burst
  // allowance is 1/10 s of the rate.
  clock::duration take(std::uint64_t n, clock::time_point now);

 private:
  std::uint64_t rate_;
  double tokens_;
  clock::time_point last_;
};

// Aggregate throughput over a sliding window of a few seconds (progress display, governor).
class rate_meter {
 public:
  using clock = std::chrono::steady_clock;
  explicit rate_meter(clock::duration window = std::chrono::seconds(3)) : window_(window) {}
  void add(std::uint64_t bytes, clock::time_point now);
  double rate(clock::time_point now) const;  // bytes per second

 private:
  clock::duration window_;
  std::vector<std::pair<clock::time_point, std::uint64_t>> samples_;  // per 100 ms bucket
};

}  // namespace fusproxy::server::fetch
