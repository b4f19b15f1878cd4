#include "config/settings.hpp"
#include "config/imei.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

namespace po = boost::program_options;

namespace fusproxy::config {
namespace {

enum class kind { text, flag, list };

struct option_info {
  const char* name;
  kind type;
  const char* default_text;  // as --help shows it
  const char* help;
};

// Every setting, in --help order. The defaults live in `settings`; default_text only
// documents them (a test checks that the two agree).
constexpr option_info options_table[] = {
    {"listen", kind::text, "0.0.0.0:8080", "address:port to serve on; port 0 picks a free one"},
    {"port-file", kind::text, "", "once listening, write the bound port and a newline here"},
    {"dialect", kind::text, "smart2", "upstream dialect: smart2 or legacy"},
    {"fus-url", kind::text, "https://neofussvr.sslcs.cdngc.net/", "FUS API base URL"},
    {"cloud-url", kind::text, "http://cloud-neofussvr.samsungmobile.com/", "download base URL"},
    {"fota-url", kind::text, "https://fota-cloud-dn.ospserver.net/",
     "FOTA base URL (firmware/{REGION}/{MODEL}/version.xml is appended)"},
    {"legacy-keys", kind::text, "2026", "legacy dialect keys: 2020, 2023, 2026 or KEY1:KEY2"},
    {"imei", kind::list, "",
     "MODEL=IMEI_OR_SERIAL for the legacy dialect; repeatable; a bare value is the default. "
     "8-14 digits (a TAC or longer prefix) expand to a full Luhn-valid IMEI; a serial passes "
     "as is"},
    {"mirror", kind::list, "",
     "MODEL/REGION whose newest build is kept fetched ahead of time (checked every "
     "--metadata-ttl); repeatable"},
    {"connections", kind::text, "16",
     "most parallel ranged upstream connections per download (the count adapts up to it)"},
    {"connections-start", kind::text, "8",
     "upstream connections a download starts with (at most --connections)"},
    {"fetch-threads", kind::text, "1",
     "threads that CRC, decrypt and write fetched bytes (0: the serving thread does it)"},
    {"cache-dir", kind::text, "./cache", "mirror cache directory; created if missing"},
    {"cache-max-bytes", kind::text, "0",
     "evict least recently used builds above this size (K/M/G/T suffixes; 0: no limit)"},
    {"metadata-ttl", kind::text, "600", "seconds a `latest` answer is reused"},
    {"token", kind::text, "",
     "when set, every route but /healthz and /readyz needs Authorization: Bearer TOKEN "
     "(browsers: HTTP Basic with TOKEN as password, or the sign-in form at /login)"},
    {"log-level", kind::text, "info", "trace, debug, info, warn, error, critical or off"},
    {"log-format", kind::text, "text", "text, or json for one JSON object per line"},
    {"log-file", kind::text, "", "append logs to this file (default: stderr); SIGHUP reopens it"},
    {"demo", kind::flag, "false", "start the simulator in-process and use it as upstream"},
    {"ca-file", kind::text, "", "CA bundle to verify upstream TLS with (default: system store)"},
    {"tls-verify", kind::flag, "true", "verify upstream TLS certificates and host names"},
    {"upstream-timeout", kind::text, "30", "seconds an upstream request may make no progress"},
    {"upstream-deadline", kind::text, "20",
     "seconds a metadata lookup may spend retrying transient upstream failures (5xx, 429, "
     "resets, timeouts, garbage) before it answers the error"},
    {"chunk-size", kind::text, "2M",
     "bytes of a connection's first ranged upstream request; later ones grow (K/M/G suffixes)"},
    {"chunk-size-max", kind::text, "128M",
     "largest ranged upstream request a connection grows to (K/M/G suffixes)"},
    {"upstream-max-bps", kind::text, "0",
     "cap on total upstream bandwidth in bytes/s (K/M/G suffixes; 0: none)"},
    {"retry-base-ms", kind::text, "1000",
     "first back-off (ms) of a failing upstream range (doubles up to 30 s) or metadata "
     "request (doubles up to 4 s, jittered)"},
    {"retry-attempts", kind::text, "8",
     "failures in a row without progress before a download gives up"},
    {"tls-cert", kind::text, "", "PEM certificate chain: serve HTTPS too (needs --tls-key)"},
    {"tls-key", kind::text, "", "PEM private key for --tls-cert"},
    {"max-connections", kind::text, "1024", "concurrent client connections"},
    {"rate-limit", kind::text, "0", "requests per second per client IP (0: off)"},
    {"max-downloads-per-client", kind::text, "0",
     "concurrent downloads per client IP (0: no cap); over a cap a download waits in a fair "
     "queue"},
    {"max-downloads", kind::text, "256",
     "concurrent downloads in total (0: no cap); over it a download waits in a fair queue"},
    {"queue-timeout", kind::text, "60",
     "seconds a download may wait for a slot before 429 with Retry-After (0: refuse at once)"},
    {"header-timeout", kind::text, "10", "seconds a client has to send a request header"},
    {"idle-timeout", kind::text, "60",
     "seconds a keep-alive connection may idle, and a client may stall a response"},
    {"shutdown-grace", kind::text, "30",
     "seconds in-flight requests may take to finish after SIGTERM"},
    {"notify-url", kind::list, "",
     "http(s) URL that gets a JSON POST when a --mirror model/region has a new build and when "
     "it is fetched and verified (retried with back-off); repeatable"},
    {"trusted-proxy", kind::list, "",
     "ADDRESS or CIDR of a reverse proxy whose X-Forwarded-For names the client (for the "
     "per-client limits and the access log); repeatable"},
    {"test-disk-full-after", kind::text, "0",
     "TESTS ONLY: the cache's writes fail with ENOSPC once the fetch jobs wrote this many bytes "
     "in all (a full disk where a small tmpfs cannot be mounted; 0: off)"},
    {"test-stall-on-sigusr1", kind::text, "0",
     "TESTS ONLY: milliseconds the service thread is kept busy on each SIGUSR1 (shows that "
     "/metrics, /healthz and the HTTP thread do not wait for it; 0: off)"},
};

po::options_description make_description() {
  po::options_description desc;
  desc.add_options()("help,h", "show this help")("config", po::value<std::string>(),
                                                 "INI file of `key = value` settings");
  for (const auto& o : options_table) {
    switch (o.type) {
      case kind::text:
        desc.add_options()(o.name, po::value<std::string>(), o.help);
        break;
      case kind::flag:
        desc.add_options()(o.name, po::value<std::string>()->implicit_value("true"), o.help);
        break;
      case kind::list:
        desc.add_options()(o.name, po::value<std::vector<std::string>>(), o.help);
    }
  }
  return desc;
}

std::string flag(std::string_view name) {
  return "--" + std::string(name);
}

std::uint64_t parse_unsigned(std::string_view name, const std::string& text, std::uint64_t min,
                             std::uint64_t max) {
  std::uint64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc{} || ptr != end)
    throw config_error(flag(name), "not a whole number: '" + text + "'");
  if (v < min || v > max)
    throw config_error(flag(name), "'" + text + "' is out of range [" + std::to_string(min) + ", " +
                                       std::to_string(max) + "]");
  return v;
}

// A byte count with an optional binary suffix: 512, 64K, 8M, 2G, 1T (case-insensitive).
std::uint64_t parse_bytes(std::string_view name, const std::string& text, std::uint64_t min) {
  std::string digits = text;
  std::uint64_t scale = 1;
  if (!digits.empty()) {
    switch (std::toupper(static_cast<unsigned char>(digits.back()))) {
      case 'K':
        scale = 1ull << 10;
        break;
      case 'M':
        scale = 1ull << 20;
        break;
      case 'G':
        scale = 1ull << 30;
        break;
      case 'T':
        scale = 1ull << 40;
        break;
      default:
        break;
    }
    if (scale != 1) digits.pop_back();
  }
  const auto max = std::numeric_limits<std::uint64_t>::max() / scale;
  std::uint64_t v = 0;
  try {
    v = parse_unsigned(name, digits, 0, max);
  } catch (const config_error&) {
    throw config_error(flag(name), "not a byte count (e.g. 512, 64K, 8M, 2G): '" + text + "'");
  }
  v *= scale;
  if (v < min)
    throw config_error(flag(name), "'" + text + "' is below the minimum " + std::to_string(min));
  return v;
}

bool parse_bool(std::string_view name, const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "1" || t == "true" || t == "yes" || t == "on") return true;
  if (t == "0" || t == "false" || t == "no" || t == "off") return false;
  throw config_error(flag(name), "not a boolean (true/false, yes/no, on/off, 1/0): '" + text + "'");
}

