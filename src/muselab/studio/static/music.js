import { api, el, guarded, keys, runJob } from "./common.js";

const $ = (id) => document.getElementById(id);
const SYNC_BARS = 8;

function options() {
  return { style: $("style").value, bars: Number($("bars").value), key: $("key").value,
    meter: $("meter").value, tempo: Number($("tempo").value), seed: Number($("seed").value),
    temperature: Number($("temperature").value), cadence: $("cadence").checked,
    model: $("model").value.trim() || "bach-chorale" };
}

function show(piece) {
  const p = piece.params;
  $("piece-title").textContent = `Piece #${piece.id}`;
  const box = $("piece");
  box.className = "";
  box.innerHTML = "";
  const info = `${p.style} · ${p.key} · ${p.meter} · ${p.bars} bars · ${p.tempo} bpm · seed ${piece.seed} · ${p.notes} notes`;
  box.append(el("p", { class: "hint", id: "piece-info" }, info));
  if (piece.audio_url) box.append(el("audio", { controls: "", src: piece.audio_url, id: "player", preload: "auto" }));
  else box.append(el("p", { class: "hint" }, p.wav_note || "no audio for this piece"));
  box.append(el("div", { class: "roll-box" }, el("img", { class: "roll", src: piece.url, alt: `piano roll of piece ${piece.id}` })));
  const links = el("div", { class: "row", style: "margin-top:10px; justify-content:flex-start" });
  if (piece.midi_url) links.append(el("a", { class: "button", href: piece.midi_url }, "Download MIDI"));
  if (piece.audio_url) links.append(el("a", { class: "button", href: piece.audio_url, download: `muselab-${piece.id}.wav` }, "Download WAV"));
  links.append(el("a", { class: "button", href: `/gallery/${piece.id}` }, "In the gallery"));
  box.append(links);
}

async function compose() {
  const body = options();
  $("compose").disabled = true;
  $("status").textContent = `composing ${body.bars} bars…`;
  let piece = null;
  if (body.bars <= SYNC_BARS) {
    piece = await guarded(() => api("/api/music/compose", { method: "POST", body }));
  } else {
    const last = await runJob("compose", body, $("bar"), $("status"));
    if (last) piece = await guarded(() => api(`/api/music/${last.result.items[0]}`));
  }
  $("compose").disabled = false;
  if (!piece) { $("status").textContent = ""; return; }
  $("status").textContent = `stored as #${piece.id}`;
  show(piece);
  loadRecent();
}

async function loadRecent() {
  const list = await guarded(() => api("/api/gallery?kind=music&limit=12"));
  if (!list) return;
  const box = $("recent");
  box.innerHTML = "";
  if (!list.items.length) box.append(el("div", { class: "hint" }, "no pieces yet"));
  for (const item of list.items) {
    const node = el("div", { class: "card", "data-id": item.id },
      el("img", { src: item.url, alt: `piece ${item.id}`, style: "aspect-ratio:2; object-fit:cover; object-position:left" }),
      el("div", { class: "meta" }, el("span", {}, `#${item.id}`), el("span", {}, `${item.params.key} · seed ${item.seed}`)));
    node.addEventListener("click", async () => { const p = await guarded(() => api(`/api/music/${item.id}`)); if (p) show(p); });
    box.append(node);
  }
}

$("compose").addEventListener("click", compose);
$("next-seed").addEventListener("click", () => { $("seed").value = Number($("seed").value) + 1; compose(); });
keys({ c: compose, n: () => $("next-seed").click() });
loadRecent();
