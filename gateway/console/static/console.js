// eventsearch console: a small client of the public API (/api/v1/*), no framework, no build.
// Every value from the API reaches the page through textContent or attributes, never HTML.
"use strict";

(function () {
  const KEY_STORE = "eventsearch.console.key";
  const API = "api/v1/"; // relative: the console works under a path prefix too
  const $ = (id) => document.getElementById(id);
  const VIEWS = ["signin", "search", "event", "stats", "dead-letters"];
  let lastSearchHash = "#/search";
  let dlCursor = null;

  // ---- small DOM helpers ------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function when(value) {
    if (!value) return "—";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }

  function timeEl(value) {
    return value ? el("time", { datetime: value, title: value, text: when(value) }) : "—";
  }

  function badge(status) {
    return el("span", { class: `badge status-${status}`, text: status });
  }

  // ---- the API, with errors in words ------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, code, requestId) {
      super(message);
      this.status = status;
      this.code = code;
      this.requestId = requestId;
    }
  }

  function key() {
    return sessionStorage.getItem(KEY_STORE);
  }

  async function api(path, options) {
    const init = Object.assign({ method: "GET", headers: {} }, options || {});
    init.headers = Object.assign({ Accept: "application/json" }, init.headers);
    if (key()) init.headers.Authorization = `Bearer ${key()}`;
    if (init.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(init.json);
      delete init.json;
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (_error) {
      throw new ApiError(
        "The gateway did not answer (network error). Is the stack running (`make up`)?",
        0, "network", null);
    }
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_error) { body = null; }
    if (response.ok) return body;
    throw explain(response, body);
  }

  function explain(response, body) {
    const error = (body && body.error) || {};
    const id = error.request_id || response.headers.get("X-Request-ID");
    const said = error.message ? ` The gateway said: “${error.message}”.` : "";
    const status = response.status;
    let words;
    if (status === 401) words = "This API key was not accepted (unknown or revoked). Sign in again with another key.";
    else if (status === 403) words = "This API key lacks the scope this needs (stats and dead letters need admin; search needs search).";
    else if (status === 404) words = "Not found: it does not exist, or belongs to another tenant.";
    else if (status === 422) words = "The request was not valid." + detailWords(error.details);
    else if (status === 429) words = `Too many requests for this key; try again in ${response.headers.get("Retry-After") || "a few"} seconds.`;
    else if (status === 503) words = "The service is unavailable for a moment (its database or Redis is down); try again shortly.";
    else if (status >= 500) words = "The gateway failed to answer this request.";
    else words = `The gateway answered ${status}.`;
    if (status !== 422) words += said;
    return new ApiError(words, status, error.code || String(status), id);
  }

  function detailWords(details) {
    if (!Array.isArray(details) || !details.length) return "";
    return " " + details.slice(0, 3).map((d) => {
      const where = (d.loc || []).filter((p) => p !== "body").join(".");
      return `${where ? where + ": " : ""}${d.msg || d.type}.`;
    }).join(" ");
  }

  function errorBlock(error) {
    const block = el("div", { class: "error", role: "alert" }, el("p", { text: error.message }));
    if (error.requestId) {
      block.append(el("p", { class: "muted small" }, "Request id ", el("code", { text: error.requestId })));
    }
    return block;
  }

  function notify(message, kind) {
    const notice = $("notice");
    notice.textContent = message;
    notice.className = `notice ${kind || "info"}`;
    notice.hidden = !message;
  }

  function failed(error) {
    if (error.status === 401) {
      signOut();
      $("signin-error").textContent = error.message;
    }
    return errorBlock(error);
  }

  // ---- routing ----------------------------------------------------------------------------

  function show(view) {
    for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.view === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const signedIn = Boolean(key());
    $("nav").hidden = !signedIn;
    $("sign-out").hidden = !signedIn;
    $("who").textContent = signedIn ? `key ${key().slice(0, 8)}…` : "";
  }

  function route() {
    notify("");
    if (!key()) {
      show("signin");
      $("api-key").focus();
      return;
    }
    const [path, query] = location.hash.replace(/^#/, "").split("?");
    const params = new URLSearchParams(query || "");
    const parts = path.split("/").filter(Boolean);
    if (parts[0] === "events" && parts[1]) {
      show("event");
      openEvent(decodeURIComponent(parts[1]));
    } else if (parts[0] === "stats") {
      show("stats");
      loadStats();
    } else if (parts[0] === "dead-letters") {
      show("dead-letters");
      loadDeadLetters(false);
    } else {
      show("search");
      lastSearchHash = location.hash || "#/search";
      restoreSearch(params);
    }
  }

  // ---- sign in ----------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const value = $("api-key").value.trim();
    const message = $("signin-error");
    message.textContent = "";
    if (!value) {
      message.textContent = "Paste an API key first.";
      return;
    }
    sessionStorage.setItem(KEY_STORE, value);
    try {
      // Any read proves the key; a key without the search scope still signs in (403).
      await api("events?limit=1");
    } catch (error) {
      if (error.status !== 403) {
        sessionStorage.removeItem(KEY_STORE);
        message.textContent = error.message;
        return;
      }
    }
    $("api-key").value = "";
    if (!location.hash || location.hash === "#/signin") location.hash = "#/search";
    else route();
  }

  function signOut() {
    sessionStorage.removeItem(KEY_STORE);
    show("signin");
  }

  // ---- search -----------------------------------------------------------------------------

  function list(value) {
    return value.split(",").map((s) => s.trim()).filter(Boolean);
  }

  function isoOrNull(local) {
    if (!local) return null;
    const date = new Date(local);
    return Number.isNaN(date.getTime()) ? null : date.toISOString();
  }

  function searchRequest() {
    const filters = {};
    const sources = list($("f-source").value);
    const types = list($("f-type").value);
    if (sources.length) filters.source = sources;
    if (types.length) filters.type = types;
    if ($("f-subject").value.trim()) filters.subject = $("f-subject").value.trim();
    const after = isoOrNull($("f-after").value);
    const before = isoOrNull($("f-before").value);
    if (after) filters.occurred_after = after;
    if (before) filters.occurred_before = before;
    const metadata = $("f-metadata").value.trim();
    if (metadata) {
      let parsed;
      try { parsed = JSON.parse(metadata); } catch (_error) { parsed = undefined; }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new ApiError('The metadata filter must be a JSON object, e.g. {"company": "Safaricom"}.', 0, "input");
      }
      filters.metadata = parsed;
    }
    return {
      query: $("q").value.trim(),
      mode: $("mode").value,
      top_k: Math.max(1, Math.min(100, Number($("top-k").value) || 10)),
      filters,
    };
  }

  function submitSearch(event) {
    event.preventDefault();
    const params = new URLSearchParams();
    params.set("q", $("q").value.trim());
    params.set("mode", $("mode").value);
    params.set("top_k", $("top-k").value || "10");
    for (const [id, name] of [["f-source", "source"], ["f-type", "type"], ["f-subject", "subject"],
      ["f-after", "after"], ["f-before", "before"], ["f-metadata", "metadata"]]) {
      if ($(id).value.trim()) params.set(name, $(id).value.trim());
    }
    const hash = `#/search?${params}`;
    if (location.hash === hash) runSearch();
    else location.hash = hash;
  }

  function restoreSearch(params) {
    if (!params.has("q")) {
      $("q").focus();
      return;
    }
    $("q").value = params.get("q");
    $("mode").value = params.get("mode") || "hybrid";
    $("top-k").value = params.get("top_k") || "10";
    for (const [id, name] of [["f-source", "source"], ["f-type", "type"], ["f-subject", "subject"],
      ["f-after", "after"], ["f-before", "before"], ["f-metadata", "metadata"]]) {
      $(id).value = params.get(name) || "";
    }
    if (["source", "type", "subject", "after", "before", "metadata"].some((n) => params.has(n))) {
      $("filters").open = true;
    }
    runSearch();
  }

  async function runSearch() {
    const results = clear($("results"));
    const summary = $("search-summary");
    let request;
    try {
      request = searchRequest();
    } catch (error) {
      results.append(el("li", {}, errorBlock(error)));
      return;
    }
    if (!request.query) {
      summary.textContent = "Type a query first.";
      return;
    }
    summary.textContent = "Searching…";
    try {
      const answer = await api("search", { method: "POST", json: request });
      summary.textContent = `${answer.results.length} result${answer.results.length === 1 ? "" : "s"}, ` +
        `${answer.mode} search with ${answer.model}, ${Number(answer.took_ms).toFixed(1)} ms`;
      answer.results.forEach((hit, index) => results.append(resultItem(hit, index, request.query)));
      if (!answer.results.length) results.append(el("li", { class: "muted", text: "Nothing matched. Try another mode or fewer filters." }));
    } catch (error) {
      summary.textContent = "";
      results.append(el("li", {}, failed(error)));
    }
  }

  function resultItem(hit, index, query) {
    const rankings = Object.entries(hit.rankings || {}).map(
      ([ranking, rank]) => el("span", { class: "rank", title: `rank ${rank} in the ${ranking} ranking`, text: `${ranking} #${rank}` }));
    return el("li", { class: "hit" },
      el("div", { class: "hit-head" },
        el("a", { href: `#/events/${encodeURIComponent(hit.id)}`, class: "hit-link", "data-result": index },
          `${hit.source} · ${hit.type}`),
        el("span", { class: "score", title: "score", text: Number(hit.score).toFixed(3) }),
        rankings,
        hit.occurred_at ? el("span", { class: "muted small" }, "occurred ", timeEl(hit.occurred_at)) : null),
      el("p", { class: "passage" }, passage(hit, query)));
  }

  const CONTEXT = 160;

  // The matched part of the text marked: the hit's passage ({text, start, end}: its span in
  // the event's text) when the gateway gives one, else the query's words found in the text.
  function passage(hit, query) {
    const text = hit.text || "";
    const p = hit.passage;
    if (p && Number.isInteger(p.start) && Number.isInteger(p.end) && p.end > p.start) {
      const start = Math.max(0, Math.min(p.start, text.length));
      const end = Math.max(start, Math.min(p.end, text.length));
      const inside = text.slice(start, end) || p.text || "";
      const from = Math.max(0, start - CONTEXT);
      const to = Math.min(text.length, end + CONTEXT);
      return [
        from > 0 ? "…" : "", text.slice(from, start),
        el("mark", { class: "passage-match", text: inside }),
        text.slice(end, to), to < text.length ? "…" : "",
      ];
    }
    if (p && p.text) return [el("mark", { class: "passage-match", text: p.text })];
    return markWords(text.length > 2 * CONTEXT + 80 ? text.slice(0, 2 * CONTEXT + 80) + "…" : text, query);
  }

  function markWords(text, query) {
    const words = (query.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || []);
    if (!words.length) return [text];
    const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    const pattern = new RegExp(`(${escaped.join("|")})`, "giu");
    return text.split(pattern).map((part, i) => (i % 2 ? el("mark", { text: part }) : part));
  }

  // ---- an event ---------------------------------------------------------------------------

  async function openEvent(id) {
    $("event-back").href = lastSearchHash;
    const body = clear($("event-body"));
    const versions = clear($("event-versions"));
    $("versions-title").hidden = true;
    $("event-title").textContent = "Event";
    body.append(el("p", { class: "muted", text: "Loading…" }));
    let event;
    try {
      event = await api(`events/${encodeURIComponent(id)}`);
    } catch (error) {
      clear(body).append(failed(error));
      return;
    }
    $("event-title").textContent = `${event.source} · ${event.type}`;
    const rows = [
      ["Status", badge(event.status)],
      ["Id", el("code", { text: event.id })],
      ["Attempts", String(event.attempts)],
      ["Error", event.error ? el("span", { class: "error-text", text: event.error }) : "—"],
      ["Model", event.model || "—"],
      ["Subject", event.subject || null],
      ["Occurred", timeEl(event.occurred_at)],
      ["Accepted", timeEl(event.created_at)],
      ["Embedded", timeEl(event.embedded_at)],
    ].filter(([, value]) => value !== null);
    clear(body).append(
      el("dl", { class: "facts" }, rows.map(([name, value]) => [el("dt", { text: name }), el("dd", {}, value)])),
      el("h2", { text: "Text" }),
      el("p", { class: "event-text", text: event.text || "(erased)" }),
      el("h2", { text: "Metadata" }),
      el("pre", { class: "metadata", text: JSON.stringify(event.metadata || {}, null, 2) }));
    $("event-title").focus({ preventScroll: true });
    if (event.subject) loadVersions(event, versions);
  }

  async function loadVersions(event, target) {
    $("versions-title").hidden = false;
    target.append(el("p", { class: "muted", text: "Loading the subject's versions…" }));
    let history;
    try {
      history = await api(`subjects/${encodeURIComponent(event.source)}/${encodeURIComponent(event.subject)}`);
    } catch (error) {
      clear(target).append(error.status === 404
        ? el("p", { class: "muted", text: "This gateway keeps no history for this subject." })
        : failed(error));
      return;
    }
    const rows = (history.versions || []).map((v) => el("tr", { class: v.id === event.id ? "this" : null },
      el("td", {}, el("a", { href: `#/events/${encodeURIComponent(v.id)}`, text: v.id.slice(0, 8) + "…" })),
      el("td", {}, badge(v.status), v.id === history.current ? el("span", { class: "muted small", text: " current" }) : null),
      el("td", {}, timeEl(v.occurred_at)),
      el("td", {}, timeEl(v.created_at))));
    clear(target).append(el("table", { class: "table" },
      el("thead", {}, el("tr", {}, ["Version", "Status", "Occurred", "Accepted"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows)));
    if (history.next_cursor) target.append(el("p", { class: "muted small", text: "Older versions not shown." }));
  }

  // ---- stats ------------------------------------------------------------------------------

  async function loadStats() {
    const cards = clear($("stats-cards"));
    const groups = clear($("stats-groups"));
    clear($("chart"));
    cards.append(el("p", { class: "muted", text: "Loading…" }));
    let stats;
    try {
      stats = await api("stats");
    } catch (error) {
      clear(cards).append(failed(error));
      return;
    }
    $("stats-tenant").textContent = `tenant ${stats.tenant}`;
    const q = stats.queue || {};
    const card = (label, value, note) => el("div", { class: "card" },
      el("div", { class: "card-value", text: value === null || value === undefined ? "—" : String(value) }),
      el("div", { class: "card-label", text: label }), note ? el("div", { class: "muted small", text: note }) : null);
    clear(cards).append(
      card("events", stats.events),
      ...Object.entries(stats.by_status).map(([status, n]) => card(status, n)),
      card("embedded last minute", stats.embedded_last_minute),
      card("embedded last hour", stats.embedded_last_hour),
      card("dead letters", stats.dead_letters),
      card("oldest queued", stats.oldest_queued_age_s === null ? "—" : `${stats.oldest_queued_age_s.toFixed(1)} s`),
      card("broker queue", q.depth, q.unacked === null || q.unacked === undefined ? "Redis not answering" : `${q.unacked} taken, not acked`));
    const table = (title, counts, other) => el("div", {},
      el("h2", { text: title }),
      el("table", { class: "table" }, el("tbody", {},
        Object.entries(counts).map(([name, n]) => el("tr", {}, el("th", { scope: "row", text: name }), el("td", { class: "num", text: String(n) }))),
        other ? el("tr", {}, el("th", { scope: "row", class: "muted", text: "others" }), el("td", { class: "num", text: String(other) })) : null)));
    groups.append(table("By source", stats.by_source, stats.other_sources), table("By type", stats.by_type, stats.other_types));
    loadChart();
  }

  async function loadChart() {
    const figure = clear($("chart"));
    const option = $("bucket").selectedOptions[0];
    let series;
    try {
      series = await api(`stats/timeline?bucket=${option.value}&points=${option.dataset.points}`);
    } catch (error) {
      figure.append(failed(error));
      return;
    }
    figure.append(...chart(series));
  }

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, String(value));
    }
    children.flat(Infinity).forEach((c) => c && node.append(c));
    return node;
  }

  // Bars of vectors stored per bucket, a line of events accepted; a table says the same in
  // text for screen readers and for reading exact figures.
  function chart(series) {
    const points = series.points || [];
    const width = 720, height = 200, left = 40, bottom = 24, top = 10;
    const max = Math.max(1, ...points.map((p) => Math.max(p.embedded, p.accepted)));
    const step = (width - left) / Math.max(1, points.length);
    const y = (n) => top + (height - top - bottom) * (1 - n / max);
    const label = (p) => (series.bucket === "day"
      ? new Date(p.start).toLocaleDateString()
      : new Date(p.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    const embedded = points.reduce((sum, p) => sum + p.embedded, 0);
    const accepted = points.reduce((sum, p) => sum + p.accepted, 0);
    const picture = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart-svg",
      "aria-label": `${embedded} events embedded and ${accepted} accepted over the last ${points.length} ${series.bucket}s; at most ${max} in one ${series.bucket}` },
    svg("line", { x1: left, x2: width, y1: y(0), y2: y(0), class: "axis" }),
    svg("text", { x: left - 6, y: y(max) + 4, class: "tick", "text-anchor": "end", text: String(max) }),
    svg("text", { x: left - 6, y: y(0) + 4, class: "tick", "text-anchor": "end", text: "0" }),
    points.map((p, i) => svg("rect", {
      x: left + i * step + step * 0.1, width: Math.max(1, step * 0.8),
      y: y(p.embedded), height: y(0) - y(p.embedded), class: "bar",
    }, svg("title", { text: `${label(p)}: ${p.embedded} embedded, ${p.accepted} accepted` }))),
    points.length > 1 ? svg("polyline", {
      class: "accepted", fill: "none",
      points: points.map((p, i) => `${left + (i + 0.5) * step},${y(p.accepted)}`).join(" "),
    }) : null,
    points.length ? [[0, "start"], [Math.floor(points.length / 2), "middle"], [points.length - 1, "end"]].map(([i, anchor]) => svg("text", {
      x: anchor === "start" ? left : anchor === "end" ? width : left + (i + 0.5) * step,
      y: height - 6, class: "tick", "text-anchor": anchor, text: label(points[i]),
    })) : null);
    const legend = el("figcaption", { class: "legend muted small" },
      el("span", { class: "key key-bar" }), ` embedded (${embedded}) `,
      el("span", { class: "key key-line" }), ` accepted (${accepted}) per ${series.bucket}`);
    const rows = points.filter((p) => p.embedded || p.accepted);
    const details = el("details", { class: "small" }, el("summary", { text: "Figures" }),
      rows.length ? el("table", { class: "table" },
        el("thead", {}, el("tr", {}, ["Start", "Accepted", "Embedded"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, rows.map((p) => el("tr", {}, el("td", {}, timeEl(p.start)),
          el("td", { class: "num", text: String(p.accepted) }), el("td", { class: "num", text: String(p.embedded) })))))
        : el("p", { class: "muted", text: "No events in this period." }));
    return [picture, legend, details];
  }

  // ---- dead letters -----------------------------------------------------------------------

  async function loadDeadLetters(more) {
    const rows = $("dl-rows");
    const summary = $("dl-summary");
    if (!more) {
      clear(rows);
      dlCursor = null;
    }
    summary.textContent = "Loading…";
    let page;
    try {
      page = await api(`dead-letters?limit=50${more && dlCursor ? `&cursor=${encodeURIComponent(dlCursor)}` : ""}`);
    } catch (error) {
      summary.textContent = "";
      clear(summary).append(failed(error));
      return;
    }
    dlCursor = page.next_cursor;
    $("dl-more").hidden = !dlCursor;
    for (const letter of page.dead_letters) rows.append(deadLetterRow(letter));
    const count = rows.querySelectorAll("tr").length;
    summary.textContent = count ? `${count} dead letter${count === 1 ? "" : "s"}${dlCursor ? " (more below)" : ""}.` : "No dead letters: every accepted event was stored.";
    $("dl-replay-all").disabled = !count;
  }

  function deadLetterRow(letter) {
    const button = el("button", { type: "button", class: "replay", "aria-label": `Replay the event ${letter.event_id}`, text: "Replay" });
    const row = el("tr", { "data-letter": letter.id },
      el("td", {}, timeEl(letter.created_at)),
      el("td", {}, el("a", { href: `#/events/${encodeURIComponent(letter.event_id)}`, text: letter.event_id.slice(0, 8) + "…", title: letter.event_id })),
      el("td", { text: `${letter.source} · ${letter.type}` }),
      el("td", { class: "num", text: String(letter.attempts) }),
      el("td", { class: "error-text", text: letter.error }),
      el("td", {}, button));
    button.addEventListener("click", () => replay(letter, row, button));
    return row;
  }

  async function replay(letter, row, button) {
    button.disabled = true;
    button.textContent = "Replaying…";
    try {
      const answer = await api(`dead-letters/${encodeURIComponent(letter.id)}/replay`, { method: "POST" });
      const cell = clear(button.parentElement);
      cell.append(el("span", { class: "ok", role: "status", text: answer.replayed ? "Replayed: queued again" : "Already replayed" }));
      row.classList.add("replayed");
      notify(`Event ${letter.event_id} is queued again (attempts reset).`, "ok");
    } catch (error) {
      button.disabled = false;
      button.textContent = "Replay";
      notify(error.message, "bad");
    }
  }

  async function replayAll() {
    if (!window.confirm("Replay every dead letter of this tenant? Their events are queued again.")) return;
    try {
      const answer = await api("dead-letters/replay", { method: "POST" });
      notify(`${answer.replayed} event${answer.replayed === 1 ? "" : "s"} queued again.`, "ok");
      loadDeadLetters(false);
    } catch (error) {
      notify(error.message, "bad");
    }
  }

  // ---- keyboard ---------------------------------------------------------------------------

  let pendingG = false;

  function typing(target) {
    return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  function moveResult(delta) {
    const links = Array.from(document.querySelectorAll("#results .hit-link"));
    if (!links.length) return;
    const at = links.indexOf(document.activeElement);
    const next = at < 0 ? (delta > 0 ? 0 : links.length - 1) : Math.max(0, Math.min(links.length - 1, at + delta));
    links[next].focus();
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "ArrowDown" && event.target.id === "q") {
      event.preventDefault();
      moveResult(1);
      return;
    }
    if (event.key === "Escape") {
      if (typing(event.target)) { event.target.blur(); return; }
      if (!$("view-event").hidden) { location.hash = lastSearchHash; }
      return;
    }
    if (typing(event.target) || !key()) return;
    if (pendingG) {
      pendingG = false;
      const target = { s: "#/search", t: "#/stats", d: "#/dead-letters" }[event.key];
      if (target) { event.preventDefault(); location.hash = target; }
      return;
    }
    if (event.key === "/") {
      event.preventDefault();
      if ($("view-search").hidden) location.hash = lastSearchHash;
      $("q").focus();
      $("q").select();
    } else if (event.key === "j" || event.key === "k") {
      if (!$("view-search").hidden) { event.preventDefault(); moveResult(event.key === "j" ? 1 : -1); }
    } else if (event.key === "g") {
      pendingG = true;
    }
  }

  // ---- start ------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => { signOut(); location.hash = "#/signin"; });
    $("search-form").addEventListener("submit", submitSearch);
    $("bucket").addEventListener("change", loadChart);
    $("stats-refresh").addEventListener("click", loadStats);
    $("dl-refresh").addEventListener("click", () => loadDeadLetters(false));
    $("dl-more").addEventListener("click", () => loadDeadLetters(true));
    $("dl-replay-all").addEventListener("click", replayAll);
    $("skip").addEventListener("click", (event) => { event.preventDefault(); $("main").focus(); });
    document.addEventListener("keydown", onKey);
    window.addEventListener("hashchange", route);
    route();
  });
})();
