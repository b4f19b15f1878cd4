// The model's functions: representation ETags, error names, upstream failures -> errors.
#include "firmware/model/errors.hpp"

#include <cstdio>

namespace fusproxy::server {

std::string representation_etag(const firmware_metadata& meta, download_variant variant) {
  char text[80];
  const bool enc = variant == download_variant::encrypted;
  std::snprintf(text, sizeof text, "\"%08x-%llu-%s\"", meta.crc32.value_or(0),
                static_cast<unsigned long long>(enc ? meta.size : meta.plain_size),
                enc ? "enc" : "plain");
  return text;
}

std::string_view errc_name(firmware_errc e) noexcept {
  switch (e) {
    case firmware_errc::bad_request:
      return "bad_request";
    case firmware_errc::not_found:
      return "not_found";
    case firmware_errc::not_hosted:
      return "not_hosted";
    case firmware_errc::in_use:
      return "in_use";
    case firmware_errc::cache_full:
      return "cache_full";
    case firmware_errc::upstream_error:
      return "upstream_error";
    case firmware_errc::upstream_auth:
      return "upstream_auth";
    case firmware_errc::upstream_imei_required:
      return "upstream_imei_required";
    case firmware_errc::upstream_unreachable:
      return "upstream_unreachable";
    case firmware_errc::upstream_timeout:
      return "upstream_timeout";
    case firmware_errc::unsupported:
      return "unsupported";
    case firmware_errc::not_a_tar:
      return "not_a_tar";
    case firmware_errc::bad_archive:
      return "bad_archive";
    case firmware_errc::shutting_down:
      return "shutting_down";
    case firmware_errc::internal_error:
      return "internal_error";
  }
  return "internal_error";
}

service_error to_service_error(const upstream::failure& f) {
  using upstream::errc;
  service_error e;
  e.message = f.message();
  if (f.is(errc::not_found) || f.is(errc::bad_version) || f.is(errc::invalid_argument)) {
    // The server validated the request's form, so upstream refusing the version means it
    // does not know it for this model/region.
    e.kind = firmware_errc::not_found;
  } else if (f.is(errc::not_hosted)) {
    e.kind = firmware_errc::not_hosted;
  } else if (f.is(errc::served_other)) {
    e.kind = firmware_errc::not_hosted;
    e.served_version = f.served_version;
    e.message = "that build is not hosted; upstream serves " + f.served_version + " instead";
  } else if (f.is(errc::auth) || f.is(errc::wrong_key_set)) {
    e.kind = firmware_errc::upstream_auth;
  } else if (f.is(errc::imei_required)) {
    e.kind = firmware_errc::upstream_imei_required;
    e.message += "; set --imei MODEL=IMEI (or a default --imei)";
  } else if (f.is(errc::timeout)) {
    e.kind = firmware_errc::upstream_timeout;
  } else if (f.is(errc::unreachable)) {
    e.kind = firmware_errc::upstream_unreachable;
  } else {
    // firewall, bad_answer, upstream_status, rate_limited (upstream 429/503: our own 429
    // is for our own limits), too_large, tls, bad_range, dropped, wrong_key.
    e.kind = firmware_errc::upstream_error;
    if (f.is(errc::rate_limited) && f.retry_after.count() > 0)
      e.message +=
          " (upstream asks to retry after " + std::to_string(f.retry_after.count()) + " s)";
  }
  return e;
}

bool is_definitive(const upstream::failure& f) {
  using upstream::errc;
  return f.is(errc::not_found) || f.is(errc::bad_version) || f.is(errc::invalid_argument) ||
         f.is(errc::not_hosted) || f.is(errc::served_other);
}

std::string_view outcome_label(const upstream::failure& f) {
  return errc_name(to_service_error(f).kind);
}

}  // namespace fusproxy::server
