// The sweep's page: it asks the server every few seconds and builds the page from the answers.
// Every value goes into the page as text (textContent), never as HTML.
"use strict";

const FIGURES_AUTO = 5000;   // above this many jobs, the figures are drawn when asked for (seconds of work)
const query = {sort: "", desc: false, statuses: new Set(), where: "", page: 0, size: 50};
const seen = {figures: null, jobFigures: null, statuses: ""};
let pollMs = 2000;
let timer = null;
let wantFigures = false;

function $(id) { return document.getElementById(id); }

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function shown(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(5)));
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

async function ask(url) {
  const response = await fetch(url, {cache: "no-store", credentials: "same-origin"});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function statusClass(status) { return "status-" + String(status).replace(/[^a-z_]/g, ""); }

function jobLink(name) {
  const link = el("a", name);
  link.href = "#job=" + encodeURIComponent(name);
  return link;
}

// -- the sweep ----------------------------------------------------------------------------------------

function renderOverview(o) {
  $("title").textContent = o.root;
  document.title = "sweep " + o.root;
  $("summary").textContent = o.summary;
  const percent = o.total ? (100 * o.recorded / o.total) : 0;
  $("progress-bar").style.width = percent.toFixed(1) + "%";
  $("progress-text").textContent = o.recorded + " of " + o.total + " jobs have a record (" + percent.toFixed(1) + "%)";
  const counts = $("counts");
  counts.replaceChildren(...o.counts.map(c => el("li", c.count + " " + c.text, statusClass(c.status))));
  $("pending").replaceChildren(...o.pending.map(line => el("li", line)));
  $("slurm-warning").hidden = o.scheduler_answered;
  renderTable($("best"), o.best.columns, o.best.rows, false);
  $("cost-headline").textContent = o.cost.headline;
  renderTable($("cost"), o.cost.table.columns, o.cost.table.rows, false);
  $("cost-notes").replaceChildren(...o.cost.notes.map(line => el("li", line)));
  renderStatusFilter(o.counts);
  pollMs = 1000 * o.poll_s;
}

function renderStatusFilter(counts) {
  const key = counts.map(c => c.status).join(",");
  if (key === seen.statuses) return;
  seen.statuses = key;
  const box = $("status-filter");
  box.replaceChildren(el("legend", "status"));
  for (const c of counts) {
    const label = el("label");
    const check = el("input");
    check.type = "checkbox";
    check.value = c.status;
    check.checked = query.statuses.has(c.status);
    check.addEventListener("change", () => {
      if (check.checked) query.statuses.add(c.status); else query.statuses.delete(c.status);
      query.page = 0;
      now();
    });
    label.append(check, " " + c.text);
    box.append(label);
  }
}

function renderTable(table, columns, rows, sortable) {
  const head = el("tr");
  for (const column of columns) {
    const arrow = sortable && query.sort === column ? (query.desc ? " \u25bc" : " \u25b2") : "";
    const th = el("th", column + arrow);
    th.dataset.column = column;
    if (sortable) th.addEventListener("click", () => sortBy(column));
    head.append(th);
  }
  table.tHead.replaceChildren(head);
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map(row => {
    const tr = el("tr");
    row.forEach((value, i) => {
      const column = columns[i];
      const td = el("td");
      if (column === "job") td.append(jobLink(value));
      else if (column === "jobs") String(value).split(" ").forEach((name, k) => td.append(...(k ? [" "] : []), name === "\u2026" ? name : jobLink(name)));
      else td.textContent = shown(value);
      if (column === "status") { td.className = statusClass(value); tr.dataset.status = value; }
      if (column === "error") td.className = "error-cell";
      tr.append(td);
    });
    return tr;
  }));
}

function sortBy(column) {
  if (query.sort === column) query.desc = !query.desc; else { query.sort = column; query.desc = false; }
  query.page = 0;
  now();
}

function jobsUrl() {
  const params = new URLSearchParams({page: query.page, size: query.size, where: query.where});
  if (query.sort) { params.set("sort", query.sort); if (query.desc) params.set("desc", "1"); }
  if (query.statuses.size) params.set("status", [...query.statuses].join(","));
  return "/api/jobs?" + params.toString();
}

