import { api, card, el, guarded } from "./common.js";

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
  badges(out.items, mine);
  offset += out.items.length;
  $("count").textContent = `${out.total} item${out.total === 1 ? "" : "s"}`;
  $("more").hidden = offset >= out.total;
  if (!out.total) $("items").innerHTML = '<div class="empty">Nothing here yet: make something on the Create or Breed page.</div>';
}

const BADGE = { verified: "✓ signed", tampered: "✗ tampered", watermarked: "◆ watermark",
  labelled: "AI label", none: "no provenance", error: "unreadable" };

/** Provenance badge (`muselab verify` state) on each card, fetched in one request. */
async function badges(items, mine) {
  if (!items.length) return;
  const res = await api(`/api/gallery/provenance?ids=${items.map((i) => i.id).join(",")}`).catch(() => null);
  if (!res || mine !== seq) return;
  for (const [id, v] of Object.entries(res)) {
    const node = $("items").querySelector(`.card[data-id="${id}"]`);
    if (!node) continue;
    const tip = [`provenance: ${v.state}`, `label: ${v.label ? "yes" : "no"}`,
      `watermark: ${v.watermark || "-"}`, `signature: ${v.signature || "none"}`, ...(v.notes || [])].join("\n");
    node.append(el("div", { class: `prov prov-${v.state}`, title: tip }, BADGE[v.state] || v.state));
  }
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
