// The inspection page: history, streamed reasoning, ranking and evidence graphs.
// Reads /users/{id}/history and POST /recommend/stream (Server-Sent Events read with
// fetch + ReadableStream: EventSource cannot POST). No library, no build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
let running = null; // the AbortController of the request in flight

function $(id) {
  return document.getElementById(id);
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function cut(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "\u2026" : text;
}

function status(text, kind) {
  const node = $("status");
  node.textContent = text;
  node.className = kind || "";
}

async function problem(reply) {
  // An error answer's JSON as one line: {"error", "detail"} or a validation list.
  try {
    const body = await reply.json();
    if (Array.isArray(body.detail)) {
      return body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    }
    return `${body.error || reply.status}: ${body.detail}`;
  } catch (_) {
    return `HTTP ${reply.status}`;
  }
}

function showHistory(entries) {
  const list = $("history");
  list.replaceChildren();
  if (!entries.length) list.append(el("li", { class: "empty" }, "no history: a cold-start user"));
  for (const entry of entries) {
    const li = el("li", { "data-item-id": entry.item.item_id });
    li.append(el("span", { class: "title" }, entry.item.title));
    const when = new Date(entry.timestamp * 1000).toISOString().slice(0, 10);
    const rated = entry.rating === null ? "" : ` \u00b7 ${entry.rating}\u2605`;
    li.append(el("span", { class: "meta" }, when + rated));
    list.append(li);
  }
}

function showRanking(body) {
  const list = $("ranking");
  list.replaceChildren();
  for (const item of body.items) {
    const li = el("li", { "data-item-id": item.item_id });
    li.append(el("span", { class: "title" }, item.title));
    li.append(el("span", { class: "score" }, item.score.toFixed(3)));
    list.append(li);
  }
  list.dataset.done = "true";
  $("ranking-panel").querySelector("h2").textContent = body.fallback
    ? "Ranking (graph scorer)"
    : `Ranking (${body.model})`;
}

function addThought(piece) {
  const box = $("thoughts");
  let line = box.querySelector(`p[data-index="${piece.index}"]`);
  if (!line) {
    line = el("p", { "data-index": String(piece.index), class: "thought" });
    box.append(line);
  }
  line.textContent += piece.delta;
  box.scrollTop = box.scrollHeight;
}

function node(group, x, y, label, kind, width) {
  const g = svg("g", { class: `node ${kind}` });
  g.append(svg("rect", { x: x, y: y - 11, width: width, height: 22, rx: 6 }));
  g.append(svg("text", { x: x + 8, y: y + 4 }, cut(label, Math.floor(width / 6.6))));
  g.append(svg("title", {}, label));
  group.append(g);
}

function edge(group, arrow, x1, y1, x2, y2) {
  group.append(svg("line", { x1: x1, y1: y1, x2: x2, y2: y2, "marker-end": `url(#${arrow})` }));
}

function chainGraph(chain, ranked, number) {
  // you -> shared items <- neighbour -> next item, one shared item per row.
  const shared = chain.shared_items.slice(0, 4);
  if (chain.shared_items.length > shared.length) {
    shared.push(`+${chain.shared_items.length - shared.length} more`);
  }
  const row = 28;
  const height = Math.max(shared.length, 1) * row + 12;
  const mid = height / 2;
  const root = svg("svg", {
    class: "chain",
    viewBox: `0 0 640 ${height}`,
    width: 640,
    height: height,
    role: "img",
  });
  root.append(svg("title", {}, chain.sentence));
  const arrow = `arrow-${number}`;
  const defs = svg("defs");
  const marker = svg("marker", {
    id: arrow,
    viewBox: "0 0 8 8",
    refX: 8,
    refY: 4,
    markerWidth: 7,
    markerHeight: 7,
    orient: "auto",
  });
  marker.append(svg("path", { d: "M0,0 L8,4 L0,8 z" }));
  defs.append(marker);
  root.append(defs);
  const edges = svg("g", { class: "edges" });
  const nodes = svg("g");
  root.append(edges, nodes);
  node(nodes, 4, mid, "you", "you", 56);
  shared.forEach((title, k) => {
    const y = 6 + row * k + row / 2;
    edge(edges, arrow, 60, mid, 176, y);
    edge(edges, arrow, 384, mid, 336, y);
    node(nodes, 178, y, title, "shared", 156);
  });
  node(nodes, 386, mid, `neighbour ${chain.neighbour_id}`, "neighbour", 100);
  edge(edges, arrow, 486, mid, 506, mid);
  const rank = ranked.indexOf(chain.next_item_id);
  const label = rank >= 0 ? `#${rank + 1} ${chain.next_title}` : chain.next_title;
  node(nodes, 508, mid, label, rank >= 0 ? "next ranked" : "next", 128);
  return root;
}

let lastEvidence = [];

function showEvidence(chains, ranked) {
  lastEvidence = chains;
  const box = $("evidence");
  box.replaceChildren();
  if (!chains.length) box.append(el("p", { class: "empty" }, "no chains for this user"));
  chains.forEach((chain, k) => box.append(chainGraph(chain, ranked, k)));
}

function handle(name, data) {
  if (name === "evidence") {
    showEvidence(data.evidence, []);
    status("reasoning\u2026", "busy");
  } else if (name === "thought") {
    addThought(data);
  } else if (name === "fallback") {
    const note = $("fallback");
    note.hidden = false;
    note.textContent = `The graph scorer ranked instead of the model: ${data.reason}`;
  } else if (name === "ranking") {
    showRanking(data);
    showEvidence(lastEvidence.length ? lastEvidence : data.evidence, data.items.map((i) => i.item_id));
  } else if (name === "error") {
    status(`error ${data.status}: ${data.detail}`, "error");
  } else if (name === "done") {
    status(`done in ${(data.latency_ms / 1000).toFixed(1)} s${data.cached ? " (cached)" : ""}`, "ok");
  }
}

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return data.length ? [name, JSON.parse(data.join("\n"))] : null;
}

