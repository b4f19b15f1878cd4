#pragma once
// What the firmware service answers, as plain data (no I/O): version lists, metadata,
// zip members, and the typed errors the server turns into JSON (api.md).
#include <boost/system/result.hpp>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "server/api_error.hpp"

namespace fusproxy::server {

// A failure to answer a firmware route. `kind` picks the status and code: not_found,
// not_hosted, upstream_error, upstream_auth, upstream_imei_required,
// upstream_unreachable, upstream_timeout (bad_request cannot happen: the server validates
// first; internal_error for bugs).
struct service_error {
  api_error kind = api_error::upstream_error;
  std::string message;
  // not_hosted: the build upstream serves instead ("A/B/C/D"), when it named one. The
  // server adds "served_version" and its "download_url" to the JSON error.
  std::string served_version;
  // not_found inside a build (a member or tar entry that is not there): the listing to look
  // at, as a suffix of the build's path ("files", "files/AP_….tar.md5/") and that build's
  // version ("A/B/C/D"); the server adds its "list_url" to the JSON error.
  std::string list_suffix = {};
  std::string list_version = {};
};
[[noreturn]] void throw_exception_from_error(const service_error& e,
                                             const boost::source_location& loc);

template <class T>
using service_result = boost::system::result<T, service_error>;

// Per-request facts the service may use (the request id also goes upstream as a header).
struct request_context {
  std::string request_id;
  std::string client_ip;
};

// How fresh a (possibly cached) answer is. A stale answer (past its TTL, served because
// upstream is failing) gets `Age` and `Warning: 110` headers.
struct freshness {
  std::uint64_t age_seconds = 0;
  bool stale = false;
};

struct version_info {
  std::string version;  // 4-part, '/'
  std::string os;       // as upstream gives it
  bool beta = false;
};

struct version_list {
  std::string model;
  std::string region;
  std::string latest;                  // 4-part, "" when none
  std::vector<version_info> versions;  // newest first
  freshness fresh;
};

struct firmware_files {
  std::string bl, ap, cp, csc, home_csc;
};

// The build upstream actually serves (never the requested one under a served one's name).
struct firmware_metadata {
  std::string model;
  std::string region;
  std::string version;  // 4-part with '/'
  std::string os_version;
  std::string filename;                // upstream name, e.g. SM-A207F_2_…_fac.zip.enc4
  std::string plain_filename;          // without .enc4 / .enc2
  std::string encryption;              // "enc4" or "enc2"
  std::uint64_t size = 0;              // encrypted bytes
  std::uint64_t plain_size = 0;        // exact decrypted bytes
  std::optional<std::uint32_t> crc32;  // of the encrypted file, as upstream says; none when
                                       // BinaryInform had no BINARY_CRC (then size + pad)
  std::time_t last_modified = 0;       // UTC
  std::string changelog_url;
  firmware_files files;
  freshness fresh;
  // version_id and download_url are derived by the server (routes.hpp firmware_path).
};

// One entry of a tar / .tar.md5 member (GET …/files/{member}/, issue 14).
struct tar_entry_info {
  std::string name;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::uint32_t mode = 0;
  std::uint64_t offset = 0;  // of its data, within the member
  char type = '0';           // tar typeflag ('0' file, '5' directory, '2' symlink, …)
  std::optional<std::uint64_t> decoded_size;  // .lz4 entries, when known
};

struct zip_member {
  std::string name;
  std::uint64_t size = 0;    // uncompressed
  std::uint64_t offset = 0;  // of the local header in the plain zip
  std::string method;        // "stored" or "deflated"
};

}  // namespace fusproxy::server
