// tuning-service dashboard: live parts and interactive SVG charts, hand-written, no dependencies.
// Live: the page polls its state URL; when the fingerprint changes it swaps in each
// [data-part] (server-rendered HTML) and redraws each .chart from its JSON.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = {
    completed: "#2e7d32", "stopped early": "#f9a825", diverged: "#c62828", errored: "#6a1b9a",
    running: "#1565c0", interrupted: "#757575", dropped: "#9e9e9e", infeasible: "#8d6e63",
  };
  const DASH = { "stopped early": "5 3", diverged: "2 2", errored: "2 2", dropped: "6 2 2 2" };
  const PALETTE = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#ad1457"];
  const tooltip = () => document.getElementById("tooltip");

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v !== "number") return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return Number.isInteger(v) ? String(v) : v.toFixed(a < 1 ? 4 : 2);
  }

  function ticks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const step0 = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }

  function extent(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v !== null && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (lo === Infinity) return [0, 1];
    if (lo === hi) { lo -= 0.5 || 1; hi += 0.5; }
    return [lo, hi];
  }

  function showTip(evt, html) {
    const tip = tooltip();
    tip.textContent = "";
    for (const line of html) { const div = document.createElement("div"); div.textContent = line; tip.appendChild(div); }
    tip.hidden = false;
    const x = Math.min(evt.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    tip.style.left = x + window.scrollX + "px";
    tip.style.top = evt.clientY + window.scrollY + 14 + "px";
  }
  function hideTip() { tooltip().hidden = true; }

  // A frame: axes with ticks inside a W x H svg; returns scales.
  function frame(svg, W, H, xr, yr, xLabel, yLabel, xTime) {
    const m = { l: 62, r: 14, t: 10, b: 40 };
    const sx = (x) => m.l + ((x - xr[0]) / (xr[1] - xr[0] || 1)) * (W - m.l - m.r);
    const sy = (y) => H - m.b - ((y - yr[0]) / (yr[1] - yr[0] || 1)) * (H - m.t - m.b);
    const axes = el("g", { class: "axes" }, svg);
    for (const t of ticks(yr[0], yr[1], 5)) {
      el("line", { x1: m.l, x2: W - m.r, y1: sy(t), y2: sy(t), class: "grid" }, axes);
      el("text", { x: m.l - 6, y: sy(t) + 4, "text-anchor": "end" }, axes).textContent = fmt(t);
    }
    for (const t of ticks(xr[0], xr[1], 6)) {
      el("line", { x1: sx(t), x2: sx(t), y1: m.t, y2: H - m.b, class: "grid" }, axes);
      const label = xTime ? new Date(t).toISOString().slice(0, 10) : fmt(t);
      el("text", { x: sx(t), y: H - m.b + 16, "text-anchor": "middle" }, axes).textContent = label;
    }
    el("text", { x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle", class: "label" }, axes).textContent = xLabel || "";
    el("text", { x: 12, y: (m.t + H - m.b) / 2, transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`, "text-anchor": "middle", class: "label" }, axes).textContent = yLabel || "";
    return { sx, sy, m };
  }

  function pathOf(points, sx, sy, step) {
    let d = "", prev = null;
    for (const [x, y] of points) {
      if (y === null) { prev = null; continue; }
      if (prev === null) d += `M${sx(x)},${sy(y)}`;
      else if (step === "vh") d += `V${sy(y)}H${sx(x)}`;
      else if (step) d += `H${sx(x)}V${sy(y)}`;
      else d += `L${sx(x)},${sy(y)}`;
      prev = y;
    }
    return d;
  }

  // Lines with hover: the nearest point names its series (trial and config).
  function lines(box, data, W, H) {
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot" });
    const all = data.series.flatMap((s) => s.points);
    const xr = extent(all.map((p) => p[0])), yr = extent(all.map((p) => p[1]));
    const { sx, sy } = frame(svg, W, H, xr, yr, data.x_label, data.y_label, data.x_time);
    const layer = el("g", { class: "series" }, svg);
    const drawn = [];
    data.series.forEach((s, i) => {
      const color = s.color || COLORS[s.status] || PALETTE[i % PALETTE.length];
      const path = el("path", { d: pathOf(s.points, sx, sy, s.step), stroke: color, fill: "none", class: "line",
        "stroke-dasharray": DASH[s.status] || "", "data-name": s.name }, layer);
      if (s.markers || s.points.length === 1) {
        for (const [x, y] of s.points) if (y !== null) el("circle", { cx: sx(x), cy: sy(y), r: 3, fill: color }, layer);
      }
      drawn.push({ s, path });
    });
    const marker = el("circle", { r: 4, class: "marker", visibility: "hidden" }, svg);
    svg.addEventListener("mousemove", (evt) => {
      const r = svg.getBoundingClientRect(), k = W / r.width;
      const px = (evt.clientX - r.left) * k, py = (evt.clientY - r.top) * k;
      let best = null, bestD = 400;
      for (const d of drawn) for (const p of d.s.points) {
        if (p[1] === null) continue;
        const dd = (sx(p[0]) - px) ** 2 + (sy(p[1]) - py) ** 2;
        if (dd < bestD) { bestD = dd; best = { d, p }; }
      }
      for (const d of drawn) d.path.classList.toggle("hot", best !== null && d === best.d);
      if (!best) { marker.setAttribute("visibility", "hidden"); hideTip(); return; }
      marker.setAttribute("cx", sx(best.p[0])); marker.setAttribute("cy", sy(best.p[1]));
      marker.setAttribute("visibility", "visible");
      const x = data.x_time ? new Date(best.p[0]).toISOString().replace("T", " ").slice(0, 19) + " UTC" : fmt(best.p[0]);
      showTip(evt, [best.p[2] || best.d.s.info || best.d.s.name, `${data.x_label} ${x}: ${data.y_label} ${fmt(best.p[1])}`]);
    });
    svg.addEventListener("mouseleave", () => { hideTip(); marker.setAttribute("visibility", "hidden"); });
    box.appendChild(svg);
    legend(box, data.series.map((s) => s.status).filter((v, i, a) => v && a.indexOf(v) === i));
  }

  function legend(box, statuses) {
    if (!statuses.length) return;
    const p = document.createElement("p");
    p.className = "legend";
    for (const s of statuses) {
      const span = document.createElement("span");
      span.className = "chip status-" + s.split(" ")[0];
      span.textContent = s;
      p.appendChild(span);
    }
    box.appendChild(p);
  }

  // Step lines in one or more panels side by side (best so far, slot use).
  function steps(box, data, W, H) {
    const wrap = document.createElement("div");
    wrap.className = "panels";
    for (const panel of data.panels) {
      const div = document.createElement("div");
      if (!panel.points.length) { div.className = "note"; div.textContent = "nothing to draw yet"; wrap.appendChild(div); continue; }
      const pts = panel.points.slice();
      lines(div, { series: [{ name: data.y_label, status: null, points: pts, step: true, markers: pts.length < 60 }],
        x_label: panel.x_label, y_label: data.y_label }, W / data.panels.length + 60 * (data.panels.length - 1), H);
      wrap.appendChild(div);
    }
    box.appendChild(wrap);
  }

  function bars(box, data, W, H) {
    const cats = data.categories;
    if (!cats.length) { note(box, data.note || "nothing to draw"); return; }
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot" });
    const totals = cats.map((_, i) => data.series.reduce((a, s) => a + s.values[i], 0));
    const horizontal = !!data.horizontal;
    const m = { l: horizontal ? 140 : 50, r: 14, t: 10, b: 40 };
    const band = ((horizontal ? H - m.t - m.b : W - m.l - m.r) / cats.length);
    const max = Math.max(...totals, 1e-12);
    const len = (v) => (v / max) * (horizontal ? W - m.l - m.r : H - m.t - m.b);
    const g = el("g", {}, svg);
    cats.forEach((c, i) => {
      let acc = 0;
      data.series.forEach((s, j) => {
        const v = s.values[i];
        if (!v) return;
        const color = COLORS[s.status] || PALETTE[j % PALETTE.length];
        const rect = horizontal
          ? el("rect", { x: m.l + len(acc), y: m.t + i * band + band * 0.15, width: len(v), height: band * 0.7, fill: color }, g)
          : el("rect", { x: m.l + i * band + band * 0.15, y: H - m.b - len(acc + v), width: band * 0.7, height: len(v), fill: color }, g);
        rect.addEventListener("mousemove", (evt) => showTip(evt, [`${c}: ${fmt(v)} ${s.name}`]));
        rect.addEventListener("mouseleave", hideTip);
        acc += v;
      });
      const t = horizontal
        ? el("text", { x: m.l - 6, y: m.t + (i + 0.5) * band + 4, "text-anchor": "end" }, g)
        : el("text", { x: m.l + (i + 0.5) * band, y: H - m.b + 16, "text-anchor": "middle" }, g);
      t.textContent = String(c);
    });
    el("text", { x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle", class: "label" }, g).textContent = data.x_label || "";
    box.appendChild(svg);
    legend(box, data.series.map((s) => s.status).filter((s) => s && s !== "completed"));
  }

  // Parallel coordinates: one vertical axis per parameter, the metric last; hover a line for its trial.
  function parallel(box, data, W, H) {
    if (!data.lines.length) { note(box, "no finished trial yet"); return; }
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot" });
    const m = { l: 40, r: 60, t: 24, b: 30 }, n = data.axes.length;
    const ax = (i) => m.l + (i * (W - m.l - m.r)) / Math.max(1, n - 1);
    const ay = (v) => H - m.b - v * (H - m.t - m.b);
    const values = data.lines.map((l) => l.value);
    const [lo, hi] = extent(values);
    const shade = (v) => {
      let q = (v - lo) / (hi - lo || 1);
      if (data.mode === "min") q = 1 - q;
      return `hsl(${Math.round(10 + 120 * q)}, 70%, ${Math.round(55 - 15 * q)}%)`;
    };
    const g = el("g", { class: "series" }, svg);
    const order = data.lines.map((l, i) => i).sort((a, b) => (data.mode === "min" ? -1 : 1) * (values[a] - values[b]));
    for (const i of order) {
      const l = data.lines[i];
      let d = "";
      l.values.forEach((v, k) => { if (v !== null) d += `${d ? "L" : "M"}${ax(k)},${ay(v)}`; });
      const path = el("path", { d, stroke: shade(l.value), fill: "none", class: "line" }, g);
      path.addEventListener("mousemove", (evt) => { path.classList.add("hot"); showTip(evt, [l.info]); });
      path.addEventListener("mouseleave", () => { path.classList.remove("hot"); hideTip(); });
    }
    data.axes.forEach((a, k) => {
      el("line", { x1: ax(k), x2: ax(k), y1: m.t, y2: H - m.b, class: "axis" }, svg);
      el("text", { x: ax(k), y: m.t - 8, "text-anchor": "middle", class: "label" }, svg).textContent = a.name;
      const ends = a.labels ? [a.labels[0], a.labels[a.labels.length - 1]] : [fmt(a.low), fmt(a.high)];
      if (a.labels) a.labels.forEach((lab, j) => {
        const y = ay(a.labels.length > 1 ? j / (a.labels.length - 1) : 0.5);
        el("text", { x: ax(k) + 4, y: y + 4, class: "tick" }, svg).textContent = lab;
      });
      else {
        el("text", { x: ax(k) + 4, y: H - m.b + 14, class: "tick" }, svg).textContent = ends[0] + (a.log ? " (log)" : "");
        el("text", { x: ax(k) + 4, y: m.t + 4, class: "tick" }, svg).textContent = ends[1];
      }
    });
    box.appendChild(svg);
  }

  function note(box, text) {
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = text;
    box.appendChild(p);
  }

  const KINDS = { lines, steps, bars, parallel };

  async function draw(box) {
    const response = await fetch(box.dataset.src, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) { box.textContent = `could not load this figure (HTTP ${response.status})`; return; }
    const data = await response.json();
    const W = Math.max(480, Math.min(1100, box.clientWidth || 900)), H = 320;
    const fresh = document.createElement("div");
    KINDS[data.kind](fresh, data, W, H);
    if (data.note) note(fresh, data.note);
    box.replaceChildren(...fresh.childNodes);
    box.dataset.drawn = String(Number(box.dataset.drawn || 0) + 1);
    box.dataset.points = String((data.series || []).reduce((a, s) => a + (s.points || []).length, 0));
  }

  // What each part last showed: a part is replaced only when its text changed, so a click on
  // one of its links is not lost to the same links being put in again under the pointer.
  const shown = new WeakMap();

  async function refreshParts() {
    for (const part of document.querySelectorAll("[data-part]")) {
      const url = new URL(window.location.href);
      url.searchParams.set("part", part.dataset.part);
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) continue;
      const text = await response.text();
      if (shown.get(part) !== text) {
        part.innerHTML = text;
        shown.set(part, text);
      }
    }
  }

  async function poll(stateUrl, last) {
    let running = false, fingerprint = last;
    try {
      const response = await fetch(stateUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const state = await response.json();
        running = state.running;
        fingerprint = state.fingerprint;
        // The first answer refreshes a running page too: it may have changed since it was rendered.
        if (last === null ? running : fingerprint !== last) {
          await refreshParts();
          await Promise.all([...document.querySelectorAll(".chart:not([data-once])")].map(draw));
          document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
        }
      }
    } catch (err) {
      running = true; // the server may be restarting: keep asking
    }
    document.getElementById("live").hidden = !running;
    const every = running ? 1000 : 10000;
    window.setTimeout(() => poll(stateUrl, fingerprint), every);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".chart").forEach((box) => draw(box).catch((err) => { box.textContent = String(err); }));
    const stateUrl = document.body.dataset.stateUrl;
    if (stateUrl) poll(stateUrl, null);
  });
})();
