#pragma once
// FUS messages of both dialects as pure build/parse functions (no I/O): the Boost.MySQL-style
// sans-I/O core that upstream/fus_client drives.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/error.hpp"
#include "protocol/xml.hpp"

namespace fusproxy::protocol {

enum class dialect { smart2, legacy };
std::string_view to_string(dialect d);

// The endpoint paths of a dialect (relative to the FUS base URL).
struct endpoints {
  std::string_view generate_nonce;
  std::string_view binary_inform;
  std::string_view init_for_mass;
  std::string_view download;  // "...ForMass.do"; the query is "?file=" + path + name, raw
  std::string_view user_agent;
};
const endpoints& endpoints_for(dialect d);
inline constexpr std::string_view smart_history_path = "SmartHistory.do";

// The Authorization header value. `nonce` and `signature` as the dialect sends them
// (legacy adds newauth="1").
std::string authorization_header(dialect d, std::string_view nonce, std::string_view signature);
// SmartHistory's own header: nonce="cn", signature="S", nc="00000001", type="auth",
// realm="interface". `signature` is crypto::smart_history_signature(client_nonce, model).
std::string smart_history_authorization(std::string_view client_nonce, std::string_view signature);

// BinaryInform. `nonce` is what LOGIC_CHECK uses: the raw NONCE (smart2) or the decrypted
// 16-char nonce (legacy). Model, region and version are upper-cased; legacy EUX/EUY requests
// get the multi-CSC extras. The version is normalised (normalize_version): bad_version when
// it cannot be, or is shorter than the 16 characters LOGIC_CHECK needs.
struct inform_request {
  std::string model;
  std::string region;
  std::string version;  // 4-part, '/'-separated
  std::string imei;     // legacy DEVICE_IMEI_PUSH; may be empty
};
result<std::string> build_binary_inform(dialect d, const inform_request& req,
                                        std::string_view nonce);

struct firmware_files {
  std::string bl, ap, cp, csc, home_csc;
};
struct inform_answer {
  std::string status;           // "200" or "S00" on success
  std::string served_version;   // Put/BINARY_SW_VERSION, Results/LATEST_FW_VERSION,
                                // Results/BINARY_SW_VERSION
  std::string binary_name;      // BINARY_NAME
  std::string model_path;       // MODEL_PATH
  std::uint64_t byte_size = 0;  // BINARY_BYTE_SIZE
  // BINARY_CRC (CRC-32 of the encrypted file); four of five clients never read it, so it may
  // be absent (nullopt), and it is accepted written as a signed 32-bit number.
  std::optional<std::uint32_t> crc;
  std::string logic_value;    // LOGIC_VALUE_FACTORY, else LOGIC_VALUE_HOME
  std::string model_type;     // DEVICE_MODEL_TYPE
  std::string local_code;     // BINARY_LOCAL_CODE, else DEVICE_LOCAL_CODE
  std::string model_name;     // DEVICE_MODEL_NAME
  std::string os_version;     // CURRENT_OS_VERSION
  std::string last_modified;  // LAST_MODIFIED, YYYYMMDDhhmmss
  std::string description;    // DESCRIPTION (changelog URL)
  firmware_files files;
};
bool is_success_status(std::string_view status);  // "200" or "S00"
// Parses any BinaryInform answer. A non-success Status is NOT an error here (the caller maps
// it: 401, 404, 408, ...): the answer then has only `status` filled; missing_status when there
// is none. For a success answer: missing_field when BINARY_NAME or BINARY_BYTE_SIZE is
// absent or empty (BINARY_CRC may be); bad_field when the size is not an unsigned decimal,
// the CRC neither an unsigned nor a negative signed 32-bit decimal, or BINARY_NAME / MODEL_PATH
// hold characters other than [A-Za-z0-9._-] (and '/' in the path), since both go raw into the
// download URL.
result<inform_answer> parse_binary_inform(std::string_view xml);

// InitForMass. `nonce` as for build_binary_inform. A name too short for its LOGIC_CHECK rule
// (real FUS names are ~50 characters) gets an empty LOGIC_CHECK, which the server refuses.
struct init_request {
  std::string binary_name;
  std::string served_version;  // smart2
  std::string local_code;      // smart2 DEVICE_LOCAL_CODE
  std::string model_type;      // smart2 DEVICE_MODEL_TYPE
};
std::string build_init_for_mass(dialect d, const init_request& req, std::string_view nonce);

// The Status of any FUS answer (nonce, InitForMass); missing_status when absent.
result<std::string> parse_status(std::string_view xml);

}  // namespace fusproxy::protocol
