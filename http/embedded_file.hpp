#pragma once
// A file of the repository compiled into the binary (cmake/embed_files.cmake writes the
// table; the status page's HTML/CSS/JS are served from it).
#include <span>
#include <string_view>

namespace fusproxy::server {

struct embedded_file {
  std::string_view name;    // file name, e.g. "app.js"
  std::string_view bytes;   // its content
  std::string_view sha256;  // lower-case hex, computed at build time
};

// http/status_page/*: index.html, login.html, style.css, app.js (generated source).
std::span<const embedded_file> status_page_files();

}  // namespace fusproxy::server
