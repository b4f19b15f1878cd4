#pragma once
// The simulator's catalogue: which models, regions and builds exist and how each answers.
// Built-in default plus a JSON file (`fus-sim --catalogue FILE`, format in docs/sim.md).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace fusproxy::sim {

enum class encryption { enc4, enc2 };

struct build {
  std::string model;         // "SM-A207F" (upper-case)
  std::string region;        // "SER"
  std::string version;       // 4-part, '/'-separated
  std::string os;            // "R(Android 11)"
  bool beta = false;
  bool hosted = true;        // false: BinaryInform for it answers 404 (not hosted)
  // When asked for this version, upstream answers with the model's newest hosted build
  // instead (what Samsung does for many old versions).
  bool answers_with_newest = false;
  encryption enc = encryption::enc4;
  std::string binary_name;   // "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4"
  std::string model_path;    // "/neofus/910/"
  std::string logic_value;   // 16 chars (LOGIC_VALUE_FACTORY), enc4 key input
  std::string model_type;    // DEVICE_MODEL_TYPE, e.g. "9"
  std::string last_modified; // YYYYMMDDhhmmss
  std::string description;   // changelog URL
  std::uint64_t plain_size = 0;  // size of the synthetic zip; the encrypted size follows
  std::uint64_t seed = 1;        // content seed
  // Replays a captured answer: BINARY_CRC announced as this instead of the true CRC.
  std::optional<std::uint32_t> crc_override;
  // BL/AP/CP/CSC/HOME_CSC member names (derived from the version when empty).
  std::string bl, ap, cp, csc, home_csc;
};

struct model_region {
  std::string model;
  std::string region;
  std::vector<build> builds;  // newest first (SmartHistory order)
  bool in_fota = true;        // false: FOTA version.xml answers 403 AccessDenied
};

class catalogue {
 public:
  static catalogue builtin();
  static boost::system::result<catalogue> from_json(std::string_view json);

  const std::vector<model_region>& entries() const { return entries_; }
  const model_region* find(std::string_view model, std::string_view region) const;
  const build* find_build(std::string_view model, std::string_view region,
                          std::string_view version) const;
  // The build's BINARY_NAME, the lookup key of downloads.
  const build* find_by_binary_name(std::string_view binary_name) const;

 private:
  std::vector<model_region> entries_;
};

}  // namespace fusproxy::sim
