#pragma once
// Firmware versions: normalisation, SmartHistory and FOTA version.xml, and their merge.
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"

namespace fusproxy::protocol {

// Upper-cases; a 3-part FOTA version gets its first part appended; an empty third part
// takes the first. Also accepts '_' or "%2F" as separators. bad_version when it has not 3
// or 4 non-empty parts of [A-Z0-9].
result<std::string> normalize_version(std::string_view version);
// "A/B/C/D" -> "A_B_C_D" and back ("A_B_C_D" -> "A/B/C/D"); no other change.
std::string version_id(std::string_view version);

struct version_entry {
  std::string version;  // 4-part
  std::string os;       // as upstream gives it ("V(Android 15)") or FOTA's o attribute
  bool beta = false;
};

// SmartHistory.do request body.
std::string build_smart_history(std::string_view model, std::string_view region);
// SmartHistory answer: BINARY_INFO entries merged (by version, index, sequence), ordered by
// BINARY_SEQUENCE, newest first; index 90 or OS "Z(Android 99)" marks a beta. An empty
// Results/Status is fine. Versions are normalised; an entry whose version cannot be is skipped.
// not_fus_message (and the other parse errors) when the answer is not a FUSMsg.
result<std::vector<version_entry>> parse_smart_history(std::string_view xml);

struct fota_versions {
  std::string latest;                 // 4-part, "" when absent
  std::string latest_os;              // the o attribute of <latest>
  std::vector<std::string> upgrades;  // 4-part, in the file's order
};
// versioninfo/firmware/version: <latest o="..."> and upgrade/<value>s, normalised to 4 parts,
// duplicates (and upgrades equal to latest) dropped, unusable versions skipped.
// not_fus_message when the root is not <versioninfo>.
result<fota_versions> parse_fota_versions(std::string_view xml);
// S3-style <Error><Code>AccessDenied</Code> (unknown model/region pair).
bool is_fota_access_denied(std::string_view body);

// SmartHistory's order wins; FOTA-only versions follow in FOTA's order (latest first, with
// os = latest_os; upgrades with os ""), never marked beta.
std::vector<version_entry> merge_versions(const std::vector<version_entry>& history,
                                          const fota_versions& fota);
// The newest stable version of a merged list ("" when none).
std::string newest_stable(const std::vector<version_entry>& merged);

}  // namespace fusproxy::protocol
