// flumen console: draws the agent's flows from the `config` events of /events and updates
// them in place from the `metrics` events (one per second). No framework, no build step.
//
// Invariants: the graph's DOM is built only when the configuration changes (a new
// `generation`); a tick only changes text and attributes of existing elements, and only when
// they differ, so 100 components cost O(n) small writes per second. Throughput history
// (5 minutes) is kept here, per component, across reloads and reconnections.
"use strict";

(function () {
  const NODE_W = 220, NODE_H = 88, GAP_X = 64, GAP_Y = 12, TOP = 30, LEFT = 16;
  const HISTORY = 300; // samples (1/s) kept for sparklines: 5 minutes
  const RISING_MS = 10000; // an error counter stays highlighted this long after it rose
  const KIND_LABEL = { source: "Sources", channel: "Channels", sinkgroup: "Sink groups", sink: "Sinks" };
  const ERRORS = {
    source: ["EventReadFail", "ChannelWriteFail", "GenericProcessingFail"],
    channel: [],
    sink: ["ConnectionFailedCount", "EventWriteFail", "ChannelReadFail"],
    sinkgroup: [],
  };
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  let config = null; // the last /config document
  let nodes = new Map(); // id -> node record
  let edges = []; // {el, from, to}
  const history = new Map(); // id -> number[] (events/s)
  const prev = new Map(); // metrics key -> {at, attrs}
  const rose = new Map(); // `${id}/${counter}` -> ms when it last rose
  let lastAt = 0;
  let lastMetrics = null; // the last `metrics` event, repainted after a rebuild
  const rateCache = new Map(); // `${metrics key}/${counter}` -> last computed rate
  let selected = null;

  // ---------- small helpers ----------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setText(e, t) { if (e.textContent !== t) e.textContent = t; }
  function setAttr(e, a, v) { if (e.getAttribute(a) !== v) e.setAttribute(a, v); }
  function setClass(e, c) { if (e.className !== c) e.className = c; }
  function num(v) { const n = Number(v); return Number.isFinite(n) ? n : 0; }
  function fmtRate(r) {
    if (r >= 1e6) return (r / 1e6).toFixed(1) + "M ev/s";
    if (r >= 1e4) return (r / 1e3).toFixed(0) + "k ev/s";
    if (r >= 100) return r.toFixed(0) + " ev/s";
    return r.toFixed(1) + " ev/s";
  }
  function fmtDur(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }
  function fmtTime(iso) {
    const t = new Date(iso);
    return isNaN(t) ? iso : t.toLocaleTimeString();
  }
  function metricsKey(kind, name) {
    return kind === "source" ? "SOURCE." + name : kind === "channel" ? "CHANNEL." + name : "SINK." + name;
  }

  // ---------- graph construction (on config change only) ----------
  function components(doc) {
    const list = [];
    for (const s of doc.sources || []) list.push(Object.assign({ id: "source:" + s.name }, s));
    for (const c of doc.channels || []) list.push(Object.assign({ id: "channel:" + c.name }, c));
    for (const g of doc.sinkgroups || []) list.push(Object.assign({ id: "sinkgroup:" + g.name }, g));
    for (const k of doc.sinks || []) list.push(Object.assign({ id: "sink:" + k.name }, k));
    return list;
  }

  // Orders each column by the mean position of what feeds it (fewer crossings).
  function layout(doc) {
    const cols = { source: [], channel: [], sinkgroup: [], sink: [] };
    const chanPos = new Map();
    (doc.sources || []).forEach((s, i) => cols.source.push({ c: s, key: i }));
    const feeders = new Map();
    (doc.sources || []).forEach((s, i) => (s.channels || []).forEach((ch) => {
      if (!feeders.has(ch)) feeders.set(ch, []);
      feeders.get(ch).push(i);
    }));
    (doc.channels || []).forEach((c, i) => {
      const f = feeders.get(c.name);
      cols.channel.push({ c, key: f ? f.reduce((a, b) => a + b, 0) / f.length : 1e9 + i, i });
    });
    cols.channel.sort((a, b) => a.key - b.key || a.i - b.i);
    cols.channel.forEach((e, i) => chanPos.set(e.c.name, i));
    const sinkChan = new Map((doc.sinks || []).map((k) => [k.name, k.channel]));
    const groupKey = new Map();
    (doc.sinkgroups || []).forEach((g, i) => {
      const ps = (g.sinks || []).map((k) => chanPos.get(sinkChan.get(k))).filter((p) => p !== undefined);
      const key = ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 1e9 + i;
      groupKey.set(g.name, key);
      cols.sinkgroup.push({ c: g, key, i });
    });
    cols.sinkgroup.sort((a, b) => a.key - b.key || a.i - b.i);
    (doc.sinks || []).forEach((k, i) => {
      let key;
      if (k.group && groupKey.has(k.group)) {
        const g = (doc.sinkgroups || []).find((x) => x.name === k.group);
        key = groupKey.get(k.group) + (g ? g.sinks.indexOf(k.name) : 0) * 1e-3;
      } else {
        const p = chanPos.get(k.channel);
        key = p === undefined ? 1e9 + i : p;
      }
      cols.sink.push({ c: k, key, i });
    });
    cols.sink.sort((a, b) => a.key - b.key || a.i - b.i);
    return cols;
  }

  function subline(c) {
    if (c.kind === "source") {
      const parts = [];
      if (c.interceptors && c.interceptors.length)
        parts.push("⇢ " + c.interceptors.map((i) => i.type || i.name).join(" → "));
      if (c.selector && c.selector.type && c.selector.type !== "replicating") parts.push("selector: " + c.selector.type);
      if (!parts.length) parts.push("→ " + (c.channels || []).join(", "));
      return parts.join(" · ");
    }
    if (c.kind === "sink") return "channel " + (c.channel || "?") + (c.group ? " · group " + c.group : "");
    if (c.kind === "sinkgroup") return (c.sinks || []).length + " sinks: " + (c.sinks || []).join(", ");
    if (c.kind === "channel" && config) {
      const from = (config.sources || []).filter((s) => (s.channels || []).includes(c.name)).map((s) => s.name);
      const to = (config.sinks || []).filter((k) => k.channel === c.name).map((k) => k.name);
      return (from.length ? from.join(", ") : "no source") + " → " + (to.length ? to.join(", ") : "no sink");
    }
    return "";
  }

  function buildNode(c, x, y) {
    const d = el("div", "node k-" + c.kind);
    d.dataset.id = c.id;
    d.dataset.kind = c.kind;
    d.dataset.name = c.name;
    d.style.left = x + "px";
    d.style.top = y + "px";
    const head = el("div", "head");
    const name = el("span", "name trunc", c.name);
    name.title = c.name;
    const type = el("span", "type trunc", c.type || "");
    type.title = c.type || "";
    head.append(name, type);
    const sub = el("div", "sub trunc", subline(c));
    sub.title = sub.textContent;
    const stats = el("div", "stats");
    const rate = el("span", "rate", "–");
    rate.dataset.rate = "0";
    const since = el("span", "since trunc", "");
    stats.append(rate, since);
    d.append(head, sub, stats);
    const rec = { c, el: d, rate, since, errs: null, bar: null, fill: null, pct: null, spark: null, cls: d.className };
    if (c.kind === "channel") {
      const bar = el("div", "bar");
      const fill = el("div", "fill");
      const pct = el("span", "pct", "");
      bar.append(fill, pct);
      d.append(bar);
      rec.bar = bar; rec.fill = fill; rec.pct = pct;
      bar.title = "fill";
    }
    const errs = el("div", "errs trunc", "");
    d.append(errs);
    rec.errs = errs;
    const spark = document.createElementNS(SVG, "svg");
    spark.setAttribute("class", "spark");
    spark.setAttribute("viewBox", `0 0 ${HISTORY} 16`);
    spark.setAttribute("preserveAspectRatio", "none");
    const pl = document.createElementNS(SVG, "polyline");
    spark.append(pl);
    d.append(spark);
    rec.spark = pl;
    d.tabIndex = 0;
    d.setAttribute("role", "button");
    d.addEventListener("click", () => select(c.id));
    d.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(c.id); } });
    return rec;
  }

  function edge(svg, from, to) {
    const p = document.createElementNS(SVG, "path");
    const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2;
    const dx = Math.max(30, (x2 - x1) / 2);
    p.setAttribute("d", `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`);
    p.setAttribute("class", "edge");
    p.dataset.from = from.id;
    p.dataset.to = to.id;
    svg.append(p);
    edges.push({ el: p, from: from.id, to: to.id, cls: "edge" });
  }

  function buildGraph(doc) {
    const box = $("nodes"), svg = $("edges"), graph = $("graph");
    box.textContent = "";
    svg.textContent = "";
    graph.querySelectorAll(".col-label").forEach((e) => e.remove());
    nodes = new Map();
    edges = [];
    const cols = layout(doc);
    const kinds = ["source", "channel", "sinkgroup", "sink"].filter((k) => cols[k].length);
    const frag = document.createDocumentFragment();
    let maxRows = 0;
    const pos = new Map();
    kinds.forEach((k, ci) => {
      const x = LEFT + ci * (NODE_W + GAP_X);
      const label = el("div", "col-label", KIND_LABEL[k] + " (" + cols[k].length + ")");
      label.style.left = x + "px";
      graph.append(label);
      cols[k].forEach((e, ri) => {
        const c = Object.assign({ id: k + ":" + e.c.name }, e.c);
        const y = TOP + ri * (NODE_H + GAP_Y);
        const rec = buildNode(c, x, y);
        rec.x = x; rec.y = y; rec.id = c.id;
        nodes.set(c.id, rec);
        pos.set(c.id, rec);
        frag.append(rec.el);
      });
      maxRows = Math.max(maxRows, cols[k].length);
    });
    box.append(frag);
    const w = LEFT * 2 + kinds.length * NODE_W + Math.max(0, kinds.length - 1) * GAP_X;
    const h = TOP + maxRows * (NODE_H + GAP_Y) + 10;
    graph.style.width = w + "px";
    graph.style.height = h + "px";
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    // Wiring.
    for (const s of doc.sources || []) {
      for (const ch of s.channels || []) {
        const a = pos.get("source:" + s.name), b = pos.get("channel:" + ch);
        if (a && b) edge(svg, a, b);
      }
    }
    const groupChans = new Set();
    for (const k of doc.sinks || []) {
      const ch = pos.get("channel:" + k.channel), sink = pos.get("sink:" + k.name);
      const g = k.group ? pos.get("sinkgroup:" + k.group) : null;
      if (g) {
        if (ch && !groupChans.has(k.channel + "\u0000" + k.group)) {
          groupChans.add(k.channel + "\u0000" + k.group);
          edge(svg, ch, g);
        }
        if (sink) edge(svg, g, sink);
      } else if (ch && sink) {
        edge(svg, ch, sink);
      }
    }
    $("empty").hidden = nodes.size > 0;
    if (selected && !nodes.has(selected)) closePanel();
    if (selected) select(selected);
  }

  // ---------- header ----------
  function showConfig(doc) {
    setText($("agent"), doc.agent || "–");
    setText($("file"), doc.file || "");
    $("file").title = doc.file || "";
    document.title = "flumen · " + (doc.agent || "");
    const r = doc.reload, btn = $("reload"), det = $("reload-details");
    det.textContent = "";
    if (!r) {
      setText(btn, "no configuration yet");
      btn.className = "reload";
      det.hidden = true;
      return;
    }
    const w = (r.warnings || []).length, e = (r.errors || []).length;
    const counts = [];
    if (e) counts.push(e + " error" + (e === 1 ? "" : "s"));
    if (w) counts.push(w + " warning" + (w === 1 ? "" : "s"));
    btn.textContent = (r.outcome === "rejected" ? "reload rejected " : "config applied ") + fmtTime(r.time) +
      (counts.length ? " · " + counts.join(", ") : "");
    btn.title = "Configuration " + r.outcome + " at " + r.time;
    btn.dataset.outcome = r.outcome;
    btn.className = "reload " + (r.outcome === "rejected" ? "bad" : w ? "warn" : "ok");
    const head = el("div", "", `${r.outcome === "rejected" ? "Rejected (the previous configuration keeps running)" : "Applied"} at ${r.time}`);
    det.append(head);
    for (const m of r.errors || []) det.append(el("div", "error", m));
    for (const m of r.warnings || []) det.append(el("div", "warning", m));
    // Errors are shown unasked; warnings on demand.
    if (r.outcome === "rejected") det.hidden = false;
    else if (!w) det.hidden = true;
  }
  $("reload").addEventListener("click", () => {
    const det = $("reload-details");
    det.hidden = !det.hidden || !det.childElementCount;
  });

  // ---------- live values ----------
  function delta(key, attr, cur, dt) {
    const p = prev.get(key);
    if (!p || dt <= 0) return 0;
    const d = num(cur[attr]) - num(p.attrs[attr]);
    return d > 0 ? d / dt : 0; // a restarted component's counters start again at 0
  }

  function pushHistory(id, v) {
    let h = history.get(id);
    if (!h) { h = []; history.set(id, h); }
    h.push(v);
    if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
    return h;
  }

  // A filled line, right-aligned; the first minute is stretched so a young history is
  // readable, then the window grows to 5 minutes.
  function points(h, height) {
    if (!h.length) return "";
    let max = 1;
    for (const v of h) if (v > max) max = v;
    const win = Math.max(60, h.length);
    const step = HISTORY / Math.max(1, win - 1);
    const x0 = (win - h.length) * step;
    let s = x0.toFixed(1) + "," + height + " ";
    for (let i = 0; i < h.length; i++) {
      s += (x0 + i * step).toFixed(1) + "," + (height - 1 - (h[i] / max) * (height - 2)).toFixed(1) + " ";
    }
    return s + (x0 + (h.length - 1) * step).toFixed(1) + "," + height;
  }

  // `replay`: repaint the last sample on a freshly built graph (rates from the cache, no
  // history or counter bookkeeping), so a reload never shows blank nodes until the next tick.
  function onMetrics(m, replay) {
    const at = m.at || Date.now();
    const comps = m.components || {};
    const dt = replay ? 0 : lastAt ? (at - lastAt) / 1000 : 0;
    lastMetrics = m;
    const counterDelta = (key, attr, cur) => {
      const k = key + "/" + attr;
      if (replay) return rateCache.get(k) || 0;
      const r = delta(key, attr, cur, dt);
      rateCache.set(k, r);
      return r;
    };
    if (config && config.startedMs) setText($("uptime"), fmtDur(at - config.startedMs));
    const rates = new Map();
    let totalIn = 0, totalOut = 0;
    for (const [id, rec] of nodes) {
      const c = rec.c;
      if (c.kind === "sinkgroup") continue;
      const key = metricsKey(c.kind, c.name);
      const cm = comps[key];
      if (!cm) continue;
      const a = cm.attrs || {};
      let rate = 0, text;
      if (c.kind === "source") {
        rate = counterDelta(key, "EventAcceptedCount", a);
        totalIn += rate;
        text = fmtRate(rate);
      } else if (c.kind === "channel") {
        const out = counterDelta(key, "EventTakeSuccessCount", a);
        rate = counterDelta(key, "EventPutSuccessCount", a);
        text = "in " + fmtRate(rate).replace(" ev/s", "") + " · out " + fmtRate(out);
        const pct = num(a.ChannelFillPercentage);
        setAttr(rec.fill, "style", "width:" + Math.min(100, pct).toFixed(1) + "%");
        setClass(rec.fill, "fill" + (pct >= 90 ? " bad" : pct >= 70 ? " warn" : ""));
        const age = num(cm.oldestAgeMs);
        const oldest = num(a.ChannelSize) > 0 && age > 0 ? " · oldest " + fmtDur(age) : "";
        setText(rec.pct, pct.toFixed(pct < 10 && pct > 0 ? 1 : 0) + "% of " + num(a.ChannelCapacity) + oldest);
        rec.bar.title = `${num(a.ChannelSize)} of ${num(a.ChannelCapacity)} events (${pct.toFixed(2)}%)${oldest}`;
      } else {
        rate = counterDelta(key, "EventDrainSuccessCount", a);
        totalOut += rate;
        text = fmtRate(rate);
        const failing = num(cm.failingSinceMs), last = num(cm.lastSuccessMs);
        if (failing > 0) {
          setText(rec.since, "failing " + fmtDur(at - failing));
          setClass(rec.since, "since trunc bad");
        } else {
          setText(rec.since, last > 0 ? "batch " + fmtDur(at - last) + " ago" : "no batch yet");
          setClass(rec.since, "since trunc");
        }
      }
      rates.set(id, rate);
      setText(rec.rate, text);
      setAttr(rec.rate, "data-rate", String(Math.round(rate * 10) / 10));
      // Errors: non-zero counters, highlighted while rising.
      let bad = c.kind === "sink" && num(cm.failingSinceMs) > 0;
      const parts = [];
      for (const e of ERRORS[c.kind] || []) {
        const v = num(a[e]);
        const p = prev.get(key);
        // Rising: grew since the last sample, or already non-zero on a component that has
        // just started (a new component of a reload, or a restarted agent).
        const fresh = !p && num(a.StartTime) > at - RISING_MS;
        if (p ? v > num(p.attrs[e]) : fresh && v > 0) rose.set(id + "/" + e, at);
        if (v > 0) {
          const rising = at - (rose.get(id + "/" + e) || 0) < RISING_MS;
          bad = bad || rising;
          parts.push((rising ? "▲" : "") + e.replace("Count", "") + " " + v);
        }
      }
      const errText = parts.join(" · ");
      if (rec.errs.textContent !== errText) {
        rec.errs.textContent = errText;
        rec.errs.title = errText;
        setClass(rec.errs, "errs trunc" + (errText.includes("▲") ? " rising-any" : ""));
      }
      const fill = c.kind === "channel" ? num(a.ChannelFillPercentage) : 0;
      bad = bad || fill >= 90;
      const warn = fill >= 70;
      const cls = "node k-" + c.kind + (bad ? " bad" : warn ? " warn" : "") + (selected === id ? " selected" : "");
      if (rec.cls !== cls) { rec.el.className = cls; rec.cls = cls; }
      if (!replay) prev.set(key, { at, attrs: a });
    }
    // Sink groups: the sum of their members.
    for (const [id, rec] of nodes) {
      if (rec.c.kind !== "sinkgroup") continue;
      let r = 0;
      for (const k of rec.c.sinks || []) r += rates.get("sink:" + k) || 0;
      rates.set(id, r);
      setText(rec.rate, fmtRate(r));
      setAttr(rec.rate, "data-rate", String(Math.round(r * 10) / 10));
    }
    for (const [id, rec] of nodes) {
      const h = dt > 0 ? pushHistory(id, rates.get(id) || 0) : history.get(id) || [];
      setAttr(rec.spark, "points", points(h, 16));
    }
    for (const e of edges) {
      const cls = (rates.get(e.to) || 0) > 0 ? "edge live" : "edge";
      if (e.cls !== cls) { e.el.setAttribute("class", cls); e.cls = cls; }
    }
    setText($("totals"), `in ${fmtRate(totalIn)} · out ${fmtRate(totalOut)}`);
    if (!replay) lastAt = at;
    if (selected) updatePanel(comps);
  }

  // ---------- side panel ----------
  function kvRows(table, rows) {
    table.textContent = "";
    for (const [k, v] of rows) {
      const tr = el("tr");
      const a = el("td", "", k), b = el("td", "", v);
      a.title = k;
      tr.append(a, b);
      table.append(tr);
    }
  }

  function select(id) {
    const rec = nodes.get(id);
    if (!rec) return;
    if (selected && nodes.get(selected)) {
      const old = nodes.get(selected);
      old.el.classList.remove("selected");
      old.cls = old.el.className;
    }
    selected = id;
    rec.el.classList.add("selected");
    rec.cls = rec.el.className;
    const c = rec.c, panel = $("panel");
    panel.hidden = false;
    panel.dataset.id = id;
    panel.className = "k-" + c.kind;
    setText($("panel-kind"), c.kind === "sinkgroup" ? "sink group" : c.kind);
    setText($("panel-name"), c.name);
    $("panel-name").title = c.name;
    setText($("panel-type"), "type " + (c.type || "?") + (c.line ? " · line " + c.line : ""));
    const w = $("panel-wiring");
    w.textContent = "";
    const line = (t, cls) => { const d = el("div", cls || "", t); w.append(d); return d; };
    if (c.kind === "source") {
      line("→ channels: " + (c.channels || []).join(", "));
      const sel = c.selector || {};
      line("selector: " + (sel.type || "replicating"));
      for (const [k, v] of Object.entries(sel.properties || {})) line(k + " = " + v, "sub");
      if ((c.interceptors || []).length) {
        line("interceptors, in order:");
        c.interceptors.forEach((i, n) => {
          line(`${n + 1}. ${i.name} (${i.type || "?"})`, "sub");
          for (const [k, v] of Object.entries(i.properties || {})) line(k + " = " + v, "sub");
        });
      }
    } else if (c.kind === "channel") {
      const from = (config.sources || []).filter((s) => (s.channels || []).includes(c.name)).map((s) => s.name);
      const to = (config.sinks || []).filter((k) => k.channel === c.name).map((k) => k.name);
      line("← sources: " + (from.join(", ") || "none"));
      line("→ sinks: " + (to.join(", ") || "none"));
    } else if (c.kind === "sink") {
      line("← channel: " + (c.channel || "?"));
      if (c.group) {
        const g = (config.sinkgroups || []).find((x) => x.name === c.group);
        const proc = (g && g.processor && g.processor.type) || "default";
        line("group: " + c.group + " (" + proc + " processor, with " + ((g && g.sinks) || []).join(", ") + ")");
      }
    } else {
      line("processor: " + ((c.processor && c.processor.type) || "default"));
      for (const [k, v] of Object.entries((c.processor && c.processor.properties) || {})) line(k + " = " + v, "sub");
      line("sinks: " + (c.sinks || []).join(", "));
    }
    kvRows($("panel-config"), Object.entries(c.properties || {}));
    updatePanel(lastComps);
  }

  let lastComps = {};
  function updatePanel(comps) {
    lastComps = comps || {};
    const rec = selected && nodes.get(selected);
    if (!rec) return;
    const c = rec.c;
    const h = history.get(selected) || [];
    setAttr($("panel-spark").querySelector("polyline"), "points", points(h, 60));
    const peak = h.length ? Math.max(...h) : 0;
    setText($("panel-spark-label"), `throughput, last ${fmtDur(h.length * 1000)} · peak ${fmtRate(peak)}`);
    let rows = [];
    if (c.kind === "sinkgroup") {
      for (const k of c.sinks || []) {
        const cm = lastComps["SINK." + k];
        const a = (cm && cm.attrs) || {};
        rows.push([k + " EventDrainSuccessCount", a.EventDrainSuccessCount || "–"]);
      }
    } else {
      const cm = lastComps[metricsKey(c.kind, c.name)];
      if (cm) {
        rows = Object.entries(cm.attrs || {});
        if (cm.lastSuccessMs) rows.push(["last delivered batch", new Date(cm.lastSuccessMs).toLocaleTimeString()]);
        if (cm.failingSinceMs) rows.push(["failing since", new Date(cm.failingSinceMs).toLocaleTimeString()]);
        if (cm.oldestAgeMs !== undefined) rows.push(["oldest event age", fmtDur(cm.oldestAgeMs)]);
      }
    }
    const t = $("panel-counters");
    if (t.rows.length !== rows.length) kvRows(t, rows);
    else rows.forEach(([k, v], i) => { setText(t.rows[i].cells[0], k); setText(t.rows[i].cells[1], String(v)); });
  }

  function closePanel() {
    const rec = selected && nodes.get(selected);
    if (rec) { rec.el.classList.remove("selected"); rec.cls = rec.el.className; }
    selected = null;
    $("panel").hidden = true;
  }
  $("panel-close").addEventListener("click", closePanel);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closePanel(); });

  // ---------- the event stream ----------
  function onConfig(doc) {
    const changed = !config || config.startedMs !== doc.startedMs ||
      JSON.stringify([config.sources, config.channels, config.sinks, config.sinkgroups]) !==
      JSON.stringify([doc.sources, doc.channels, doc.sinks, doc.sinkgroups]);
    const restarted = config && config.startedMs !== doc.startedMs;
    config = doc;
    showConfig(doc);
    if (restarted) { prev.clear(); rateCache.clear(); lastAt = 0; lastMetrics = null; }
    if (changed) {
      buildGraph(doc);
      if (lastMetrics) onMetrics(lastMetrics, true);
    }
  }

  let source = null;
  function connect() {
    const conn = $("conn");
    source = new EventSource("/events");
    source.addEventListener("open", () => {
      conn.textContent = "live";
      conn.className = "conn live";
      $("graph").classList.remove("stale");
    });
    source.addEventListener("config", (e) => { try { onConfig(JSON.parse(e.data)); } catch (err) { console.error(err); } });
    source.addEventListener("metrics", (e) => { try { onMetrics(JSON.parse(e.data)); } catch (err) { console.error(err); } });
    source.addEventListener("error", () => {
      conn.textContent = "reconnecting…";
      conn.className = "conn";
      $("graph").classList.add("stale");
      // The browser retries by itself unless the stream was refused for good.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, 2000);
      }
    });
  }
  connect();
})();
