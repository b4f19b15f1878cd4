#pragma once
// The simulator's catalogue: which models, regions and builds exist and how each answers.
// Built-in default plus a JSON file (`fus-sim --catalogue FILE`, format in docs/sim.md).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace fusproxy::sim {

enum class encryption { enc4, enc2 };

// The smallest synthetic zip a build may ask for (five members and their headers must fit).
inline constexpr std::uint64_t min_plain_size = 64 * 1024;
// The largest one (1 TiB): beyond any real firmware.
inline constexpr std::uint64_t max_plain_size = std::uint64_t{1} << 40;
// A build with a deflated AP member is at most this large (AP is deflated at construction).
inline constexpr std::uint64_t max_deflated_ap_plain_size = 64ull * 1024 * 1024;

struct build {
  std::string model;    // "SM-A207F" (upper-case)
  std::string region;   // "SER"
  std::string version;  // 4-part, '/'-separated
  std::string os;       // "R(Android 11)"
  bool beta = false;
  bool hosted = true;  // false: BinaryInform for it answers 404 (not hosted)
  // When asked for this version, upstream answers with the model's newest hosted build
  // instead (what Samsung does for many old versions).
  bool answers_with_newest = false;
  encryption enc = encryption::enc4;
  std::string binary_name;       // "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4"
  std::string model_path;        // "/neofus/910/"
  std::string logic_value;       // 16 chars (LOGIC_VALUE_FACTORY), enc4 key input
  std::string model_type;        // DEVICE_MODEL_TYPE, e.g. "9"
  std::string last_modified;     // YYYYMMDDhhmmss
  std::string description;       // changelog URL
  std::uint64_t plain_size = 0;  // size of the synthetic zip; the encrypted size follows
  std::uint64_t seed = 1;        // content seed
  // Replays a captured answer: BINARY_CRC announced as this instead of the true CRC.
  std::optional<std::uint32_t> crc_override;
  // BL/AP/CP/CSC/HOME_CSC member names (derived from the version when empty).
  std::string bl, ap, cp, csc, home_csc;
  // The AP member deflated in the zip (real builds have both); AP is then held in memory at
  // construction, so only for builds up to max_deflated_ap_plain_size.
  bool ap_deflated = false;
  // MD5s (32 lower-case hex digits) of the AP and CP tars, i.e. their .tar.md5 trailers. A
  // trailer costs an MD5 pass over its member (~1.4 s per GB) when the build's image is first
  // made, and the CRC-32s announced cover it, so it cannot wait: built-in builds carry theirs
  // precomputed (checked by sim_firmware_md5_precomputed). Empty: computed on first use.
  std::string ap_md5, cp_md5;
  // Bad input for the proxy's tests: AP's boot.img.lz4 gets a block whose data no longer
  // matches its block checksum, mid-frame (the tar and its MD5 line stay consistent).
  bool corrupt_lz4 = false;
  // A member that is not a tar: a plain text file of this name (deflated), placed before AP.
  // Empty: none (FUS builds hold only the five .tar.md5 members as far as we know).
  std::string text_member;

  friend bool operator==(const build&, const build&) = default;
};

struct model_region {
  std::string model;
  std::string region;
  std::vector<build> builds;  // newest first (SmartHistory order)
  bool in_fota = true;        // false: FOTA version.xml answers 403 AccessDenied

  friend bool operator==(const model_region&, const model_region&) = default;
};

// Why a catalogue was refused (the detail string of from_json says where).
enum class catalogue_errc {
  bad_json = 1,   // not JSON at all
  missing_field,  // a required member is absent
  wrong_type,     // e.g. a size given as a string
  bad_value,      // e.g. a version without 4 parts, a size below min_plain_size
  unknown_field,  // a member the format does not define (usually a typo)
  duplicate,      // two model/region pairs, versions or binary names alike
};
const boost::system::error_category& catalogue_category() noexcept;
boost::system::error_code make_error_code(catalogue_errc e) noexcept;

// Fills empty bl/ap/cp/csc/home_csc with names derived from the version and seed, in the
// style of real builds ("AP_<PDA>_CL…_QB…_REV00_user_low_ship_MULTI_CERT_meta_OS….tar.md5").
// The catalogue does this for every build it holds, so servers can use the fields as they are.
void fill_member_names(build& b);

class catalogue {
 public:
  // Fast: metadata only, no firmware content is computed.
  static catalogue builtin();
  static boost::system::result<catalogue> from_json(std::string_view json);
  // The same; on failure `detail` (when given) says what and where, e.g.
  // "models[0].builds[2].plain_size: must be a number".
  static boost::system::result<catalogue> from_json(std::string_view json, std::string* detail);
  // Validates entries made in code (tests) by the rules of from_json, fills member names.
  static boost::system::result<catalogue> from_entries(std::vector<model_region> entries,
                                                       std::string* detail = nullptr);
  // The JSON form read by from_json (every field written out).
  std::string to_json() const;

  const std::vector<model_region>& entries() const { return entries_; }
  // Lookups compare model, region and version case-insensitively (ASCII).
  const model_region* find(std::string_view model, std::string_view region) const;
  const build* find_build(std::string_view model, std::string_view region,
                          std::string_view version) const;
  // The build's BINARY_NAME, the lookup key of downloads.
  const build* find_by_binary_name(std::string_view binary_name) const;
  // The model/region's newest hosted non-beta build (what answers_with_newest serves and
  // what FOTA announces as latest); nullptr when there is none.
  const build* newest(std::string_view model, std::string_view region) const;

 private:
  std::vector<model_region> entries_;
};

}  // namespace fusproxy::sim

template <>
struct boost::system::is_error_code_enum<fusproxy::sim::catalogue_errc> : std::true_type {};
