import { api, el, fmtSeconds, followJob, guarded, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
const COLORS = ["#ff9f43", "#54a0ff", "#2ecc71", "#ff6b6b", "#c56cf0", "#feca57"];
let watching = null;   // {run, job}
let lastChart = 0;

async function loadOptions() {
  const [recipes, datasets] = await Promise.all([api("/api/train/recipes"), api("/api/train/datasets")]);
  $("recipe").innerHTML = "";
  for (const r of recipes) $("recipe").append(el("option", { value: r.name, title: r.description }, r.name));
  if (recipes.some((r) => r.name === "dcgan")) $("recipe").value = "dcgan";
  $("data").innerHTML = "";
  for (const d of datasets) $("data").append(el("option", { value: d.id }, `${d.id}${d.fetched ? "" : " (not fetched)"}`));
}

async function loadRuns() {
  const runs = await guarded(() => api("/api/train/runs"));
  if (!runs) return runs;
  const box = $("runs");
  box.innerHTML = runs.length ? "" : '<div class="hint">no runs yet</div>';
  for (const r of runs.slice(0, 12)) {
    const status = r.job ? "training" : `${Math.max(r.step, 0)}/${r.steps}`;
    const a = el("a", { href: `?run=${r.id}`, onclick: (e) => { e.preventDefault(); watchRun(r.id, r.job); } }, r.id);
    box.append(el("div", { class: "stat" }, a, el("b", {}, status)));
  }
  return runs;
}

function drawChart(records) {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, P = 34;
  ctx.clearRect(0, 0, W, H);
  const keys = [...new Set(records.flatMap((r) => Object.keys(r)))].filter((k) => k.startsWith("loss"));
  if (!records.length || !keys.length) {
    ctx.fillStyle = "#9aa1b2"; ctx.font = "13px sans-serif"; ctx.fillText("losses appear after the first logged step", P, H / 2); return;
  }
  const steps = records.map((r) => r.step);
  const vals = records.flatMap((r) => keys.map((k) => r[k]).filter(Number.isFinite));
  const [x0, x1] = [Math.min(...steps), Math.max(...steps, Math.min(...steps) + 1)];
  let [y0, y1] = [Math.min(...vals), Math.max(...vals)];
  if (y1 - y0 < 1e-6) { y0 -= 1; y1 += 1; }
  const X = (s) => P + (W - 2 * P) * (s - x0) / (x1 - x0);
  const Y = (v) => H - P + -(H - 2 * P) * (v - y0) / (y1 - y0);
  ctx.strokeStyle = "#323744"; ctx.lineWidth = 1; ctx.strokeRect(P, P, W - 2 * P, H - 2 * P);
  ctx.fillStyle = "#9aa1b2"; ctx.font = "11px sans-serif";
  ctx.fillText(y1.toFixed(2), 2, P + 4); ctx.fillText(y0.toFixed(2), 2, H - P);
  ctx.fillText(`step ${x0}`, P, H - 10); ctx.fillText(`${x1}`, W - P - 20, H - 10);
  keys.forEach((k, i) => {
    ctx.strokeStyle = COLORS[i % COLORS.length]; ctx.lineWidth = 1.6; ctx.beginPath();
    records.filter((r) => Number.isFinite(r[k])).forEach((r, j) => (j ? ctx.lineTo(X(r.step), Y(r[k])) : ctx.moveTo(X(r.step), Y(r[k]))));
    ctx.stroke();
    ctx.fillStyle = COLORS[i % COLORS.length]; ctx.fillText(k, P + 8 + i * 80, P - 10);
  });
}

async function refreshRun(force = false) {
  if (!watching?.run) return;
  const now = Date.now();
  if (!force && now - lastChart < 1500) return;
  lastChart = now;
  const log = await guarded(() => api(`/api/train/runs/${watching.run}/log`));
  if (log) {
    drawChart(log.losses);
    const swd = log.metrics.filter((m) => m.swd !== undefined).pop();
    if (swd) $("live-message").textContent = `SWD ${swd.swd.toFixed(1)} at step ${swd.step} (lower is better)`;
  }
  const img = $("samples");
  img.src = `/api/train/runs/${watching.run}/samples/latest?t=${now}`;
  img.onerror = () => img.removeAttribute("src");
  $("use").href = `/create?model=${encodeURIComponent(watching.run)}`;
}

function showJob(job) {
  $("live-empty").hidden = true;
  $("live-body").hidden = false;
  $("bar").style.width = `${(job.progress * 100).toFixed(1)}%`;
  const st = $("live-state");
  st.textContent = job.state; st.className = `state ${job.state}`;
  $("live-step").textContent = job.step; $("live-total").textContent = job.total;
  $("live-eta").textContent = job.state === "running" ? fmtSeconds(job.eta_s) : "–";
  if (job.error) $("live-message").textContent = job.error;
  $("log").textContent = job.log;
  $("log").scrollTop = $("log").scrollHeight;
  $("cancel").disabled = !(job.state === "queued" || job.state === "running");
  $("resume").disabled = !$("cancel").disabled;
  const run = job.key?.startsWith("run:") ? job.key.slice(4) : job.result?.run;
  if (run && watching && watching.run !== run) { watching.run = run; loadRuns(); }
  if (run) $("live-title").textContent = `Live · ${run}`;
  refreshRun();
}

async function watchJob(jobId) {
  watching = { run: null, job: jobId };
  const first = await guarded(() => api(`/api/jobs/${jobId}`));
  if (first) showJob(first);
  const last = await followJob(jobId, showJob);
  if (last) { showJob(last); refreshRun(true); }
  if (last?.state === "done") toast(`training finished at step ${last.step}`);
  if (last?.state === "failed") toast(last.error, true);
  loadRuns();
}

async function watchRun(run, jobId) {
  history.replaceState(null, "", `?run=${run}`);
  if (jobId) return watchJob(jobId);
  watching = { run, job: null };
  $("live-empty").hidden = true; $("live-body").hidden = false;
  $("live-title").textContent = `Run · ${run}`;
  const runs = await api("/api/train/runs");
  const r = runs.find((x) => x.id === run);
  if (r) {
    $("bar").style.width = `${(100 * Math.max(r.step, 0) / Math.max(r.steps, 1)).toFixed(1)}%`;
    $("live-step").textContent = Math.max(r.step, 0); $("live-total").textContent = r.steps;
    $("live-state").textContent = r.step >= r.steps ? "done" : "stopped";
    $("live-state").className = `state ${r.step >= r.steps ? "done" : "queued"}`;
  }
  $("cancel").disabled = true; $("resume").disabled = false;
  $("log").textContent = "";
  refreshRun(true);
}

$("upload").addEventListener("change", async () => {
  const files = $("upload").files;
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f);
  const out = await guarded(() => api("/api/train/uploads", { method: "POST", body: form }));
  if (!out) return;
  toast(`uploaded ${out.images} images${out.skipped.length ? `, skipped ${out.skipped.length}` : ""}`);
  const opt = el("option", { value: `upload:${out.id}` }, `upload:${out.id} (${out.images} images)`);
  $("data").append(opt); $("data").value = `upload:${out.id}`;
});

