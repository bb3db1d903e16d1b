import { api, el, guarded, keys, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
const picked = { content: null, style: null };
let busy = false;
let pending = false;

function body(extra = {}) {
  return { content: picked.content, style: picked.style, alpha: Number($("alpha").value),
    color: $("color").value, ...extra };
}

/** Live preview: one request in flight, the latest settings win. */
async function preview() {
  if (!picked.content || !picked.style) return;
  if (busy) { pending = true; return; }
  busy = true;
  const t0 = performance.now();
  try {
    const res = await api("/api/style/preview", { method: "POST", raw: true, body: body({ max_side: 256 }) });
    const img = $("preview");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(await res.blob());
    $("preview-note").textContent = `preview, 256 px, ${Math.round(performance.now() - t0)} ms`;
    $("keep").disabled = false;
  } catch (err) { toast(err.message, true); }
  busy = false;
  if (pending) { pending = false; preview(); }
}

function choose(slot, item) {
  picked[slot] = item.id;
  $(`${slot}-img`).src = item.url;
  $(`${slot}-img`).hidden = false;
  $(`${slot}-empty`).hidden = true;
  $(`${slot}-info`).textContent = `#${item.id} · ${item.source}${item.prompt ? ` · ${item.prompt}` : ""}`;
  document.querySelectorAll(`#${slot}-pick .card`).forEach((c) => c.classList.toggle("selected", Number(c.dataset.id) === item.id));
  const url = new URL(location.href);
  url.searchParams.set(slot, item.id);
  history.replaceState(null, "", url);
  preview();
}

async function upload(slot) {
  const file = $(`${slot}-file`).files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  $(`${slot}-info`).textContent = "uploading…";
  const item = await guarded(() => api("/api/style/uploads", { method: "POST", body: form }));
  $(`${slot}-file`).value = "";
  if (!item) { $(`${slot}-info`).textContent = ""; return; }
  choose(slot, item);
  loadPicks();
}

async function loadPicks() {
  const list = await guarded(() => api("/api/gallery?kind=image&limit=18"));
  if (!list) return;
  for (const slot of ["content", "style"]) {
    const box = $(`${slot}-pick`);
    box.innerHTML = "";
    if (!list.items.length) box.append(el("div", { class: "hint" }, "the gallery has no images yet"));
    for (const item of list.items) {
      const node = el("div", { class: "card", "data-id": item.id, title: `#${item.id} · ${item.source}` },
        el("img", { src: item.url, alt: `image ${item.id}`, loading: "lazy" }));
      node.classList.toggle("selected", picked[slot] === item.id);
      node.addEventListener("click", () => choose(slot, item));
      box.append(node);
    }
  }
}

async function keep() {
  if (!picked.content || !picked.style) return toast("pick a content and a style image first", true);
  $("keep").disabled = true;
  $("kept").textContent = "stylizing at full size…";
  const item = await guarded(() => api("/api/style/keep", { method: "POST",
    body: body({ size: $("size").value, max_side: Number($("max-side").value) }) }));
  $("keep").disabled = false;
  $("kept").textContent = "";
  if (!item) return;
  $("kept").append(el("a", { href: `/gallery/${item.id}` }, `kept as #${item.id}`),
    ` (parents #${item.parents.join(", #")})`);
  toast(`kept as #${item.id} in the gallery`);
  loadPicks();
}

$("alpha").addEventListener("input", () => { $("alpha-value").textContent = Number($("alpha").value).toFixed(2); preview(); });
$("color").addEventListener("change", preview);
$("keep").addEventListener("click", keep);
for (const slot of ["content", "style"]) $(`${slot}-file`).addEventListener("change", () => upload(slot));
keys({ k: keep, K: keep });

(async () => {
  const params = new URLSearchParams(location.search);
  for (const slot of ["content", "style"]) {
    const id = Number(params.get(slot));
    if (id) {
      const item = await guarded(() => api(`/api/gallery/${id}`));
      if (item) { picked[slot] = item.id; choose(slot, item); }
    }
  }
  loadPicks();
})();
