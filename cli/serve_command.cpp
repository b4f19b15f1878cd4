// fusproxy serve: parse the configuration and run the HTTP service until SIGTERM/SIGINT.
// With --demo the simulator (fus-sim) runs in-process and every upstream URL points at it.
#include <pthread.h>
#include <spdlog/logger.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "config/settings.hpp"
#include "server/firmware_resolver.hpp"
#include "server/logging.hpp"
#include "server/metrics.hpp"
#include "server/server.hpp"
#include "server/service_thread.hpp"
#include "sim/simulator.hpp"

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
  auto settings = parsed.values;
  std::shared_ptr<spdlog::logger> log;
  try {
    log = server::make_logger(settings);
  } catch (const config::config_error& e) {
    std::fprintf(stderr, "fusproxy: %s\n", e.what());
    return 2;
  }
  // Two threads: `service` runs the firmware service (resolver, download manager, fetch
  // jobs, the demo simulator), whose caches, single-flight tables and jobs rely on having
  // one thread; `http` runs the server's connections. Calls and bodies cross over through
  // server::service_thread, so that upstream receiving and client sending use two cores.
  boost::asio::io_context ioc(1);  // the service's
  boost::asio::io_context http_ioc(1);

  std::optional<sim::simulator> demo;
  if (settings.demo) {
    sim::simulator_options o;
    o.listen_host = "127.0.0.1";
    o.listen_port = 0;
    o.legacy_keys = settings.legacy_keys;  // so that --dialect legacy works in the demo too
    try {
      demo.emplace(ioc, o);
    } catch (const sim::start_error& e) {
      log->critical("--demo: the simulator did not start: {}", e.what());
      return 1;
    }
    settings.fus_url = settings.cloud_url = settings.fota_url = demo->base_url();
    log->info(
        "demo: fus-sim (built-in catalogue) listens on {}; try "
        "curl http://localhost:{}/firmware/SM-A207F/SER/latest",
        demo->base_url(),
        settings.listen.port ? std::to_string(settings.listen.port) : std::string("PORT"));
  }
  log->info("fusproxy starting: {}", settings.describe());

  // One registry for the process, passed to the server; the resolver and its download
  // pipeline record the upstream and cache families into it.
  metrics::registry registry;
  server::upstream_metrics upstream_metrics(registry);
  std::unique_ptr<server::firmware_resolver> firmware;
  try {
    firmware = std::make_unique<server::firmware_resolver>(
        ioc.get_executor(), settings, log, server::resolver_limits{}, &upstream_metrics);
  } catch (const std::exception& e) {
    log->critical("upstream set-up: {}", e.what());
    return 1;
  }
  server::service_thread service(*firmware, ioc.get_executor());
  server::http_server http(http_ioc, settings, service, log, registry);
  try {
    http.start();
  } catch (const server::startup_error& e) {
    log->critical("{}", e.what());
    return 1;
  }
  firmware->start_mirrors();  // --mirror MODEL/REGION: fetched ahead of time
  // Once the server has drained (or on a second signal): the demo simulator stops on its
  // thread, then both threads end.
  http.handle_signals([&ioc, &http_ioc, &demo] {
    boost::asio::post(ioc, [&ioc, &demo] {
      if (demo) demo->stop();
      ioc.stop();
    });
    http_ioc.stop();
  });
  // The service thread waits for work (requests) until stopped, even when nothing is
  // pending at the moment.
  auto keep_running = boost::asio::make_work_guard(ioc);
  std::thread service_runner([&ioc] {
    ::pthread_setname_np(::pthread_self(), "fp-service");  // for top -H, perf, bench/stream.sh
    ioc.run();
  });
  http_ioc.run();
  service_runner.join();
  log->info("fusproxy stopped");
  return 0;
}

}  // namespace fusproxy::cli
