import { api, card, guarded, rate, stars, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
const id = Number($("item").dataset.id);
let item = null;
const showStars = stars($("stars"), async (v) => {
  const out = await guarded(() => rate(id, v));
  if (out) showStars(out.rating);
});

function tree(node) {
  const li = document.createElement("li");
  const a = Object.assign(document.createElement("a"), { href: `/gallery/${node.id}` });
  const img = Object.assign(document.createElement("img"), { src: `/api/gallery/${node.id}/file`, alt: `#${node.id}` });
  a.append(img, `#${node.id} · ${node.source}${node.deleted ? " (deleted)" : ""}`);
  li.append(a);
  if (node.parents.length) {
    const ul = document.createElement("ul");
    node.parents.forEach((p) => ul.append(tree(p)));
    li.append(ul);
  }
  return li;
}

/** The `muselab verify` state of this work as one more row of the details. */
async function provenance() {
  const res = await api(`/api/gallery/provenance?ids=${id}`).catch(() => null);
  const v = res && res[String(id)];
  if (!v) return;
  const text = [v.state, v.signature && v.signature !== "none" ? v.signature : null,
    v.watermark ? `watermark ${v.watermark}` : null, ...(v.notes || [])].filter(Boolean).join(" · ");
  $("meta").append(Object.assign(document.createElement("dt"), { textContent: "provenance" }),
    Object.assign(document.createElement("dd"), { textContent: text, className: `prov-${v.state}` }));
}

async function load() {
  item = await guarded(() => api(`/api/gallery/${id}`));
  if (!item) { $("title").textContent = `Image ${id} not found`; return; }
  $("image").src = item.url;
  showMedia(item);
  $("title").textContent = `#${item.id} · ${item.kind}`;
  showStars(item.rating);
  const rows = {
    model: item.model, source: item.source, seed: item.seed ?? "–",
    operation: item.params.op ?? "–", strength: item.params.strength ?? "–",
    prompt: item.prompt || "–", created: new Date(item.created * 1000).toLocaleString(),
    ratings: item.n_ratings ? `${item.rating.toFixed(2)} (${item.n_ratings})` : "none",
    weights: item.weights_hash.slice(0, 16) + "…",
  };
  $("meta").innerHTML = "";
  for (const [k, v] of Object.entries(rows)) {
    $("meta").append(Object.assign(document.createElement("dt"), { textContent: k }),
      Object.assign(document.createElement("dd"), { textContent: String(v) }));
  }
  provenance();
  $("tags").value = item.tags.join(", ");
  $("download").href = item.download_url;
  $("breed").href = `/breed?parents=${item.id}&model=${encodeURIComponent(item.model)}`;
  $("more").disabled = !item.has_latent;
  const ul = document.createElement("ul");
  ul.append(tree(item.lineage));
  $("lineage").innerHTML = "";
  $("lineage").append(ul);
  $("children").innerHTML = item.children.length ? "" : '<div class="hint">no children yet</div>';
  for (const c of item.children) {
    $("children").append(card({ id: c, url: `/api/gallery/${c}/file`, rating: null, seed: null, source: "" }, { href: `/gallery/${c}` }));
  }
}

$("more").addEventListener("click", async () => {
  const out = await guarded(() => api(`/api/gallery/${id}/more?n=8&seed=${Math.floor(Math.random() * 1e6)}`, { method: "POST" }));
  if (!out) return;
  $("more-out").innerHTML = "";
  out.items.forEach((it) => $("more-out").append(card(it, { href: `/gallery/${it.id}` })));
  load();
});
$("delete").addEventListener("click", async () => {
  const out = await guarded(() => api(`/api/gallery/${id}`, { method: "DELETE" }));
  if (out) { toast(`#${id} deleted (soft: its lineage is kept)`); setTimeout(() => { location.href = "/gallery"; }, 600); }
});
$("save-tags").addEventListener("click", async () => {
  const tags = $("tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  const out = await guarded(() => api(`/api/gallery/${id}/tags`, { method: "PUT", body: { tags } }));
  if (out) toast("tags saved");
});
load();

/** Poems show their text, music its player under the piano roll. */
function showMedia(it) {
  const img = $("image");
  if (it.kind === "poem") {
    img.replaceWith(Object.assign(document.createElement("div"), { id: "image", className: "poem", textContent: it.params.text || "" }));
  } else if (it.kind === "music" && it.params.wav && !document.getElementById("player")) {
    img.classList.add("roll");
    img.after(Object.assign(document.createElement("audio"), { id: "player", controls: true, src: `/api/music/${it.id}/audio` }));
  }
}
