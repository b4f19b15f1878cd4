// The metadata path's retry policy (upstream/core/upstream_retry.hpp): which failures are
// retried, in which session, after how long, and that the deadline bounds it all.
#include <catch2/catch.hpp>

#include "upstream/core/upstream_retry.hpp"
#include "upstream/core/upstream_wire.hpp"

using namespace fusproxy::upstream;
using namespace std::chrono_literals;
using clock_type = retry_schedule::clock;

namespace {

failure with_status(errc e, unsigned status) {
  auto f = make_failure(e);
  f.http_status = status;
  return f;
}

}  // namespace

TEST_CASE("answers about the resource or the configuration are permanent") {
  for (auto e : {errc::not_found, errc::not_hosted, errc::served_other, errc::bad_version,
                 errc::imei_required, errc::wrong_key, errc::wrong_key_set, errc::invalid_argument,
                 errc::tls}) {
    INFO(make_error_code(e).message());
    CHECK(classify(make_failure(e)) == retry_class::permanent);
    CHECK_FALSE(is_transient(make_failure(e)));
  }
  // The statuses as the client maps them: FUS 400 (bad version), 404 (not hosted), 408
  // (IMEI), FOTA 403 (unknown pair), a download 403/405, a FOTA 400 (User-Agent refused).
  CHECK(classify(map_http_status(service::fus, 400)) == retry_class::permanent);
  CHECK(classify(map_http_status(service::fus, 404)) == retry_class::permanent);
  CHECK(classify(map_http_status(service::fus, 408)) == retry_class::permanent);
  CHECK(classify(map_http_status(service::fota, 403)) == retry_class::permanent);
  CHECK(classify(map_http_status(service::download, 405)) == retry_class::permanent);
  CHECK(classify(map_http_status(service::fota, 400)) == retry_class::permanent);
  CHECK(classify(*map_fus_status("F01")) == retry_class::permanent);
  CHECK(classify(*map_fus_status("404")) == retry_class::permanent);
  CHECK(classify(*map_fus_status("408")) == retry_class::permanent);
}

TEST_CASE("network trouble, 5xx, 429 and bad range answers are retried in the same session") {
  for (auto e :
       {errc::timeout, errc::unreachable, errc::dropped, errc::rate_limited, errc::bad_range}) {
    INFO(make_error_code(e).message());
    CHECK(classify(make_failure(e)) == retry_class::transient);
  }
  for (unsigned s : {500u, 502u, 503u, 504u, 429u}) {
    INFO(s);
    CHECK(classify(map_http_status(service::fus, s)) == retry_class::transient);
    CHECK(classify(map_http_status(service::download, s)) == retry_class::transient);
    CHECK(classify(map_http_status(service::fota, s)) == retry_class::transient);
  }
  CHECK(classify(*map_fus_status("500")) == retry_class::transient);
  CHECK(classify(with_status(errc::upstream_status, 599)) == retry_class::transient);
  CHECK(classify(with_status(errc::upstream_status, 418)) == retry_class::permanent);
  CHECK(classify(make_failure(errc::upstream_status)) == retry_class::permanent);
}

TEST_CASE("garbage, firewall pages, a missing NONCE and a lasting 401 retry in a new session") {
  for (auto e : {errc::firewall, errc::bad_answer, errc::too_large, errc::auth}) {
    INFO(make_error_code(e).message());
    CHECK(classify(make_failure(e)) == retry_class::new_session);
  }
  CHECK(classify(map_http_status(service::fus, 401)) == retry_class::new_session);
  // A download 403: the file is not authorised in this session (Samsung answers 403 to that
  // session for minutes); a new session does BinaryInform and InitForMass again.
  CHECK(classify(map_http_status(service::download, 403)) == retry_class::new_session);
  CHECK(classify(map_http_status(service::fus, 403)) == retry_class::new_session);
  CHECK(classify(*map_fus_status("401")) == retry_class::new_session);
}

