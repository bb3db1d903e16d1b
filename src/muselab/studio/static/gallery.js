import { api, card, guarded } from "./common.js";

const $ = (id) => document.getElementById(id);
const PAGE = 60;
let offset = 0;
let timer = null;
let seq = 0;  // only the latest request may fill the grid

function query() {
  const p = new URLSearchParams({ limit: PAGE, offset, sort: $("f-sort").value });
  const map = { q: "q", model: "f-model", source: "f-source", kind: "f-kind", min_rating: "f-rating" };
  for (const [k, id] of Object.entries(map)) if ($(id).value) p.set(k, $(id).value);
  return p;
}

async function load(reset = true) {
  const mine = ++seq;
  if (reset) offset = 0;
  const out = await guarded(() => api(`/api/gallery?${query()}`));
  if (!out || mine !== seq) return;
  if (reset) $("items").innerHTML = "";
  for (const it of out.items) $("items").append(card(it, { href: `/gallery/${it.id}` }));
  offset += out.items.length;
  $("count").textContent = `${out.total} item${out.total === 1 ? "" : "s"}`;
  $("more").hidden = offset >= out.total;
  if (!out.total) $("items").innerHTML = '<div class="empty">Nothing here yet: make something on the Create or Breed page.</div>';
}

async function facets() {
  const f = await guarded(() => api("/api/gallery/facets"));
  if (!f) return;
  const fill = (id, values) => values.forEach((v) => $(id).append(Object.assign(document.createElement("option"), { value: v, textContent: v })));
  fill("f-model", f.models); fill("f-source", f.sources); fill("f-kind", f.kinds);
}

for (const id of ["f-model", "f-source", "f-kind", "f-rating", "f-sort"]) $(id).addEventListener("change", () => load());
$("q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => load(), 250); });
$("more").addEventListener("click", () => load(false));
facets();
load();