$("start").addEventListener("click", async () => {
  let extra = {};
  if ($("advanced").value.trim()) {
    try { extra = JSON.parse($("advanced").value); } catch (err) { return toast(`advanced overrides: not valid JSON (${err.message})`, true); }
  }
  const body = { model: $("recipe").value, data: $("data").value, resolution: Number($("resolution").value),
    steps: Number($("steps").value), batch_size: Number($("batch").value), max_minutes: Number($("minutes").value), ...extra };
  const job = await guarded(() => api("/api/train", { method: "POST", body }));
  if (!job) return;
  toast(`training job #${job.id} queued`);
  loadRuns();
  watchJob(job.id);
});

$("cancel").addEventListener("click", async () => {
  if (!watching?.job) return;
  const job = await guarded(() => api(`/api/jobs/${watching.job}/cancel`, { method: "POST" }));
  if (job) toast("stopping after this step; a checkpoint is saved");
});

$("resume").addEventListener("click", async () => {
  if (!watching?.run) return;
  const runs = await api("/api/train/runs");
  const r = runs.find((x) => x.id === watching.run);
  const steps = Math.max(r.step, 0) + Number($("steps").value);
  const job = await guarded(() => api(`/api/train/runs/${watching.run}/resume`, { method: "POST", body: { steps } }));
  if (job) { toast(`resuming ${watching.run} to step ${steps}`); watchJob(job.id); }
});

(async () => {
  await guarded(loadOptions);
  const runs = await loadRuns();
  const wanted = new URLSearchParams(location.search).get("run");
  const active = (await guarded(() => api("/api/jobs?kind=train&limit=10")) || []).find((j) => j.state === "running" || j.state === "queued");
  if (wanted && runs) { const r = runs.find((x) => x.id === wanted); if (r) watchRun(r.id, r.job); }
  else if (active) watchJob(active.id);
})();
