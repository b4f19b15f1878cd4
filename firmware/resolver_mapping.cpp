#include "firmware/resolver_mapping.hpp"

#include <cctype>

#include "upstream/fus_client.hpp"

namespace fusproxy::server {

std::optional<std::time_t> parse_fus_timestamp(std::string_view text) {
  if (text.size() != 14) return std::nullopt;
  for (char c : text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  const auto num = [&](std::size_t at, std::size_t n) {
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) v = v * 10 + (text[i] - '0');
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  tm.tm_hour = num(8, 2);
  tm.tm_min = num(10, 2);
  tm.tm_sec = num(12, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  const std::time_t t = ::timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return t;
}

std::string_view strip_encryption_suffix(std::string_view filename) {
  for (std::string_view suffix : {".enc4", ".enc2"})
    if (filename.ends_with(suffix)) return filename.substr(0, filename.size() - suffix.size());
  return filename;
}

firmware_metadata make_metadata(const upstream::build_info& build, std::uint64_t plain_size) {
  const auto& in = build.inform;
  firmware_metadata m;
  m.model = build.model;
  m.region = build.region;
  m.version = build.version;
  m.os_version = in.os_version;
  m.filename = in.binary_name;
  m.plain_filename = std::string(strip_encryption_suffix(in.binary_name));
  m.encryption = std::string(upstream::to_string(build.enc));
  m.size = in.byte_size;
  m.plain_size = plain_size;
  m.crc32 = in.crc;
  m.last_modified = parse_fus_timestamp(in.last_modified).value_or(0);
  m.changelog_url = in.description;
  m.files = {in.files.bl, in.files.ap, in.files.cp, in.files.csc, in.files.home_csc};
  return m;
}

}  // namespace fusproxy::server
