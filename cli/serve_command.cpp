// fusproxy serve: parse the configuration and run the HTTP service until SIGTERM/SIGINT.
// With --demo the simulator (fus-sim) runs in-process and every upstream URL points at it.
#include <pthread.h>
#include <spdlog/logger.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "config/settings.hpp"
#include "firmware/firmware_resolver.hpp"
#include "obs/logging.hpp"
#include "obs/metrics.hpp"
#include "server/notifier.hpp"
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
  // --notify-url: mirror events as JSON POSTs, on the service thread like the mirrors.
  std::optional<server::notifier> notifier;
  if (!settings.notify_urls.empty()) {
    notifier.emplace(ioc.get_executor(), settings.notify_urls, log, registry);
    firmware->on_mirror_event([&notifier](const server::mirror_event& e) { notifier->publish(e); });
  }
  server::service_thread service(*firmware, ioc.get_executor(), log);
  server::http_server http(http_ioc, settings, service, log, registry);
  try {
    http.start();
  } catch (const server::startup_error& e) {
    log->critical("{}", e.what());
    return 1;
  }
  firmware->start_mirrors();  // --mirror MODEL/REGION: fetched ahead of time

  // Structured stop (docs/architecture.md, threads and lifetimes). Once the server has
  // drained (or past its grace, or on a second signal) the service thread cancels its
  // work: lookups waiting upstream, fetch jobs (each syncs its part and map), mirror loops,
  // the calls still queued from the HTTP thread, the demo simulator. Nothing stops either
  // io_context: each runs until its last task has unwound, bounded by `drain_limit`; only
  // then are the objects those tasks use destroyed (in reverse order of declaration).
  auto keep_running = boost::asio::make_work_guard(ioc);  // waits for requests until the stop
  // --test-stall-on-sigusr1 (tests only): a deterministic busy service thread.
  std::optional<boost::asio::signal_set> stall_signal;
  std::function<void()> wait_stall = [&] {
    stall_signal->async_wait([&, ms = settings.test_stall_ms](boost::system::error_code ec, int) {
      if (ec) return;  // cancelled by the stop
      log->warn("SIGUSR1: keeping the service thread busy for {} ms (--test-stall-on-sigusr1)", ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      wait_stall();
    });
  };
  if (settings.test_stall_ms > 0) {
    stall_signal.emplace(ioc, SIGUSR1);
    wait_stall();
  }
  std::atomic<bool> stop_begun{false};
  http.handle_signals([&] {
    stop_begun = true;
    boost::asio::post(ioc, [&] {
      if (stall_signal) stall_signal->cancel();
      service.stop();
      firmware->stop();
      if (notifier) notifier->stop();
      if (demo) demo->stop();
      keep_running.reset();  // ioc.run() returns once the cancelled tasks have unwound
    });
  });
  std::promise<void> service_drained;
  auto service_done = service_drained.get_future();
  std::thread service_runner([&ioc, &service_drained] {
    ::pthread_setname_np(::pthread_self(), "fp-service");  // for top -H, perf, bench/stream.sh
    ioc.run();
    service_drained.set_value();
  });
  constexpr auto drain_limit = std::chrono::seconds(10);
  std::optional<std::chrono::steady_clock::time_point> drain_deadline;
  while (!http_ioc.stopped()) {  // stopped: out of work, every connection has ended
    http_ioc.run_for(std::chrono::milliseconds(200));
    if (stop_begun && !drain_deadline)
      drain_deadline = std::chrono::steady_clock::now() + drain_limit;
    if (drain_deadline && std::chrono::steady_clock::now() > *drain_deadline) break;
  }
  // This thread no longer runs I/O: it may wait for the service thread.
  const auto left = drain_deadline ? *drain_deadline - std::chrono::steady_clock::now()
                                   : std::chrono::steady_clock::duration(drain_limit);
  if (!http_ioc.stopped() || service_done.wait_for(left) != std::future_status::ready) {
    // A task ignored its cancellation (a bug): destroying what it uses would corrupt
    // memory, so leave without destructors. The fetch jobs have synced their state.
    log->critical(
        "stop: tasks still running {} s after the stop (http: {}, service: {}); exiting "
        "without unwinding them",
        std::chrono::duration_cast<std::chrono::seconds>(drain_limit).count(),
        http_ioc.stopped() ? "drained" : "busy",
        service_done.wait_for(std::chrono::seconds(0)) == std::future_status::ready ? "drained"
                                                                                    : "busy");
    log->flush();
    std::fflush(nullptr);
    std::_Exit(1);
  }
  service_runner.join();
  log->info("fusproxy stopped");
  return 0;
}

}  // namespace fusproxy::cli
