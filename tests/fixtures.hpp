#pragma once
// Reads files from ../shared/fixtures for tests.
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace fusproxy::test {

inline std::string fixture(const std::string& name) {
  std::ifstream in(std::string(FUSPROXY_FIXTURES) + "/" + name, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + name);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace fusproxy::test