listen_address parse_listen(const std::string& text) {
  const auto fail = [&](const std::string& why) -> listen_address {
    throw config_error("--listen", why + ": '" + text + "' (expected ADDRESS:PORT)");
  };
  listen_address out;
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return fail("bad IPv6 address");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) return fail("bad IPv6 address");
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return fail("missing port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host == "localhost") host = "127.0.0.1";
    in_addr a4{};
    if (inet_pton(AF_INET, host.c_str(), &a4) != 1) return fail("bad IPv4 address");
  }
  out.host = host;
  try {
    out.port = static_cast<std::uint16_t>(parse_unsigned("listen", port, 0, 65535));
  } catch (const config_error&) {
    return fail("bad port");
  }
  return out;
}

// An http(s) base URL; a missing trailing slash is added since paths are appended to it.
std::string parse_base_url(std::string_view name, const std::string& text) {
  auto parsed = boost::urls::parse_absolute_uri(text);
  if (!parsed) throw config_error(flag(name), "not an absolute URL: '" + text + "'");
  const auto scheme = parsed->scheme();
  if (scheme != "http" && scheme != "https")
    throw config_error(flag(name), "scheme must be http or https: '" + text + "'");
  if (parsed->encoded_host().empty())
    throw config_error(flag(name), "URL has no host: '" + text + "'");
  if (parsed->has_query() || parsed->has_fragment())
    throw config_error(flag(name), "a base URL takes no query or fragment: '" + text + "'");
  std::string out = text;
  if (out.back() != '/') out += '/';
  return out;
}

