#pragma once
// The firmware domain's errors: their names, and upstream failures -> domain errors (which
// failures are about the resource itself, which are upstream misbehaving). Pure.
#include <string_view>

#include "firmware/model/firmware_types.hpp"
#include "upstream/core/upstream_error.hpp"

namespace fusproxy::server {

// "not_found", "upstream_timeout", ...: the enumerator's name (api.md's code for the same
// failure, and the metrics label).
std::string_view errc_name(firmware_errc e) noexcept;

// not_found (unknown model/region/version), not_hosted (+ served_version), upstream_auth,
// upstream_imei_required, upstream_timeout, upstream_unreachable; everything else that
// upstream did wrong (garbage, firewall page, unexpected or 5xx/429 status, bad range,
// wrong key) is upstream_error. The message keeps upstream's detail.
service_error to_service_error(const upstream::failure& f);

// A failure that says something about the resource itself (unknown, not hosted, another
// build served): worth remembering briefly, never hidden behind a stale answer.
bool is_definitive(const upstream::failure& f);

// The metrics outcome label of an upstream exchange: the name of the error it maps to
// (the same word as the api.md code).
std::string_view outcome_label(const upstream::failure& f);

}  // namespace fusproxy::server
