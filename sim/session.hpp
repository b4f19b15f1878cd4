#pragma once
// FUS sessions as Samsung keeps them: a JSESSIONID cookie set by GenerateNonce, the nonces
// issued to the session (the newest one signs POSTs; any of them authorises a download GET),
// the files InitForMass authorised, and the downloads in flight. Pure, no I/O; the caller
// serialises access (server_core holds one mutex).
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fusproxy::sim {

enum class dialect { smart2, legacy };
std::string_view to_string(dialect d);

struct issued_nonce {
  std::string header;  // the NONCE header value as sent
  std::string plain;   // what signatures and LOGIC_CHECK use: the header itself (smart2) or
                       // the decrypted 16-character nonce (legacy)
};

struct session {
  std::string id;  // JSESSIONID
  fusproxy::sim::dialect dialect = dialect::smart2;
  std::deque<issued_nonce> nonces;  // oldest first; back() is the one to sign POSTs with
  std::set<std::string, std::less<>> informed_files;    // BINARY_NAMEs BinaryInform answered
  std::set<std::string, std::less<>> authorised_files;  // BINARY_NAMEs passed InitForMass
  unsigned active_downloads = 0;
  std::chrono::steady_clock::time_point last_used{};

  const issued_nonce& newest() const { return nonces.back(); }
  const issued_nonce* find_nonce(std::string_view header) const;
};

class session_store {
 public:
  // Sessions idle longer than `idle_timeout` are forgotten; at most `max_sessions` are kept
  // (the least recently used go first) and `max_nonces` nonces per session.
  explicit session_store(std::chrono::seconds idle_timeout = std::chrono::minutes(30),
                         std::size_t max_sessions = 10000, std::size_t max_nonces = 256);

  session& create(std::string id, dialect d, std::chrono::steady_clock::time_point now);
  session* find_by_id(std::string_view id, std::chrono::steady_clock::time_point now);
  session* find_by_nonce(std::string_view nonce_header, std::chrono::steady_clock::time_point now);
  void add_nonce(session& s, issued_nonce n);
  std::size_t size() const { return sessions_.size(); }

 private:
  void expire(std::chrono::steady_clock::time_point now);
  std::chrono::seconds idle_timeout_;
  std::size_t max_sessions_;
  std::size_t max_nonces_;
  std::map<std::string, session, std::less<>> sessions_;
  std::unordered_map<std::string, std::string> nonce_owner_;  // NONCE header -> session id
  std::chrono::steady_clock::time_point last_expiry_{};
};

// The parameters of `Authorization: FUS nonce="…", signature="…", nc="", type="", realm=""`.
struct fus_authorization {
  std::map<std::string, std::string, std::less<>> params;
  bool has(std::string_view key) const { return params.find(key) != params.end(); }
  std::string_view get(std::string_view key) const;
};
// nullopt when the header is not `FUS k="v", …` with at least nonce and signature.
std::optional<fus_authorization> parse_fus_authorization(std::string_view header);

// The value of cookie `name` in a Cookie header, or "".
std::string_view cookie_value(std::string_view cookie_header, std::string_view name);

// Legacy DEVICE_IMEI_PUSH: 15 digits with a correct Luhn check digit, or an 11-12 character
// alphanumeric serial number.
bool valid_imei_or_serial(std::string_view value);

}  // namespace fusproxy::sim
