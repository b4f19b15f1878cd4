#include "http/api_error.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace fusproxy::server {

status_and_code describe(api_error e) noexcept {
  switch (e) {
    case api_error::bad_request:
      return {400, "bad_request"};
    case api_error::unauthorized:
      return {401, "unauthorized"};
    case api_error::forbidden:
      return {403, "forbidden"};
    case api_error::not_found:
      return {404, "not_found"};
    case api_error::not_hosted:
      return {404, "not_hosted"};
    case api_error::method_not_allowed:
      return {405, "method_not_allowed"};
    case api_error::precondition_failed:
      return {412, "precondition_failed"};
    case api_error::payload_too_large:
      return {413, "payload_too_large"};
    case api_error::uri_too_long:
      return {414, "uri_too_long"};
    case api_error::range_not_satisfiable:
      return {416, "range_not_satisfiable"};
    case api_error::rate_limited:
      return {429, "rate_limited"};
    case api_error::header_too_large:
      return {431, "header_too_large"};
    case api_error::internal_error:
      return {500, "internal_error"};
    case api_error::not_implemented:
      return {501, "not_implemented"};
    case api_error::upstream_error:
      return {502, "upstream_error"};
    case api_error::upstream_auth:
      return {502, "upstream_auth"};
    case api_error::upstream_imei_required:
      return {502, "upstream_imei_required"};
    case api_error::upstream_unreachable:
      return {503, "upstream_unreachable"};
    case api_error::shutting_down:
      return {503, "shutting_down"};
    case api_error::not_ready:
      return {503, "not_ready"};
    case api_error::upstream_timeout:
      return {504, "upstream_timeout"};
    case api_error::in_use:
      return {409, "in_use"};
    case api_error::cache_full:
      return {507, "cache_full"};
    case api_error::not_a_tar:
      return {415, "not_a_tar"};
    case api_error::bad_archive:
      return {502, "bad_archive"};
  }
  return {500, "internal_error"};
}

std::string error_body(api_error e, std::string_view message, const error_fields& extra) {
  boost::json::object error;
  error["code"] = describe(e).code;
  error["message"] = message;
  for (const auto& [key, value] : extra) error[key] = value;
  boost::json::object body;
  body["error"] = std::move(error);
  return boost::json::serialize(body);
}

api_error api_error_of(firmware_errc e) noexcept {
  switch (e) {
    case firmware_errc::bad_request:
      return api_error::bad_request;
    case firmware_errc::not_found:
      return api_error::not_found;
    case firmware_errc::not_hosted:
      return api_error::not_hosted;
    case firmware_errc::in_use:
      return api_error::in_use;
    case firmware_errc::cache_full:
      return api_error::cache_full;
    case firmware_errc::upstream_error:
      return api_error::upstream_error;
    case firmware_errc::upstream_auth:
      return api_error::upstream_auth;
    case firmware_errc::upstream_imei_required:
      return api_error::upstream_imei_required;
    case firmware_errc::upstream_unreachable:
      return api_error::upstream_unreachable;
    case firmware_errc::upstream_timeout:
      return api_error::upstream_timeout;
    case firmware_errc::unsupported:
      return api_error::not_implemented;
    case firmware_errc::not_a_tar:
      return api_error::not_a_tar;
    case firmware_errc::bad_archive:
      return api_error::bad_archive;
    case firmware_errc::shutting_down:
      return api_error::shutting_down;
    case firmware_errc::internal_error:
      return api_error::internal_error;
  }
  return api_error::internal_error;
}

}  // namespace fusproxy::server
