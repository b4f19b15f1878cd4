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

// Which worker of a job (a small number: its index).
using worker_id = unsigned;

// What the workers of one job fetch next. Each worker holds at most one claim [cursor, end)
// of bytes it is to fetch and has not begun to land; claims are disjoint from each other,
// from the bytes being landed (reservations) and from the present bytes, so no byte is ever
// written by two workers: a worker lands only what reserve() hands it.
//
// Hedging: hedge(helper, victim) lets a second worker fetch a slow worker's rest [cursor,
// end) as well. Until the helper lands a block, the victim keeps landing (the helper skips
// what the victim landed); the helper's first block past the victim's cursor takes the
// claim over and reserve() names the victim to cut. A victim that finishes first leaves the
// helper holding nothing (the caller cuts it).
// End game: split(thief, victim, at) narrows the victim to [cursor, at) and gives the thief
// [at, end).
class fetch_plan {
 public:
  // chunk_size (rounded down to a multiple of 16, at least 16) is the default claim size,
  // the grid claims end on, and the read-ahead past a reader's position.
  fetch_plan(std::uint64_t total, std::uint64_t chunk_size);
  explicit fetch_plan(present_map present, std::uint64_t chunk_size);

  const present_map& present() const { return present_; }
  std::uint64_t chunk_size() const { return chunk_; }
  std::uint64_t total() const { return present_.total(); }
  std::uint64_t chunk_count() const { return (total() + chunk_ - 1) / chunk_; }

  // The next range for worker w (its claim; w must hold none), or nullopt when every
  // missing byte is claimed. Bytes waiting readers need come first: for each wanted position
  // (lowest first) the first unclaimed missing byte within a chunk after it (read-ahead);
  // then the lowest unclaimed missing byte. The claim runs `size` bytes (0: chunk_size),
  // ending on a multiple of chunk_size, or to the next claimed or present byte if sooner.
  // Bytes at or above `limit` are not claimed (readers' wanted bytes excepted): the fetch
  // window while clients follow the job. A claim starting below `stop` ends at it at the
  // latest (rounded up to a block): the end of the ranges the following clients asked for,
  // so that the connections share the last bytes those clients wait for (the end game
  // splits them) instead of one of them carrying on past it.
  std::optional<byte_range> claim(worker_id w, std::uint64_t limit = UINT64_MAX,
                                  std::uint64_t size = 0, std::uint64_t stop = UINT64_MAX);
  // Whether any missing byte is still unclaimed (below limit).
  bool has_unclaimed(std::uint64_t limit = UINT64_MAX) const {
    return first_free(0, limit).has_value();
  }
  // Missing bytes that nobody holds or lands (below limit).
  std::uint64_t unclaimed_bytes(std::uint64_t limit = UINT64_MAX) const;

  // What w may still land: its claim, or (a helper) its victim's claim; nullopt when
  // nothing (finished, cut, narrowed to nothing).
  std::optional<byte_range> holding(worker_id w) const;
  // The helper hedging w's claim, if any; the victim w hedges, if w is a helper.
  std::optional<worker_id> helper_of(worker_id w) const;
  std::optional<worker_id> victim_of(worker_id w) const;
  // The claims now: (owner, [cursor, end)), lowest first.
  std::vector<std::pair<worker_id, byte_range>> claims() const;
  // The claims a free worker may split (pick_split). At the job's end (no missing byte is
  // unclaimed) every claim; at the followers' end (`stop`: every missing byte below it is
  // claimed) the claims starting below it. While only the follow window holds claims back,
  // the claim readers wait on next (the lowest one ending past the lowest wanted byte), or
  // none: splitting a claim far ahead of the readers spends a GET on bytes nobody waits for
  // while the readers wait on one connection.
  std::vector<std::pair<worker_id, byte_range>> split_candidates(
      std::uint64_t stop = UINT64_MAX) const;

  // The helper (holding nothing) fetches the victim's rest too: the range for its GET, or
  // nullopt when the victim holds nothing or is hedged already.
  std::optional<byte_range> hedge(worker_id helper, worker_id victim);
  // The thief (holding nothing) takes [at, end) of the victim's claim, at rounded down to
  // 16; nullopt unless cursor < at < end and the victim is not hedged.
  std::optional<byte_range> split(worker_id thief, worker_id victim, std::uint64_t at);

  struct reservation {
    byte_range land;               // what w lands now (empty: nothing; skip the batch)
    std::optional<worker_id> cut;  // the victim a helper's block just beat
  };
  // w received the whole blocks `batch` of its GET and wants to land them: the part it may
  // land now is reserved for it (no other worker gets those bytes). Bytes before w's cursor
  // (landed or being landed by another) are skipped; bytes past its claim's end (narrowed)
  // are not its own.
  reservation reserve(worker_id w, byte_range batch);
  // A reservation landed with that CRC: present. False when [begin, end) is not a
  // reservation of w (a bug: nothing changes).
  bool landed(worker_id w, std::uint64_t begin, std::uint64_t end, std::uint32_t crc);
  // A reservation that did not land: free again.
  void unreserve(worker_id w, byte_range r);
  // w stops (failure, cut, job end): its claim is given back (to its helper, when hedged;
  // a helper's hedge just ends).
  void release(worker_id w);
  // Bytes already on disk, checked again (a resumed map after an unclean stop): present
  // with that CRC. False when they overlap present, claimed or reserved bytes.
  bool restore(std::uint64_t begin, std::uint64_t end, std::uint32_t crc);
  std::uint64_t claimed_bytes() const;

