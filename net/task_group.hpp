#pragma once
// The owner of coroutines spawned on one executor (Boost.MySQL/Redis style: no task is
// detached). Each task runs with its own cancellation signal, so that cancel_all() ends
// them at their next suspension point; its exception is handed to the task's on_exception
// (or logged), never dropped; and the group knows how many are still running, so that the
// thread owning the executor runs until they are all done before anything they use is
// destroyed.
//
// Threading: every member must be called on the executor's thread (the group is part of
// a single-threaded service). The tasks' completion handlers refer to the group's shared
// state, not to the group, so a group destroyed with tasks still running (a bug the
// owner logs) is no use-after-free.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace fusproxy::server {

class task_group {
 public:
  // `name` says whose tasks these are in log lines ("resolver", "fetch SM-…").
  task_group(boost::asio::any_io_executor executor, std::shared_ptr<spdlog::logger> log,
             std::string name);
  ~task_group();
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  using exception_handler = std::function<void(std::exception_ptr)>;

  // Starts `task` on the executor. An exception escaping it goes to `on_exception` when
  // given (which must not throw), else it is logged as an error naming `what`. A task
  // ended by cancel_all() that throws operation_aborted is not an error.
  void spawn(boost::asio::awaitable<void> task, std::string what,
             exception_handler on_exception = {});

  // Emits `type` to every running task (each at its next suspension point). Once called,
  // tasks spawned afterwards start cancelled: after a stop nothing new runs to its end.
  void cancel_all(boost::asio::cancellation_type type = boost::asio::cancellation_type::terminal);

  // Tasks not finished yet.
  std::size_t size() const;

  struct state;

 private:
  std::shared_ptr<state> state_;
};

// The text of the exception `e` holds, for an on_exception handler's log line: its what(),
// or "unknown exception" for one that is not a std::exception.
std::string exception_text(std::exception_ptr e);

}  // namespace fusproxy::server
