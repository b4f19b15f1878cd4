#pragma once
// The upstream client's one error type: what went wrong talking to Samsung (or fus-sim), as
// the server needs it to pick a status and a stable error code. A `failure` carries the
// code plus the details some kinds need (the served version, the HTTP status, Retry-After,
// the bytes received before a drop).
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace fusproxy::upstream {

enum class errc {
  not_found = 1,     // unknown model/region (FOTA 403, no version anywhere, PDA not listed)
  not_hosted,        // the build is not (or no longer) hosted: Status 404, no BINARY_NAME
  served_other,      // upstream serves another build than the one asked for (served_version)
  bad_version,       // malformed version, or upstream says so (400 / F01)
  auth,              // keys rejected, 401 after the retry, wrong legacy key set
  imei_required,     // 408: legacy dialect needs a valid IMEI/serial for the model
  firewall,          // an HTML page instead of XML
  bad_answer,        // garbage XML, missing fields, unknown encryption
  upstream_status,   // an unexpected HTTP or XML status (http_status/detail keep it)
  timeout,           // connect, read or whole-request timeout
  unreachable,       // connection refused, DNS failure, network unreachable
  rate_limited,      // 429 or 503 (retry_after kept when given)
  too_large,         // an XML answer above protocol::max_answer_size
  tls,               // TLS handshake or certificate verification failed
  bad_range,         // a range answer that is not 206 with the exact Content-Range
  dropped,           // the connection ended before the whole body arrived (received kept)
  wrong_key,         // the last block's PKCS#7 pad is invalid: the build's key is wrong
  invalid_argument,  // the caller asked for something impossible (range past the end, bad URL)
  wrong_key_set,     // legacy: the configured key set does not decrypt upstream's NONCE
  init_refused,      // InitForMass refused the file (a 4xx, or FUS XML with a failing Status):
                     // the download GETs would only get 403; http_status/detail keep why
};

const boost::system::error_category& error_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

struct failure {
  boost::system::error_code code;
  std::string detail;                   // for logs and the JSON message
  unsigned http_status = 0;             // the upstream HTTP status when there was one
  std::string served_version;           // served_other: the build upstream serves instead
  std::chrono::seconds retry_after{0};  // rate_limited: Retry-After when upstream sent it
  std::uint64_t received = 0;           // dropped / bad_range: body bytes received

  bool is(errc e) const { return code == make_error_code(e); }
  std::string message() const;  // code message plus the detail
};

failure make_failure(errc e, std::string detail = {});
std::ostream& operator<<(std::ostream& os, const failure& f);  // logs, test output

// boost::system::result<T, failure>::value() throws this on a failure.
[[noreturn]] void throw_exception_from_error(const failure& f, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, failure>;

}  // namespace fusproxy::upstream

template <>
struct boost::system::is_error_code_enum<fusproxy::upstream::errc> : std::true_type {};
