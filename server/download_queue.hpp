#pragma once
// Concurrent download caps that queue instead of refusing (issue 15, docs/operations.md
// "Download slots and the queue").
//
// A download response takes a slot while it streams; the caps are --max-downloads (total)
// and --max-downloads-per-client (0: no cap). A download over a cap waits for a slot:
// round robin between clients (the client served longest ago goes first), FIFO within
// one client. It waits at most --queue-timeout, then the server answers 429.
//
// Two layers:
// - fair_slots: the bookkeeping, pure and clock-free (unit-tested without Asio);
// - download_queue: fair_slots behind a mutex, with an awaitable wait that parks no
//   thread: a waiter sleeps on a steady_timer of its own executor, and a grant, a
//   cancellation (client gone, shutdown) or the timeout wakes it.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace fusproxy::server {

class fair_slots {
 public:
  using ticket = std::uint64_t;

  fair_slots(std::uint32_t per_client, std::uint32_t total)
      : per_client_(per_client), total_(total) {}

  // Takes a slot at once if the caps allow it and none of the client's own downloads is
  // queued (FIFO within a client: a newcomer never overtakes its own queue).
  bool try_acquire(const std::string& client);
  // Queues a download of `client`; it holds no slot until granted.
  ticket enqueue(const std::string& client);
  // Frees one of the client's slots; returns the tickets granted a slot by it (each now
  // holds one, owned by the ticket's client).
  std::vector<ticket> release(const std::string& client);
  // Removes a queued ticket. False when it is not queued (granted already: the caller
  // holds a slot and must release it).
  bool cancel(ticket t);
  // Every queued ticket, removed (shutdown).
  std::vector<ticket> cancel_all();

  std::uint32_t active() const { return active_; }
  std::size_t queued() const { return queued_; }
  std::uint32_t active_of(const std::string& client) const;

 private:
  bool fits(const std::string& client) const;
  std::vector<ticket> grant();

  std::uint32_t per_client_;
  std::uint32_t total_;
  std::uint32_t active_ = 0;
  std::size_t queued_ = 0;
  ticket next_ = 1;
  std::unordered_map<std::string, std::uint32_t> active_by_client_;
  std::unordered_map<std::string, std::deque<ticket>> queue_by_client_;
  std::list<std::string> turn_;                    // clients with queued tickets, next served first
  std::unordered_map<ticket, std::string> owner_;  // queued ticket -> client
};

class download_queue {
 public:
  enum class outcome { granted, timed_out, cancelled };
  class waiter;

  download_queue(std::uint32_t per_client, std::uint32_t total) : slots_(per_client, total) {}

  // Thread-safe. A slot at once, or nothing.
  bool try_acquire(const std::string& client);
  // Queues a download; the returned waiter is woken on `executor` (the caller's).
  std::shared_ptr<waiter> enqueue(const std::string& client, boost::asio::any_io_executor executor);
  // Waits (on the waiter's executor) until granted, cancelled or `timeout` passed. Only
  // `granted` leaves the caller holding a slot (release it when the download ends).
  boost::asio::awaitable<outcome> wait(std::shared_ptr<waiter> w,
                                       std::chrono::steady_clock::duration timeout);
  // From any thread: the client went away (or the server stops). No-op once granted.
  void cancel(const std::shared_ptr<waiter>& w);
  void cancel_all();
  void release(const std::string& client);

  std::uint32_t active() const;
  std::size_t queued() const;

 private:
  void wake(const std::shared_ptr<waiter>& w);

  mutable std::mutex mutex_;
  fair_slots slots_;
  std::unordered_map<fair_slots::ticket, std::shared_ptr<waiter>> waiting_;
};

class download_queue::waiter {
 public:
  explicit waiter(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
  fair_slots::ticket ticket = 0;
  outcome state = outcome::timed_out;  // guarded by the queue's mutex; final once woken
  bool woken = false;
  boost::asio::steady_timer timer;  // touched on its executor only
};

}  // namespace fusproxy::server
