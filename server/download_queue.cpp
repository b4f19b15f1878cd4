#include "server/download_queue.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace fusproxy::server {

// ---- fair_slots ----

bool fair_slots::fits(const std::string& client) const {
  if (total_ && active_ >= total_) return false;
  return !per_client_ || active_of(client) < per_client_;
}

std::uint32_t fair_slots::active_of(const std::string& client) const {
  const auto it = active_by_client_.find(client);
  return it == active_by_client_.end() ? 0 : it->second;
}

bool fair_slots::try_acquire(const std::string& client) {
  if (queue_by_client_.count(client) || !fits(client)) return false;
  ++active_by_client_[client];
  ++active_;
  return true;
}

fair_slots::ticket fair_slots::enqueue(const std::string& client) {
  const ticket t = next_++;
  auto& q = queue_by_client_[client];
  if (q.empty()) turn_.push_back(client);
  q.push_back(t);
  owner_.emplace(t, client);
  ++queued_;
  return t;
}

std::vector<fair_slots::ticket> fair_slots::grant() {
  std::vector<ticket> granted;
  bool progress = true;
  while (progress && !(total_ && active_ >= total_)) {
    progress = false;
    for (auto it = turn_.begin(); it != turn_.end(); ++it) {
      if (!fits(*it)) continue;  // this client is at its own cap: the next one's turn
      const std::string client = *it;
      auto& q = queue_by_client_.at(client);
      const ticket t = q.front();
      q.pop_front();
      owner_.erase(t);
      --queued_;
      ++active_by_client_[client];
      ++active_;
      granted.push_back(t);
      turn_.erase(it);
      if (q.empty())
        queue_by_client_.erase(client);
      else
        turn_.push_back(client);  // served now: last in the round
      progress = true;
      break;
    }
  }
  return granted;
}

std::vector<fair_slots::ticket> fair_slots::release(const std::string& client) {
  const auto it = active_by_client_.find(client);
  if (it == active_by_client_.end() || it->second == 0) return {};
  if (--it->second == 0) active_by_client_.erase(it);
  --active_;
  return grant();
}

bool fair_slots::cancel(ticket t) {
  const auto it = owner_.find(t);
  if (it == owner_.end()) return false;
  const std::string client = it->second;
  owner_.erase(it);
  --queued_;
  auto& q = queue_by_client_.at(client);
  std::erase(q, t);
  if (q.empty()) {
    queue_by_client_.erase(client);
    turn_.remove(client);
  }
  return true;
}

std::vector<fair_slots::ticket> fair_slots::cancel_all() {
  std::vector<ticket> out;
  for (const auto& [t, client] : owner_) out.push_back(t);
  owner_.clear();
  queue_by_client_.clear();
  turn_.clear();
  queued_ = 0;
  return out;
}

// ---- download_queue ----

bool download_queue::try_acquire(const std::string& client) {
  std::lock_guard lock(mutex_);
  return slots_.try_acquire(client);
}

std::shared_ptr<download_queue::waiter> download_queue::enqueue(
    const std::string& client, boost::asio::any_io_executor executor) {
  auto w = std::make_shared<waiter>(std::move(executor));
  std::lock_guard lock(mutex_);
  w->ticket = slots_.enqueue(client);
  waiting_.emplace(w->ticket, w);
  return w;
}

// Under the mutex: the waiter's state is final; its timer is cancelled on its own
// executor (a timer is not thread-safe), which resumes wait().
void download_queue::wake(const std::shared_ptr<waiter>& w) {
  w->woken = true;
  waiting_.erase(w->ticket);
  boost::asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
}

boost::asio::awaitable<download_queue::outcome> download_queue::wait(
    std::shared_ptr<waiter> w, std::chrono::steady_clock::duration timeout) {
  {
    std::lock_guard lock(mutex_);
    if (w->woken) co_return w->state;
  }
  w->timer.expires_after(timeout);
  co_await w->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  std::lock_guard lock(mutex_);
  if (!w->woken) {  // the timeout: leave the queue
    slots_.cancel(w->ticket);
    waiting_.erase(w->ticket);
    w->woken = true;
    w->state = outcome::timed_out;
  }
  co_return w->state;
}

void download_queue::cancel(const std::shared_ptr<waiter>& w) {
  std::lock_guard lock(mutex_);
  if (w->woken || !slots_.cancel(w->ticket)) return;
  w->state = outcome::cancelled;
  wake(w);
}

void download_queue::cancel_all() {
  std::lock_guard lock(mutex_);
  for (const auto t : slots_.cancel_all()) {
    const auto it = waiting_.find(t);
    if (it == waiting_.end()) continue;
    const auto w = it->second;
    w->state = outcome::cancelled;
    wake(w);
  }
}

void download_queue::release(const std::string& client) {
  std::lock_guard lock(mutex_);
  for (const auto t : slots_.release(client)) {
    const auto it = waiting_.find(t);
    if (it == waiting_.end()) continue;
    const auto w = it->second;
    w->state = outcome::granted;
    wake(w);
  }
}

std::uint32_t download_queue::active() const {
  std::lock_guard lock(mutex_);
  return slots_.active();
}

std::size_t download_queue::queued() const {
  std::lock_guard lock(mutex_);
  return slots_.queued();
}

}  // namespace fusproxy::server
