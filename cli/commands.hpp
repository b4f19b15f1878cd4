#pragma once
// The sub-commands of the one `fusproxy` binary. Each takes the arguments after its name
// (argv[0] is the sub-command's name) and returns the process exit code.
namespace fusproxy::cli {

// fusproxy decrypt (--key HEX | --enc2 R:M:V | --enc4 V:LOGIC_VALUE) IN OUT
int run_decrypt(int argc, char** argv);

// fusproxy [serve] [FLAGS]: the HTTP service (flags: config/settings.hpp, --help)
int run_serve(int argc, char** argv);

// fusproxy get MODEL REGION [VERSION] [-o FILE] [-c] [-q] [upstream flags]
int run_get(int argc, char** argv);

// fusproxy versions MODEL REGION [--json] [upstream flags]
int run_versions(int argc, char** argv);

}  // namespace fusproxy::cli
