import { api, card, el, guarded, runJob, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
const num = (id) => Number($(id).value);

/** One gallery item as the right element: video, audio + piano roll, poem text, image. */
function view(item) {
  if (item.kind === "video") {
    return item.mime === "video/mp4"
      ? el("video", { controls: "", src: item.url, width: 384, id: "video" })
      : el("img", { src: item.url, alt: `video ${item.id}`, width: 384 });
  }
  if (item.kind === "music") {
    const box = el("div", {}, el("img", { class: "roll", src: item.url, alt: `piano roll ${item.id}` }));
    if (item.audio_url) box.append(el("audio", { controls: "", src: item.audio_url }));
    if (item.midi_url) box.append(el("a", { class: "button", href: item.midi_url }, "MIDI"));
    return box;
  }
  if (item.kind === "poem") return el("pre", { class: "poem" }, item.params.text || "");
  if (item.kind === "triptych") return el("a", { class: "button", href: item.download_url }, "Download the bundle (zip)");
  return el("img", { src: item.url, alt: `image ${item.id}`, style: "max-width:100%; image-rendering:auto" });
}

/** A linked part as a clickable card (videos as muted previews, bundles as a label). */
function tile(it, label) {
  if (it.kind !== "video" && it.kind !== "triptych") return card(it, { label, onclick: () => show(it.id) });
  const body = it.kind === "video" && it.mime === "video/mp4"
    ? el("video", { src: it.url, muted: "", preload: "metadata" })
    : it.kind === "video" ? el("img", { src: it.url, alt: `video ${it.id}` })
      : el("div", { class: "poem-card" }, `triptych: ${it.prompt}`);
  const node = el("div", { class: "card", "data-id": it.id }, body,
    el("div", { class: "meta" }, el("span", {}, `#${it.id}`), el("span", {}, it.source)),
    el("div", { class: "badge" }, label));
  node.addEventListener("click", () => show(it.id));
  return node;
}

async function show(id) {
  const w = await guarded(() => api(`/api/crossmodal/works/${id}`));
  if (!w) return;
  $("work-title").textContent = `${w.item.kind} #${w.item.id}`;
  const box = $("work");
  box.className = "";
  box.innerHTML = "";
  box.append(view(w.item));
  const bits = [w.item.source, w.item.model && `model ${w.item.model}`, w.item.seed !== null && `seed ${w.item.seed}`];
  box.append(el("p", { class: "hint" }, bits.filter(Boolean).join(" · ")));
  const links = $("links");
  links.innerHTML = "";
  for (const [label, list] of [["from", w.parents], ["made", w.children]]) {
    for (const it of list) links.append(tile(it, `${label} ${it.kind}`));
  }
  if (!links.children.length) links.append(el("div", { class: "hint" }, "no linked parts"));
}

async function run(kind, params, button) {
  button.disabled = true;
  $("status").textContent = `submitting ${kind}…`;
  const last = await runJob(kind, params, $("bar"), $("status"));
  if (last) await show(last.result.items[0]);
  button.disabled = false;
}

$("m2v-file").addEventListener("change", async () => {
  const f = $("m2v-file").files[0];
  if (!f) return;
  const form = new FormData();
  form.append("file", f);
  const piece = await guarded(() => api("/api/crossmodal/pieces", { method: "POST", body: form }));
  if (piece) { $("m2v-piece").value = piece.id; toast(`uploaded as piece #${piece.id}`); show(piece.id); }
});
$("m2v-go").addEventListener("click", (e) => run("music2video", { piece: num("m2v-piece"), fps: num("m2v-fps"), seed: num("m2v-seed"), model: $("m2v-model").value.trim() }, e.target));
$("i2m-go").addEventListener("click", (e) => run("image2music", { image: num("i2m-image"), bars: num("i2m-bars"), seed: num("i2m-seed") }, e.target));
$("tri-go").addEventListener("click", (e) => run("triptych", { theme: $("tri-theme").value, lang: $("tri-lang").value, seed: num("tri-seed"), image_model: $("tri-model").value.trim() }, e.target));
$("ins-go").addEventListener("click", (e) => run("inspire", { items: $("ins-items").value.split(",").map((s) => Number(s.trim())).filter((n) => n > 0), variations: num("ins-var"), surprise: num("ins-sur") }, e.target));
const fromUrl = new URLSearchParams(location.search).get("item");
if (fromUrl) show(fromUrl);
