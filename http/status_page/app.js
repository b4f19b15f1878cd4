// fusproxy status page: polls /api/status, browses model/region -> versions -> members
// (-> entries where the server lists them), manages the cache and mirrors. Uses only the
// JSON APIs in ../shared/api.md and docs/; no external assets. All URLs are relative to the
// page, so the page also works behind a reverse proxy that mounts it under a path.
"use strict";

const $ = (id) => document.getElementById(id);

// A request URL for `path` relative to the page, without user:password (fetch() refuses
// URLs with credentials; a page opened as http://user:token@host/ has them in its base).
function url(path) {
  const u = new URL(path, document.baseURI);
  u.username = "";
  u.password = "";
  return u.href;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === undefined || v === null) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function bytes(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return "?";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function duration(s) {
  s = Math.max(0, Math.round(s));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + (s % 60) + "s";
}

function date(iso) {
  if (!iso) return "?";
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toISOString().slice(0, 10);
}

// A table with a caption (for screen readers) and column headers; `numeric` marks the
// columns aligned right; `empty` is said when there are no rows.
function table(caption, headers, rows, numeric, empty) {
  if (!rows.length) return el("p", {class: "empty"}, empty || "None.");
  const num = (i) => numeric && numeric[i] ? "num" : null;
  return el("table", {},
    el("caption", {class: "sr-only"}, caption),
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", {scope: "col", class: num(i)}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", {class: num(i)}, c))))));
}

// Replaces a container's content, keeping keyboard focus on the element with the same id
// (the page re-renders every second; focus must not jump back to the top).
function renderInto(container, ...nodes) {
  const active = document.activeElement;
  const focusId = active && active.id && container.contains(active) ? active.id : null;
  container.replaceChildren(...nodes);
  if (focusId && $(focusId)) $(focusId).focus();
}

function vid(v) { return String(v).split("/").join("_"); }
function enc(s) { return encodeURIComponent(s); }
function fwPath(model, region, version, suffix) {
  return "firmware/" + enc(model) + "/" + enc(region) + (version ? "/" + enc(vid(version)) : "") +
    (suffix ? "/" + suffix : "");
}
function idPart(s) { return String(s).replace(/[^A-Za-z0-9_-]/g, "_"); }

// ---- errors in words ----

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const e = (body && body.error) || {};
    super(e.message || "HTTP " + status);
    this.status = status;
    this.code = e.code || "";
    this.body = e;
    this.retryAfter = retryAfter;
  }
}

const WORDS = {
  bad_request: "That does not look like a valid model, region or version.",
  unauthorized: "This mirror needs its access token: sign in first.",
  forbidden: "The server refused this action.",
  not_found: "Nothing found: Samsung has no firmware for this, or the name is misspelt.",
  not_hosted: "Samsung no longer hosts this build.",
  method_not_allowed: "The server does not allow this action here.",
  rate_limited: "Too many requests from your address.",
  in_use: "The build is being read or fetched right now; try again once its downloads end.",
  cache_full: "The cache is full of builds in use; nothing could be evicted.",
  upstream_error: "Samsung's server gave an answer fusproxy could not use.",
  upstream_auth: "Samsung's server rejected fusproxy's keys.",
  upstream_imei_required: "This model needs an IMEI or serial number (the operator sets --imei).",
  upstream_unreachable: "Samsung's server cannot be reached from the mirror right now.",
  upstream_timeout: "Samsung's server did not answer in time.",
  shutting_down: "The mirror is shutting down.",
  not_ready: "The mirror is not ready to serve.",
  internal_error: "The mirror failed unexpectedly (see its log).",
};

// One sentence for people, then the server's own message and code.
function explain(err) {
  if (!(err instanceof ApiError)) return "The mirror could not be reached (" + err.message + ").";
  const words = WORDS[err.code] || "The request failed (HTTP " + err.status + ").";
  const more = err.retryAfter ? " Try again in " + err.retryAfter + " s." : "";
  return words + more + (err.message && err.message !== err.code ? " Details: " + err.message : "") +
    (err.code ? " [" + err.code + "]" : "");
}

