#pragma once
// Fault injection for fus-sim: a small spec language (docs/sim.md) and the armed set of
// faults, each counted and bounded (it fires N times, then stops). Pure, no I/O.
//
//   SPEC  = ITEM ("," ITEM)*
//   ITEM  = NAME ["=" VALUE] ["@" WHERE] ["+" SKIP] ["*" COUNT]
//   e.g.  drop-after=4MiB*3,status=503@download*2,auth401*5,firewall@inform,
//         slow-first-byte=2s,truncate@download,bad-crc,max-conns=4,stall=1MiB@download+2*1
// SKIP: that many matching requests pass untouched by the item, then it fires COUNT times.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace fusproxy::sim {

// What a request is for; faults and stats are keyed by it.
enum class endpoint { nonce, inform, init, download, history, fota, control, other };
std::string_view to_string(endpoint e);

enum class fault_kind {
  drop_after,         // close the connection after VALUE bytes of a download body
  status,             // answer HTTP VALUE (e.g. 503) instead of the real answer
  auth401,            // answer 401 (XML Status 401 on POSTs, HTTP 401 on the download)
  firewall,           // an HTML web-firewall page instead of the answer
  slow_first_byte,    // wait VALUE milliseconds before the answer's first byte
  truncate,           // Content-Length promises the whole body, half is sent, then close
  bad_crc,            // BinaryInform announces a wrong BINARY_CRC
  no_name,            // BinaryInform succeeds with an empty BINARY_NAME (nothing to download)
  max_conns,          // more than VALUE concurrent downloads in one session get 429
  no_nonce,           // the answer carries no NONCE header
  reset,              // the request is read, then the connection closes with no answer
  range_200,          // a ranged download GET is answered 200 with the whole file
  bad_content_range,  // 206 whose Content-Range (and bytes) start 16 bytes off the asked range
  no_crc,             // BinaryInform succeeds without a BINARY_CRC element
  signed_crc,         // BINARY_CRC written as a signed 32-bit decimal
  init_body,          // InitForMass answers 200 with an empty (VALUE 0) or text/plain (1) body
  trickle,            // after VALUE2 body bytes, the rest at VALUE bytes/s
  stall,              // after VALUE body bytes nothing more is sent; the socket stays open
};
// stall stays the last kind: arrays indexed by kind are sized from it.
inline constexpr std::size_t fault_kind_count = static_cast<std::size_t>(fault_kind::stall) + 1;
std::string_view to_string(fault_kind k);

inline constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

// Where a fault applies: one endpoint, or a group.
// any: every FUS and FOTA route (never /_sim/); post: the FUS POSTs; signed: the routes that
// check the session's signature (inform, init, download).
enum class fault_scope { any, post, signed_, nonce, inform, init, download, history, fota };

struct fault_rule {
  fault_kind kind{};
  fault_scope scope = fault_scope::any;
  std::uint64_t value = 0;      // bytes, HTTP status, milliseconds, connections or a rate
  std::uint64_t value2 = 0;     // trickle: the body bytes sent at full speed first
  std::uint64_t skip = 0;       // matching requests still to let pass before it fires
  std::uint64_t remaining = 1;  // fires left; `unlimited` never runs out
  std::uint64_t fired = 0;
  std::string text;  // the item as written, for reports

  bool applies_to(endpoint e) const;
};

// Parses a SPEC; the error names the offending item and why.
boost::system::result<std::vector<fault_rule>, std::string> parse_fault_spec(std::string_view spec);

// Sizes like "4MiB", "1.5GB", "4096", "20MB"; durations like "2s", "250ms", "1.5s".
std::optional<std::uint64_t> parse_size(std::string_view text);
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// What a fired fault carries.
struct fault_fire {
  std::uint64_t value = 0, value2 = 0;
};

// The armed faults; thread-safe. `take` fires a fault (decrements its count) when one of
// that kind is armed for the endpoint and has fires left; a rule with SKIP left counts the
// request down instead and does not fire. With nothing armed, no call takes the lock.
class fault_set {
 public:
  void arm(std::vector<fault_rule> rules);  // adds to what is armed
  void clear();
  std::optional<fault_fire> fire(fault_kind kind, endpoint where);
  std::optional<std::uint64_t> take(fault_kind kind, endpoint where) {
    const auto f = fire(kind, where);
    return f ? std::optional<std::uint64_t>(f->value) : std::nullopt;
  }
  // max-conns: the cap for `where` if one is armed with fires left (does not fire it).
  std::optional<std::uint64_t> cap(fault_kind kind, endpoint where) const;
  std::vector<fault_rule> snapshot() const;
  // How many times each kind fired since the last reset (kept after clear()).
  std::vector<std::pair<std::string, std::uint64_t>> fired_counts() const;
  void reset_fired_counts();

 private:
  mutable std::mutex mutex_;
  std::atomic<bool> any_armed_{false};  // fast path: no lock when nothing is armed
  std::vector<fault_rule> rules_;
  std::uint64_t fired_[fault_kind_count] = {};
};

}  // namespace fusproxy::sim