std::string parse_legacy_keys(const std::string& text) {
  if (text == "2020" || text == "2023" || text == "2026") return text;
  const auto colon = text.find(':');
  if (colon == 32 && text.size() == 32 + 1 + 16) {
    const bool printable =
        std::all_of(text.begin(), text.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
    if (printable) return text;
  }
  throw config_error(
      "--legacy-keys",
      "expected 2020, 2023, 2026 or KEY1:KEY2 (32 and 16 characters): '" + text + "'");
}

bool valid_model(std::string_view m) {
  // [A-Z0-9]+(-[A-Z0-9]+)*, up to 32 characters (already upper-cased).
  if (m.empty() || m.size() > 32 || m.front() == '-' || m.back() == '-') return false;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const char c = m[i];
    if (c == '-') {
      if (m[i - 1] == '-') return false;
    } else if (!std::isdigit(static_cast<unsigned char>(c)) && !(c >= 'A' && c <= 'Z')) {
      return false;
    }
  }
  return true;
}

bool valid_imei(std::string_view v) {
  return !v.empty() && v.size() <= 32 &&
         std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isalnum(c) != 0; });
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

// A digit prefix (at least the 8-digit TAC) becomes a full Luhn-valid IMEI (config/imei.hpp).
std::string imei_value(const std::string& model, const std::string& item,
                       const std::string& value) {
  if (!valid_imei(value))
    throw config_error("--imei", "an IMEI or serial is 1-32 letters/digits: '" + item + "'");
  auto full = expand_imei(model, value);
  if (!full)
    throw config_error("--imei",
                       "an IMEI prefix needs at least the 8 digits of the TAC: '" + item + "'");
  return *full;
}

