#include "config/settings.hpp"
#include "config/imei.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

using namespace fusproxy::config;

namespace {

// A fake environment, so tests do not depend on (or change) the process's own.
struct fake_env {
  std::map<std::string, std::string> vars;
  env_lookup lookup() const {
    return [this](const std::string& name) -> std::optional<std::string> {
      const auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
};

std::optional<std::string> no_env(const std::string&) {
  return std::nullopt;
}

settings parse_flags(std::vector<std::string> args) {
  return parse(args, no_env).values;
}

// A temporary INI file removed at scope exit.
struct temp_file {
  std::filesystem::path path;
  explicit temp_file(const std::string& text) {
    path = std::filesystem::temp_directory_path() /
           ("fusproxy-config-test-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter()++) + ".ini");
    std::ofstream(path) << text;
  }
  ~temp_file() { std::filesystem::remove(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

// The setting a bad value is blamed on.
std::string blamed(std::vector<std::string> args, const fake_env& env = {}) {
  try {
    parse(args, env.lookup());
  } catch (const config_error& e) {
    return e.setting();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("defaults match api.md") {
  const auto s = parse_flags({});
  CHECK(s.listen.host == "0.0.0.0");
  CHECK(s.listen.port == 8080);
  CHECK(s.port_file.empty());
  CHECK(s.dialect == dialect::smart2);
  CHECK(s.fus_url == "https://neofussvr.sslcs.cdngc.net/");
  CHECK(s.cloud_url == "http://cloud-neofussvr.samsungmobile.com/");
  CHECK(s.fota_url == "https://fota-cloud-dn.ospserver.net/");
  CHECK(s.legacy_keys == "2026");
  CHECK(s.imei_by_model.empty());
  CHECK(s.default_imei.empty());
  CHECK(s.connections == 16);
  CHECK(s.connections_start == 8);
  CHECK(s.cache_dir == "./cache");
  CHECK(s.cache_max_bytes == 0);
  CHECK(s.metadata_ttl == 600);
  CHECK(s.upstream_deadline == 20);
  CHECK(s.token.empty());
  CHECK(s.log_level == "info");
  CHECK(s.log_format == log_format::text);
  CHECK_FALSE(s.demo);
  CHECK(s.tls_verify);
  CHECK(s.chunk_size == 2u << 20);
  CHECK(s.chunk_size_max == 128u << 20);
  CHECK(s.rate_limit == 0);
  CHECK(s.max_downloads_per_client == 0);  // issue 15: queues, no per-client cap by default
  CHECK(s.max_downloads == 256);
  CHECK(s.queue_timeout == 60);
}

TEST_CASE("--notify-url: repeatable http(s) URLs") {
  const auto s = parse_flags({"--notify-url", "http://127.0.0.1:9/hook?x=1", "--notify-url",
                              "https://hooks.example/fusproxy"});
  CHECK(s.notify_urls.size() == 2);
  CHECK(blamed({"--notify-url", "ftp://x/"}) == "--notify-url");
  CHECK(blamed({"--notify-url", "not a url"}) == "--notify-url");
}

TEST_CASE("the public service example config parses") {
  const auto s = parse_flags(
      {"--config", std::string(FUSPROXY_SOURCE_DIR) + "/deploy/examples/public-service.conf"});
  CHECK(s.max_downloads == 64);
  CHECK(s.max_downloads_per_client == 2);
  CHECK(s.queue_timeout == 30);
  CHECK(s.rate_limit == 5);
}

TEST_CASE("flags of every kind are parsed") {
  const auto s = parse_flags({"--listen",
                              "127.0.0.1:0",
                              "--port-file=/tmp/p",
                              "--dialect",
                              "legacy",
                              "--fus-url",
                              "http://127.0.0.1:9000",
                              "--connections",
                              "3",
                              "--cache-max-bytes",
                              "10G",
                              "--chunk-size",
                              "64K",
                              "--token",
                              "s3cret",
                              "--log-format",
                              "json",
                              "--log-level",
                              "debug",
                              "--demo",
                              "--tls-verify=false",
                              "--rate-limit",
                              "2.5",
                              "--legacy-keys",
                              std::string(32, 'a') + ":" + std::string(16, 'b'),
                              "--shutdown-grace",
                              "0"});
  CHECK(s.listen.host == "127.0.0.1");
  CHECK(s.listen.port == 0);
  CHECK(s.port_file == "/tmp/p");
  CHECK(s.dialect == dialect::legacy);
  CHECK(s.fus_url == "http://127.0.0.1:9000/");  // trailing slash added
  CHECK(s.connections == 3);
  CHECK(s.cache_max_bytes == 10ull << 30);
  CHECK(s.chunk_size == 64u << 10);
  CHECK(s.token == "s3cret");
  CHECK(s.log_format == log_format::json);
  CHECK(s.log_level == "debug");
  CHECK(s.demo);
  CHECK_FALSE(s.tls_verify);
  CHECK(s.rate_limit == 2.5);
  CHECK(s.shutdown_grace == 0);
}

TEST_CASE("IPv6 and localhost listen addresses") {
  CHECK(parse_flags({"--listen", "[::1]:8081"}).listen.host == "::1");
  CHECK(parse_flags({"--listen", "[::1]:8081"}).listen.port == 8081);
  CHECK(parse_flags({"--listen", "localhost:1"}).listen.host == "127.0.0.1");
}

TEST_CASE("precedence: defaults < file < environment < flags") {
  temp_file ini("connections = 2\nmetadata-ttl = 5\ncache-dir = /from/file\ndialect = legacy\n");
  fake_env env;
  env.vars["FUSPROXY_CONFIG"] = ini.path.string();
  env.vars["FUSPROXY_METADATA_TTL"] = "7";
  env.vars["FUSPROXY_CACHE_DIR"] = "/from/env";

  const auto s = parse({"--cache-dir", "/from/flag"}, env.lookup()).values;
  CHECK(s.connections == 2);  // file only
  CHECK(s.dialect == dialect::legacy);
  CHECK(s.metadata_ttl == 7);          // env beats file
  CHECK(s.cache_dir == "/from/flag");  // flag beats env and file
  CHECK(s.listen.port == 8080);        // default untouched

  // --config on the command line beats FUSPROXY_CONFIG.
  temp_file other("connections = 5\n");
  const auto t = parse({"--config", other.path.string()}, env.lookup()).values;
  CHECK(t.connections == 5);
}

TEST_CASE("--upstream-deadline from the environment and the command line") {
  fake_env env;
  env.vars["FUSPROXY_UPSTREAM_DEADLINE"] = "3";
  CHECK(parse({}, env.lookup()).values.upstream_deadline == 3);
  CHECK(parse({"--upstream-deadline", "45"}, env.lookup()).values.upstream_deadline == 45);
}

TEST_CASE("unrelated FUSPROXY_ variables are ignored") {
  fake_env env;
  env.vars["FUSPROXY_PORT"] = "tcp://10.0.0.1:8080";  // what Kubernetes injects
  env.vars["FUSPROXY_SERVICE_HOST"] = "10.0.0.1";
  CHECK(parse({}, env.lookup()).values.listen.port == 8080);
}

TEST_CASE("the real process environment is read") {
  ::setenv("FUSPROXY_IDLE_TIMEOUT", "42", 1);
  const auto s = parse({}).values;
  ::unsetenv("FUSPROXY_IDLE_TIMEOUT");
  CHECK(s.idle_timeout == 42);
}

TEST_CASE("--imei: per model, bare default, repeatable, from file and env") {
  const auto s = parse_flags(
      {"--imei", "sm-a207f=354049101234567", "--imei", "R58M12345AB", "--imei", "SM-G991B=R111"});
  CHECK(s.imei_by_model.size() == 2);
  CHECK(s.imei_for("SM-A207F") == "354049101234567");
  CHECK(s.imei_for("sm-g991b") == "R111");
  CHECK(s.imei_for("SM-X") == "R58M12345AB");
  CHECK(s.default_imei == "R58M12345AB");

  temp_file ini("imei = SM-A1=S1\nimei = SM-A2=S2\n");
  CHECK(parse_flags({"--config", ini.path.string()}).imei_by_model.size() == 2);

  fake_env env;
  env.vars["FUSPROXY_IMEI"] = "SM-A1=S1, SM-A2=S2,S3";
  const auto e = parse({}, env.lookup()).values;
  CHECK(e.imei_for("SM-A2") == "S2");
  CHECK(e.default_imei == "S3");

  // Flags replace the environment's list rather than merging with it.
  const auto f = parse({"--imei", "S9"}, env.lookup()).values;
  CHECK(f.imei_by_model.empty());
  CHECK(f.default_imei == "S9");

  CHECK(blamed({"--imei", "SM-A207F="}) == "--imei");
  CHECK(blamed({"--imei", "=123"}) == "--imei");
  CHECK(blamed({"--imei", "SM A=1"}) == "--imei");
  CHECK(blamed({"--imei", "SM-A=12-3"}) == "--imei");
}

TEST_CASE("--trusted-proxy: addresses and CIDRs, repeatable, from file and env") {
  CHECK(parse_flags({}).trusted_proxies.empty());
  const auto s = parse_flags({"--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1",
                              "--trusted-proxy", "127.0.0.1,fd00::/8"});
  REQUIRE(s.trusted_proxies.size() == 4);
  CHECK(to_string(s.trusted_proxies[0]) == "10.0.0.0/8");
  CHECK(to_string(s.trusted_proxies[1]) == "::1/128");
  CHECK(to_string(s.trusted_proxies[2]) == "127.0.0.1/32");
  CHECK(to_string(s.trusted_proxies[3]) == "fd00::/8");

  temp_file ini("trusted-proxy = 10.0.0.0/8\ntrusted-proxy = 192.168.0.0/16\n");
  CHECK(parse_flags({"--config", ini.path.string()}).trusted_proxies.size() == 2);

  fake_env env;
  env.vars["FUSPROXY_TRUSTED_PROXY"] = "10.0.0.0/8, 172.16.0.0/12 ,192.168.0.0/16,";
  const auto e = parse({}, env.lookup()).values;
  REQUIRE(e.trusted_proxies.size() == 3);
  CHECK(to_string(e.trusted_proxies[1]) == "172.16.0.0/12");
  CHECK(e.describe().find("trusted-proxy=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16") !=
        std::string::npos);
  CHECK(parse_flags({}).describe().find("trusted-proxy=none") != std::string::npos);

  for (const char* bad :
       {"10.0.0.0/33", "::/129", "nginx", "10.0.0.0/", "10.0.0.1:80", "[::1]", "10.0.0.0/8;"}) {
    INFO(bad);
    CHECK(blamed({"--trusted-proxy", bad}) == "--trusted-proxy");
  }
  CHECK(blamed({"--trusted-proxy", "10.0.0.0/8,bogus"}) == "--trusted-proxy");
  fake_env bad_env;
  bad_env.vars["FUSPROXY_TRUSTED_PROXY"] = "10.0.0.0/8,300.0.0.0/8";
  CHECK(blamed({}, bad_env) == "--trusted-proxy");
}

TEST_CASE("--mirror: MODEL/REGION, upper-cased, comma lists from the environment") {
  fake_env env;
  env.vars["FUSPROXY_MIRROR"] = "sm-a207f/ser, SM-G990B/BTU";
  const auto s = parse({}, env.lookup()).values;
  REQUIRE(s.mirrors.size() == 2);
  CHECK(s.mirrors[0] == std::pair<std::string, std::string>("SM-A207F", "SER"));
  CHECK(s.mirrors[1] == std::pair<std::string, std::string>("SM-G990B", "BTU"));
  CHECK(blamed({"--mirror", "SM-A207F"}) == "--mirror");
  CHECK(blamed({"--mirror", "SM-A207F/S"}) == "--mirror");
}

TEST_CASE("each bad value names its setting") {
  CHECK(blamed({"--connections", "x"}) == "--connections");
  CHECK(blamed({"--connections", "0"}) == "--connections");
  CHECK(blamed({"--connections", "-1"}) == "--connections");
  CHECK(blamed({"--connections", "99999999999999999999999"}) == "--connections");
  CHECK(blamed({"--metadata-ttl", "1.5"}) == "--metadata-ttl");
  CHECK(blamed({"--upstream-deadline", "0"}) == "--upstream-deadline");
  CHECK(blamed({"--upstream-deadline", "2.5"}) == "--upstream-deadline");
  CHECK(blamed({"--cache-max-bytes", "10Q"}) == "--cache-max-bytes");
  CHECK(blamed({"--cache-max-bytes", "99999999999T"}) == "--cache-max-bytes");
  CHECK(blamed({"--chunk-size", "1"}) == "--chunk-size");
  CHECK(blamed({"--dialect", "smart3"}) == "--dialect");
  CHECK(blamed({"--listen", "8080"}) == "--listen");
  CHECK(blamed({"--listen", "1.2.3:80"}) == "--listen");
  CHECK(blamed({"--listen", "example.com:80"}) == "--listen");
  CHECK(blamed({"--listen", "0.0.0.0:65536"}) == "--listen");
  CHECK(blamed({"--listen", "[::1:80"}) == "--listen");
  CHECK(blamed({"--fus-url", "neofussvr"}) == "--fus-url");
  CHECK(blamed({"--cloud-url", "ftp://x/"}) == "--cloud-url");
  CHECK(blamed({"--fota-url", "http://"}) == "--fota-url");
  CHECK(blamed({"--fota-url", "http://h/?q=1"}) == "--fota-url");
  CHECK(blamed({"--legacy-keys", "2024"}) == "--legacy-keys");
  CHECK(blamed({"--legacy-keys", std::string(31, 'a') + ":" + std::string(16, 'b')}) ==
        "--legacy-keys");
  CHECK(blamed({"--log-level", "loud"}) == "--log-level");
  CHECK(blamed({"--log-format", "xml"}) == "--log-format");
  CHECK(blamed({"--demo=maybe"}) == "--demo");
  CHECK(blamed({"--tls-verify=2"}) == "--tls-verify");
  CHECK(blamed({"--rate-limit", "-1"}) == "--rate-limit");
  CHECK(blamed({"--rate-limit", "nan"}) == "--rate-limit");
  CHECK(blamed({"--header-timeout", "0"}) == "--header-timeout");
  CHECK(blamed({"--tls-cert", "/nonexistent.pem", "--tls-key", "/etc/hostname"}) == "--tls-cert");
  CHECK(blamed({"--tls-cert", "/etc/hostname"}) == "--tls-key");
  CHECK(blamed({"--ca-file", "/nonexistent.pem"}) == "--ca-file");
  CHECK(blamed({"--token", "a b"}) == "--token");
  CHECK(blamed({"--cache-dir="}) == "--cache-dir");
  CHECK(blamed({"--no-such-flag"}) == "--no-such-flag");
  CHECK(blamed({"--con", "2"}) != "(accepted)");  // no abbreviations
  CHECK(blamed({"--connections", "2", "--connections", "3"}) == "--connections");
  CHECK(blamed({"--config", "/nonexistent.ini"}) == "--config");

  fake_env env;
  env.vars["FUSPROXY_CONNECTIONS"] = "many";
  CHECK(blamed({}, env) == "--connections");
}

TEST_CASE("the config file rejects unknown keys and bad values") {
  temp_file unknown("connections = 2\nno-such-key = 1\n");
  const auto who = blamed({"--config", unknown.path.string()});
  CHECK(who == "--no-such-key");
  temp_file bad("dialect = foo\n");
  CHECK(blamed({"--config", bad.path.string()}) == "--dialect");
  try {
    parse({"--config", unknown.path.string()}, no_env);
    FAIL("accepted");
  } catch (const config_error& e) {
    CHECK(std::string(e.what()).find(unknown.path.string()) != std::string::npos);
  }
}

TEST_CASE("--help lists every flag with its default") {
  CHECK(parse({"--help"}, no_env).help_requested);
  CHECK(parse({"-h"}, no_env).help_requested);
  const auto help = help_text();
  for (const char* f : {"--listen",
                        "--port-file",
                        "--dialect",
                        "--fus-url",
                        "--cloud-url",
                        "--fota-url",
                        "--legacy-keys",
                        "--imei",
                        "--connections",
                        "--cache-dir",
                        "--cache-max-bytes",
                        "--metadata-ttl",
                        "--token",
                        "--log-level",
                        "--log-format",
                        "--demo",
                        "--ca-file",
                        "--tls-verify",
                        "--upstream-timeout",
                        "--upstream-deadline",
                        "--chunk-size",
                        "--upstream-max-bps",
                        "--tls-cert",
                        "--tls-key",
                        "--max-connections",
                        "--rate-limit",
                        "--max-downloads-per-client",
                        "--max-downloads",
                        "--queue-timeout",
                        "--header-timeout",
                        "--idle-timeout",
                        "--shutdown-grace",
                        "--mirror",
                        "--trusted-proxy",
                        "--notify-url",
                        "--config"}) {
    INFO(f);
    CHECK(help.find(std::string(f) + " ") != std::string::npos);
  }
  CHECK(help.find("[default: 0.0.0.0:8080]") != std::string::npos);
  CHECK(help.find("[default: https://neofussvr.sslcs.cdngc.net/]") != std::string::npos);
  CHECK(help.find("FUSPROXY_") != std::string::npos);
}

TEST_CASE("describe() masks secrets") {
  const auto s = parse_flags({"--token", "hunter2hunter2", "--legacy-keys",
                              std::string(32, 'k') + ":" + std::string(16, 'l')});
  const auto d = s.describe();
  CHECK(d.find("hunter2") == std::string::npos);
  CHECK(d.find("kkkk") == std::string::npos);
  CHECK(d.find("token=***") != std::string::npos);
  CHECK(d.find("listen=0.0.0.0:8080") != std::string::npos);
}

TEST_CASE("--imei: a TAC or a longer digit prefix becomes a Luhn-valid IMEI", "[config][imei]") {
  using fusproxy::config::expand_imei;
  using fusproxy::config::is_luhn_valid_imei;
  using fusproxy::config::luhn_check_digit;
  // Known-good IMEIs (their last digit is the Luhn digit of the first 14).
  CHECK(luhn_check_digit("49015420323751") == '8');
  CHECK(is_luhn_valid_imei("490154203237518"));
  CHECK_FALSE(is_luhn_valid_imei("490154203237519"));
  CHECK(luhn_check_digit("35672811000000") == '3');

  const auto tac = expand_imei("SM-A207F", "35672811");
  REQUIRE(tac);
  CHECK(tac->size() == 15);
  CHECK(tac->starts_with("35672811"));
  CHECK(is_luhn_valid_imei(*tac));
  // Deterministic: the same configuration sends the same IMEI every time.
  CHECK(expand_imei("SM-A207F", "35672811") == tac);
  CHECK(expand_imei("SM-A205F", "35672811") != tac);
  // A 14-digit prefix only gains its check digit.
  CHECK(expand_imei("X", "49015420323751") == std::optional<std::string>("490154203237518"));
  // A full IMEI, an IMEISV and a serial pass as they are.
  CHECK(expand_imei("X", "490154203237519") == std::optional<std::string>("490154203237519"));
  CHECK(expand_imei("X", "4901542032375101") == std::optional<std::string>("4901542032375101"));
  CHECK(expand_imei("X", "R58N12ABCDE") == std::optional<std::string>("R58N12ABCDE"));
  // Fewer digits than a TAC cannot work.
  CHECK_FALSE(expand_imei("X", "3567281"));

  const auto s = parse_flags({"--imei", "SM-A207F=35672811", "--imei", "R58N12ABCDE"});
  CHECK(s.imei_for("sm-a207f") == *tac);
  CHECK(s.default_imei == "R58N12ABCDE");
  CHECK(blamed({"--imei", "SM-A207F=3567"}) == "--imei");
}