async function showSweep() {
  const [o, page] = await Promise.all([ask("/api/sweep"), ask(jobsUrl()).catch(e => e)]);
  renderOverview(o);
  if (page instanceof Error) {
    $("query-error").textContent = page.message;
  } else {
    $("query-error").textContent = "";
    renderTable($("jobs"), page.columns, page.rows, true);
    $("matched").textContent = page.matched + " of " + page.total + " jobs shown by the filter";
    $("page").textContent = "page " + (page.page + 1) + " of " + page.pages;
    query.page = page.page;
    $("prev").disabled = page.page === 0;
    $("next").disabled = page.page + 1 >= page.pages;
  }
  await showFigures(o);
}

async function showFigures(o) {
  const auto = o.total <= FIGURES_AUTO;
  $("draw-figures").hidden = auto;
  if (!auto && !wantFigures) {
    $("figures-note").textContent = o.total + " jobs: the report's figures take a while to draw.";
    return;
  }
  const version = o.summary + " " + o.recorded;
  if (version === seen.figures) return;
  seen.figures = version;
  const answer = await ask("/api/figures");
  $("figures-note").textContent = answer.figures.length ? "As `python -m sweeper report` draws them." : "No figure yet: no job has finished with a curve.";
  $("figures").replaceChildren(...answer.figures.map(figure));
}

function figure(name) {
  const img = el("img");
  img.src = "/figures/" + name.split("/").map(encodeURIComponent).join("/");
  img.alt = name;
  return img;
}

// -- a job --------------------------------------------------------------------------------------------

async function showJob(name) {
  const job = await ask("/api/job?name=" + encodeURIComponent(name));
  $("title").textContent = job.name;
  $("job-name").textContent = "job " + job.name;
  $("job-error").hidden = !job.error;
  $("job-error").textContent = job.error || "";
  const facts = [["status", job.status_text], ["overrides", job.overrides.join(" ")], ["sweep", job.sweep],
                 [job.scheduler + " job", job.scheduler_job_id], [job.scheduler + " state", job.scheduler_state],
                 ["hyperparameters", Object.entries(job.hparams).map(([k, v]) => k + "=" + shown(v)).join(" ")]];
  $("job-facts").replaceChildren(...facts.filter(f => f[1]).flatMap(([k, v]) => {
    const dd = el("dd", v);
    if (k === "status") dd.className = statusClass(job.status);
    return [el("dt", k), dd];
  }));
  $("job-metrics").tBodies[0].replaceChildren(...Object.entries(job.metrics).map(([k, v]) => {
    const tr = el("tr");
    tr.append(el("th", k), el("td", shown(v)));
    return tr;
  }));
  $("job-log").textContent = job.log.join("\n");
  $("job-files").replaceChildren(...job.files.map(path => {
    const link = el("a", path);
    link.href = "/file?path=" + encodeURIComponent(path);
    link.target = "_blank";
    link.rel = "noopener";
    const li = el("li");
    li.append(link);
    return li;
  }));
  $("job-record").textContent = job.record ? JSON.stringify(job.record, null, 1) : "no record yet";
  if (seen.jobFigures !== job.name + " " + job.version) {
    seen.jobFigures = job.name + " " + job.version;
    const answer = await ask("/api/job-figures?name=" + encodeURIComponent(job.name));
    $("job-figures").replaceChildren(...(answer.figures.length ? answer.figures.map(figure) : [el("p", "no curve yet")]));
  }
}

// -- polling ------------------------------------------------------------------------------------------

function jobInHash() {
  const hash = window.location.hash;
  return hash.startsWith("#job=") ? decodeURIComponent(hash.slice(5)) : null;
}

let running = false;
let again = false;

async function tick() {
  clearTimeout(timer);
  if (running) { again = true; return; }   // one request at a time: the answers come in order
  running = true;
  const name = jobInHash();
  $("sweep-view").hidden = name !== null;
  $("job-view").hidden = name === null;
  try {
    if (name === null) await showSweep(); else await showJob(name);
    $("live").textContent = "live: updated " + new Date().toLocaleTimeString();
    $("live").className = "live";
  } catch (e) {
    $("live").textContent = "not updated: " + e.message;
    $("live").className = "live stale";
  }
  running = false;
  if (again) { again = false; tick(); } else timer = setTimeout(tick, pollMs);
}

function now() { tick(); }

let typing = null;
$("where").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => { query.where = $("where").value; query.page = 0; now(); }, 400);
});
$("prev").addEventListener("click", () => { query.page = Math.max(0, query.page - 1); now(); });
$("next").addEventListener("click", () => { query.page += 1; now(); });
$("draw-figures").addEventListener("click", () => { wantFigures = true; seen.figures = null; now(); });
window.addEventListener("hashchange", () => { seen.jobFigures = null; window.scrollTo(0, 0); now(); });
now();
