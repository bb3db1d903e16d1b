import { api, guarded, toast } from "./common.js";

const body = document.getElementById("jobs");

async function load() {
  const jobs = await guarded(() => api("/api/jobs?limit=100"));
  if (!jobs) return;
  body.innerHTML = "";
  if (!jobs.length) body.innerHTML = '<tr><td colspan="7" class="hint">no jobs yet</td></tr>';
  for (const j of jobs) {
    const tr = document.createElement("tr");
    const cells = [`#${j.id}`, j.kind, "", `${Math.round(j.progress * 100)}%`, j.error || j.message,
      new Date(j.created * 1000).toLocaleString()];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      if (i === 2) td.append(Object.assign(document.createElement("span"), { className: `state ${j.state}`, textContent: j.state }));
      else td.textContent = c;
      tr.append(td);
    });
    const td = document.createElement("td");
    if (j.state === "queued" || j.state === "running") {
      const b = Object.assign(document.createElement("button"), { textContent: "Cancel", className: "danger" });
      b.addEventListener("click", async () => { if (await guarded(() => api(`/api/jobs/${j.id}/cancel`, { method: "POST" }))) { toast(`cancelling #${j.id}`); load(); } });
      td.append(b);
    } else if (j.kind === "train" && j.result?.run) {
      td.append(Object.assign(document.createElement("a"), { href: `/train?run=${j.result.run}`, textContent: "view run" }));
    }
    tr.append(td);
    body.append(tr);
  }
}

load();
setInterval(load, 2000);
