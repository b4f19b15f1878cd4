// fusproxy serve: parse the configuration and run the HTTP service until SIGTERM/SIGINT.
#include <spdlog/logger.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "config/settings.hpp"
#include "server/firmware_service.hpp"
#include "server/logging.hpp"
#include "server/server.hpp"

namespace fusproxy::cli {

int run_serve(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  config::parse_outcome parsed;
  try {
    parsed = config::parse(args);
  } catch (const config::config_error& e) {
    std::fprintf(stderr, "fusproxy: %s\n", e.what());
    return 2;
  }
  if (parsed.help_requested) {
    std::fputs(config::help_text().c_str(), stdout);
    return 0;
  }
  const auto& settings = parsed.values;
  if (settings.demo) {
    std::fputs("fusproxy: --demo: the in-process simulator is not wired in yet\n", stderr);
    return 2;
  }

  auto log = server::make_logger(settings);
  log->info("fusproxy starting: {}", settings.describe());
  boost::asio::io_context ioc;
  // Until the firmware resolver is connected, firmware routes answer 503
  // upstream_unreachable; health, readiness, metrics and status work.
  auto firmware = server::make_unavailable_firmware_service();
  server::http_server http(ioc, settings, *firmware, log);
  try {
    http.start();
  } catch (const server::startup_error& e) {
    log->critical("{}", e.what());
    return 1;
  }
  http.handle_signals([&ioc] { ioc.stop(); });
  ioc.run();
  log->info("fusproxy stopped");
  return 0;
}

}  // namespace fusproxy::cli
