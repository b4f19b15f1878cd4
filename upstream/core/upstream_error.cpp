#include "upstream/core/upstream_error.hpp"

#include <boost/throw_exception.hpp>
#include <ostream>
#include <stdexcept>

namespace fusproxy::upstream {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fusproxy.upstream"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_found:
        return "unknown model/region or no firmware";
      case errc::not_hosted:
        return "build not hosted upstream";
      case errc::served_other:
        return "upstream serves another build";
      case errc::bad_version:
        return "bad firmware version";
      case errc::auth:
        return "upstream rejected the authentication";
      case errc::imei_required:
        return "upstream requires a valid IMEI/serial (legacy dialect)";
      case errc::firewall:
        return "upstream answered with an HTML page (web firewall?)";
      case errc::bad_answer:
        return "upstream answer is malformed";
      case errc::upstream_status:
        return "unexpected upstream status";
      case errc::timeout:
        return "upstream timed out";
      case errc::unreachable:
        return "upstream unreachable";
      case errc::rate_limited:
        return "upstream rate-limited the request";
      case errc::too_large:
        return "upstream answer too large";
      case errc::tls:
        return "TLS failure talking to upstream";
      case errc::bad_range:
        return "upstream answered a range request wrongly";
      case errc::dropped:
        return "upstream connection dropped before the body ended";
      case errc::wrong_key:
        return "decryption key is wrong (bad padding)";
      case errc::invalid_argument:
        return "invalid upstream request";
      case errc::wrong_key_set:
        return "upstream rejected the authentication (wrong legacy key set)";
      case errc::init_refused:
        return "upstream refused to authorise the download (InitForMass)";
    }
    return "unknown upstream error";
  }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

std::string failure::message() const {
  std::string text = code.message();
  if (!detail.empty()) text += ": " + detail;
  return text;
}

failure make_failure(errc e, std::string detail) {
  failure f;
  f.code = make_error_code(e);
  f.detail = std::move(detail);
  return f;
}

std::ostream& operator<<(std::ostream& os, const failure& f) {
  return os << f.message();
}

void throw_exception_from_error(const failure& f, const boost::source_location& loc) {
  boost::throw_exception(boost::system::system_error(f.code, f.detail), loc);
}

}  // namespace fusproxy::upstream
