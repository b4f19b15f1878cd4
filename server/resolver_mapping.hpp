#pragma once
// The resolver's pure parts: upstream failures -> the errors clients see, which failures
// may be answered from a stale cache entry, and a confirmed build -> metadata. No I/O.
#include <ctime>
#include <optional>
#include <string_view>

#include "protocol/upstream_error.hpp"
#include "server/firmware_types.hpp"

namespace fusproxy::upstream {
struct build_info;
}

namespace fusproxy::server {

// not_found (unknown model/region/version), not_hosted (+ served_version), upstream_auth,
// upstream_imei_required, upstream_timeout, upstream_unreachable; everything else that
// upstream did wrong (garbage, firewall page, unexpected or 5xx/429 status, bad range,
// wrong key) is upstream_error. The message keeps upstream's detail.
service_error to_service_error(const upstream::failure& f);

// A failure that says something about the resource itself (unknown, not hosted, another
// build served): worth remembering briefly, never hidden behind a stale answer.
bool is_definitive(const upstream::failure& f);

// The metrics outcome label of an upstream exchange: the api error code it maps to.
std::string_view outcome_label(const upstream::failure& f);

// LAST_MODIFIED "YYYYMMDDhhmmss" (UTC) -> time_t; nullopt when malformed.
std::optional<std::time_t> parse_fus_timestamp(std::string_view text);

// "X.zip.enc4" -> "X.zip" (also .enc2); other names unchanged.
std::string_view strip_encryption_suffix(std::string_view filename);

// The metadata of a build BinaryInform confirmed, with its exact plain size.
firmware_metadata make_metadata(const upstream::build_info& build, std::uint64_t plain_size);

}  // namespace fusproxy::server
