#pragma once
// GET /firmware/{model}/{region}/feed.atom: the version list as an Atom feed (RFC 4287).
// Pure: version list in, XML text out; built as a RapidXML document and printed by
// RapidXML, which escapes markup; text is first made valid XML 1.0 (docs/operations.md).
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "firmware/model/firmware_types.hpp"

namespace fusproxy::server {

struct feed_options {
  // Prefix of absolute links ("http://mirror:8080"); empty: links relative to the feed.
  std::string base_url;
  std::string generator_version;  // fusproxy's version
};

// Entries in the list's order (newest first). Entry ids are name-based UUIDs (RFC 4122 v5)
// of model, region and version: the same build has the same id on every mirror, forever.
// Dates: see build_month().
std::string atom_feed(const version_list& list, const feed_options& options);

// The first of the month a build was made, from its PDA's last three characters (year
// letter: A = 2001 … U = 2021 … Z = 2026; month letter: A = January … L = December; then
// the build's serial): "A207FXXU2CUI2" -> 2021-09-01. nullopt when they do not read so.
std::optional<std::time_t> build_month(std::string_view version);

// `text` as valid XML 1.0 character data: invalid UTF-8 becomes U+FFFD, characters XML
// forbids (C0 controls but tab/LF/CR, U+FFFE, U+FFFF) are dropped. Markup is not escaped
// here (the printer does it).
std::string xml_safe_text(std::string_view text);

// An RFC 4122 version 5 (SHA-1, name-based) UUID in the URL namespace, as "urn:uuid:…".
std::string name_uuid_urn(std::string_view name);

}  // namespace fusproxy::server
