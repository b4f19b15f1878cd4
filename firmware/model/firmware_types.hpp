#pragma once
// The firmware domain as plain data (no I/O, no HTTP): version references, version lists,
// metadata, zip members, and the domain's errors. The HTTP edge turns these into JSON and
// statuses (http/json_views.hpp, http/api_error.hpp); nothing here knows about HTTP.
#include <boost/system/result.hpp>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace fusproxy::server {

// Why the firmware service could not answer. One value per outcome a caller acts on
// differently; http/api_error.hpp maps each to a status and an api.md code.
enum class firmware_errc {
  bad_request,             // a management request naming nothing valid
  not_found,               // unknown model/region/version, no such cached build or mirror
  not_hosted,              // that build is gone upstream (served_version may name another)
  in_use,                  // a cached build being read or fetched cannot be removed now
  cache_full,              // no room in the cache for this build
  upstream_error,          // garbage, firewall page, unexpected status, wrong key
  upstream_auth,           // keys rejected
  upstream_imei_required,  // legacy dialect needs --imei
  upstream_unreachable,    // upstream cannot be reached
  upstream_timeout,        // upstream too slow
  unsupported,             // stored in a way the service cannot serve (an encrypted member)
  not_a_tar,               // a tar listing or entry asked of a member that is not a tar
  bad_archive,             // a tar member or LZ4 frame of the build is corrupt
  shutting_down,           // the service is stopping
  internal_error,          // a bug; logged
};

// A failure to answer a firmware request.
struct service_error {
  firmware_errc kind = firmware_errc::upstream_error;
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

// Which version a request names.
struct version_ref {
  enum kind_t { latest, pda, full } kind = latest;
  // "latest"; the upper-case PDA ("A207FXXU2CUI2"); or the 4 parts joined by '/'
  // ("A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2"; parts 3 and 4 may be empty).
  std::string text;
  bool is_latest() const { return kind == latest; }
};

// The operators' requests on mirrors and the cache (docs/cache.md); the HTTP edge parses
// and validates them (http/routes.hpp), the service carries them out.
struct management_request {
  enum op_t { list_mirrors, add_mirror, remove_mirror, remove_cached } op = list_mirrors;
  std::string model;      // add_mirror, remove_mirror: validated, upper-case
  std::string region;     // add_mirror, remove_mirror: validated, upper-case
  std::string file_name;  // remove_cached: the build's file name (plain or upstream)
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

// The representations of a build: the plain zip, the encrypted file, one zip member.
enum class download_variant { plain, encrypted, member };

// The strong ETag of a build's plain or encrypted file: "\"<crc32 hex>-<size>-plain\"" or
// "-enc" (kept in the cache record so that a restart keeps validators stable).
std::string representation_etag(const firmware_metadata& meta, download_variant variant);

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
