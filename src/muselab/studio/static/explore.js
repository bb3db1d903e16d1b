import { api, guarded, loadModels, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
const K = 8;
let coeffs = new Array(K).fill(0);
let item = Number(new URLSearchParams(location.search).get("item")) || null;
let pending = null;
let busy = false;

async function preview() {
  const model = $("model").value;
  if (!model) return;
  if (busy) { pending = true; return; }
  busy = true;
  try {
    const res = await api("/api/generate/explore", { method: "POST", raw: true,
      body: { model, coeffs, seed: Number($("seed").value), item } });
    const url = URL.createObjectURL(await res.blob());
    const img = $("preview");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = url;
  } catch (err) { toast(err.message, true); }
  busy = false;
  if (pending) { pending = null; preview(); }
}

async function loadDirections() {
  const model = $("model").value;
  if (!model) return;
  const box = $("sliders");
  box.innerHTML = '<div class="hint">computing principal directions…</div>';
  const d = await guarded(() => api(`/api/models/${encodeURIComponent(model)}/directions?k=${K}`));
  if (!d) return;
  box.innerHTML = "";
  coeffs = new Array(d.sigma.length).fill(0);
  d.explained.forEach((ev, i) => {
    const value = document.createElement("span");
    value.textContent = "0.0";
    const input = Object.assign(document.createElement("input"), { type: "range", min: -3, max: 3, step: 0.1, value: 0 });
    input.setAttribute("aria-label", `direction ${i + 1}`);
    input.addEventListener("input", () => { coeffs[i] = Number(input.value); value.textContent = Number(input.value).toFixed(1); preview(); });
    const label = document.createElement("span");
    label.textContent = `PC${i + 1}`;
    label.title = `${(ev * 100).toFixed(1)}% of the variance`;
    const row = document.createElement("div");
    row.className = "slider";
    row.append(label, input, value);
    box.append(row);
  });
  preview();
}

$("reset").addEventListener("click", () => {
  coeffs.fill(0);
  document.querySelectorAll("#sliders input").forEach((i) => { i.value = 0; i.dispatchEvent(new Event("input")); });
});
$("keep").addEventListener("click", async () => {
  const out = await guarded(() => api("/api/generate/explore/keep", { method: "POST",
    body: { model: $("model").value, coeffs, seed: Number($("seed").value), item } }));
  if (out) toast(`kept as #${out.id} in the gallery`);
});
$("seed").addEventListener("change", () => { item = null; $("base-item").textContent = ""; preview(); });
$("random-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 100000); item = null; preview(); });
$("model").addEventListener("change", () => { item = null; loadDirections(); });
$("walk").addEventListener("click", async () => {
  const seeds = $("walk-seeds").value.split(/[ ,]+/).filter(Boolean).map(Number);
  if (seeds.length < 2 || seeds.some((s) => !(s >= 0))) return toast("give at least two seeds, e.g. 0, 1, 2", true);
  $("walk").disabled = true;
  const batch = await guarded(() => api("/api/generate", { method: "POST", body: { model: $("model").value, seeds } }));
  const gif = batch && await guarded(() => api("/api/generate/interpolate", { method: "POST",
    body: { items: batch.items.map((i) => i.id), frames: Number($("frames").value) } }));
  $("walk").disabled = false;
  if (!gif) return;
  const out = $("walk-out");
  out.innerHTML = "";
  const img = Object.assign(document.createElement("img"), { src: gif.url, className: "big", alt: "interpolation walk" });
  const link = Object.assign(document.createElement("a"), { href: gif.download_url, textContent: `download GIF (#${gif.id})` });
  out.append(img, link);
});

(async () => {
  await guarded(() => loadModels($("model")));
  if (item) {
    const it = await guarded(() => api(`/api/gallery/${item}`));
    if (it) { $("model").value = it.model; $("base-item").textContent = `starting from image #${item}`; }
    else item = null;
  }
  loadDirections();
})();
