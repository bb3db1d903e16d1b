import { api, el, guarded, keys, rate, stars } from "./common.js";

const $ = (id) => document.getElementById(id);
let forms = { zh: [], en: [] };

function fillForms() {
  const lang = $("lang").value;
  $("form").innerHTML = "";
  for (const f of forms[lang]) $("form").append(el("option", { value: f }, f));
  ["theme-as", "acrostic", "tones"].forEach((id) => { $(id).disabled = lang !== "zh"; });
}

function poemPanel(item) {
  const p = item.params;
  const panel = el("div", { class: "panel poem-panel", "data-id": item.id });
  panel.append(el("h2", {}, `#${item.id} · ${p.form}${item.prompt ? ` · ${item.prompt}` : ""}`));
  panel.append(el("div", { class: "poem" }, p.text));
  const rating = el("div", { class: "stars" });
  const show = stars(rating, async (v) => { const out = await guarded(() => rate(item.id, v)); if (out) show(out.rating); });
  show(item.rating);
  panel.append(el("div", { class: "row", style: "justify-content:flex-start" }, rating,
    el("span", { class: "hint", style: "flex:0 1 auto; margin:0" },
      `seed ${item.seed} · ${p.constrained ? "form enforced" : "free"}${p.rhyme ? " · rhyme" : ""}${p.tones ? " · tones" : ""}${p.acrostic ? ` · acrostic ${p.acrostic}` : ""}`),
    el("a", { href: `/gallery/${item.id}`, style: "flex:0 0 auto" }, "in the gallery")));
  return panel;
}

async function write() {
  const body = { lang: $("lang").value, form: $("form").value, theme: $("theme").value.trim(),
    theme_as: $("theme-as").value, acrostic: $("lang").value === "zh" ? $("acrostic").value.trim() : "",
    constrained: $("constrained").checked, rhyme: $("rhyme").checked,
    tones: $("lang").value === "zh" && $("tones").checked,
    seed: Number($("seed").value), n: Number($("n").value) };
  $("write").disabled = true;
  $("status").textContent = "writing…";
  const t0 = performance.now();
  const out = await guarded(() => api("/api/poetry/write", { method: "POST", body }));
  $("write").disabled = false;
  if (!out) { $("status").textContent = ""; return; }
  $("status").textContent = `${out.items.length} poem(s) in ${Math.round(performance.now() - t0)} ms`;
  $("poems").innerHTML = "";
  out.items.forEach((item) => $("poems").append(poemPanel(item)));
  loadRecent();
}

async function loadRecent() {
  const list = await guarded(() => api("/api/gallery?kind=poem&limit=12"));
  if (!list) return;
  const box = $("recent");
  box.innerHTML = "";
  if (!list.items.length) box.append(el("div", { class: "hint" }, "no poems yet"));
  for (const item of list.items) {
    box.append(el("a", { class: "card", href: `/gallery/${item.id}`, "data-id": item.id },
      el("div", { class: "poem-card" }, item.params.text || ""),
      el("div", { class: "meta" }, el("span", {}, `#${item.id}`), el("span", {}, item.params.form))));
  }
}

$("lang").addEventListener("change", fillForms);
$("write").addEventListener("click", write);
$("next-seed").addEventListener("click", () => { $("seed").value = Number($("seed").value) + 1; write(); });
keys({ w: write, n: () => $("next-seed").click() });

(async () => {
  const f = await guarded(() => api("/api/poetry/forms"));
  if (f) forms = f;
  fillForms();
  loadRecent();
})();
