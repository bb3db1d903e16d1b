import { api, followJob, guarded, keys, rate, stars, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
let current = null;
let count = 0;
let skipSeed = 0;
const showStars = stars($("stars"), (v) => submit(v));

async function next() {
  try {
    current = await api(`/api/ratings/next?seed=${skipSeed}`);
  } catch (err) {
    current = null;
    $("image").removeAttribute("src");
    $("which").textContent = err.message;
    return;
  }
  $("image").src = current.url;
  $("which").textContent = `#${current.id} · ${current.model} · ${current.source}`;
  showStars(null);
}

async function submit(value) {
  if (!current) return toast("nothing to rate", true);
  const out = await guarded(() => rate(current.id, value));
  if (!out) return;
  count += 1;
  $("rated").textContent = String(count);
  next();
}

document.querySelectorAll("button[data-value]").forEach((b) => b.addEventListener("click", () => submit(Number(b.dataset.value))));
$("skip").addEventListener("click", () => { skipSeed += 1; next(); });
keys({ 1: () => submit(1), 2: () => submit(2), 3: () => submit(3), 4: () => submit(4), 5: () => submit(5),
  l: () => submit(1), m: () => submit(3), h: () => submit(5), s: () => $("skip").click() });
$("score").addEventListener("click", async () => {
  const job = await guarded(() => api("/api/jobs", { method: "POST", body: { kind: "value", params: {} } }));
  if (!job) return;
  $("score").disabled = true;
  const last = await followJob(job.id, (j) => { $("score-status").textContent = `${j.state}: ${j.message}`; });
  $("score").disabled = false;
  if (last?.state === "done") { toast(`scored ${last.result.scored} images`); skipSeed = 0; next(); }
  else if (last?.error) toast(last.error, true);
});
next();
