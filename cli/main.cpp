// fusproxy: the entry point; dispatches to the sub-commands.
#include <array>
#include <cstdio>
#include <string_view>

#include "cli/commands.hpp"

namespace {

void print_usage() {
  std::fputs(
      "usage: fusproxy [serve] [FLAGS]     run the service\n"
      "       fusproxy decrypt --help      decrypt a firmware file\n"
      "       fusproxy get --help          download one build (decrypted zip)\n"
      "       fusproxy versions --help     list a model/region's versions\n",
      stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view cmd = argc > 1 ? argv[1] : "";

  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    print_usage();
    std::fputs("\n", stdout);
    return fusproxy::cli::run_serve(2, std::array<char*, 2>{argv[0], argv[1]}.data());
  }
  if (cmd == "decrypt") return fusproxy::cli::run_decrypt(argc - 1, argv + 1);
  if (cmd == "get") return fusproxy::cli::run_get(argc - 1, argv + 1);
  if (cmd == "versions") return fusproxy::cli::run_versions(argc - 1, argv + 1);
  if (cmd == "serve") return fusproxy::cli::run_serve(argc - 1, argv + 1);
  // No sub-command (nothing, or flags): the service.
  return fusproxy::cli::run_serve(argc, argv);
}
