import { api, card, guarded, keys, loadModels, rate, stars, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
let picked = null;
const showStars = stars($("stars"), (v) => rateMe(v));

async function rateMe(value) {
  if (!picked) return toast("pick an image first", true);
  const out = await guarded(() => rate(picked.id, value));
  if (out) { picked.rating = out.rating; showStars(value); }
}

function pick(item, node) {
  document.querySelectorAll(".card.selected").forEach((c) => c.classList.remove("selected"));
  node.classList.add("selected");
  picked = item;
  const box = $("picked");
  box.className = "";
  box.innerHTML = "";
  const img = document.createElement("img");
  img.className = "big";
  img.src = item.url;
  img.alt = `picked image ${item.id}`;
  box.append(img);
  $("variations").disabled = false;
  $("to-breed").href = `/breed?parents=${item.id}&model=${encodeURIComponent(item.model)}`;
  showStars(item.rating);
}

function show(container, items) {
  container.innerHTML = "";
  items.forEach((it, i) => container.append(card(it, { label: i + 1, onclick: pick })));
}

async function generate() {
  const model = $("model").value;
  if (!model) return toast("no model: train one first", true);
  $("generate").disabled = true;
  const out = await guarded(() => api("/api/generate", { method: "POST", body: {
    model, seed: Number($("seed").value), n: Number($("n").value), prompt: $("prompt").value } }));
  $("generate").disabled = false;
  if (out) show($("batch"), out.items);
}

async function variations() {
  if (!picked) return;
  const out = await guarded(() => api("/api/generate/variations", { method: "POST", body: {
    item: picked.id, n: 8, strength: Number($("strength").value), seed: Math.floor(Math.random() * 1e6) } }));
  if (out) show($("vars"), out.items);
}

$("strength").addEventListener("input", () => { $("strength-value").textContent = Number($("strength").value).toFixed(2); });
$("generate").addEventListener("click", generate);
$("next-seeds").addEventListener("click", () => { $("seed").value = Number($("seed").value) + Number($("n").value); generate(); });
$("variations").addEventListener("click", variations);
keys({
  g: generate, n: () => $("next-seeds").click(), v: variations,
  1: () => rateMe(1), 2: () => rateMe(2), 3: () => rateMe(3), 4: () => rateMe(4), 5: () => rateMe(5),
});
function promptHint() {
  const option = $("model").selectedOptions[0];
  const text = option && option.dataset.text === "1";
  $("prompt").placeholder = text ? "what to draw, e.g. a smiling cat with heart eyes"
    : "this model is unconditional: the text is kept as a note";
}
$("model").addEventListener("change", promptHint);
guarded(async () => { await loadModels($("model")); promptHint(); });
