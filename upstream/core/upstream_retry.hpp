#pragma once
// The retry policy of the metadata path (docs/resolver.md, "Retries"): which upstream
// failures are worth another attempt, whether that attempt needs a fresh FUS session, and
// how long to wait before it (exponential back-off with jitter, upstream's Retry-After
// honoured, everything inside one deadline). Pure: no clock, no randomness, no I/O; the
// caller passes `now` and a jitter value, so every schedule is unit-tested exactly.
#include <chrono>

#include "upstream/core/upstream_error.hpp"

namespace fusproxy::upstream {

enum class retry_class {
  permanent,    // an answer about the resource or our configuration: retrying changes nothing
  transient,    // the network or the server hiccuped: retry in the same session
  new_session,  // transient, but the session is suspect (garbage, no nonce, repeated 401)
};

// permanent: not_found, not_hosted, served_other, bad_version, imei_required, wrong_key,
//   wrong_key_set, invalid_argument, tls (certificate), an unexpected 4xx status;
// transient: timeout, unreachable, dropped (reset, cut body), rate_limited (429/503), a 5xx
//   (HTTP or FUS Status), bad_range (a 200 or a wrong Content-Range to a range request);
// new_session: firewall, bad_answer (malformed XML, missing NONCE), too_large, auth (a 401
//   that a fresh nonce in the same session did not cure), a 403 from FUS or the download
//   host (the file is not authorised in this session).
retry_class classify(const failure& f);
inline bool is_transient(const failure& f) {
  return classify(f) != retry_class::permanent;
}

struct backoff {
  std::chrono::milliseconds base{250};   // the first retry's delay (before jitter)
  std::chrono::milliseconds cap{4'000};  // the doubling stops here
};

// The delay before retry number `retry` (0 for the first): min(cap, base * 2^retry), of
// which the upper half is jittered ("equal jitter"): d/2 + d/2 * jitter, jitter in [0, 1).
std::chrono::milliseconds backoff_delay(const backoff& b, unsigned retry, double jitter);

struct retry_step {
  bool retry = false;        // false: give up and answer this failure
  bool new_session = false;  // the next attempt starts a fresh FUS session
  std::chrono::milliseconds delay{0};
};

// One lookup's retries: made when the lookup starts, asked after each failed attempt.
class retry_schedule {
 public:
  using clock = std::chrono::steady_clock;
  retry_schedule(backoff b, clock::duration deadline, clock::time_point start);

  // After a failed attempt at `now`: retry (after `delay`, in a new session or not) or give
  // up. Gives up on a permanent failure, and when the retry could not start before the
  // deadline: a Retry-After longer than what is left ends the lookup at once instead of
  // waiting for an attempt that would be cut anyway. The delay is never below upstream's
  // Retry-After.
  retry_step after(const failure& f, clock::time_point now, double jitter);

  clock::time_point deadline() const { return deadline_; }
  unsigned retries() const { return retries_; }

 private:
  backoff backoff_;
  clock::time_point deadline_;
  unsigned retries_ = 0;
};

}  // namespace fusproxy::upstream
