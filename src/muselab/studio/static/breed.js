import { api, card, guarded, keys, loadModels, rate, stars, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
// history: one entry per generation: {items, parents: ids selected to make the next one}
const history = [];
let current = -1;
let selected = new Set();
let seedCounter = Math.floor(Math.random() * 1e6);
const showStars = stars($("stars"), async (v) => {
  if (!selected.size) return toast("select an image first", true);
  for (const id of selected) await guarded(() => rate(id, v));
  showStars(v);
});

function render() {
  const gen = history[current];
  const grid = $("population");
  grid.innerHTML = "";
  if (!gen) { grid.innerHTML = '<div class="empty">No model yet.</div>'; return; }
  gen.items.forEach((it, i) => {
    const node = card(it, { label: i + 1, onclick: () => toggle(it.id) });
    node.classList.toggle("selected", selected.has(it.id));
    grid.append(node);
  });
  $("gen-title").textContent = `Generation ${current + 1}`;
  $("breed").disabled = selected.size === 0;
  $("undo").disabled = current <= 0;
  $("selection-info").textContent = selected.size
    ? `${selected.size} parent${selected.size > 1 ? "s" : ""} selected: #${[...selected].join(", #")}`
    : "no parents selected: click images or press 1-9";
  renderHistory();
}

function renderHistory() {
  const box = $("history");
  box.innerHTML = "";
  history.forEach((gen, g) => {
    const row = document.createElement("div");
    row.className = "gen" + (g === current ? " current" : "");
    row.title = `generation ${g + 1}`;
    const label = document.createElement("span");
    label.textContent = `${g + 1}`;
    row.append(label);
    for (const it of gen.items) {
      const img = document.createElement("img");
      img.src = it.url;
      if (gen.parents.includes(it.id)) img.className = "parent";
      row.append(img);
    }
    row.addEventListener("click", () => { current = g; selected = new Set(); render(); });
    box.append(row);
  });
  box.scrollTop = box.scrollHeight;
}

function toggle(id) {
  if (selected.has(id)) selected.delete(id); else selected.add(id);
  render();
}

function push(items, parents = []) {
  history.splice(current + 1);  // breeding from an older generation starts a new branch
  if (history[current]) history[current].parents = parents;
  history.push({ items, parents: [] });
  current = history.length - 1;
  selected = new Set();
  render();
}

async function restart() {
  const model = $("model").value;
  if (!model) return;
  seedCounter += 9;
  const out = await guarded(() => api("/api/generate", { method: "POST", body: { model, seed: seedCounter, n: 9 } }));
  if (out) push(out.items);
}

async function breed() {
  if (!selected.size) return toast("select at least one parent (click or 1-9)", true);
  const parents = [...selected];
  $("breed").disabled = true;
  const out = await guarded(() => api("/api/generate/breed", { method: "POST", body: {
    parents, n: 9, strength: Number($("mutation").value), crossover: $("crossover").value,
    seed: ++seedCounter } }));
  if (out) push(out.items, parents); else render();
}

function undo() {
  if (current <= 0) return;
  current -= 1;
  selected = new Set(history[current].parents);
  render();
}

function nudge(delta) {
  const m = $("mutation");
  m.value = Math.min(1, Math.max(0, Number(m.value) + delta)).toFixed(2);
  m.dispatchEvent(new Event("input"));
}

$("mutation").addEventListener("input", () => { $("mutation-value").textContent = Number($("mutation").value).toFixed(2); });
$("breed").addEventListener("click", breed);
$("undo").addEventListener("click", undo);
$("restart").addEventListener("click", restart);
$("model").addEventListener("change", () => { history.length = 0; current = -1; restart(); });
const shortcuts = { b: breed, Enter: breed, u: undo, Backspace: undo, r: restart, "+": () => nudge(0.05), "-": () => nudge(-0.05) };
for (let i = 1; i <= 9; i++) {
  shortcuts[String(i)] = () => { const it = history[current]?.items[i - 1]; if (it) toggle(it.id); };
}
keys(shortcuts);

(async () => {
  await guarded(() => loadModels($("model")));
  const given = new URLSearchParams(location.search).get("parents");
  if (given) {
    const ids = given.split(",").map(Number).filter((x) => x > 0);
    const items = (await Promise.all(ids.map((id) => guarded(() => api(`/api/gallery/${id}`))))).filter(Boolean);
    if (items.length) {
      if (items[0].model) $("model").value = items[0].model;
      push(items);
      items.forEach((it) => selected.add(it.id));
      render();
      return;
    }
  }
  await restart();
})();
