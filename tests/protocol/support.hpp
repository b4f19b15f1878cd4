#pragma once
// Shared by the protocol tests: vectors.json, and a nonce that makes LOGIC_CHECK produce a
// captured value (the write-up's captures do not say which nonce they were signed with).
#include <boost/json.hpp>
#include <boost/system/result.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "tests/fixtures.hpp"

// Catch prints results in failure messages; Boost's own operator<< needs one for T too.
namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T, boost::system::error_code>> {
  static std::string convert(const boost::system::result<T, boost::system::error_code>& r) {
    return r ? std::string("{value}") : "{error: " + r.error().message() + "}";
  }
};
}  // namespace Catch

namespace fusproxy::test {

inline const boost::json::value& vectors() {
  static const boost::json::value v = boost::json::parse(fixture("vectors.json"));
  return v;
}

inline std::string json_string(const boost::json::value& v, std::string_view key) {
  return std::string(v.as_object().at(key).as_string());
}

// LOGIC_CHECK picks input[code(c) & 0xF] per nonce char: for each wanted output char, choose
// a nonce char whose low nibble indexes a position of the input holding it.
inline std::string nonce_reproducing(std::string_view input, std::string_view wanted) {
  std::string nonce;
  for (const char c : wanted) {
    const auto at = input.substr(0, 16).find(c);
    REQUIRE(at != std::string_view::npos);
    nonce += "0123456789:;<=>?"[at];
  }
  return nonce;
}

}  // namespace fusproxy::test
