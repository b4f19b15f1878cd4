#include "upstream/core/upstream_retry.hpp"

#include <algorithm>

namespace fusproxy::upstream {

retry_class classify(const failure& f) {
  if (f.is(errc::timeout) || f.is(errc::unreachable) || f.is(errc::dropped) ||
      f.is(errc::rate_limited) || f.is(errc::bad_range))
    return retry_class::transient;
  // A server error (HTTP 5xx, a FUS Status 5xx) may pass. A 403 from FUS or the download
  // host says the session has not authorised the file (Samsung keeps answering 403 to that
  // session): a new session (BinaryInform, InitForMass) is the cure. Anything else
  // unexpected (405, a FOTA 400) would be answered the same way again.
  if (f.is(errc::upstream_status)) {
    if (f.http_status == 403) return retry_class::new_session;
    return f.http_status >= 500 && f.http_status <= 599 ? retry_class::transient
                                                        : retry_class::permanent;
  }
  // The session may be what is wrong: a garbled or cut answer, an answer without NONCE, a
  // firewall page, or a 401 that survived the session's own fresh-nonce retry.
  if (f.is(errc::firewall) || f.is(errc::bad_answer) || f.is(errc::too_large) || f.is(errc::auth))
    return retry_class::new_session;
  return retry_class::permanent;
}

std::chrono::milliseconds backoff_delay(const backoff& b, unsigned retry, double jitter) {
  jitter = std::clamp(jitter, 0.0, 1.0);
  auto d = b.base;
  for (unsigned i = 0; i < retry && d < b.cap; ++i) d *= 2;
  d = std::min(d, b.cap);
  const auto half = d / 2;
  return half + std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(
                    static_cast<double>(half.count()) * jitter));
}

retry_schedule::retry_schedule(backoff b, clock::duration deadline, clock::time_point start)
    : backoff_(b), deadline_(start + deadline) {}

retry_step retry_schedule::after(const failure& f, clock::time_point now, double jitter) {
  const auto kind = classify(f);
  if (kind == retry_class::permanent) return {};
  auto delay = backoff_delay(backoff_, retries_, jitter);
  if (f.is(errc::rate_limited)) delay = std::max<std::chrono::milliseconds>(delay, f.retry_after);
  if (now + delay >= deadline_) return {};
  ++retries_;
  return {true, kind == retry_class::new_session, delay};
}

}  // namespace fusproxy::upstream
