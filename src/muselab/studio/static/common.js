// Shared helpers for the studio pages (plain ES module, no build step).

/** Call the JSON API; throws an Error carrying the server's actionable message. */
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const opts = { method, headers: {} };
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, opts);
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { message = (await res.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return raw ? res : res.json();
}

export function toast(text, isError = false) {
  const box = document.getElementById("toast");
  const div = document.createElement("div");
  div.textContent = text;
  if (isError) div.className = "error";
  box.appendChild(div);
  setTimeout(() => div.remove(), isError ? 8000 : 3500);
}

/** Run an async action, reporting errors as a toast. */
export async function guarded(fn) {
  try { return await fn(); } catch (err) { toast(err.message, true); return undefined; }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

/** An image card; `label` shows top-left, `onclick` gets the item. */
export function card(item, { label, onclick, href } = {}) {
  const img = item.kind === "poem" ? el("div", { class: "poem-card" }, item.params.text || "")
    : el("img", { src: item.url, alt: `image ${item.id}`, loading: "lazy" });
  const meta = el("div", { class: "meta" }, el("span", {}, `#${item.id}`),
    el("span", {}, item.rating ? `★ ${item.rating.toFixed(1)}` : (item.seed !== null ? `seed ${item.seed}` : item.source)));
  const node = el(href ? "a" : "div", { class: "card", "data-id": item.id, href }, img, meta,
    el("div", { class: "check" }, "✓"));
  if (label !== undefined) node.append(el("div", { class: "badge" }, String(label)));
  if (onclick) node.addEventListener("click", () => onclick(item, node));
  return node;
}

/** Fill a <select> with the models; remembers the choice across pages. */
export async function loadModels(select) {
  const models = await api("/api/models");
  select.innerHTML = "";
  if (!models.length) {
    select.append(el("option", { value: "" }, "no models yet: train one"));
    toast("No models yet: start a run on the Train page (or `make studio` fetches the default).");
    return [];
  }
  for (const m of models) {
    select.append(el("option", { value: m.id, "data-text": m.text ? "1" : "" },
      `${m.id} · ${m.recipe} ${m.resolution}px · step ${m.step}${m.text ? " · text" : ""}`));
  }
  const wanted = new URLSearchParams(location.search).get("model") || localStorage.getItem("muselab.model");
  if (wanted && models.some((m) => m.id === wanted)) select.value = wanted;
  select.addEventListener("change", () => localStorage.setItem("muselab.model", select.value));
  return models;
}

/** Five clickable stars; `onrate(value)` is called with 1-5. */
export function stars(container, onrate) {
  container.innerHTML = "";
  const buttons = [1, 2, 3, 4, 5].map((v) => el("button", {
    title: `${v} star${v > 1 ? "s" : ""}`, "data-value": v, onclick: () => onrate(v),
  }, "★"));
  container.append(...buttons);
  return (value) => buttons.forEach((b, i) => b.classList.toggle("on", value !== null && i < Math.round(value)));
}

export async function rate(item, value) {
  const out = await api("/api/ratings", { method: "POST", body: { item, value } });
  toast(`rated #${item}: ${value} ★`);
  return out;
}

/** Follow a job with server-sent events; `onjob(job)` on each change; resolves at the end. */
export function followJob(id, onjob) {
  return new Promise((resolve) => {
    const source = new EventSource(`/api/jobs/${id}/events`);
    let last = null;
    source.addEventListener("job", (e) => { last = JSON.parse(e.data); onjob(last); });
    source.addEventListener("end", () => { source.close(); resolve(last); });
    source.onerror = () => { source.close(); resolve(last); };
  });
}

/** Submit a job of `kind` and follow it on a progress `bar` (its first child is the fill)
 * and a `status` line; resolves to the finished job, or null. A job that did not finish
 * is reported in a toast. */
export async function runJob(kind, params, bar, status) {
  const job = await guarded(() => api("/api/jobs", { method: "POST", body: { kind, params } }));
  if (!job) return null;
  bar.hidden = false;
  const last = await followJob(job.id, (j) => {
    bar.firstElementChild.style.width = `${Math.round(j.progress * 100)}%`;
    status.textContent = `job #${j.id}: ${j.state} ${j.message}`;
  });
  bar.hidden = true;
  if (last && last.state === "done") return last;
  toast(last && last.error ? last.error : `the ${kind} job did not finish (is the worker running?)`, true);
  return null;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Keyboard shortcuts that do not fire while typing in a field. */
export function keys(map) {
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    const fn = map[e.key];
    if (fn) { e.preventDefault(); fn(e); }
  });
}

async function jobsIndicator() {
  const node = document.getElementById("jobs-indicator");
  try {
    const running = await api("/api/jobs?state=running&limit=5");
    const queued = await api("/api/jobs?state=queued&limit=50");
    if (!running.length && !queued.length) node.textContent = "no jobs running";
    else {
      const r = running[0];
      node.textContent = r ? `${r.kind} #${r.id}: ${Math.round(r.progress * 100)}%` : "";
      if (queued.length) node.textContent += ` (+${queued.length} queued)`;
    }
  } catch (_) { node.textContent = ""; }
}

if (!window.__muselabIndicator) {
  window.__muselabIndicator = setInterval(jobsIndicator, 3000);
  jobsIndicator();
}
