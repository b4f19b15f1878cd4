#include "net/task_group.hpp"

#include <spdlog/logger.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/system_error.hpp>
#include <list>
#include <utility>
#include <vector>

namespace fusproxy::server {

namespace net = boost::asio;

struct task_group::state {
  struct task {
    net::cancellation_signal signal;
    std::string what;
  };
  net::any_io_executor executor;
  std::shared_ptr<spdlog::logger> log;
  std::string name;
  std::list<task> tasks;  // stable addresses: each signal is bound to its coroutine
  bool closing = false;
};

task_group::task_group(net::any_io_executor executor, std::shared_ptr<spdlog::logger> log,
                       std::string name)
    : state_(std::make_shared<state>(
          state{std::move(executor), std::move(log), std::move(name), {}, false})) {}

task_group::~task_group() {
  // The owner joins before destroying (it runs the executor until the group is empty);
  // a task left here is a lifetime bug worth a line, and ends at its next suspension.
  if (!state_->tasks.empty()) {
    if (state_->log)
      state_->log->error("{}: {} task(s) still running when their owner went away", state_->name,
                         state_->tasks.size());
    cancel_all();
  }
}

void task_group::spawn(net::awaitable<void> task, std::string what,
                       exception_handler on_exception) {
  auto st = state_;
  st->tasks.emplace_back();
  const auto it = std::prev(st->tasks.end());
  it->what = std::move(what);
  net::co_spawn(st->executor, std::move(task),
                net::bind_cancellation_slot(
                    it->signal.slot(),
                    [st, it, on_exception = std::move(on_exception)](std::exception_ptr e) {
                      std::string what = std::move(it->what);
                      st->tasks.erase(it);  // the signal goes with it: this task no longer listens
                      if (!e) return;
                      if (on_exception) {
                        on_exception(e);
                        return;
                      }
                      std::string why = "unknown exception";
                      try {
                        std::rethrow_exception(e);
                      } catch (const boost::system::system_error& x) {
                        if (x.code() == net::error::operation_aborted && st->closing) return;
                        why = x.what();
                      } catch (const std::exception& x) {
                        why = x.what();
                      } catch (...) {
                      }
                      if (st->log) st->log->error("{}: {} failed: {}", st->name, what, why);
                    }));
  if (st->closing) it->signal.emit(net::cancellation_type::terminal);
}

void task_group::cancel_all(net::cancellation_type type) {
  state_->closing = true;
  // A handler run by an emission may spawn or finish tasks: walk a snapshot of positions.
  std::vector<std::list<state::task>::iterator> running;
  for (auto it = state_->tasks.begin(); it != state_->tasks.end(); ++it) running.push_back(it);
  for (auto it : running) it->signal.emit(type);
}

std::size_t task_group::size() const {
  return state_->tasks.size();
}

std::string exception_text(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
  }
  return "unknown exception";
}

}  // namespace fusproxy::server