TEST_CASE("back-off doubles from the base up to the cap, its upper half jittered") {
  const backoff b{250ms, 4000ms};
  CHECK(backoff_delay(b, 0, 0.0) == 125ms);
  CHECK(backoff_delay(b, 0, 1.0) == 250ms);
  CHECK(backoff_delay(b, 0, 0.5) == 187ms);
  CHECK(backoff_delay(b, 1, 1.0) == 500ms);
  CHECK(backoff_delay(b, 2, 1.0) == 1000ms);
  CHECK(backoff_delay(b, 3, 0.0) == 1000ms);
  CHECK(backoff_delay(b, 4, 1.0) == 4000ms);
  CHECK(backoff_delay(b, 5, 1.0) == 4000ms);
  CHECK(backoff_delay(b, 1000, 1.0) == 4000ms);  // no overflow
  CHECK(backoff_delay(b, 1000, 0.0) == 2000ms);
  // Jitter outside [0, 1] is clamped.
  CHECK(backoff_delay(b, 0, -3.0) == 125ms);
  CHECK(backoff_delay(b, 0, 7.0) == 250ms);
}

TEST_CASE("a schedule retries transient failures until the deadline") {
  const auto t0 = clock_type::time_point{} + 1h;
  retry_schedule s({250ms, 4000ms}, 20s, t0);
  CHECK(s.deadline() == t0 + 20s);
  const auto f = map_http_status(service::fus, 503);

  auto now = t0;
  std::vector<std::chrono::milliseconds> delays;
  for (;;) {
    auto step = s.after(f, now, 1.0);
    if (!step.retry) break;
    CHECK_FALSE(step.new_session);
    delays.push_back(step.delay);
    now += step.delay + 10ms;  // the attempt itself takes 10 ms
  }
  // 250, 500, 1000, 2000, then the 4 s cap: the 8th retry starts at 15.82 s, a 9th would
  // start at 23.83 s, past the deadline.
  const std::vector<std::chrono::milliseconds> want{250ms,  500ms,  1000ms, 2000ms,
                                                    4000ms, 4000ms, 4000ms, 4000ms};
  CHECK(delays == want);
  CHECK(s.retries() == 8);
  CHECK(now < s.deadline());
}

TEST_CASE("a schedule gives up at once on a permanent failure") {
  const auto t0 = clock_type::now();
  retry_schedule s({}, 20s, t0);
  auto step = s.after(make_failure(errc::not_found), t0, 0.5);
  CHECK_FALSE(step.retry);
  step = s.after(make_failure(errc::wrong_key_set), t0, 0.5);
  CHECK_FALSE(step.retry);
  step = s.after(make_failure(errc::imei_required), t0, 0.5);
  CHECK_FALSE(step.retry);
  CHECK(s.retries() == 0);
}

TEST_CASE("a suspect session asks for a new one") {
  const auto t0 = clock_type::now();
  retry_schedule s({}, 20s, t0);
  auto step =
      s.after(make_failure(errc::bad_answer, "GenerateNonce answer has no NONCE header"), t0, 0.0);
  CHECK(step.retry);
  CHECK(step.new_session);
  CHECK(step.delay == 125ms);
  step = s.after(make_failure(errc::dropped), t0 + 1s, 0.0);
  CHECK(step.retry);
  CHECK_FALSE(step.new_session);
  CHECK(step.delay == 250ms);  // the second retry: base * 2, half of it
}

TEST_CASE("Retry-After is honoured, but never past the deadline") {
  const auto t0 = clock_type::now();
  retry_schedule s({250ms, 4000ms}, 3s, t0);
  auto limited = map_http_status(service::fus, 429, "2");
  REQUIRE(limited.retry_after == 2s);
  auto step = s.after(limited, t0, 1.0);
  CHECK(step.retry);
  CHECK(step.delay == 2s);  // above the back-off (250 ms)
  // Again at t0 + 2.1 s: 2 s more would end past the 3 s deadline: give up now.
  step = s.after(limited, t0 + 2100ms, 1.0);
  CHECK_FALSE(step.retry);
  // A Retry-After below the back-off does not shorten it.
  retry_schedule t({1000ms, 4000ms}, 20s, t0);
  step = t.after(map_http_status(service::download, 503, "0"), t0, 1.0);
  CHECK(step.retry);
  CHECK(step.delay == 1000ms);
}

TEST_CASE("no retry starts when its delay reaches the deadline") {
  const auto t0 = clock_type::now();
  retry_schedule s({1000ms, 4000ms}, 1s, t0);
  CHECK_FALSE(s.after(make_failure(errc::timeout), t0, 1.0).retry);  // 1 s: exactly the deadline
  CHECK(s.after(make_failure(errc::timeout), t0, 0.0).retry);        // 0.5 s: fits
  CHECK_FALSE(s.after(make_failure(errc::timeout), t0 + 2s, 0.0).retry);  // past it
}
