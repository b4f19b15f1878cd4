#pragma once
// The sub-commands of the one `fusproxy` binary. Each takes the arguments after its name
// (argv[0] is the sub-command's name) and returns the process exit code.
namespace fusproxy::cli {



}  // namespace fusproxy::cli
