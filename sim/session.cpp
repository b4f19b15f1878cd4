#include "sim/session.hpp"

#include <algorithm>
#include <cctype>

namespace fusproxy::sim {

std::string_view to_string(dialect d) {
  return d == dialect::smart2 ? "smart2" : "legacy";
}

const issued_nonce* session::find_nonce(std::string_view header) const {
  for (auto it = nonces.rbegin(); it != nonces.rend(); ++it)
    if (it->header == header) return &*it;
  return nullptr;
}

session_store::session_store(std::chrono::seconds idle_timeout, std::size_t max_sessions,
                             std::size_t max_nonces)
    : idle_timeout_(idle_timeout), max_sessions_(max_sessions), max_nonces_(max_nonces) {}

session& session_store::create(std::string id, dialect d,
                               std::chrono::steady_clock::time_point now) {
  expire(now);
  while (sessions_.size() >= max_sessions_) {
    // Forget the least recently used session (and its nonces).
    auto victim = std::min_element(sessions_.begin(), sessions_.end(), [](auto& a, auto& b) {
      return a.second.last_used < b.second.last_used;
    });
    for (const auto& n : victim->second.nonces) nonce_owner_.erase(n.header);
    sessions_.erase(victim);
  }
  session s;
  s.id = id;
  s.dialect = d;
  s.last_used = now;
  return sessions_.insert_or_assign(std::move(id), std::move(s)).first->second;
}

session* session_store::find_by_id(std::string_view id, std::chrono::steady_clock::time_point now) {
  expire(now);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
  it->second.last_used = now;
  return &it->second;
}

session* session_store::find_by_nonce(std::string_view nonce_header,
                                      std::chrono::steady_clock::time_point now) {
  const auto owner = nonce_owner_.find(std::string(nonce_header));
  if (owner == nonce_owner_.end()) return nullptr;
  return find_by_id(owner->second, now);
}

void session_store::add_nonce(session& s, issued_nonce n) {
  nonce_owner_[n.header] = s.id;
  s.nonces.push_back(std::move(n));
  while (s.nonces.size() > max_nonces_) {
    nonce_owner_.erase(s.nonces.front().header);
    s.nonces.pop_front();
  }
}

void session_store::expire(std::chrono::steady_clock::time_point now) {
  // A sweep at most every few seconds keeps lookups cheap.
  if (now - last_expiry_ < std::chrono::seconds(5)) return;
  last_expiry_ = now;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.active_downloads == 0 && now - it->second.last_used > idle_timeout_) {
      for (const auto& n : it->second.nonces) nonce_owner_.erase(n.header);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string_view fus_authorization::get(std::string_view key) const {
  const auto it = params.find(key);
  return it == params.end() ? std::string_view{} : std::string_view(it->second);
}

std::optional<fus_authorization> parse_fus_authorization(std::string_view h) {
  const auto skip_space = [&] {
    while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  };
  skip_space();
  if (h.size() < 4 || h.substr(0, 3) != "FUS" || (h[3] != ' ' && h[3] != '\t')) return std::nullopt;
  h.remove_prefix(3);
  fus_authorization auth;
  for (;;) {
    skip_space();
    if (h.empty()) break;
    const auto eq = h.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::nullopt;
    std::string key(h.substr(0, eq));
    while (!key.empty() && key.back() == ' ') key.pop_back();
    h.remove_prefix(eq + 1);
    skip_space();
    std::string value;
    if (!h.empty() && h.front() == '"') {
      const auto close = h.find('"', 1);
      if (close == std::string_view::npos) return std::nullopt;
      value = std::string(h.substr(1, close - 1));
      h.remove_prefix(close + 1);
    } else {
      const auto end = h.find(',');
      value = std::string(h.substr(0, end));
      while (!value.empty() && value.back() == ' ') value.pop_back();
      h.remove_prefix(end == std::string_view::npos ? h.size() : end);
    }
    auth.params.insert_or_assign(std::move(key), std::move(value));
    skip_space();
    if (h.empty()) break;
    if (h.front() != ',') return std::nullopt;
    h.remove_prefix(1);
  }
  if (!auth.has("nonce") || !auth.has("signature")) return std::nullopt;
  return auth;
}

std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      auto v = pair.substr(eq + 1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
  }
  return {};
}

bool valid_imei_or_serial(std::string_view v) {
  if (v.size() == 15 &&
      std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int sum = 0;
    for (std::size_t i = 0; i < 15; ++i) {
      int d = v[i] - '0';
      if (i % 2 == 1) {  // every second digit from the left, doubled (Luhn)
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
    }
    return sum % 10 == 0;
  }
  if (v.size() == 11 || v.size() == 12)
    return std::all_of(v.begin(), v.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
  return false;
}

}  // namespace fusproxy::sim