async function stream(body, signal) {
  const reply = await fetch("/recommend/stream", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify(body),
    credentials: "same-origin",
    signal: signal,
  });
  if (!reply.ok) {
    status(await problem(reply), "error");
    return;
  }
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) handle(event[0], event[1]);
    }
  }
}

async function loadHistory(user, signal) {
  const path = `/users/${encodeURIComponent(user)}/history?n=10`;
  const reply = await fetch(path, { credentials: "same-origin", signal: signal });
  if (reply.ok) showHistory((await reply.json()).entries);
  else status(await problem(reply), "error");
}

async function ask(event) {
  if (event) event.preventDefault();
  const user = $("user").value.trim();
  if (!user) return;
  if (running) running.abort(); // the service cancels the abandoned request
  running = new AbortController();
  const signal = running.signal;
  for (const id of ["history", "ranking", "thoughts", "evidence"]) $(id).replaceChildren();
  delete $("ranking").dataset.done;
  $("fallback").hidden = true;
  lastEvidence = [];
  status("waiting for the graph\u2026", "busy");
  window.history.replaceState(null, "", `/ui?user=${encodeURIComponent(user)}`);
  const body = { user_id: user, k: Number($("k").value) || 5, explain: $("explain").checked };
  try {
    await Promise.all([loadHistory(user, signal), stream(body, signal)]);
  } catch (err) {
    if (err.name !== "AbortError") status(`failed: ${err.message}`, "error");
  }
}

async function sendKey(event) {
  event.preventDefault();
  const form = new URLSearchParams({ key: $("key").value });
  const reply = await fetch("/ui/session", { method: "POST", body: form, credentials: "same-origin" });
  if (reply.ok) window.location.reload();
  else $("key-error").textContent = await problem(reply);
}

if ($("ask")) {
  $("ask").addEventListener("submit", ask);
  if ($("user").value) ask();
}
if ($("key-form")) $("key-form").addEventListener("submit", sendKey);
