#include "sim/faults.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "protocol/ascii.hpp"

namespace fusproxy::sim {

namespace {

struct kind_info {
  fault_kind kind;
  std::string_view name;
  bool needs_value;
  fault_scope default_scope;
  bool scope_fixed;  // only one endpoint makes sense
  std::uint64_t default_count;
};

constexpr kind_info kinds[] = {
    {fault_kind::drop_after, "drop-after", true, fault_scope::download, true, 1},
    {fault_kind::status, "status", true, fault_scope::any, false, 1},
    {fault_kind::auth401, "auth401", false, fault_scope::signed_, false, 1},
    {fault_kind::firewall, "firewall", false, fault_scope::inform, false, 1},
    {fault_kind::slow_first_byte, "slow-first-byte", true, fault_scope::any, false, 1},
    {fault_kind::truncate, "truncate", false, fault_scope::download, false, 1},
    {fault_kind::bad_crc, "bad-crc", false, fault_scope::inform, true, 1},
    {fault_kind::no_name, "no-name", false, fault_scope::inform, true, 1},
    // A cap rather than an event: it holds until cleared unless given a count of 429s.
    {fault_kind::max_conns, "max-conns", true, fault_scope::download, true, unlimited},
    {fault_kind::no_nonce, "no-nonce", false, fault_scope::post, false, 1},
    {fault_kind::reset, "reset", false, fault_scope::any, false, 1},
    {fault_kind::range_200, "range-200", false, fault_scope::download, true, 1},
    {fault_kind::bad_content_range, "bad-content-range", false, fault_scope::download, true, 1},
    {fault_kind::no_crc, "no-crc", false, fault_scope::inform, true, 1},
    {fault_kind::signed_crc, "signed-crc", false, fault_scope::inform, true, 1},
    {fault_kind::init_body, "init-body", true, fault_scope::init, true, 1},
    {fault_kind::trickle, "trickle", true, fault_scope::download, true, 1},
    {fault_kind::stall, "stall", true, fault_scope::download, true, 1},
};

static_assert(std::size(kinds) == fault_kind_count, "one kinds[] entry per fault_kind");

struct scope_info {
  fault_scope scope;
  std::string_view name;
};
constexpr scope_info scopes[] = {
    {fault_scope::any, "any"},           {fault_scope::post, "post"},
    {fault_scope::signed_, "signed"},    {fault_scope::nonce, "nonce"},
    {fault_scope::inform, "inform"},     {fault_scope::init, "init"},
    {fault_scope::download, "download"}, {fault_scope::history, "history"},
    {fault_scope::fota, "fota"},
};

std::string_view scope_name(fault_scope scope) {
  for (const auto& s : scopes)
    if (s.scope == scope) return s.name;
  return "?";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<double> parse_number(std::string_view s, std::string_view& unit) {
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + i, v);
  if (ec != std::errc{} || p != s.data() + i || !std::isfinite(v) || v < 0) return std::nullopt;
  unit = s.substr(i);
  return v;
}

std::string lower(std::string_view s) {
  return protocol::ascii::to_lower(s);
}

}  // namespace

std::string_view to_string(endpoint e) {
  switch (e) {
    case endpoint::nonce:
      return "nonce";
    case endpoint::inform:
      return "inform";
    case endpoint::init:
      return "init";
    case endpoint::download:
      return "download";
    case endpoint::history:
      return "history";
    case endpoint::fota:
      return "fota";
    case endpoint::control:
      return "control";
    case endpoint::other:
      return "other";
  }
  return "other";
}

std::string_view to_string(fault_kind k) {
  for (const auto& info : kinds)
    if (info.kind == k) return info.name;
  return "?";
}

bool fault_rule::applies_to(endpoint e) const {
  switch (scope) {
    case fault_scope::any:
      return e != endpoint::control && e != endpoint::other;
    case fault_scope::post:
      return e == endpoint::nonce || e == endpoint::inform || e == endpoint::init ||
             e == endpoint::history;
    case fault_scope::signed_:
      return e == endpoint::inform || e == endpoint::init || e == endpoint::download;
    case fault_scope::nonce:
      return e == endpoint::nonce;
    case fault_scope::inform:
      return e == endpoint::inform;
    case fault_scope::init:
      return e == endpoint::init;
    case fault_scope::download:
      return e == endpoint::download;
    case fault_scope::history:
      return e == endpoint::history;
    case fault_scope::fota:
      return e == endpoint::fota;
  }
  return false;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::string_view unit;
  const auto v = parse_number(trim(text), unit);
  if (!v) return std::nullopt;
  const std::string u = lower(unit);
  double mul = 0;
  if (u.empty() || u == "b")
    mul = 1;
  else if (u == "k" || u == "kb")
    mul = 1e3;
  else if (u == "kib")
    mul = 1024.0;
  else if (u == "m" || u == "mb")
    mul = 1e6;
  else if (u == "mib")
    mul = 1024.0 * 1024;
  else if (u == "g" || u == "gb")
    mul = 1e9;
  else if (u == "gib")
    mul = 1024.0 * 1024 * 1024;
  else
    return std::nullopt;
  const double bytes = *v * mul;
  if (bytes > 1.8e19) return std::nullopt;
  return static_cast<std::uint64_t>(std::llround(bytes));
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::string_view unit;
  const auto v = parse_number(trim(text), unit);
  if (!v) return std::nullopt;
  const std::string u = lower(unit);
  double ms = 0;
  if (u == "ms")
    ms = *v;
  else if (u.empty() || u == "s")
    ms = *v * 1000;
  else if (u == "m" || u == "min")
    ms = *v * 60000;
  else
    return std::nullopt;
  if (ms > 86400000.0) return std::nullopt;
  return std::chrono::milliseconds(std::llround(ms));
}

boost::system::result<std::vector<fault_rule>, std::string> parse_fault_spec(
    std::string_view spec) {
  std::vector<fault_rule> out;
  spec = trim(spec);
  if (spec.empty()) return out;
  while (!spec.empty()) {
    const auto comma = spec.find(',');
    const std::string_view item = trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    if (item.empty()) return std::string("empty item in fault spec");
    const auto fail = [&](std::string_view why) {
      return std::string("fault '") + std::string(item) + "': " + std::string(why);
    };

    std::string_view rest = item;
    std::string_view count_text, skip_text, where_text, value_text;
    bool has_skip = false;
    if (const auto star = rest.rfind('*'); star != std::string_view::npos) {
      count_text = rest.substr(star + 1);
      rest = rest.substr(0, star);
    }
    if (const auto plus = rest.rfind('+'); plus != std::string_view::npos) {
      skip_text = rest.substr(plus + 1);
      rest = rest.substr(0, plus);
      has_skip = true;
    }
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
      where_text = rest.substr(at + 1);
      rest = rest.substr(0, at);
    }
    std::string_view name = rest;
    bool has_value = false;
    if (const auto eq = rest.find('='); eq != std::string_view::npos) {
      name = rest.substr(0, eq);
      value_text = rest.substr(eq + 1);
      has_value = true;
    }
    name = trim(name);

    const kind_info* info = nullptr;
    for (const auto& k : kinds)
      if (k.name == name) info = &k;
    if (!info)
      return fail(
          "unknown fault (drop-after, status, auth401, firewall, slow-first-byte, "
          "truncate, bad-crc, no-name, max-conns, no-nonce, reset, range-200, "
          "bad-content-range, no-crc, signed-crc, init-body, trickle, stall)");
    if (info->needs_value && !has_value) return fail("needs a value (NAME=VALUE)");
    if (!info->needs_value && has_value) return fail("takes no value");

    fault_rule rule;
    rule.kind = info->kind;
    rule.scope = info->default_scope;
    rule.remaining = info->default_count;
    rule.text = std::string(item);

    switch (info->kind) {
      case fault_kind::drop_after: {
        const auto v = parse_size(value_text);
        if (!v) return fail("bad size (e.g. 4MiB, 100000)");
        rule.value = *v;
        break;
      }
      case fault_kind::status: {
        unsigned code = 0;
        const auto t = trim(value_text);
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), code);
        if (ec != std::errc{} || p != t.data() + t.size() || code < 400 || code > 599)
          return fail("status must be 400..599");
        rule.value = code;
        break;
      }
      case fault_kind::slow_first_byte: {
        const auto d = parse_duration(value_text);
        if (!d) return fail("bad duration (e.g. 2s, 250ms)");
        rule.value = static_cast<std::uint64_t>(d->count());
        break;
      }
      case fault_kind::init_body: {
        const auto t = trim(value_text);
        if (t == "empty")
          rule.value = 0;
        else if (t == "text")
          rule.value = 1;
        else
          return fail("init-body must be empty or text");
        break;
      }
      case fault_kind::trickle: {
        // RATE:AFTER, e.g. 64KiB:1MiB
        const auto t = trim(value_text);
        const auto colon = t.find(':');
        const auto rate = parse_size(t.substr(0, colon));
        const auto after = colon == std::string_view::npos ? std::optional<std::uint64_t>(0)
                                                           : parse_size(t.substr(colon + 1));
        if (!rate || *rate == 0 || !after)
          return fail("trickle needs RATE:AFTER in bytes, e.g. 64KiB:1MiB (RATE > 0)");
        rule.value = *rate;
        rule.value2 = *after;
        break;
      }
      case fault_kind::stall: {
        const auto v = parse_size(value_text);
        if (!v) return fail("bad size (e.g. 1MiB, 0)");
        rule.value = *v;
        break;
      }
      case fault_kind::max_conns: {
        unsigned n = 0;
        const auto t = trim(value_text);
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
        if (ec != std::errc{} || p != t.data() + t.size() || n == 0)
          return fail("max-conns must be a positive number");
        rule.value = n;
        break;
      }
      default:
        break;
    }

    if (!where_text.empty()) {
      const auto w = trim(where_text);
      const scope_info* s = nullptr;
      for (const auto& sc : scopes)
        if (sc.name == w) s = &sc;
      if (!s)
        return fail(
            "unknown endpoint (any, post, signed, nonce, inform, init, download, "
            "history, fota)");
      if (info->scope_fixed && s->scope != info->default_scope)
        return fail("only applies to @" + std::string(scope_name(info->default_scope)));
      rule.scope = s->scope;
    }
    if (has_skip) {
      const auto t = trim(skip_text);
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), rule.skip);
      if (t.empty() || ec != std::errc{} || p != t.data() + t.size())
        return fail("skip must be a number (+N: N matching requests pass first)");
    }
    if (!count_text.empty()) {
      const auto t = trim(count_text);
      std::uint64_t n = 0;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
      if (t == "inf")
        n = unlimited;
      else if (ec != std::errc{} || p != t.data() + t.size() || n == 0)
        return fail("count must be a positive number or 'inf'");
      rule.remaining = n;
    }
    out.push_back(std::move(rule));
  }
  return out;
}

