#pragma once
// The protocol module's one error type: what can be wrong with an upstream answer.
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace fusproxy::protocol {

enum class errc {
  malformed_xml = 1,  // not well-formed XML (truncated, garbage)
  firewall_page,      // an HTML page (web firewall, error page) instead of XML
  not_fus_message,    // XML, but not a FUSMsg / versioninfo document
  too_large,          // answer above max_answer_size
  missing_status,     // FUSBody/Results/Status absent
  missing_field,      // a required field is absent or empty (e.g. BINARY_NAME)
  bad_field,          // a field has an impossible value (non-numeric size, ...)
  bad_version,        // a firmware version string that cannot be normalised
};

const boost::system::error_category& error_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

template <class T>
using result = boost::system::result<T>;

// Upstream answers larger than this are refused before parsing.
inline constexpr std::size_t max_answer_size = 8u << 20;

}  // namespace fusproxy::protocol

template <>
struct boost::system::is_error_code_enum<fusproxy::protocol::errc> : std::true_type {};
