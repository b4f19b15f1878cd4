#include "protocol/error.hpp"

#include <string>

namespace fusproxy::protocol {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fusproxy.protocol"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::malformed_xml:
        return "upstream answer is not well-formed XML";
      case errc::firewall_page:
        return "upstream answered with an HTML page (web firewall?)";
      case errc::not_fus_message:
        return "upstream answer is not a FUS message";
      case errc::too_large:
        return "upstream answer is too large";
      case errc::missing_status:
        return "upstream answer has no Status";
      case errc::missing_field:
        return "upstream answer lacks a required field";
      case errc::bad_field:
        return "upstream answer has an invalid field value";
      case errc::bad_version:
        return "malformed firmware version";
    }
    return "unknown protocol error";
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

}  // namespace fusproxy::protocol