void fault_set::arm(std::vector<fault_rule> rules) {
  std::lock_guard lock(mutex_);
  for (auto& r : rules) rules_.push_back(std::move(r));
  any_armed_.store(!rules_.empty(), std::memory_order_release);
}

void fault_set::clear() {
  std::lock_guard lock(mutex_);
  rules_.clear();
  any_armed_.store(false, std::memory_order_release);
}

std::optional<fault_fire> fault_set::fire(fault_kind kind, endpoint where) {
  if (!any_armed_.load(std::memory_order_acquire)) return std::nullopt;
  std::lock_guard lock(mutex_);
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    if (it->kind != kind || it->remaining == 0 || !it->applies_to(where)) continue;
    if (it->skip > 0) {  // this request passes untouched by this rule
      --it->skip;
      continue;
    }
    if (it->remaining != unlimited) --it->remaining;
    ++it->fired;
    ++fired_[static_cast<int>(kind)];
    const fault_fire f{it->value, it->value2};
    if (it->remaining == 0) rules_.erase(it);  // exhausted: it stops
    any_armed_.store(!rules_.empty(), std::memory_order_release);
    return f;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> fault_set::cap(fault_kind kind, endpoint where) const {
  if (!any_armed_.load(std::memory_order_acquire)) return std::nullopt;
  std::lock_guard lock(mutex_);
  for (const auto& r : rules_)
    if (r.kind == kind && r.remaining != 0 && r.applies_to(where)) return r.value;
  return std::nullopt;
}

std::vector<fault_rule> fault_set::snapshot() const {
  std::lock_guard lock(mutex_);
  return rules_;
}

std::vector<std::pair<std::string, std::uint64_t>> fault_set::fired_counts() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& k : kinds)
    out.emplace_back(std::string(k.name), fired_[static_cast<int>(k.kind)]);
  return out;
}

void fault_set::reset_fired_counts() {
  std::lock_guard lock(mutex_);
  std::fill(std::begin(fired_), std::end(fired_), 0);
}

}  // namespace fusproxy::sim
