#include "http/status_page.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <map>

namespace fusproxy::server {
namespace {

namespace json = boost::json;

std::string iso8601(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json::object config_object(const config::settings& s) {
  json::object c;
  c["listen"] = s.listen.host + ":" + std::to_string(s.listen.port);
  c["dialect"] = s.dialect == config::dialect::smart2 ? "smart2" : "legacy";
  c["fus_url"] = s.fus_url;
  c["cloud_url"] = s.cloud_url;
  c["fota_url"] = s.fota_url;
  // Named key sets are public; custom keys are secrets.
  c["legacy_keys"] = s.legacy_keys.size() > 4 ? "***custom***" : s.legacy_keys;
  c["imei_set"] = s.imei_by_model.size() + (s.default_imei.empty() ? 0 : 1);
  c["connections"] = s.connections;
  c["connections_start"] = std::min(s.connections_start, s.connections);
  c["cache_dir"] = s.cache_dir;
  c["cache_max_bytes"] = s.cache_max_bytes;
  c["metadata_ttl"] = s.metadata_ttl;
  c["upstream_deadline"] = s.upstream_deadline;
  c["auth"] = !s.token.empty();  // the token itself never leaves the process
  c["tls"] = !s.tls_cert.empty();
  c["log_format"] = s.log_format == config::log_format::json ? "json" : "text";
  c["demo"] = s.demo;
  c["rate_limit"] = s.rate_limit;
  c["max_connections"] = s.max_connections;
  c["max_downloads_per_client"] = s.max_downloads_per_client;
  c["max_downloads"] = s.max_downloads;
  c["queue_timeout"] = s.queue_timeout;
  c["header_timeout"] = s.header_timeout;
  c["idle_timeout"] = s.idle_timeout;
  c["shutdown_grace"] = s.shutdown_grace;
  return c;
}

}  // namespace

std::string build_key(std::string_view model, std::string_view region, std::string_view version) {
  std::string k(model);
  k.append("/").append(region).append("/").append(version);
  return k;
}

std::string config_summary_json(const config::settings& s) {
  return json::serialize(config_object(s));
}

std::string status_json(const status_inputs& in) {
  json::object firmware;
  {
    boost::system::error_code ec;
    auto v = json::parse(in.firmware_json, ec);
    if (!ec && v.is_object()) firmware = std::move(v.as_object());
  }
  const auto lift = [&](std::initializer_list<const char*> names, json::value fallback) {
    for (const char* n : names)
      if (const auto* v = firmware.if_contains(n)) return *v;
    return fallback;
  };

  json::object service;
  service["name"] = "fusproxy";
  service["version"] = in.version;
  service["started_at"] = iso8601(in.started_at);
  service["uptime_seconds"] = in.uptime_seconds;
  service["shutting_down"] = in.shutting_down;
  if (in.settings) service["config"] = config_object(*in.settings);

  json::object http;
  http["connections"] = in.connections;
  http["requests_in_flight"] = in.requests_in_flight;
  http["downloads_active"] = in.downloads_active;
  http["downloads_queued"] = in.downloads_queued;
  http["bytes_served"] = in.bytes_served;

  // The pipeline's jobs (firmware.downloads: size, present, bytes_per_second, state, …)
  // become "downloads" (those still fetching) in the documented shape, and mark "builds".
  const auto text = [](const json::object& o, const char* k) -> std::string {
    const auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  const auto number = [](const json::object& o, const char* k) -> double {
    const auto* v = o.if_contains(k);
    if (!v) return 0;
    if (v->is_double()) return v->as_double();
    if (v->is_uint64()) return static_cast<double>(v->as_uint64());
    if (v->is_int64()) return static_cast<double>(v->as_int64());
    return 0;
  };
  const auto clients_of = [&](const std::string& key) -> std::int64_t {
    const auto it = in.clients_by_build.find(key);
    return it == in.clients_by_build.end() ? 0 : it->second;
  };
  json::array downloads;
  std::map<std::string, const json::object*> job_by_build;
  if (const auto* jobs = firmware.if_contains("downloads"); jobs && jobs->is_array()) {
    for (const auto& j : jobs->as_array()) {
      if (!j.is_object()) continue;
      const auto& job = j.as_object();
      const auto key = build_key(text(job, "model"), text(job, "region"), text(job, "version"));
      job_by_build[key] = &job;
      const auto state = text(job, "state");
      if (state == "verified" || state == "failed" || state == "crc_mismatch") continue;
      if (job.if_contains("bytes_done")) {  // already in the documented shape
        downloads.push_back(job);
        continue;
      }
      json::object d;
      d["model"] = text(job, "model");
      d["region"] = text(job, "region");
      d["version"] = text(job, "version");
      d["bytes_done"] = static_cast<std::uint64_t>(number(job, "present"));
      d["bytes_total"] = static_cast<std::uint64_t>(number(job, "size"));
      d["rate"] = number(job, "bytes_per_second");
      d["clients"] = clients_of(key);
      d["state"] = state;
      d["connections"] = static_cast<std::uint64_t>(number(job, "connections"));
      d["connections_target"] = static_cast<std::uint64_t>(number(job, "connections_target"));
      d["connections_max"] = static_cast<std::uint64_t>(number(job, "connections_max"));
      d["hedges"] = static_cast<std::uint64_t>(number(job, "hedges"));
      if (const auto* conns = job.if_contains("upstream_connections"); conns && conns->is_array()) {
        json::array rates;
        for (const auto& c : conns->as_array())
          if (c.is_object()) rates.push_back(number(c.as_object(), "bytes_per_second"));
        d["connection_rates"] = std::move(rates);
      }
      d["retries"] = static_cast<std::uint64_t>(number(job, "retries"));
      downloads.push_back(std::move(d));
    }
  }
  auto builds = lift({"builds", "known_builds"}, json::array{});
  if (builds.is_array())
    for (auto& b : builds.as_array()) {
      if (!b.is_object()) continue;
      auto& o = b.as_object();
      const auto key = build_key(text(o, "model"), text(o, "region"), text(o, "version"));
      const auto it = job_by_build.find(key);
      const auto state = it == job_by_build.end() ? std::string() : text(*it->second, "state");
      if (!o.contains("cached")) o["cached"] = state == "verified";
      if (!o.contains("state")) o["state"] = state.empty() ? "metadata" : state;
      o["clients"] = clients_of(key);
    }

  json::object out;
  out["service"] = std::move(service);
  out["http"] = std::move(http);
  out["upstream"] = lift({"upstream", "resolver"}, json::object{});
  out["builds"] = std::move(builds);
  out["downloads"] = std::move(downloads);
  out["firmware"] = std::move(firmware);
  return json::serialize(out);
}

std::string_view status_page_html() {
  static constexpr std::string_view page = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fusproxy status</title>
<style>
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--accent:#1f6feb;--bg:#f7f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
  background:var(--bg);margin:0}
header{background:#fff;border-bottom:1px solid var(--line);padding:.8em 1.5em;display:flex;
  align-items:baseline;gap:1em;flex-wrap:wrap}
header h1{font-size:1.3em;margin:0}
header .meta{color:var(--muted)}
main{padding:1em 1.5em;display:grid;gap:1em;grid-template-columns:repeat(auto-fit,minmax(34em,1fr))}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.8em 1em}
section.wide{grid-column:1/-1}
h2{font-size:1.05em;margin:.1em 0 .6em}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:.9em}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td{overflow-wrap:anywhere}
td>span{white-space:nowrap}
.empty{color:var(--muted);font-style:italic}
.bar{background:var(--line);border-radius:4px;height:.9em;min-width:10em;overflow:hidden}
.bar>div{background:var(--accent);height:100%;transition:width .5s}
form{display:flex;gap:.5em;flex-wrap:wrap;align-items:center;margin-bottom:.6em}
input{padding:.35em .5em;border:1px solid #c9ced6;border-radius:4px;font:inherit;width:10em}
button{padding:.35em 1em;border:0;border-radius:4px;background:var(--accent);color:#fff;font:inherit;cursor:pointer}
.err{color:#b42318}
code{font-size:.92em}
.dot{display:inline-block;width:.6em;height:.6em;border-radius:50%;background:#12b76a;margin-right:.3em}
.dot.off{background:#f04438}
</style></head>
<body>
<header><h1>fusproxy</h1><span class="meta" id="service">loading&hellip;</span></header>
<main>
<p id="notice" role="status" aria-live="polite"></p>
<section class="wide" id="downloads-section"><h2>Active downloads</h2><div id="downloads"></div></section>
<section class="wide" id="lookup-section"><h2>Look up firmware</h2>
<form id="lookup"><label>Model <input id="model" name="model" placeholder="SM-A207F" required
 pattern="[A-Za-z0-9-]+"></label><label>Region <input id="region" name="region" placeholder="SER"
 required pattern="[A-Za-z0-9]+"></label><button type="submit">Look up</button></form>
<div id="result"></div></section>
<section id="upstream-section"><h2>Upstream</h2><div id="upstream"></div></section>
<section class="wide" id="builds-section"><h2>Builds</h2><div id="builds"></div></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function bytes(n) {
  if (n === undefined || n === null) return "?";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return (d ? d + "d " : "") + (h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}
function table(headers, rows, numeric) {
  if (!rows.length) return el("p", {class: "empty"}, "none");
  const t = el("table", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h))));
  for (const r of rows)
    t.append(el("tr", {}, ...r.map((c, i) => el("td", numeric && numeric[i] ? {class: "num"} : {}, c))));
  return t;
}
function vid(v) { return String(v).split("/").join("_"); }
function fwPath(model, region, version, suffix) {
  return "/firmware/" + encodeURIComponent(model) + "/" + encodeURIComponent(region) + "/" +
    encodeURIComponent(vid(version)) + (suffix ? "/" + suffix : "");
}
function render(s) {
  const svc = s.service || {};
  $("service").replaceChildren(el("span", {class: svc.shutting_down ? "dot off" : "dot"}),
    (svc.shutting_down ? "shutting down" : "serving") + " \u00b7 version " + (svc.version || "?") +
    " \u00b7 up " + duration(svc.uptime_seconds || 0) + " \u00b7 " +
    ((s.http && s.http.connections) || 0) + " connection(s) \u00b7 " +
    ((s.http && s.http.downloads_active) || 0) + " download(s) streaming, " +
    ((s.http && s.http.downloads_queued) || 0) + " queued for a slot" +
    (svc.config ? " \u00b7 dialect " + svc.config.dialect : ""));
  const downloads = s.downloads || [];
  $("downloads").replaceChildren(table(
    ["build", "progress", "done", "total", "rate", "ETA", "upstream connections", "clients"],
    downloads.map((d) => {
      const pct = d.bytes_total ? Math.min(100, 100 * d.bytes_done / d.bytes_total) : 0;
      const left = Math.max(0, (d.bytes_total || 0) - (d.bytes_done || 0));
      const eta = d.rate > 0 ? duration(Math.ceil(left / d.rate)) : "\u2014";
      const rates = d.connection_rates || [];
      const conns = (d.connections ?? 0) + " of " + (d.connections_target ?? "?") +
        (d.connections_max ? " (max " + d.connections_max + ")" : "") +
        (rates.length ? ", " + rates.map((r) => bytes(r) + "/s").join(" ") : "") +
        (d.hedges ? ", " + d.hedges + " hedged" : "");
      return [d.model + " " + d.region + " " + d.version,
        el("div", {class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
                   "aria-valuenow": pct.toFixed(0), "aria-label": "progress of " + d.version,
                   title: pct.toFixed(1) + "%"},
           el("div", {style: "width:" + pct.toFixed(1) + "%"})),
        bytes(d.bytes_done) + " (" + pct.toFixed(1) + "%)", bytes(d.bytes_total),
        bytes(d.rate || 0) + "/s", eta, conns, d.clients ?? 0];
    }), [false, false, true, true, true, true, false, true]));
  const up = s.upstream || {};
  const rows = [];
  for (const [k, v] of Object.entries(up)) {
    if (v !== null && typeof v === "object") {
      for (const [k2, v2] of Object.entries(v)) rows.push([k + " \u203a " + k2, v2]);
    } else rows.push([k.split("_").join(" "), v]);
  }
  $("upstream").replaceChildren(table(["counter", "value"], rows, [false, true]));
  const builds = s.builds || [];
  $("builds").replaceChildren(table(["model", "region", "version", "size", "plain size", "cache", ""],
    builds.map((b) => [b.model, b.region, el("code", {}, b.version), bytes(b.size), bytes(b.plain_size),
      b.cached ? "cached" : (b.state || "metadata"),
      el("span", {}, el("a", {href: fwPath(b.model, b.region, b.version)}, "metadata"), " \u00b7 ",
        el("a", {href: fwPath(b.model, b.region, b.version, "download")}, "download"),
        ...(b.cached && b.filename ? [" \u00b7 ", deleteButton(b)] : []))]),
    [false, false, false, true, true, false, false]));
}
// Operators: removes a cached build (DELETE /api/cache/{name}); the answer is shown in words.
function deleteButton(b) {
  const button = el("button", {type: "button", "aria-label": "delete cached build " + b.version}, "delete");
  button.addEventListener("click", async () => {
    if (!confirm("Delete the cached build " + b.version + "?")) return;
    const r = await fetch("/api/cache/" + encodeURIComponent(b.filename), {method: "DELETE"});
    const j = await r.json().catch(() => ({}));
    $("notice").textContent = r.ok ? "deleted " + b.filename
      : "could not delete " + b.filename + ": " + ((j.error && j.error.message) || "HTTP " + r.status);
  });
  return button;
}
async function poll() {
  try {
    const r = await fetch("/api/status", {cache: "no-store"});
    if (r.ok) render(await r.json());
    else $("service").textContent = "status: HTTP " + r.status;
  } catch (e) {
    $("service").textContent = "status unavailable";
  }
  setTimeout(poll, 1000);
}
async function lookup() {
  const model = $("model").value.trim().toUpperCase(), region = $("region").value.trim().toUpperCase();
  const out = $("result");
  out.replaceChildren(el("p", {class: "empty"}, "looking up " + model + "/" + region + "\u2026"));
  try {
    const r = await fetch("/firmware/" + encodeURIComponent(model) + "/" + encodeURIComponent(region));
    const j = await r.json();
    if (!r.ok) {
      out.replaceChildren(el("p", {class: "err"}, "HTTP " + r.status + ": " +
        ((j.error && (j.error.code + " \u2014 " + j.error.message)) || "error")));
      return;
    }
    out.replaceChildren(el("p", {}, "latest: ", el("code", {}, j.latest || "none"), " \u00b7 ",
        el("a", {href: "/firmware/" + encodeURIComponent(model) + "/" + encodeURIComponent(region) +
          "/feed.atom", type: "application/atom+xml"}, "Atom feed")),
      table(["version", "os", ""], (j.versions || []).map((v) => [
        el("code", {}, v.version + (v.beta ? " (beta)" : "")), v.os || "",
        el("span", {}, el("a", {href: fwPath(model, region, v.version)}, "metadata"), " \u00b7 ",
          el("a", {href: fwPath(model, region, v.version, "download")}, "download"))])));
  } catch (e) {
    out.replaceChildren(el("p", {class: "err"}, String(e)));
  }
}
$("lookup").addEventListener("submit", (ev) => {
  ev.preventDefault();
  history.replaceState(null, "", "#" + $("model").value.trim() + "/" + $("region").value.trim());
  lookup();
});
// A link like /#SM-A207F/SER opens with that lookup done.
function lookupFromHash() {
  const m = /^#([A-Za-z0-9-]+)\/([A-Za-z0-9]+)$/.exec(location.hash);
  if (!m) return;
  $("model").value = m[1];
  $("region").value = m[2];
  lookup();
}
window.addEventListener("hashchange", lookupFromHash);
lookupFromHash();
poll();
</script></body></html>
)html";
  return page;
}

}  // namespace fusproxy::server
