// fusproxy: the entry point; dispatches to the sub-commands.
#include <cstdio>
#include <string_view>

#include "cli/commands.hpp"

namespace {

void print_usage() {
  std::fputs(
      "usage: fusproxy [serve] [FLAGS]     run the service\n"
      "       fusproxy decrypt --help      decrypt a firmware file\n",
      stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view cmd = argc > 1 ? argv[1] : "";

  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    print_usage();
    return 0;
  }
  if (cmd == "decrypt") return fusproxy::cli::run_decrypt(argc - 1, argv + 1);
  std::fputs("fusproxy: the service is not built yet (issue 4); see `fusproxy --help`\n", stderr);
  print_usage();
  return 2;
}