  // Sparse fetching (docs/streaming.md, issue 14): a plan in sparse mode claims only bytes
  // inside the ranges readers declared they need (interests), never the lowest missing byte
  // nor a read-ahead past them; a claim ends at its interest's end. In the default (complete)
  // mode interests only come first, like waiting readers. Interests are rounded out to whole
  // 16-byte blocks; a multiset: several readers may declare the same range.
  void set_sparse(bool sparse) { sparse_ = sparse; }
  bool sparse() const { return sparse_; }
  void add_interest(std::uint64_t begin, std::uint64_t end);
  void remove_interest(std::uint64_t begin, std::uint64_t end);
  std::size_t interest_count() const { return interests_.size(); }
  // Whether a claim() could find work now (below limit; in sparse mode: inside interests).
  bool has_work(std::uint64_t limit = UINT64_MAX) const;

  // Readers: a reader waits for `pos` (a multiset: several readers may want one byte).
  void want(std::uint64_t pos);
  void unwant(std::uint64_t pos);
  std::size_t wanted_count() const { return wanted_.size(); }
  // Whether a reader waits for a byte in [begin, end).
  bool wanted_in(std::uint64_t begin, std::uint64_t end) const;

 private:
  struct held {
    std::uint64_t end;
    worker_id owner;
  };
  // Whether pos is claimed or reserved.
  bool taken(std::uint64_t pos) const;
  // First byte at or after pos that is neither present, claimed nor reserved, below `limit`.
  std::optional<std::uint64_t> first_free(std::uint64_t pos, std::uint64_t limit) const;
  std::map<std::uint64_t, held>::iterator claim_of(worker_id w);
  std::map<std::uint64_t, held>::const_iterator claim_of(worker_id w) const;

  present_map present_;
  std::uint64_t chunk_;
  std::map<std::uint64_t, held> claimed_;   // cursor -> claim
  std::map<std::uint64_t, held> landing_;   // reserved, being landed
  std::map<worker_id, worker_id> helpers_;  // helper -> victim
  std::multiset<std::uint64_t> wanted_;
  std::multiset<std::pair<std::uint64_t, std::uint64_t>> interests_;  // [begin, end), whole blocks
  bool sparse_ = false;
  // The first free byte inside an interest, and that interest's end.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> first_free_interest() const;
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

// How many connections the job's workers may hold: the target starts at `start` and moves
// between 1 and `ceiling` (--connections). Growth is probed: when every allowed connection
// is busy, the rate has been steady for a probe interval and no refusal is recent, the
// target doubles (up to the ceiling); after a probe interval the step is kept
// when the aggregate rate rose by at least 10 % and by at least half of what the added
// connections would give at the per-connection rate before, and the next probe starts at
// once from the rate just measured (so a link that scales gets up to the ceiling in one
// interval per step, and one that does not is left alone); else the step is undone and the
// next probe waits twice as long (at most 64 intervals). A refusal (429/503, a
// refused connection) sets the target to the connections that are working (at most one
// less than before) and holds growth for `hold` (upstream said where its limit is).
class connection_governor {
 public:
  using clock = std::chrono::steady_clock;
  connection_governor(unsigned ceiling, unsigned start, clock::time_point now,
                      clock::duration probe = std::chrono::milliseconds(1000),
                      clock::duration hold = std::chrono::seconds(30));
  unsigned target() const { return target_; }
  unsigned max() const { return ceiling_; }
  // Upstream refused a connection; `working` is how many connections hold a range now.
  void shed(unsigned working, clock::time_point now);
  // Called often (every ~100 ms): the aggregate bytes/s over the last second, and whether
  // every allowed connection is busy (growing is pointless when claims, the window or the
  // end game leave workers idle).
  void tick(clock::time_point now, double rate, bool saturated);
  std::uint64_t sheds() const { return sheds_; }
  std::uint64_t grown() const { return grown_; }
  std::uint64_t undone() const { return undone_; }

