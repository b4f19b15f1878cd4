#pragma once
// The one typed configuration of fusproxy (see ../shared/api.md, "Configuration").
// Filled in this order, later wins: built-in defaults, `--config FILE`, environment
// (`FUSPROXY_` + flag upper-cased, `-` as `_`), command-line flags.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/ip_network.hpp"

namespace fusproxy::config {

enum class dialect { smart2, legacy };
enum class log_format { text, json };

struct listen_address {
  std::string host = "0.0.0.0";  // numeric IPv4/IPv6 (IPv6 given as [::1]:port on input)
  std::uint16_t port = 8080;
};

struct settings {
  // service
  listen_address listen;
  std::string port_file;  // empty: none
  std::string cache_dir = "./cache";
  std::uint64_t cache_max_bytes = 0;  // 0: no limit
  std::uint32_t metadata_ttl = 600;   // seconds
  std::string token;                  // empty: no authentication
  std::string log_level = "info";     // trace debug info warn error critical off
  enum log_format log_format = log_format::text;
  std::string log_file;  // empty: stderr; reopened on SIGHUP (log rotation)
  bool demo = false;

  // upstream
  enum dialect dialect = dialect::smart2;
  std::string fus_url = "https://neofussvr.sslcs.cdngc.net/";
  std::string cloud_url = "http://cloud-neofussvr.samsungmobile.com/";
  std::string fota_url = "https://fota-cloud-dn.ospserver.net/";
  std::string legacy_keys = "2026";                  // 2020, 2023, 2026 or KEY1:KEY2 (32:16 chars)
  std::map<std::string, std::string> imei_by_model;  // upper-case model -> IMEI/serial
  std::string default_imei;                          // bare --imei value
  // --mirror MODEL/REGION (repeatable): builds kept fetched ahead of time, upper-case.
  std::vector<std::pair<std::string, std::string>> mirrors;
  // --notify-url (repeatable): JSON POSTs on mirror events (server/notifier.hpp).
  std::vector<std::string> notify_urls;
  std::uint32_t connections = 16;       // the ceiling of the adaptive count
  std::uint32_t connections_start = 8;  // where it starts (capped at connections)
  std::uint32_t fetch_threads = 1;      // landing pool (CRC, decrypt, pwrite); 0: inline
  std::string ca_file;                  // empty: the system CA store
  bool tls_verify = true;
  std::uint32_t upstream_timeout = 30;  // seconds without progress upstream
  // Seconds a metadata lookup (version list, BinaryInform, size probe) may spend retrying
  // transient upstream failures before it answers the error (docs/resolver.md).
  std::uint32_t upstream_deadline = 20;
  std::uint64_t chunk_size = 2u << 20;        // a connection's first ranged request
  std::uint64_t chunk_size_max = 128u << 20;  // what later ones grow to
  std::uint64_t upstream_max_bps = 0;         // 0: no cap
  std::uint32_t retry_base_ms = 1000;         // first back-off of a failing upstream range/lookup
  std::uint32_t retry_attempts = 8;           // failures in a row without progress, then give up

  // HTTPS towards clients (both or neither)
  std::string tls_cert;
  std::string tls_key;

  // limits
  std::uint32_t max_connections = 1024;        // concurrent client connections
  double rate_limit = 0;                       // requests/s per client IP, 0: off
  std::uint32_t max_downloads_per_client = 0;  // 0: no cap
  std::uint32_t max_downloads = 256;           // 0: no cap
  std::uint32_t queue_timeout = 60;   // seconds a download waits for a slot, then 429 (0: at once)
  std::uint32_t header_timeout = 10;  // seconds to receive a request's header
  std::uint32_t idle_timeout = 60;    // keep-alive idle / write progress, seconds
  std::uint32_t shutdown_grace = 30;  // seconds in-flight requests get on SIGTERM
  std::uint64_t test_disk_full_after = 0;  // tests only: cache writes past N bytes fail (ENOSPC)
  std::uint32_t test_stall_ms = 0;  // tests only: SIGUSR1 keeps the service thread busy this long
  // Reverse proxies whose X-Forwarded-For is believed (empty: the header is ignored and
  // the socket's peer is the client of the limits and the access log).
  std::vector<ip_network> trusted_proxies;

  // The IMEI (or serial) to send for `model` in the legacy dialect; empty if none.
  std::string imei_for(const std::string& model) const;

  // One line for the start-up log: every setting, secrets masked.
  std::string describe() const;
};

// A bad setting: what() names it, e.g. "--connections: not a number: 'x'".
class config_error : public std::runtime_error {
 public:
  config_error(std::string setting, const std::string& problem)
      : std::runtime_error(setting + ": " + problem), setting_(std::move(setting)) {}
  const std::string& setting() const noexcept { return setting_; }

 private:
  std::string setting_;
};

// What parse() found: either settings to run with or a request for help.
struct parse_outcome {
  settings values;
  bool help_requested = false;
};

// The environment as a lookup, so tests need not touch the process's own.
using env_lookup = std::function<std::optional<std::string>(const std::string& name)>;
std::optional<std::string> process_env(const std::string& name);

// Parses args (without the program / sub-command name). Throws config_error.
parse_outcome parse(const std::vector<std::string>& args, env_lookup env = process_env);

// `--help` text: every flag with its default and meaning.
std::string help_text();

}  // namespace fusproxy::config