void parse_imei(const std::string& item, settings& s) {
  const auto eq = item.find('=');
  if (eq == std::string::npos) {
    s.default_imei = imei_value("", item, item);
    return;
  }
  const auto model = upper(item.substr(0, eq));
  if (!valid_model(model)) throw config_error("--imei", "bad model in '" + item + "'");
  s.imei_by_model[model] = imei_value(model, item, item.substr(eq + 1));
}

void require_readable_file(std::string_view name, const std::string& path) {
  std::ifstream f(path);
  if (!f) throw config_error(flag(name), "cannot read file '" + path + "'");
}

// The items of a list setting: each value given (a repeated flag, config file lines) split
// at commas, since the environment gives the whole list as one string; items are trimmed
// and empty ones skipped.
std::vector<std::string> list_items(const po::variables_map& vm, const char* name) {
  std::vector<std::string> out;
  const auto it = vm.find(name);
  if (it == vm.end()) return out;
  for (const auto& entry : it->second.as<std::vector<std::string>>()) {
    std::string item;
    std::istringstream in(entry);
    while (std::getline(in, item, ',')) {
      const auto first = item.find_first_not_of(" \t");
      if (first == std::string::npos) continue;
      out.push_back(item.substr(first, item.find_last_not_of(" \t") + 1 - first));
    }
  }
  return out;
}

