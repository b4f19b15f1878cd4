#pragma once
// lru_map<V>: a map from string keys that holds at most `capacity` entries and forgets the
// least recently used one first. The resolver's memory of upstream answers is bounded by
// count (a client asking for endless made-up versions must not grow it without end), and
// what is asked often is what is worth keeping. Pure; one thread (no locks).
#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

namespace fusproxy::server {

template <class V>
class lru_map {
 public:
  // A capacity of 0 is taken as 1: put() always keeps what it was given last.
  explicit lru_map(std::size_t capacity) : capacity_(capacity ? capacity : 1) {}

  // The entry, now the most recently used; nullptr when absent.
  V* find(const std::string& key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }
  // Sets the entry (the most recently used); forgets the least recently used one when
  // over capacity.
  void put(const std::string& key, V value) {
    if (auto* v = find(key)) {
      *v = std::move(value);
      return;
    }
    order_.emplace_front(key, std::move(value));
    index_[key] = order_.begin();
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }
  void erase(const std::string& key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return;
    order_.erase(it->second);
    index_.erase(it);
  }
  std::size_t size() const { return order_.size(); }
  // Most recent first.
  const std::list<std::pair<std::string, V>>& entries() const { return order_; }

 private:
  std::size_t capacity_;
  std::list<std::pair<std::string, V>> order_;
  std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator> index_;
};

}  // namespace fusproxy::server