function errorNode(err) {
  const p = el("p", {class: "err"}, explain(err));
  if (err instanceof ApiError && err.code === "unauthorized")
    p.append(" ", el("a", {href: url("login")}, "Sign in"));
  if (err instanceof ApiError && err.body.download_url)
    p.append(" The build served now is ", el("code", {}, err.body.served_version || "?"), ": ",
      el("a", {href: url(err.body.download_url.replace(/^\//, ""))}, "download it"), ".");
  return p;
}

async function request(method, path, body) {
  const init = {method, cache: "no-store", headers: {Accept: "application/json"}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(url(path), init);
  const j = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, j, r.headers.get("Retry-After"));
  return j;
}

function say(text) { $("notice").textContent = text; $("alert").textContent = ""; }
function alarm(text) { $("alert").textContent = text; }

// ---- the live part: /api/status every second ----

const rendered = {};  // section -> JSON text last drawn (draw only what changed)
function changed(section, data) {
  const text = JSON.stringify(data);
  if (rendered[section] === text) return false;
  rendered[section] = text;
  return true;
}

function renderService(s) {
  const svc = s.service || {}, http = s.http || {};
  if (!changed("service", [svc.shutting_down, svc.version, Math.floor((svc.uptime_seconds || 0) / 60),
                           http.connections, http.downloads_active, http.downloads_queued]))
    return;
  $("service").replaceChildren(el("span", {class: svc.shutting_down ? "dot off" : "dot", "aria-hidden": "true"}),
    (svc.shutting_down ? "shutting down" : "serving") + " · version " + (svc.version || "?") +
    " · up " + ((svc.uptime_seconds || 0) < 60 ? "under a minute" : duration(Math.floor(svc.uptime_seconds / 60) * 60).replace(/ 0s$/, "")) + " · " +
    (http.connections || 0) + " connection(s) · " + (http.downloads_active || 0) + " download(s) streaming");
  $("logout").hidden = !(svc.config && svc.config.auth);
}

const announced = {};  // download key -> last quarter announced
function renderDownloads(s) {
  const downloads = s.downloads || [];
  const queued = (s.http && s.http.downloads_queued) || 0;
  $("queue").textContent = queued ? queued + " download(s) waiting in the queue for a slot." : "";
  if (!changed("downloads", downloads)) return;
  const live = [];
  const seen = new Set();
  const rows = downloads.map((d) => {
    const key = d.model + " " + d.region + " " + d.version;
    seen.add(key);
    const total = d.bytes_total || 0, done = Math.min(d.bytes_done || 0, total || Infinity);
    const pct = total ? 100 * done / total : 0;
    const quarter = Math.floor(pct / 25);
    if (announced[key] === undefined) live.push(key + ": download started.");
    else if (quarter > announced[key]) live.push(key + ": " + quarter * 25 + "% fetched.");
    announced[key] = quarter;
    const eta = d.rate > 0 && total ? duration((total - done) / d.rate) : "—";
    const rates = d.connection_rates ||
      (Array.isArray(d.connections) ? d.connections.map((c) => c.bytes_per_second || 0) : []);
    const count = Array.isArray(d.connections) ? d.connections.length : (d.connections || 0);
    return [
      el("span", {}, d.model + " " + d.region, el("br"), el("code", {}, d.version)),
      el("span", {class: "nowrap"},
        el("progress", {max: total || 1, value: done, "aria-label": "Progress of " + key,
                        "aria-valuetext": pct.toFixed(0) + "%, " + bytes(done) + " of " + bytes(total),
                        "data-build": key}),
        " " + pct.toFixed(1) + "%"),
      bytes(done) + " of " + bytes(total),
      bytes(d.rate || 0) + "/s", eta,
      count + " of " + (d.connections_target ?? "?") + (d.connections_max ? " (max " + d.connections_max + ")" : "") +
        (d.hedges ? ", " + d.hedges + " hedged" : ""),
      rates.length ? el("ul", {class: "rates", "aria-label": "rate of each upstream connection"},
        rates.map((r, i) => el("li", {}, "#" + (i + 1) + " " + bytes(r) + "/s"))) : "—",
      d.clients ?? 0, d.retries ?? 0,
    ];
  });
  for (const key of Object.keys(announced))
    if (!seen.has(key)) { live.push(key + ": no longer fetching."); delete announced[key]; }
  renderInto($("downloads"), table("Downloads being fetched from upstream",
    ["Build", "Progress", "Done", "Rate", "ETA", "Upstream connections", "Per connection", "Clients", "Retries"],
    rows, [false, false, true, true, true, false, false, true, true],
    "Nothing is being fetched from upstream now."));
  if (live.length) $("downloads-live").textContent = live.join(" ");
}

function deleteButton(b) {
  const name = b.filename;
  return el("button", {type: "button", class: "danger", id: "delete-" + idPart(name),
    "aria-label": "Delete cached build " + b.model + " " + b.region + " " + b.version,
    onclick: async (ev) => {
      if (!confirm("Delete the cached build " + b.version + " (" + name + ")?")) return;
      ev.target.disabled = true;
      try {
        await request("DELETE", "api/cache/" + enc(name));
        say("Deleted " + name + " from the cache.");
      } catch (err) {
        alarm("Could not delete " + name + ": " + explain(err));
        ev.target.disabled = false;
      }
    }}, "Delete");
}

function renderCache(s) {
  const cache = (s.firmware && s.firmware.cache) || null;
  if (!changed("cache", cache)) return;
  if (!cache) { renderInto($("cache"), el("p", {class: "empty"}, "not reported")); return; }
  const used = cache.used_bytes || 0, cap = cache.max_bytes || 0;
  const usage = cap
    ? el("p", {}, el("label", {for: "cache-usage"}, "Space used: " + bytes(used) + " of " + bytes(cap) +
        " (" + (100 * used / cap).toFixed(1) + "%)"),
      " ", el("progress", {id: "cache-usage", class: "usage", max: cap, value: Math.min(used, cap)}))
    : el("p", {}, "Space used: " + bytes(used) + " (no limit set; --cache-max-bytes)");
  const builds = cache.builds || [];
  renderInto($("cache"), usage, el("div", {class: "table-wrap"}, table("Builds in the cache",
    ["Build", "File", "Size", "State", "Last used", "Readers", "Manage"],
    builds.map((b) => [
      el("span", {}, b.model + " " + b.region + " ",
        el("a", {href: "#" + b.model + "/" + b.region + "/" + vid(b.version)}, el("code", {}, b.version))),
      el("code", {}, b.plain_filename || b.filename),
      // A partial build holds (and counts against the limit) only the bytes present.
      b.verified ? bytes(b.plain_size) : bytes(b.bytes ?? 0) + " of " + bytes(b.plain_size),
      b.verified ? el("span", {class: "ok nowrap"}, "complete, verified")
                 : el("span", {class: "warn nowrap"}, "partial (fetching, sparse or stopped)"),
      b.last_used ? b.last_used.replace("T", " ").replace("Z", " UTC") : "?",
      b.readers || 0,
      deleteButton(b),
    ]), [false, false, true, false, false, true, false], "No builds in the cache yet.")));
}

function renderBuilds(s) {
  const builds = s.builds || [];
  if (!changed("builds", builds)) return;
  renderInto($("builds"), table("Builds whose metadata the mirror knows",
    ["Model", "Region", "Version", "Size", "State", "Clients", "Links"],
    builds.map((b) => [b.model, b.region,
      el("a", {href: "#" + b.model + "/" + b.region + "/" + vid(b.version)}, el("code", {}, b.version)),
      bytes(b.plain_size), b.cached ? "cached" : (b.state || "metadata"), b.clients ?? 0,
      el("span", {class: "links"}, el("a", {href: url(fwPath(b.model, b.region, b.version, "download"))},
        "download zip"))]),
    [false, false, false, true, false, true, false]));
}

function renderMirrors(s) {
  const mirrors = (s.firmware && s.firmware.mirrors) || [];
  if (!changed("mirrors", mirrors)) return;
  const form = el("form", {id: "mirror-add", "aria-label": "Mirror a model and region",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const model = $("mirror-model").value.trim().toUpperCase();
      const region = $("mirror-region").value.trim().toUpperCase();
      try {
        await request("POST", "api/mirror", {model, region});
        say("Now mirroring " + model + "/" + region + ": its latest build is fetched and kept.");
      } catch (err) {
        alarm("Could not mirror " + model + "/" + region + ": " + explain(err));
      }
    }},
    el("label", {for: "mirror-model"}, "Model", el("input", {id: "mirror-model", required: true, placeholder: "SM-A207F"})),
    el("label", {for: "mirror-region"}, "Region", el("input", {id: "mirror-region", required: true, placeholder: "SER"})),
    el("button", {type: "submit", id: "mirror-submit"}, "Mirror"));
  const keep = $("mirror-add");  // keep what the user is typing
  renderInto($("mirrors"), table("Mirrored models", ["Model", "Region", "Latest", "State", "Checked", "Manage"],
    mirrors.map((m) => [m.model, m.region, m.version ? el("code", {}, m.version) : "—",
      m.error ? el("span", {class: "err"}, m.state + ": " + m.error) : m.state,
      m.last_checked || "—",
      el("button", {type: "button", class: "danger", id: "unmirror-" + idPart(m.model + "-" + m.region),
        "aria-label": "Stop mirroring " + m.model + " " + m.region, onclick: async () => {
          try {
            await request("DELETE", "api/mirror/" + enc(m.model) + "/" + enc(m.region));
            say("Stopped mirroring " + m.model + "/" + m.region + " (cached builds stay).");
          } catch (err) {
            alarm("Could not stop mirroring: " + explain(err));
          }
        }}, "Stop")]), [], "No model is mirrored: add one to keep its latest build fetched."),
    keep || form);
}

function renderUpstream(s) {
  const up = s.upstream || {};
  if (!changed("upstream", up)) return;
  const rows = [];
  for (const [k, v] of Object.entries(up)) {
    if (v !== null && typeof v === "object") {
      for (const [k2, v2] of Object.entries(v)) rows.push([k.split("_").join(" ") + " › " + k2, v2]);
    } else rows.push([k.split("_").join(" "), v]);
  }
  renderInto($("upstream"), table("Upstream counters", ["Counter", "Value"], rows, [false, true]));
}

let statusFailed = false;
async function poll() {
  try {
    const s = await request("GET", "api/status");
    renderService(s);
    renderDownloads(s);
    renderCache(s);
    renderBuilds(s);
    renderMirrors(s);
    renderUpstream(s);
    if (statusFailed) { statusFailed = false; $("alert").textContent = ""; }
  } catch (err) {
    statusFailed = true;
    $("service").textContent = "status unavailable";
    alarm("Status: " + explain(err));
  }
  setTimeout(poll, 1000);
}

// ---- browsing: #MODEL/REGION, #MODEL/REGION/VERSION_ID ----

function crumbs(model, region, version) {
  const items = [el("li", {}, el("a", {href: "#"}, "Start"))];
  items.push(el("li", {}, version ? el("a", {href: "#" + model + "/" + region}, model + " / " + region)
                                  : el("span", {"aria-current": "page"}, model + " / " + region)));
  if (version) items.push(el("li", {}, el("span", {"aria-current": "page"}, version)));
  return el("nav", {class: "crumbs", "aria-label": "Breadcrumb"}, el("ol", {}, items));
}

function heading(text) {
  // Focus moves to the heading of what was just opened (keyboard and screen-reader users).
  return el("h3", {id: "browse-title", tabindex: "-1"}, text);
}

// The browse view is not a live region (a whole table read out at once is noise): focus
// moves to the new heading instead, and the status line says what was found.
function busy(on) { $("browse").setAttribute("aria-busy", on ? "true" : "false"); }

async function showVersions(model, region) {
  const out = $("browse");
  busy(true);
  out.replaceChildren(el("p", {class: "empty"}, "Looking up " + model + "/" + region + "…"));
  let list;
  try {
    list = await request("GET", fwPath(model, region));
  } catch (err) {
    busy(false);
    out.replaceChildren(crumbs(model, region), errorNode(err));
    return;
  }
  const versions = list.versions || [];
  const rows = versions.map((v, i) => {
    const id = vid(v.version);
    const dateCell = el("span", {id: "v-date-" + i}, "…");
    const sizeCell = el("span", {id: "v-size-" + i}, "…");
    return {v, i, dateCell, sizeCell, cells: [
      el("span", {}, el("a", {href: "#" + model + "/" + region + "/" + id}, el("code", {}, v.version)),
        v.beta ? " (beta)" : "", v.version === list.latest ? el("strong", {}, " latest") : ""),
      v.os || "?", dateCell, sizeCell,
      el("span", {class: "links"},
        el("a", {href: url(fwPath(model, region, v.version, "download")),
                 "aria-label": "Download zip of " + v.version}, "zip"),
        el("a", {href: url(fwPath(model, region, v.version, "download?encrypted=1")),
                 "aria-label": "Download encrypted file of " + v.version}, "encrypted"),
        el("a", {href: "#" + model + "/" + region + "/" + id, "aria-label": "Files of " + v.version}, "files"))]};
  });
  out.replaceChildren(crumbs(model, region), heading("Versions of " + model + " / " + region),
    el("p", {}, "Latest: ", el("code", {}, list.latest || "none"), " · ",
      el("a", {href: url(fwPath(model, region, null, "feed.atom")), type: "application/atom+xml"}, "Atom feed")),
    el("div", {class: "table-wrap"}, table("Versions, newest first",
      ["Version", "Android", "Date", "Size", "Downloads"], rows.map((r) => r.cells),
      [false, false, false, true, false])));
  busy(false);
  $("browse-title").focus();
  say(versions.length + " version(s) of " + model + "/" + region + ", newest first.");
  // Date and size come from each build's metadata: the newest few at once (two at a time),
  // the older ones on request (each is an upstream look-up when not cached).
  const fill = async (r) => {
    try {
      const m = await request("GET", fwPath(model, region, r.v.version));
      r.dateCell.textContent = date(m.last_modified);
      r.sizeCell.textContent = bytes(m.plain_size);
    } catch (err) {
      r.dateCell.textContent = "";
      r.sizeCell.replaceChildren(el("span", {class: err.code === "not_hosted" ? "muted" : "err"},
        err.code === "not_hosted" ? "no longer hosted" : explain(err)));
    }
  };
  const first = rows.slice(0, 6), rest = rows.slice(6);
  for (const r of rest) {
    const b = el("button", {type: "button", class: "secondary", id: "v-load-" + r.i,
      "aria-label": "Load date and size of " + r.v.version,
      onclick: () => { r.dateCell.textContent = "…"; r.sizeCell.replaceChildren("…"); fill(r); }}, "load");
    r.dateCell.replaceChildren(b);
    r.sizeCell.textContent = "";
  }
  for (let k = 0; k < first.length; k += 2) await Promise.all(first.slice(k, k + 2).map(fill));
}

// A tar member ("AP_….tar.md5") may be listed by …/files/{member}/ (entries). Where this
// server has no such route, the button says so instead.
function isTar(name) { return /\.tar(\.md5)?$/i.test(name); }

function entriesButton(model, region, version, member, index) {
  const panelId = "entries-" + index;
  const button = el("button", {type: "button", class: "secondary", id: "entries-button-" + index,
    "aria-expanded": "false", "aria-controls": panelId, onclick: async () => {
      const panel = $(panelId);
      if (button.getAttribute("aria-expanded") === "true") {
        button.setAttribute("aria-expanded", "false");
        panel.hidden = true;
        return;
      }
      button.setAttribute("aria-expanded", "true");
      panel.hidden = false;
      panel.replaceChildren(el("p", {class: "empty"}, "Listing " + member + "…"));
      const base = fwPath(model, region, version, "files/" + enc(member) + "/");
      try {
        const entries = await request("GET", base);
        if (!Array.isArray(entries)) throw new Error("unexpected answer");
        panel.replaceChildren(table("Entries of " + member, ["Entry", "Size", "Downloads"],
          entries.map((e) => [el("code", {}, e.name), bytes(e.size),
            el("span", {class: "links"}, el("a", {href: url(base + enc(e.name))}, "download"),
              /\.lz4$/i.test(e.name) ? el("a", {href: url(base + enc(e.name.replace(/\.lz4$/i, "")))},
                "decompressed" + (e.decoded_size ? " (" + bytes(e.decoded_size) + ")" : "")) : null)]),
          [false, true, false]));
      } catch (err) {
        const missing = err instanceof ApiError && [400, 404, 405, 501].includes(err.status) &&
          err.code !== "not_hosted";
        panel.replaceChildren(missing
          ? el("p", {class: "muted"}, "This server does not list the entries of " + member +
              "; download the member itself.")
          : errorNode(err));
      }
    }}, "Entries");
  return button;
}

// A zip member's method, as /files reports it (a name, or the zip method number).
function compression(method) {
  if (method === 0 || method === "stored") return "stored";
  if (method === 8 || method === "deflate" || method === "deflated") return "deflated";
  return String(method);
}

async function showBuild(model, region, version) {
  const out = $("browse");
  busy(true);
  out.replaceChildren(el("p", {class: "empty"}, "Loading " + version + "…"));
  let m;
  try {
    m = await request("GET", fwPath(model, region, version));
  } catch (err) {
    busy(false);
    out.replaceChildren(crumbs(model, region, version), errorNode(err));
    return;
  }
  const fact = (k, v) => [el("dt", {}, k), el("dd", {}, v)];
  const membersBox = el("div", {class: "table-wrap", id: "members"}, el("p", {class: "empty"}, "Listing the zip's members…"));
  out.replaceChildren(crumbs(model, region, m.version), heading(m.model + " " + m.region + " " + m.version),
    el("dl", {class: "facts"},
      fact("Android", m.os_version || "?"),
      fact("Date", date(m.last_modified)),
      fact("Size", bytes(m.plain_size) + " (encrypted " + bytes(m.size) + ", " + (m.encryption || "?") + ")"),
      fact("File", el("code", {}, m.plain_filename || m.filename)),
      fact("CRC32", m.crc32 !== undefined ? Number(m.crc32).toString(16).padStart(8, "0") : "?"),
      m.changelog_url ? fact("Changes", el("a", {href: m.changelog_url, rel: "noreferrer"}, "changelog")) : []),
    el("p", {class: "links"},
      el("a", {class: "button", id: "download-zip", href: url((m.download_url || "/" + fwPath(model, region, m.version, "download")).replace(/^\//, ""))},
        "Download zip (" + bytes(m.plain_size) + ")"),
      el("a", {href: url(fwPath(model, region, m.version, "download?encrypted=1"))},
        "encrypted file (" + bytes(m.size) + ")")),
    el("h4", {}, "Members"), membersBox);
  busy(false);
  $("browse-title").focus();
  try {
    const files = await request("GET", fwPath(model, region, m.version, "files"));
    renderInto(membersBox, table("Members of the zip", ["Member", "Size", "Stored as", "Links"],
      files.map((f, i) => [el("code", {}, f.name), bytes(f.size), compression(f.method),
        el("span", {},
          el("a", {href: url(fwPath(model, region, m.version, "files/" + enc(f.name))),
                   "aria-label": "Download member " + f.name}, "download"),
          isTar(f.name) ? [" ", entriesButton(model, region, m.version, f.name, i),
                           el("div", {id: "entries-" + i, hidden: true})] : [])]),
      [false, true, false, false]));
  } catch (err) {
    membersBox.replaceChildren(errorNode(err));
  }
}

function route() {
  const m = /^#([A-Za-z0-9-]+)\/([A-Za-z0-9]+)(?:\/([A-Za-z0-9_]+))?$/.exec(location.hash);
  if (!m) {
    if (!location.hash || location.hash === "#") $("browse").replaceChildren();
    return;
  }
  const model = m[1].toUpperCase(), region = m[2].toUpperCase();
  $("model").value = model;
  $("region").value = region;
  if (m[3]) showBuild(model, region, m[3].toUpperCase());
  else showVersions(model, region);
}

$("lookup").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const hash = "#" + $("model").value.trim().toUpperCase() + "/" + $("region").value.trim().toUpperCase();
  if (location.hash === hash) route();
  else location.hash = hash;  // history entry: Back returns to the previous view
});
window.addEventListener("hashchange", route);
route();
poll();
