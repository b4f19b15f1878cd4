#include "config/imei.hpp"

#include <algorithm>
#include <cstdint>

namespace fusproxy::config {

char luhn_check_digit(std::string_view digits) {
  // From the right, every second digit of the payload (starting with the rightmost) doubles.
  unsigned sum = 0;
  bool twice = true;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it, twice = !twice) {
    unsigned d = static_cast<unsigned>(*it - '0');
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

namespace {
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

bool is_luhn_valid_imei(std::string_view imei) {
  return imei.size() == 15 && all_digits(imei) && luhn_check_digit(imei.substr(0, 14)) == imei[14];
}

std::optional<std::string> expand_imei(std::string_view model, std::string_view value) {
  if (!all_digits(value) || value.size() >= 15) return std::string(value);  // serial, IMEI(SV)
  if (value.size() < 8) return std::nullopt;
  // FNV-1a over "MODEL=PREFIX": the filler digits are the same on every run.
  std::uint64_t h = 1469598103934665603ull;
  const auto mix = [&](std::string_view s) {
    for (const unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(model);
  mix("=");
  mix(value);
  std::string out(value);
  while (out.size() < 14) {
    out += static_cast<char>('0' + h % 10);
    h /= 10;
    if (h == 0) h = 1469598103934665603ull;
  }
  out += luhn_check_digit(out);
  return out;
}

}  // namespace fusproxy::config