// Turns the merged text values into typed settings, checking each one.
settings convert(const po::variables_map& vm) {
  settings s;
  const auto get = [&](const char* name) -> const std::string* {
    const auto it = vm.find(name);
    return it == vm.end() ? nullptr : &it->second.as<std::string>();
  };
  const auto u32 = [&](const char* name, std::uint32_t& out, std::uint64_t min, std::uint64_t max) {
    if (const auto* v = get(name))
      out = static_cast<std::uint32_t>(parse_unsigned(name, *v, min, max));
  };

  if (const auto* v = get("listen")) s.listen = parse_listen(*v);
  if (const auto* v = get("port-file")) s.port_file = *v;
  if (const auto* v = get("log-file")) s.log_file = *v;
  if (const auto* v = get("dialect")) {
    if (*v == "smart2")
      s.dialect = dialect::smart2;
    else if (*v == "legacy")
      s.dialect = dialect::legacy;
    else
      throw config_error("--dialect", "expected smart2 or legacy: '" + *v + "'");
  }
  if (const auto* v = get("fus-url")) s.fus_url = parse_base_url("fus-url", *v);
  if (const auto* v = get("cloud-url")) s.cloud_url = parse_base_url("cloud-url", *v);
  if (const auto* v = get("fota-url")) s.fota_url = parse_base_url("fota-url", *v);
  if (const auto* v = get("legacy-keys")) s.legacy_keys = parse_legacy_keys(*v);
  for (const auto& item : list_items(vm, "imei")) parse_imei(item, s);
  for (auto item : list_items(vm, "mirror")) {
    item = upper(item);
    const auto slash = item.find('/');
    const auto model = item.substr(0, slash);
    const auto region = slash == std::string::npos ? "" : item.substr(slash + 1);
    const bool region_ok = region.size() >= 2 && region.size() <= 4 &&
                           std::all_of(region.begin(), region.end(), [](char c) {
                             return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                           });
    if (!valid_model(model) || !region_ok)
      throw config_error("--mirror", "expected MODEL/REGION (e.g. SM-A207F/SER): '" + item + "'");
    s.mirrors.emplace_back(model, region);
  }
  for (const auto& item : list_items(vm, "notify-url")) {
    auto parsed = boost::urls::parse_absolute_uri(item);
    if (!parsed || (parsed->scheme() != "http" && parsed->scheme() != "https") ||
        parsed->encoded_host().empty() || parsed->has_fragment())
      throw config_error(
          "--notify-url",
          "expected an http(s) URL such as http://hooks.local/fusproxy: '" + item + "'");
    s.notify_urls.push_back(item);
  }
  u32("connections", s.connections, 1, 64);
  u32("connections-start", s.connections_start, 1, 64);
  u32("fetch-threads", s.fetch_threads, 0, 64);
  if (const auto* v = get("cache-dir")) {
    if (v->empty()) throw config_error("--cache-dir", "must not be empty");
    s.cache_dir = *v;
  }
  if (const auto* v = get("cache-max-bytes"))
    s.cache_max_bytes = parse_bytes("cache-max-bytes", *v, 0);
  u32("metadata-ttl", s.metadata_ttl, 0, 7 * 24 * 3600);
  if (const auto* v = get("token")) {
    const bool printable =
        std::all_of(v->begin(), v->end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
    if (!printable) throw config_error("--token", "must be printable ASCII without spaces");
    s.token = *v;
  }
  if (const auto* v = get("log-level")) {
    static constexpr const char* levels[] = {"trace",   "debug", "info",     "warn",
                                             "warning", "error", "critical", "off"};
    if (std::find_if(std::begin(levels), std::end(levels),
                     [&](const char* l) { return *v == l; }) == std::end(levels))
      throw config_error("--log-level",
                         "expected trace, debug, info, warn, error, critical or off: '" + *v + "'");
    s.log_level = *v == "warning" ? "warn" : *v;
  }
  if (const auto* v = get("log-format")) {
    if (*v == "text")
      s.log_format = log_format::text;
    else if (*v == "json")
      s.log_format = log_format::json;
    else
      throw config_error("--log-format", "expected text or json: '" + *v + "'");
  }
  if (const auto* v = get("demo")) s.demo = parse_bool("demo", *v);
  if (const auto* v = get("ca-file")) {
    if (!v->empty()) require_readable_file("ca-file", *v);
    s.ca_file = *v;
  }
  if (const auto* v = get("tls-verify")) s.tls_verify = parse_bool("tls-verify", *v);
  u32("upstream-timeout", s.upstream_timeout, 1, 3600);
  u32("upstream-deadline", s.upstream_deadline, 1, 3600);
  if (const auto* v = get("chunk-size")) {
    s.chunk_size = parse_bytes("chunk-size", *v, 16 << 10);
    if (s.chunk_size > (1ull << 30))
      throw config_error("--chunk-size", "'" + *v + "' is above the maximum 1G");
  }
  if (const auto* v = get("chunk-size-max")) {
    s.chunk_size_max = parse_bytes("chunk-size-max", *v, 16 << 10);
    if (s.chunk_size_max > (4ull << 30))
      throw config_error("--chunk-size-max", "'" + *v + "' is above the maximum 4G");
  }
  if (const auto* v = get("upstream-max-bps"))
    s.upstream_max_bps = parse_bytes("upstream-max-bps", *v, 0);
  u32("retry-base-ms", s.retry_base_ms, 1, 60'000);
  u32("retry-attempts", s.retry_attempts, 1, 1000);
  if (const auto* v = get("tls-cert")) s.tls_cert = *v;
  if (const auto* v = get("tls-key")) s.tls_key = *v;
  if (s.tls_cert.empty() != s.tls_key.empty())
    throw config_error(s.tls_cert.empty() ? "--tls-cert" : "--tls-key",
                       "--tls-cert and --tls-key go together");
  if (!s.tls_cert.empty()) {
    require_readable_file("tls-cert", s.tls_cert);
    require_readable_file("tls-key", s.tls_key);
  }
  u32("max-connections", s.max_connections, 1, 1'000'000);
  if (const auto* v = get("rate-limit")) {
    double d = 0;
    const auto* end = v->data() + v->size();
    const auto [ptr, ec] = std::from_chars(v->data(), end, d);
    if (v->empty() || ec != std::errc{} || ptr != end || !std::isfinite(d) || d < 0)
      throw config_error("--rate-limit", "not a non-negative number: '" + *v + "'");
    s.rate_limit = d;
  }
  u32("max-downloads-per-client", s.max_downloads_per_client, 0, 1'000'000);
  u32("max-downloads", s.max_downloads, 0, 1'000'000);
  u32("queue-timeout", s.queue_timeout, 0, 3600);
  u32("header-timeout", s.header_timeout, 1, 3600);
  u32("idle-timeout", s.idle_timeout, 1, 24 * 3600);
  u32("shutdown-grace", s.shutdown_grace, 0, 24 * 3600);
  u32("test-stall-on-sigusr1", s.test_stall_ms, 0, 600'000);
  if (const auto* v = get("test-disk-full-after"))
    s.test_disk_full_after = parse_bytes("test-disk-full-after", *v, 0);
  for (const auto& item : list_items(vm, "trusted-proxy")) {
    const auto network = parse_ip_network(item);
    if (!network)
      throw config_error(
          "--trusted-proxy",
          "expected an IPv4/IPv6 address or CIDR (e.g. 10.0.0.0/8, ::1): '" + item + "'");
    s.trusted_proxies.push_back(*network);
  }
  return s;
}

// Re-reports program_options' complaints as config_error naming the setting.
[[noreturn]] void rethrow_as_config_error(const po::error& e, const std::string& source) {
  std::string name = "--config";
  if (const auto* o = dynamic_cast<const po::error_with_option_name*>(&e)) {
    auto n = o->get_option_name();
    if (!n.empty()) name = n.rfind("--", 0) == 0 ? n : "--" + n;
  }
  throw config_error(name, std::string(e.what()) + " (in " + source + ")");
}

}  // namespace

std::optional<std::string> process_env(const std::string& name) {
  if (const char* v = std::getenv(name.c_str())) return std::string(v);
  return std::nullopt;
}

std::string settings::imei_for(const std::string& model) const {
  if (const auto it = imei_by_model.find(upper(model)); it != imei_by_model.end())
    return it->second;
  return default_imei;
}

std::string settings::describe() const {
  std::ostringstream o;
  o << "listen="
    << (listen.host.find(':') != std::string::npos ? "[" + listen.host + "]" : listen.host) << ':'
    << listen.port << " port-file=" << (port_file.empty() ? "none" : port_file)
    << " dialect=" << (dialect == dialect::smart2 ? "smart2" : "legacy") << " fus-url=" << fus_url
    << " cloud-url=" << cloud_url << " fota-url=" << fota_url
    << " legacy-keys=" << (legacy_keys.size() > 4 ? "***custom***" : legacy_keys)
    << " imei=" << (imei_by_model.size() + (default_imei.empty() ? 0 : 1)) << "-set"
    << " connections=" << connections << " connections-start=" << connections_start
    << " fetch-threads=" << fetch_threads << " cache-dir=" << cache_dir
    << " cache-max-bytes=" << cache_max_bytes << " metadata-ttl=" << metadata_ttl
    << " token=" << (token.empty() ? "none" : "***") << " log-level=" << log_level
    << " log-format=" << (log_format == log_format::json ? "json" : "text")
    << " log-file=" << (log_file.empty() ? "stderr" : log_file)
    << " demo=" << (demo ? "true" : "false")
    << " ca-file=" << (ca_file.empty() ? "system" : ca_file)
    << " tls-verify=" << (tls_verify ? "true" : "false") << " upstream-timeout=" << upstream_timeout
    << " upstream-deadline=" << upstream_deadline << " chunk-size=" << chunk_size
    << " chunk-size-max=" << chunk_size_max << " upstream-max-bps=" << upstream_max_bps
    << " retry-base-ms=" << retry_base_ms << " retry-attempts=" << retry_attempts
    << " tls=" << (tls_cert.empty() ? "off" : tls_cert) << " max-connections=" << max_connections
    << " rate-limit=" << rate_limit << " max-downloads-per-client=" << max_downloads_per_client
    << " max-downloads=" << max_downloads << " queue-timeout=" << queue_timeout
    << " header-timeout=" << header_timeout << " idle-timeout=" << idle_timeout
    << " shutdown-grace=" << shutdown_grace << " notify-url=" << notify_urls.size() << "-set"
    << " trusted-proxy=";
  if (trusted_proxies.empty()) o << "none";
  for (std::size_t i = 0; i < trusted_proxies.size(); ++i)
    o << (i ? "," : "") << to_string(trusted_proxies[i]);
  return o.str();
}

parse_outcome parse(const std::vector<std::string>& args, env_lookup env) {
  const auto desc = make_description();
  // No abbreviations: `--con` must not silently mean --connections.
  constexpr int cli_style =
      po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
  po::variables_map vm;

  // program_options keeps the first value stored for a key, so the sources are stored
  // from the strongest (flags) to the weakest (file); defaults come from `settings`.
  try {
    po::store(po::command_line_parser(args).options(desc).style(cli_style).run(), vm);
  } catch (const po::error& e) {
    rethrow_as_config_error(e, "command line");
  }
  if (vm.count("help")) return {settings{}, true};

  // Environment: only names of known settings are read, so unrelated FUSPROXY_* variables
  // (Kubernetes adds FUSPROXY_PORT, FUSPROXY_SERVICE_HOST, ... for a service of that name)
  // cannot stop start-up.
  std::vector<std::string> env_args;
  const auto env_name = [](std::string name) {
    std::string out = "FUSPROXY_";
    for (char c : name) out += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    return out;
  };
  for (const auto* name : {"config"}) {
    if (auto v = env(env_name(name))) env_args.push_back("--" + std::string(name) + "=" + *v);
  }
  for (const auto& o : options_table) {
    if (auto v = env(env_name(o.name))) env_args.push_back("--" + std::string(o.name) + "=" + *v);
  }
  try {
    po::store(po::command_line_parser(env_args).options(desc).style(cli_style).run(), vm);
  } catch (const po::error& e) {
    rethrow_as_config_error(e, "environment");
  }

  if (const auto it = vm.find("config"); it != vm.end()) {
    const auto& path = it->second.as<std::string>();
    std::ifstream file(path);
    if (!file) throw config_error("--config", "cannot read file '" + path + "'");
    try {
      po::store(po::parse_config_file(file, desc, /*allow_unregistered=*/false), vm);
    } catch (const po::error& e) {
      rethrow_as_config_error(e, "config file '" + path + "'");
    }
  }
  return {convert(vm), false};
}

std::string help_text() {
  std::ostringstream o;
  o << "usage: fusproxy [serve] [FLAGS]\n\n"
       "Settings are read from built-in defaults, then --config FILE (INI: key = value),\n"
       "then the environment (FUSPROXY_ + the flag upper-cased, - as _, e.g.\n"
       "FUSPROXY_CACHE_DIR), then the flags; later wins.\n\n";
  const auto line = [&](const std::string& left, const std::string& help, const char* def) {
    o << "  " << left;
    if (left.size() < 30)
      o << std::string(30 - left.size(), ' ');
    else
      o << "\n" << std::string(32, ' ');
    o << help;
    if (def) o << " [default: " << (*def ? def : "none") << "]";
    o << '\n';
  };
  line("-h, --help", "show this help", nullptr);
  line("--config FILE", "INI file of `key = value` settings", "none");
  for (const auto& opt : options_table) {
    std::string left = std::string("--") + opt.name;
    if (opt.type != kind::flag) left += " VALUE";
    line(left, opt.help, opt.default_text);
  }
  return o.str();
}

}  // namespace fusproxy::config
