#include "server/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "firmware/firmware_service.hpp"
#include "obs/metrics.hpp"
#include "server/download_slots.hpp"
#include "server/lifecycle.hpp"
#include "server/listener.hpp"
#include "server/request_handler.hpp"
#include "server/responder.hpp"
#include "server/session.hpp"

namespace fusproxy::server {
namespace {

namespace net = boost::asio;

// The server's metrics, in the caller's registry or in one of their own: shared by the parts,
// so that a task still unwinding never outlives them.
std::shared_ptr<server_metrics> make_server_metrics(metrics::registry* external) {
  struct owned {
    explicit owned(metrics::registry* external)
        : own(external ? nullptr : std::make_unique<metrics::registry>()),
          metrics(external ? *external : *own) {}
    std::unique_ptr<metrics::registry> own;  // when the caller gave none
    server_metrics metrics;
  };
  auto o = std::make_shared<owned>(external);
  return std::shared_ptr<server_metrics>(o, &o->metrics);
}

}  // namespace

// The composition: which part uses which (docs/architecture.md, "The I/O edge"). Each part
// is shared with the tasks that use it, so nothing a task touches dies before the task.
struct http_server::impl {
  impl(net::io_context& ioc, const config::settings& s, firmware_service& firmware,
       std::shared_ptr<spdlog::logger> log, metrics::registry* external_registry)
      : cfg(std::make_shared<const config::settings>(s)),
        metrics(make_server_metrics(external_registry)) {
    const auto strand = net::make_strand(ioc);  // the acceptor, the timers, the signals
    life = std::make_shared<lifecycle>(ioc, strand, std::chrono::seconds(cfg->shutdown_grace), log,
                                       metrics);
    slots = std::make_shared<download_slots>(cfg->max_downloads_per_client, cfg->max_downloads,
                                             std::chrono::seconds(cfg->queue_timeout), metrics);
    respond =
        std::make_shared<responder>(std::chrono::seconds(cfg->idle_timeout), log, life, slots);
    handler = std::make_shared<request_handler>(cfg, firmware, log, metrics, life, respond, slots);
    session_setup setup{std::chrono::seconds(cfg->header_timeout),
                        std::chrono::seconds(cfg->idle_timeout),
                        nullptr,
                        handler,
                        respond,
                        metrics,
                        log};
    listen = std::make_shared<listener>(ioc, strand, cfg, life, std::move(setup));
    // Weak: the listener holds the lifecycle.
    life->when_shutdown_begins([listen = std::weak_ptr<listener>(listen), slots = slots] {
      slots->close();
      if (auto l = listen.lock()) l->stop_accepting();
    });
  }

  std::shared_ptr<const config::settings> cfg;
  std::shared_ptr<server_metrics> metrics;
  std::shared_ptr<lifecycle> life;
  std::shared_ptr<download_slots> slots;
  std::shared_ptr<responder> respond;
  std::shared_ptr<request_handler> handler;
  std::shared_ptr<listener> listen;
};

http_server::http_server(boost::asio::io_context& ioc, const config::settings& settings,
                         firmware_service& firmware, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<impl>(ioc, settings, firmware, std::move(log), nullptr)) {}

http_server::http_server(boost::asio::io_context& ioc, const config::settings& settings,
                         firmware_service& firmware, std::shared_ptr<spdlog::logger> log,
                         metrics::registry& registry)
    : impl_(std::make_unique<impl>(ioc, settings, firmware, std::move(log), &registry)) {}

http_server::~http_server() {
  // Sessions hold the parts they use; whatever is left runs down when the io_context does.
  impl_->listen->stop_accepting();
}

std::uint16_t http_server::start() {
  return impl_->listen->start();
}
std::uint16_t http_server::port() const {
  return impl_->listen->port();
}
void http_server::shutdown(std::function<void()> stopped) {
  impl_->life->shutdown(std::move(stopped));
}
void http_server::handle_signals(std::function<void()> stopped) {
  impl_->life->handle_signals(std::move(stopped));
}
const server_metrics& http_server::metrics() const {
  return *impl_->metrics;
}

}  // namespace fusproxy::server
