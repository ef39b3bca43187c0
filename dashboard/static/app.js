// The dashboard's script: written for this project, plain JavaScript, no third-party code.
// It listens to /api/events (server-sent events: the parts of the snapshot that changed) and draws each
// section from it; controls POST to /api/control and their outcome arrives with the next snapshot.
"use strict";

let snap = null;

function fmt(v, digits = 2) {
  if (v === null || v === undefined || v === "") return "–";
  const n = Number(v);
  if (Number.isNaN(n)) return String(v);
  return n.toLocaleString("en-IN", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ist(epoch) {
  if (!epoch) return "–";
  return new Date(epoch * 1000).toLocaleTimeString("en-GB", { timeZone: "Asia/Kolkata", hour12: false });
}

function istIso(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleTimeString("en-GB", { timeZone: "Asia/Kolkata", hour12: false });
}

function signed(el, v) {
  el.textContent = fmt(v);
  el.className = el.className.replace(/\b(pos|neg)\b/g, "").trim();
  if (v !== null && v !== undefined) el.classList.add(Number(v) >= 0 ? "pos" : "neg");
}

function fill(tableId, rows, cells) {
  // update the table in place: a row's button stays the same element (a click in progress is not lost to a
  // redraw), text changes only where it changed
  const body = document.querySelector(`#${tableId} tbody`);
  rows.forEach((r, i) => {
    let tr = body.rows[i];
    if (!tr) { tr = document.createElement("tr"); body.appendChild(tr); }
    const cs = cells(r);
    cs.forEach((c, j) => {
      let td = tr.cells[j];
      if (!td) { td = document.createElement("td"); tr.appendChild(td); }
      if (c instanceof Node) {
        const old = td.firstElementChild;
        if (old && c.id && old.id === c.id) {
          old.disabled = c.disabled;
        } else {
          td.replaceChildren(c);
        }
      } else {
        const text = c === null || c === undefined ? "–" : String(c);
        if (td.firstElementChild || td.textContent !== text) td.textContent = text;
      }
    });
    while (tr.cells.length > cs.length) tr.deleteCell(-1);
  });
  while (body.rows.length > rows.length) body.deleteRow(-1);
}

function distance(p, at, kind) {
  // room left before the symbol cap acts: price points and % of the last price (negative: crossed)
  if (at === null || at === undefined || p.last_price === null || p.last_price === undefined) return "–";
  const last = Number(p.last_price), cap = Number(at);
  const long = p.side === "long";
  const room = (kind === "loss") === long ? last - cap : cap - last;
  return `${fmt(room)} (${fmt((room / last) * 100)}%)`;
}

function render(s) {
  snap = s;
  document.getElementById("day").textContent = s.day + (s.read_only ? " (finished day, read-only)" : "");
  document.getElementById("badge").textContent = s.mode;
  const st = document.getElementById("state");
  st.textContent = s.trading_state || "–";
  st.className = "big " + (s.trading_state || "");
  document.getElementById("reason").textContent = s.state_reason || "";
  const pnl = s.pnl || {};
  document.getElementById("equity").textContent = fmt(pnl.equity);
  signed(document.getElementById("realized"), pnl.realized);
  signed(document.getElementById("unrealized"), pnl.unrealized);
  document.getElementById("feedtime").textContent = ist(s.feed_time);
  fill("caps", s.caps || [], (c) => [c.cap, c.limit, c.now, c.headroom]);

  for (const b of document.querySelectorAll("button[data-action]")) b.disabled = s.read_only;
  fill("controls", s.controls || [], (c) => [c.id, istIso(c.requested_at), c.action, c.symbol, c.status, c.note, c.who]);

  const positions = s.positions || [];
  document.getElementById("no-positions").style.display = positions.length ? "none" : "block";
  fill("positions", positions, (p) => {
    const pl = document.createElement("span");
    signed(pl, p.unrealized_pnl);
    const btn = document.createElement("button");
    btn.textContent = "Flatten";
    btn.className = "danger";
    btn.dataset.symbol = p.symbol;
    btn.id = `flatten-${p.symbol}`;
    btn.disabled = s.read_only;
    btn.addEventListener("click", () => control("flatten", p.symbol));
    return [p.symbol, p.side, p.quantity, fmt(p.entry_price), fmt(p.last_price), pl, fmt(p.loss_cap_price),
            distance(p, p.loss_cap_price, "loss"), fmt(p.profit_cap_price), distance(p, p.profit_cap_price, "profit"), p.strategy, btn];
  });

  fill("orders", s.orders || [], (o) => {
    const h = document.createElement("div");
    h.className = "history";
    h.textContent = (o.history || []).map((e) => `${istIso(e.ts)} ${e.from || ""}→${e.to}` +
      (e.detail ? ` (${e.detail})` : "")).join("; ");
    return [o.id, o.symbol, o.side, o.purpose, o.quantity, o.filled, fmt(o.average_price), o.status, h];
  });
  fill("signals", s.signals || [], (g) => [ist(g.time), g.symbol, g.strategy, `${g.type} ${g.position}`, fmt(g.price),
    g.outcome || "pending", g.outcome_note || g.note]);
  fill("trades", s.trades || [], (t) => {
    const net = document.createElement("span");
    signed(net, t.net_pnl);
    return [t.trade_id, t.symbol, t.side, t.quantity, fmt(t.entry_price), fmt(t.exit_price), net, t.exit_reason];
  });

  const h = s.health || {};
  const f = h.feed || {};
  const rejected = Object.entries(f.rejected_by_reason || {}).map(([k, v]) => `${k}: ${v}`).join(", ") || "none";
  const lag = s.read_only || !s.live_at ? "–" : `${fmt(s.now - s.live_at, 1)} s`;
  document.getElementById("feed").textContent = s.read_only ? "finished day: no process health" :
    `feed ${f.alive ? "alive" : "down"}${f.finished ? " (finished)" : ""}, ticks dispatched ${f.dispatched ?? "–"}, ` +
    `${tickRate(f.dispatched)} ticks/s, restarts ${f.restarts ?? 0}, bad ticks rejected by reason: ${rejected}, ` +
    `bad at workers ${h.bad_at_workers ?? 0}, live view age ${lag}`;
  fill("workers", Object.entries(h.workers || {}), ([id, w]) => [id, w.alive ? "yes" : "NO", w.pid, w.restarts]);
  const log = document.getElementById("log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = (s.log || []).join("\n");
  if (atBottom) log.scrollTop = log.scrollHeight;
  drawCurve(s.curve || [], "curve", "curve-label", ist);
}

let lastCount = null, lastAt = null, rate = "–";
function tickRate(count) {
  const now = Date.now() / 1000;
  if (count !== undefined && lastCount !== null && now - lastAt >= 1) {
    rate = fmt((count - lastCount) / (now - lastAt), 0);
    lastCount = count; lastAt = now;
  } else if (lastCount === null && count !== undefined) { lastCount = count; lastAt = now; }
  return rate;
}

function istDay(epoch) {
  if (!epoch) return "–";
  return new Date(epoch * 1000).toLocaleString("en-GB", { timeZone: "Asia/Kolkata", hour12: false,
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

function drawCurve(points, svgId, labelId, when) {
  // points: [epoch, equity, drawdown %]; equity above (blue), drawdown below (red)
  const svg = document.getElementById(svgId);
  svg.replaceChildren();
  const label = document.getElementById(labelId);
  if (points.length < 2) { label.textContent = "not enough points yet"; return; }
  const W = 800, H = 220, top = 150;
  const xs = points.map((p) => p[0]), eq = points.map((p) => p[1]), dd = points.map((p) => p[2]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), e0 = Math.min(...eq), e1 = Math.max(...eq);
  const dmax = Math.max(0.01, ...dd);
  const X = (x) => ((x - x0) / Math.max(1e-9, x1 - x0)) * W;
  const Y = (e) => top - ((e - e0) / Math.max(1e-9, e1 - e0)) * (top - 10);
  const D = (d) => top + 10 + (d / dmax) * (H - top - 15);
  const line = (pts, color) => {
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    pl.setAttribute("points", pts.join(" "));
    pl.setAttribute("fill", "none");
    pl.setAttribute("stroke", color);
    pl.setAttribute("stroke-width", "1.5");
    pl.setAttribute("vector-effect", "non-scaling-stroke");
    svg.appendChild(pl);
  };
  line(points.map((p) => `${X(p[0])},${Y(p[1])}`), "#1f5fbf");
  line(points.map((p) => `${X(p[0])},${D(p[2])}`), "#b00020");
  label.textContent = `equity ${fmt(e0)} – ${fmt(e1)} (blue), drawdown up to ${fmt(dmax)}% (red), ` +
    `${when(x0)} – ${when(x1)} IST`;
}

async function control(action, symbol) {
  const msg = document.getElementById("control-msg");
  const what = symbol ? `${action} ${symbol}` : action;
  if (["flatten_all", "halt"].includes(action) && !window.confirm(`Really ${what.replace("_", " ")}?`)) return;
  msg.textContent = `${what}: sending…`;
  try {
    const r = await fetch("/api/control", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ action, symbol }), credentials: "same-origin" });
    const body = await r.json();
    msg.textContent = r.ok ? `${what}: recorded as control ${body.id}, waiting for the trading thread` :
      `${what}: refused (${body.error || r.status})`;
  } catch (e) {
    msg.textContent = `${what}: not sent (${e})`;
  }
}

for (const b of document.querySelectorAll("button[data-action]")) {
  b.addEventListener("click", () => control(b.dataset.action));
}

const bt = { run: null, page: 1, pages: 1 };

async function getJson(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || String(r.status));
  return body;
}

async function backtestTrades() {
  // one page of the chosen run's trades, sorted by the server (a long run never comes to the page whole)
  const sort = document.getElementById("backtest-sort").value;
  const order = document.getElementById("backtest-order").value;
  const id = encodeURIComponent(bt.run);
  const p = await getJson(`/api/backtest/${id}/trades?sort=${sort}&order=${order}&page=${bt.page}&size=50`);
  bt.pages = p.pages;
  document.getElementById("backtest-page").textContent = `page ${p.page} of ${p.pages} (${p.total} trades)`;
  document.getElementById("backtest-prev").disabled = p.page <= 1;
  document.getElementById("backtest-next").disabled = p.page >= p.pages;
  fill("backtest-trades", p.trades, (t) => {
    const net = document.createElement("span");
    signed(net, t.net_pnl);
    return [t.trade_id, t.trade_date, t.symbol, t.strategy, t.side, t.quantity, istDay(Number(t.entry_time)),
            fmt(t.entry_price), istDay(Number(t.exit_time)), fmt(t.exit_price), fmt(t.costs), net, t.exit_reason];
  });
}

async function showBacktest(runId) {
  // read-only: the run's figures (summary.json), its equity after each exit and its trades (trades.csv)
  const msg = document.getElementById("backtest-msg");
  bt.run = runId; bt.page = 1;
  try {
    const id = encodeURIComponent(runId);
    const s = await getJson(`/api/backtest/${id}`);
    const flat = [];
    const walk = (prefix, o) => {
      for (const [k, v] of Object.entries(o)) {
        const key = prefix ? `${prefix}.${k}` : k;
        if (v !== null && typeof v === "object" && !Array.isArray(v)) {
          if (!["by_symbol", "by_strategy"].includes(key)) walk(key, v);
        } else flat.push([key, Array.isArray(v) ? v.join(", ") : v]);
      }
    };
    walk("", s);
    fill("backtest", flat, ([k, v]) => [k, typeof v !== "number" ? v : Number.isInteger(v) ? String(v) : fmt(v, 4)]);
    const eq = await getJson(`/api/backtest/${id}/equity`);
    drawCurve(eq.points, "backtest-curve", "backtest-curve-label", istDay);
    await backtestTrades();
    msg.textContent = "";
  } catch (e) {
    msg.textContent = `run ${runId}: ${e.message}`;
  }
}

async function backtests() {
  const sel = document.getElementById("backtest-runs");
  let runs = [];
  try { ({ runs } = await getJson("/api/backtest")); } catch (e) { return; }
  if (!runs.length) return;
  sel.replaceChildren(...runs.map((id) => { const o = document.createElement("option"); o.value = o.textContent = id; return o; }));
  sel.addEventListener("change", () => showBacktest(sel.value));
  const again = () => { bt.page = 1; backtestTrades(); };
  document.getElementById("backtest-sort").addEventListener("change", again);
  document.getElementById("backtest-order").addEventListener("change", again);
  document.getElementById("backtest-prev").addEventListener("click", () => { bt.page -= 1; backtestTrades(); });
  document.getElementById("backtest-next").addEventListener("click", () => { bt.page += 1; backtestTrades(); });
  showBacktest(sel.value);
}

function applyDelta(into, delta) {
  // a part's next version from the one held (dashboard/delta.py says the format): a key absent is unchanged
  for (const [k, c] of Object.entries(delta)) {
    if ("set" in c) {
      into[k] = c.set;
    } else if ("ref" in c) {  // an integer: the item at that index of the list held; else a new item
      const old = into[k] || [];
      into[k] = c.ref.map((x) => (typeof x === "number" ? old[x] : x));
    } else {
      into[k] = (into[k] || []).slice(0, c.from).concat(c.add);
    }
  }
}

function connect() {
  // each part comes whole first on every connection (a reconnect too), then as deltas from the version held
  const conn = document.getElementById("conn");
  const es = new EventSource("/api/events");
  const merged = {};
  const shown = () => {
    conn.textContent = `updated ${new Date().toLocaleTimeString("en-GB", { hour12: false })}`;
    if (merged.day) render(merged);
  };
  for (const part of ["live", "rows", "log"]) {  // small parts every half second, the rows when they change
    es.addEventListener(part, (e) => { Object.assign(merged, JSON.parse(e.data)); shown(); });
    es.addEventListener(`${part}_delta`, (e) => { applyDelta(merged, JSON.parse(e.data)); shown(); });
  }
  es.onerror = () => { conn.textContent = "disconnected: retrying…"; };
}
connect();
backtests();
