#pragma once
// The resolver's pure parts: FUS timestamps and file names, and a confirmed build ->
// metadata. No I/O. (Upstream failures -> domain errors: firmware/model/errors.hpp.)
#include <ctime>
#include <optional>
#include <string_view>

#include "firmware/model/errors.hpp"
#include "firmware/model/firmware_types.hpp"

namespace fusproxy::upstream {
struct build_info;
}

namespace fusproxy::server {

// LAST_MODIFIED "YYYYMMDDhhmmss" (UTC) -> time_t; nullopt when malformed.
std::optional<std::time_t> parse_fus_timestamp(std::string_view text);

// "X.zip.enc4" -> "X.zip" (also .enc2); other names unchanged.
std::string_view strip_encryption_suffix(std::string_view filename);

// The metadata of a build BinaryInform confirmed, with its exact plain size.
firmware_metadata make_metadata(const upstream::build_info& build, std::uint64_t plain_size);

}  // namespace fusproxy::server