 private:
  unsigned ceiling_;
  unsigned target_;
  clock::duration probe_;
  clock::duration hold_;
  clock::time_point since_;       // of the current phase
  clock::time_point hold_until_;  // no growth before (a refusal)
  bool probing_ = false;
  unsigned step_ = 0;
  double base_rate_ = 0;  // before the probe
  unsigned backoff_ = 1;  // probe intervals to wait after an undone step
  std::uint64_t sheds_ = 0, grown_ = 0, undone_ = 0;
};

// Per-connection rates of one job's workers, fed with timestamps (no clock of its own): the
// bookkeeping hedging, splitting and the claim sizes decide with.
class connection_rates {
 public:
  using clock = std::chrono::steady_clock;
  explicit connection_rates(clock::duration window = std::chrono::seconds(1)) : window_(window) {}
  // w sent a GET (the connection is "opened" until closed()).
  void opened(worker_id w, clock::time_point now);
  // n body bytes arrived on w's connection.
  void received(worker_id w, std::uint64_t n, clock::time_point now);
  void closed(worker_id w, clock::time_point now);

  // Bytes/s of w's connection over the last window (or since its first byte, if sooner);
  // 0 before its first byte.
  double rate(worker_id w, clock::time_point now) const;
  // Time since w's connection last received a byte (since it opened, before the first).
  clock::duration idle(worker_id w, clock::time_point now) const;
  // How long w's connection has been receiving (since its first byte); zero before it.
  clock::duration receiving(worker_id w, clock::time_point now) const;
  bool is_open(worker_id w) const;
  // The open connections' rates, and the median of those that have received for at least
  // half a window (but `except`); else the rate finished GETs had (EWMA), or 0 before any.
  std::vector<std::pair<worker_id, double>> rates(clock::time_point now) const;
  double typical_rate(clock::time_point now, std::optional<worker_id> except = {}) const;
  // The first-byte latency of GETs (EWMA), for how long "no progress" may last.
  clock::duration first_byte_latency() const { return ttfb_; }
  // No progress for this long is a stall: 4 x the first-byte latency, 0.75 s to 4 s.
  clock::duration stall_after() const;

 private:
  struct conn {
    clock::time_point opened, first_byte, last_byte;
    bool got_byte = false;
    std::uint64_t bytes = 0;
    std::vector<std::pair<clock::time_point, std::uint64_t>> samples;  // 100 ms buckets
  };
  clock::duration window_;
  std::map<worker_id, conn> open_;
  double finished_rate_ = 0;  // EWMA of closed connections' average rates
  clock::duration ttfb_{};
};

// A slow connection worth hedging: no byte for stall_after, or (receiving for a while)
// far slower than the job's typical per-connection rate (below 1/slow_factor of it).
struct slow_verdict {
  worker_id w;
  bool stalled;  // else: slow
};
inline constexpr double slow_factor = 6;
std::vector<slow_verdict> find_slow(const connection_rates& rates,
                                    const std::vector<worker_id>& holders,
                                    connection_rates::clock::time_point now);

// The end game: a worker with nothing left to claim takes the back part of the claim
// that would finish last, cut so that both finish together (the victim at its own rate,
// the thief at the typical rate); nullopt when no claim has more than `min_bytes` left or
// would take less than `min_time` longer than the split.
struct split_choice {
  worker_id victim;
  std::uint64_t at;
};
std::optional<split_choice> pick_split(const std::vector<std::pair<worker_id, byte_range>>& claims,
                                       const connection_rates& rates,
                                       connection_rates::clock::time_point now,
                                       std::uint64_t min_bytes,
                                       connection_rates::clock::duration min_time);

// While clients follow a job, workers claim only up to a window past the furthest follower
// (the one thread serves the clients rather than racing ahead to disk): two rounds, for
// each connection, of claims of min(max, 16 x start) bytes (32 MiB by default: few GETs),
// at least 64 MiB.
std::uint64_t follow_window(unsigned connections, std::uint64_t start, std::uint64_t max);
// The largest claim inside such a window: window / (2 x connections), on the `grid` (at
// least one grid step). Larger claims than two rounds' worth would fill the window with a
// few connections' claims: the others idle (or split far claims) while the readers wait on
// the nearest claim, landing at one connection's rate.
std::uint64_t follow_claim_max(std::uint64_t window, unsigned connections, std::uint64_t grid);

// When an end-game split is worth a GET (pick_split's bounds): each piece at least two
// first claims and a quarter of a second at the typical per-connection rate, and the split
// saving a quarter of a second and three first-byte latencies. Smaller pieces multiply GETs
// and waste: the victim's GET keeps coming until its connection is closed, and what
// upstream sent past the new end by then is fetched twice. A quarter second of the rate,
// not more: a 16 MiB claim at 20 MB/s (0.8 s) is still split when the readers wait for
// its end.
struct split_bounds {
  std::uint64_t min_bytes;
  connection_rates::clock::duration min_time;
};
split_bounds split_worth(std::uint64_t first_claim, double typical_rate,
                         connection_rates::clock::duration first_byte_latency);

// How big a worker's next claim is: its first claim `start` bytes (a quick first byte, a
// quick rate estimate), then 4 x its previous claim, up to `max` (few GETs on a long build:
// 2, 8, 32, 128 MiB by default). No even share of what is left: the end game splits the
// claims that would finish last (pick_split), by the connections' measured rates.
std::uint64_t claim_size(std::uint64_t start, std::uint64_t max, std::uint64_t previous);

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
