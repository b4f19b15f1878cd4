#include "server/lifecycle.hpp"

#include <spdlog/logger.h>

#include <csignal>

#include "obs/logging.hpp"

namespace fusproxy::server {

namespace net = boost::asio;
using namespace std::chrono_literals;

lifecycle::lifecycle(net::io_context& ioc, control_strand strand, std::chrono::seconds grace,
                     std::shared_ptr<spdlog::logger> log, std::shared_ptr<server_metrics> metrics)
    : ioc_(ioc),
      strand_(std::move(strand)),
      grace_(grace),
      log_(std::move(log)),
      metrics_(std::move(metrics)),
      grace_timer_(strand_) {}

void lifecycle::when_shutdown_begins(std::function<void()> stop_new_work) {
  stop_new_work_ = std::move(stop_new_work);
}

// ---- connections and requests ----

void lifecycle::opened(const std::shared_ptr<connection>& conn) {
  conn->id = next_connection_++;
  {
    std::lock_guard lock(mutex_);
    connections_.emplace(conn->id, conn);
  }
  ++metrics_->connections_active;
  ++metrics_->connections_total;
}

void lifecycle::closed(std::uint64_t id) {
  --metrics_->connections_active;
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mutex_);
    connections_.erase(id);
    if (finished_ && connections_.empty()) callbacks.swap(on_stopped_);
  }
  for (auto& f : callbacks) net::post(ioc_, std::move(f));
}

lifecycle::request_scope::request_scope(lifecycle& life) : life_(life) {
  ++life_.metrics_->requests_in_flight;
}

lifecycle::request_scope::~request_scope() {
  --life_.metrics_->requests_in_flight;
  life_.maybe_finish();
}

// ---- the stop ----

void lifecycle::shutdown(std::function<void()> stopped) {
  net::post(strand_, [self = shared_from_this(), stopped = std::move(stopped)]() mutable {
    if (stopped) self->add_stopped_callback(std::move(stopped));
    if (self->shutting_down_.exchange(true)) return;
    // No new connections; queued downloads get 503 shutting_down.
    if (self->stop_new_work_) self->stop_new_work_();
    self->log_->info("shutting down: {} request(s) in flight, grace {}s",
                     self->metrics_->requests_in_flight.load(), self->grace_.count());
    self->grace_timer_.expires_after(self->grace_);
    self->grace_timer_.async_wait([self](boost::system::error_code ec) {
      if (ec) return;
      if (self->metrics_->requests_in_flight.load() > 0)
        self->log_->warn("shutdown grace over: cutting {} request(s)",
                         self->metrics_->requests_in_flight.load());
      self->finish();
    });
    self->maybe_finish();
  });
}

void lifecycle::add_stopped_callback(std::function<void()> f) {
  std::unique_lock lock(mutex_);
  if (finished_ && connections_.empty()) {
    lock.unlock();
    net::post(ioc_, std::move(f));
    return;
  }
  on_stopped_.push_back(std::move(f));
}

void lifecycle::maybe_finish() {
  if (!shutting_down_ || metrics_->requests_in_flight.load() > 0) return;
  net::post(strand_, [self = shared_from_this()] { self->finish(); });
}

void lifecycle::finish() {
  if (finished_.exchange(true)) return;
  grace_timer_.cancel();
  if (signals_) {
    boost::system::error_code ec;
    signals_->cancel(ec);
  }
  std::vector<std::shared_ptr<connection>> open;
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, weak] : connections_)
      if (auto c = weak.lock()) open.push_back(std::move(c));
    if (connections_.empty()) callbacks.swap(on_stopped_);
  }
  for (auto& c : open) c->close_soon();
  for (auto& f : callbacks) net::post(ioc_, std::move(f));
  log_->info("stopped accepting; closing {} connection(s)", open.size());
  if (open.empty()) return;
  // A request waiting on upstream (not on its socket) does not notice the close: past the
  // grace, stop anyway a moment later instead of waiting for it.
  grace_timer_.expires_after(1s);
  grace_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;
    std::vector<std::function<void()>> late;
    {
      std::lock_guard lock(self->mutex_);
      late.swap(self->on_stopped_);
      if (!late.empty())
        self->log_->warn("{} connection(s) still busy: stopping without them",
                         self->connections_.size());
    }
    for (auto& f : late) net::post(self->ioc_, std::move(f));
  });
}

// ---- signals ----

void lifecycle::handle_signals(std::function<void()> stopped) {
  net::post(strand_, [self = shared_from_this(), stopped = std::move(stopped)]() mutable {
    self->signals_.emplace(self->strand_, SIGINT, SIGTERM, SIGHUP);
    self->wait_signal(std::move(stopped));
  });
}

void lifecycle::wait_signal(std::function<void()> stopped) {
  signals_->async_wait([self = shared_from_this(), stopped = std::move(stopped)](
                           boost::system::error_code ec, int signo) mutable {
    if (ec) return;
    if (signo == SIGHUP) {
      // Log rotation: the old file was renamed; new lines go to a new file at the path.
      if (reopen_log_files(*self->log_)) self->log_->info("SIGHUP: log file reopened");
      self->wait_signal(std::move(stopped));
      return;
    }
    if (self->shutting_down_) {
      self->log_->warn("signal {} again: closing at once", signo);
      self->finish();
      return;
    }
    self->log_->info("signal {}: graceful shutdown", signo);
    self->shutdown(stopped);
    self->wait_signal(stopped);
  });
}

}  // namespace fusproxy::server
