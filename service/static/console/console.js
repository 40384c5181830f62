// The dispatcher's console: upload the day, solve it, see it on a map and a timeline, watch it
// happen, re-plan, check hand edits, hand the routes over.
//
// Thin over the public API, as any integrator's client with a dispatcher key: POST
// /v1/requests/from-csv, POST/GET/DELETE /v1/plans, GET /v1/networks/{name}/streets, GET
// .../progress and .../events, POST .../replan, GET .../compare/{other}, POST /v1/evaluate, POST
// .../crew-links, POST .../versions (a hand edit saved as a draft), POST .../publish and .../discard.
// The page can do nothing the API cannot.
import * as L from "/static/vendor/leaflet/leaflet-src.esm.js";
import { Api, ApiError, describe } from "/static/shared/api.js";
import { h } from "/static/shared/dom.js";
import { I18n, LANGUAGES } from "/static/shared/i18n.js";
import { violationText } from "/static/console/violations.js";

const STORED_KEY = "doorstep.console.key";
const SOLVE_POLL_MS = 500;
const LIVE_POLL_MS = 3000; // the ledger and progress are read again this often
const COLOURS = 12; // .c0 ... .c11 in console.css
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#0b3d91", "#6b4e00"];
const FINAL = new Set(["done", "not_home", "refused", "unreachable", "skipped"]);
const TASKS = new Set(["visit", "stop"]);

const state = {
  api: null,
  i18n: null,
  config: {},
  networks: [],
  request: null, // the request of the plan being shown, when this page made it
  plan: null, // PlanOut of the version shown
  solving: null, // the plan being solved: {id, limit}
  rootId: null,
  events: [],
  progress: null,
  selected: null, // a step id
  edit: null, // the last hand edit's evaluation
  diff: null,
  links: {},
  errors: [],
  message: null,
  map: null,
  layers: null,
  streetsFor: null,
  fitted: null,
  livePoll: null,
  pickOnMap: false,
};

// -- small helpers -------------------------------------------------------------------------------


const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const t = (key, values) => state.i18n.t(key, values);

function clock(seconds) {
  const total = Math.round(seconds / 60);
  return `${String(Math.floor(total / 60)).padStart(2, "0")}:${String(total % 60).padStart(2, "0")}`;
}

function nowClock() {
  const d = new Date();
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

const document_ = () => (state.plan && state.plan.plan) || null;
const routes = () => ((document_() || {}).routes || []).filter((r) => r.steps.some((x) => TASKS.has(x.kind)));
// A vehicle keeps its colour across versions (a dropped vehicle does not shift the others').
const colours = new Map();
const colourOf = (vehicleId) => {
  if (!colours.has(vehicleId)) colours.set(vehicleId, colours.size % COLOURS);
  return colours.get(vehicleId);
};

// The last outcome of each step in the ledger (arrived does not end a step).
function outcomes() {
  const last = {};
  for (const event of state.events) {
    if (event.step_id && (FINAL.has(event.outcome) || event.outcome === "arrived")) last[event.step_id] = event.outcome;
  }
  return last;
}

// Steps with no outcome yet whose planned start has passed (the progress's clock): running late.
function overdue() {
  const p = state.progress;
  if (!p) return new Set();
  return new Set(p.not_sampled.filter((x) => x.vehicle_id && x.planned_start_s != null && x.planned_start_s < p.at_s
    && !FINAL.has(x.last_outcome)).map((x) => x.id));
}

function violationsByStep(doc) {
  const out = {};
  for (const v of (doc && doc.violations) || []) {
    const key = v.step_id || `route:${v.vehicle_id}`;
    (out[key] = out[key] || []).push(v);
  }
  return out;
}

function say(text, kind = "") {
  state.message = text ? { text, kind } : null;
  renderSide();
}

async function call(promise) {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      say(t("console.key_refused", { detail: describe(error) }), "problem");
    } else {
      say(describe(error), "problem");
    }
    throw error;
  }
}

// -- the key -------------------------------------------------------------------------------------

function takeKey() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("key");
  if (given) {
    sessionStorage.setItem(STORED_KEY, given);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(STORED_KEY);
}

async function signIn(key) {
  state.api = new Api(key, { timeoutMs: 60000 });
  try {
    await state.api.get("/v1/plans?limit=1"); // refuses crew keys (403) as the console's calls would
    const networks = await state.api.get("/v1/networks");
    state.networks = networks.data.data;
    sessionStorage.setItem(STORED_KEY, key);
    state.message = null;
    const known = state.networks.find((n) => n.default && n.bounds);
    if (known && !state.plan) {
      const [w, south, e, north] = known.bounds;
      state.map.fitBounds([[south, w], [north, e]]);
      drawStreets(null).catch((error) => say(describe(error), "problem"));
    }
  } catch (error) {
    state.api = null;
    sessionStorage.removeItem(STORED_KEY);
    state.message = { text: t("console.key_refused", { detail: describe(error) }), kind: "problem" };
  }
  renderSide();
}

// -- plan the day --------------------------------------------------------------------------------

async function readFile(input) {
  const file = input && input.files && input.files[0];
  return file ? await file.text() : null;
}

function formOptions() {
  const number = (id) => {
    const value = document.getElementById(id).value;
    return value === "" ? undefined : Number(value);
  };
  return {
    options: { time_limit_s: number("time-limit") },
    objective: { duration_cost_per_s: number("travel-weight"), makespan_cost_per_s: number("makespan-weight") },
  };
}

// The request from the chosen files: CSVs through the API's converter, or a JSON request as it is.
async function checkedRequest() {
  state.errors = [];
  const [visits, vehicles, depots, json] = await Promise.all(
    ["visits-file", "vehicles-file", "depots-file", "json-file"].map((id) => readFile(document.getElementById(id))));
  const { options, objective } = formOptions();
  const network = document.getElementById("network").value || undefined;
  if (json) {
    let request;
    try {
      request = JSON.parse(json);
    } catch (error) {
      state.errors = [{ where: "JSON", msg: String(error.message || error) }];
      return null;
    }
    request.options = { ...(request.options || {}), ...options };
    request.objective = { ...(request.objective || {}), ...objective };
    if (network && !request.matrices && !request.network) request.network = network;
    return request;
  }
  if (!visits || !vehicles || !depots) {
    state.errors = [{ where: "", msg: t("console.need_files") }];
    return null;
  }
  try {
    const response = await state.api.post("/v1/requests/from-csv", {
      visits_csv: visits, vehicles_csv: vehicles, depots_csv: depots, network,
      name: document.getElementById("plan-title").value || defaultName(), options, objective,
    });
    return response.data;
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && Array.isArray(error.detail)) {
      state.errors = error.detail.map((e) => ({
        where: e.file ? `${e.file} ${t("console.line", { n: e.line })}${e.column ? ` · ${e.column}` : ""}`
          : (e.loc || []).filter((p) => p !== "body").join("."),
        msg: e.msg, file: e.file, line: e.line, column: e.column,
      }));
      return null;
    }
    state.errors = [{ where: "", msg: describe(error) }];
    return null;
  }
}

function defaultName() {
  const d = new Date();
  return `${t("console.plan_of")} ${d.toISOString().slice(0, 10)} ${nowClock()}`;
}

async function check() {
  state.message = null;
  const request = await checkedRequest();
  if (request) {
    say(t("console.checked", { visits: request.visits.length, vehicles: request.vehicles.length }), "good");
  } else {
    renderSide();
  }
  return request;
}

async function solve() {
  const request = await check();
  if (!request) return;
  try {
    const created = await state.api.post("/v1/plans", request);
    state.request = request;
    state.solving = { id: created.data.id, limit: (request.options || {}).time_limit_s || 10, started: Date.now() };
    state.message = null;
    state.diff = null;
    state.edit = null;
    renderSide();
    await followSolve(created.data.id);
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && Array.isArray(error.detail)) {
      state.errors = error.detail.map((e) => ({ where: (e.loc || []).filter((p) => p !== "body").join("."), msg: e.msg }));
      renderSide();
    } else {
      say(describe(error), "problem");
    }
  }
}

// Polls the plan until its solve ends; shows it.
async function followSolve(planId) {
  for (;;) {
    const { data } = await call(state.api.get(`/v1/plans/${planId}`));
    if (state.solving && state.solving.id === planId) {
      state.solving.status = data.status;
      state.solving.progress = data.progress;
      renderProgress();
    }
    if (["done", "failed", "cancelled"].includes(data.status)) {
      state.solving = null;
      if (data.status === "failed") {
        say(t("console.failed", { msg: (data.error && data.error.msg) || "" }), "problem");
        return data;
      }
      await show(data);
      if (data.status === "cancelled") say(t("console.cancelled"), "");
      return data;
    }
    await new Promise((resolve) => setTimeout(resolve, SOLVE_POLL_MS));
  }
}

async function cancel() {
  if (!state.solving) return;
  await call(state.api.request("DELETE", `/v1/plans/${state.solving.id}`));
}

async function show(planOut) {
  state.plan = planOut;
  for (const route of (planOut.plan || {}).routes || []) colourOf(route.vehicle_id);
  state.selected = null;
  const versions = await call(state.api.get(`/v1/plans/${planOut.id}/versions`));
  state.rootId = versions.data.data[0].id;
  state.versions = versions.data.data;
  await refreshLive();
  renderAll();
  startLive();
}

async function openPlan(planId) {
  const { data } = await call(state.api.get(`/v1/plans/${planId}`));
  state.request = null;
  state.diff = null;
  state.edit = null;
  if (!["done", "cancelled"].includes(data.status) || !data.plan) {
    state.solving = { id: planId, limit: 10, started: Date.now() };
    renderSide();
    await followSolve(planId);
    return;
  }
  await show(data);
}

// -- the day as it happens -------------------------------------------------------------------------

async function refreshLive() {
  if (!state.plan || !state.rootId) return;
  const [events, progress] = await Promise.all([
    state.api.get(`/v1/plans/${state.rootId}/events`),
    state.api.get(`/v1/plans/${state.rootId}/progress`),
  ]);
  // what moves with the clock alone (how far behind) redraws nothing: a redraw closes popups and ends drags
  const still = (p) => JSON.stringify({ ...p, at_s: 0, at: "", vehicles: p.vehicles.map((v) => ({ ...v, behind_s: 0 })) });
  const same = (a, b) => still(a) === still(b);
  const changed = JSON.stringify(events.data.data) !== JSON.stringify(state.events)
    || !state.progress || !same(progress.data, state.progress); // not redrawn (popups closed) for the clock alone
  state.events = events.data.data;
  state.progress = progress.data;
  return changed;
}

function startLive() {
  if (state.livePoll) clearInterval(state.livePoll);
  state.livePoll = setInterval(async () => {
    try {
      if (await refreshLive() && !state.dragging) renderLive();
    } catch (error) {
      // the next round tries again; a refused key is said once
      if (error instanceof ApiError && error.status === 401) say(t("console.key_refused", { detail: describe(error) }), "problem");
    }
  }, LIVE_POLL_MS);
}

// -- re-plan -------------------------------------------------------------------------------------

async function replan(event) {
  event.preventDefault();
  const form = event.target;
  const dropped = [...form.querySelectorAll("input[name=dropped]:checked")].map((x) => x.value);
  // A draft: the crews get it only when the dispatcher publishes it, after the diff.
  const body = { now: form.now.value || nowClock(), dropped_vehicles: dropped, retry_not_home: form.retry.checked,
    publish: false };
  if (form.new_vehicle_id.value) body.joined_vehicles = [joiningVehicle(form, body.now)];
  if (form.urgent_id.value) {
    body.new_visits = [{
      id: form.urgent_id.value, location: [Number(form.urgent_lon.value), Number(form.urgent_lat.value)],
      people: Number(form.urgent_people.value || 1), priority: "urgent",
      address: form.urgent_address.value || undefined,
    }];
  }
  const { options } = formOptions();
  if (options.time_limit_s) body.options = { time_limit_s: options.time_limit_s };
  const before = state.plan;
  let created;
  try {
    created = await state.api.post(`/v1/plans/${before.id}/replan`, body);
  } catch (error) {
    say(describe(error), "problem");
    return;
  }
  state.solving = { id: created.data.id, limit: (body.options || {}).time_limit_s || 10, started: Date.now() };
  renderSide();
  const after = await followSolve(created.data.id);
  if (after && after.status !== "failed") await showDiff(before.id, after.id, { replan: created.data });
}

// A vehicle joining the rest of the day, from the re-plan form: it starts now at a depot.
function joiningVehicle(form, now) {
  const capacity = {};
  for (const part of form.new_vehicle_capacity.value.split(/[\s,;]+/).filter(Boolean)) {
    const [dim, amount] = part.split("=");
    if (dim && amount !== undefined) capacity[dim.trim()] = Number(amount);
  }
  const profile = form.new_vehicle_profile.value;
  return { id: form.new_vehicle_id.value.trim(), profile, start_depot: form.new_vehicle_depot.value,
    shift: { start: now, end: form.new_vehicle_until.value || "16:00" }, capacity };
}

// What a draft changes against the crews' version, with the buttons to publish or discard it.
async function showDiff(fromId, toId, extra) {
  const compared = await call(state.api.get(`/v1/plans/${fromId}/compare/${toId}`));
  state.diff = { ...compared.data, replan: null, edit: false, ...extra };
  renderSide();
  document.querySelector("[data-testid=diff]").scrollIntoView();
}

async function publish() {
  const accept = document.querySelector("[data-testid=diff] input[name=accept]");
  const body = { accept_violations: Boolean(accept && accept.checked) };
  await call(state.api.post(`/v1/plans/${state.plan.id}/publish`, body));
  const { data } = await call(state.api.get(`/v1/plans/${state.plan.id}`));
  state.diff = { ...state.diff, published: true };
  await show(data);
  say(t("console.published", { version: data.version }), "good");
}

async function discardDraft() {
  await call(state.api.post(`/v1/plans/${state.plan.id}/discard`));
  const back = state.diff ? state.diff.from_id : publishedId();
  state.diff = null;
  state.edit = null;
  await openPlan(back);
  say(t("console.discarded", { version: state.plan.version }), "");
}

// The newest version the crews have.
function publishedId() {
  const live = (state.versions || []).filter((v) => v.publication === "published" && v.status !== "failed");
  return live.length ? live[live.length - 1].id : state.rootId;
}

// -- hand edits (plan mode) ------------------------------------------------------------------------

// The routes being edited: the last hand edit's when there is one (moves add up), else the version's.
function currentOrder() {
  const order = {};
  for (const route of (shownDocument() || {}).routes || []) {
    order[route.vehicle_id] = route.steps.filter((x) => TASKS.has(x.kind) || x.kind === "break").map((x) => x.id);
  }
  return order;
}

const shownDocument = () => (state.edit && state.edit.plan ? state.edit.plan : document_());

async function checkEdit(event) {
  event.preventDefault();
  const form = event.target;
  await move(form.visit.value, form.vehicle.value, form.position.value);
}

// Moves ``visit`` to ``vehicle`` at ``position`` (1-based; empty: last) and has plan mode check it.
async function move(visit, vehicle, positionText) {
  const order = currentOrder();
  for (const ids of Object.values(order)) {
    const at = ids.indexOf(visit);
    if (at >= 0) ids.splice(at, 1);
  }
  const target = order[vehicle] || (order[vehicle] = []);
  // positions count the doors and stops the dispatcher sees, not breaks
  const tasks = target.filter((id) => !isBreak(vehicle, id));
  const wanted = Math.max(1, Math.min(Number(positionText || tasks.length + 1), tasks.length + 1));
  const before = tasks[wanted - 1];
  target.splice(before === undefined ? target.length : target.indexOf(before), 0, visit);
  try {
    const { data } = await state.api.post("/v1/evaluate", { plan_id: state.plan.id, routes: order });
    state.edit = { ...data, visit, vehicle, position: wanted, routes: order };
  } catch (error) {
    state.edit = { error: describe(error) };
  }
  renderAll();
}

function isBreak(vehicleId, id) {
  const route = ((shownDocument() || {}).routes || []).find((r) => r.vehicle_id === vehicleId);
  return Boolean(route && route.steps.some((x) => x.id === id && x.kind === "break"));
}

async function saveEdit(button) {
  button.disabled = true;
  button.textContent = t("console.edit_saving");
  const base = state.plan;
  try {
    const saved = await call(state.api.post(`/v1/plans/${base.id}/versions`, { routes: state.edit.routes }));
    const { data } = await call(state.api.get(`/v1/plans/${saved.data.id}`));
    const from = base.publication === "draft" ? publishedId() : base.id;
    state.edit = null;
    await show(data);
    await showDiff(from, data.id, { edit: true });
  } catch {
    button.disabled = false;
  }
}

// Drag and drop: a stop of the list onto another place in the list, or onto a vehicle's row.
const DRAGGED = "application/x-doorstep-step";
function draggable(stepId) {
  // while a stop is dragged the live refresh leaves the lists alone (a replaced element ends the drag)
  return { draggable: "true", ondragend: () => { state.dragging = false; },
    ondragstart: (event) => { state.dragging = true; event.dataTransfer.setData(DRAGGED, stepId); event.dataTransfer.effectAllowed = "move"; } };
}
function dropTarget(vehicleId, position) {
  return {
    ondragover: (event) => { if (event.dataTransfer.types.includes(DRAGGED)) { event.preventDefault(); event.currentTarget.classList.add("drop"); } },
    ondragleave: (event) => event.currentTarget.classList.remove("drop"),
    ondrop: (event) => {
      event.preventDefault();
      state.dragging = false;
      event.currentTarget.classList.remove("drop");
      const stepId = event.dataTransfer.getData(DRAGGED);
      if (stepId) move(stepId, vehicleId, position);
    },
  };
}

// -- hand-over -------------------------------------------------------------------------------------

async function crewLink(vehicleId) {
  const { data } = await call(state.api.post(`/v1/plans/${state.plan.id}/crew-links`, { vehicle_id: vehicleId }));
  state.links[`${state.plan.id}/${vehicleId}`] = data;
  renderSide();
}

async function download(path, filename) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${state.api.key}` }, cache: "no-store",
    referrerPolicy: "no-referrer" });
  if (!response.ok) {
    say(`${filename}: ${response.status}`, "problem");
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// -- the side panel ----------------------------------------------------------------------------------

function renderSide() {
  const side = document.getElementById("side");
  const doc = document_();
  side.replaceChildren(...[
    state.message ? h("p", { class: `notice ${state.message.kind}`, role: "status", "data-testid": "message" }, state.message.text) : null,
    state.api ? null : keySection(),
    state.api ? planDaySection() : null,
    state.solving ? progressSection() : null,
    state.diff ? diffSection() : null,
    doc ? summarySection(doc) : null,
    doc && state.selected ? detailSection(doc) : null,
    doc ? stopListSection(doc) : null,
    doc ? unservedSection(doc) : null,
    doc ? replanSection(doc) : null,
    doc ? editSection(doc) : null,
    doc ? handoverSection(doc) : null,
  ].filter(Boolean));
}

function keySection() {
  const input = h("input", { id: "key", type: "password", autocomplete: "off", placeholder: "dsk_…" });
  return h("section", { "data-testid": "key" },
    h("h2", {}, t("console.key_title")),
    h("p", { class: "small" }, t("console.key_help")),
    input,
    h("div", { class: "buttons" }, h("button", { class: "primary", type: "button", onclick: () => signIn(input.value.trim()) },
      t("console.sign_in"))));
}

function planDaySection() {
  const kept = {};
  for (const id of ["time-limit", "travel-weight", "makespan-weight", "plan-title", "network"]) {
    const element = document.getElementById(id);
    if (element) kept[id] = element.value;
  }
  const files = {};
  for (const id of ["visits-file", "vehicles-file", "depots-file", "json-file"]) files[id] = document.getElementById(id);
  const file = (id, label, accept) => h("label", {}, t(label),
    files[id] || h("input", { id, type: "file", accept }));
  const network = h("select", { id: "network" },
    state.networks.map((n) => h("option", { value: n.name, selected: kept.network ? kept.network === n.name : n.default },
      `${n.name}${n.profiles.length ? "" : ` (${t("console.not_loaded")})`}`)),
    h("option", { value: "" }, t("console.no_network")));
  const errors = state.errors.length
    ? h("ul", { class: "errors", role: "alert", "data-testid": "upload-errors" },
      state.errors.map((e) => h("li", { "data-file": e.file || null, "data-line": e.line || null, "data-column": e.column || null },
        e.where ? h("span", { class: "where" }, e.where) : null, e.msg)))
    : null;
  return h("section", { "data-testid": "plan-day" },
    h("h2", {}, t("console.plan_day")),
    file("visits-file", "console.visits_csv", ".csv,text/csv"),
    file("vehicles-file", "console.vehicles_csv", ".csv,text/csv"),
    file("depots-file", "console.depots_csv", ".csv,text/csv"),
    file("json-file", "console.json_request", ".json,application/json"),
    h("label", {}, t("console.plan_title"), h("input", { id: "plan-title", value: kept["plan-title"] || "" })),
    h("label", {}, t("console.network"), network),
    h("div", { class: "row" },
      h("label", {}, t("console.time_limit"), h("input", { id: "time-limit", type: "number", min: "1", step: "1", value: kept["time-limit"] || "10" })),
      h("label", {}, t("console.travel_weight"), h("input", { id: "travel-weight", type: "number", min: "0", step: "0.1", value: kept["travel-weight"] || "1" })),
      h("label", {}, t("console.makespan_weight"), h("input", { id: "makespan-weight", type: "number", min: "0", step: "0.1", value: kept["makespan-weight"] || "0" }))),
    errors,
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: check, "data-action": "check" }, t("console.check")),
      h("button", { type: "button", class: "primary", onclick: solve, "data-action": "solve", disabled: state.solving ? true : null }, t("console.solve"))),
    plansPicker());
}

function plansPicker() {
  const select = h("select", { id: "open-plan", "data-testid": "open-plan",
    onfocus: async () => {
      const { data } = await state.api.get("/v1/plans?limit=30");
      select.replaceChildren(h("option", { value: "" }, t("console.open_plan")),
        data.data.map((p) => h("option", { value: p.id }, `${p.name || p.id.slice(0, 8)} · ${p.status}`)));
    },
    onchange: () => select.value && openPlan(select.value) },
  h("option", { value: "" }, t("console.open_plan")));
  return h("label", {}, t("console.or_open"), select);
}

function progressSection() {
  return h("section", { "data-testid": "solving" },
    h("h2", {}, t("console.solving")),
    h("progress", { id: "solve-progress", max: "100", value: "0" }),
    h("p", { id: "solve-status", class: "small" }, ""),
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: cancel, "data-action": "cancel" }, t("console.cancel"))));
}

function renderProgress() {
  const bar = document.getElementById("solve-progress");
  if (!bar || !state.solving) return renderSide();
  const p = state.solving.progress || {};
  const elapsed = p.elapsed_s != null ? p.elapsed_s : (Date.now() - state.solving.started) / 1000;
  bar.value = Math.min(100, Math.round((100 * elapsed) / state.solving.limit));
  document.getElementById("solve-status").textContent = t("console.solve_status", {
    status: t(`status.${state.solving.status || "queued"}`), elapsed: Math.round(elapsed), limit: state.solving.limit,
    assigned: p.assigned != null ? p.assigned : "–", vehicles: p.vehicles != null ? p.vehicles : "–",
  });
}

function summarySection(doc) {
  const byVehicle = {};
  for (const v of (state.progress && state.progress.vehicles) || []) byVehicle[v.vehicle_id] = v;
  const p = state.progress;
  const version = (state.versions || []).find((v) => v.id === state.plan.id);
  return h("section", { "data-testid": "summary" },
    h("h2", {}, t("console.routes_title", { version: state.plan.version || (version ? version.version : 1) }),
      state.plan.publication === "draft" ? h("span", { class: "draft-badge", "data-testid": "draft-badge" }, t("console.draft_badge")) : null),
    h("p", { class: "small" }, t("console.summary", {
      visits: doc.summary.visits_assigned, unassigned: doc.unassigned.length,
      vehicles: routes().length, km: Math.round((doc.summary.distance_m || 0) / 100) / 10,
    })),
    p ? h("p", { "data-testid": "people" }, t("console.people", { sampled: p.people_sampled, expected: p.people_expected })) : null,
    h("table", { "data-testid": "vehicles" },
      h("thead", {}, h("tr", {}, h("th", {}, t("console.vehicle")), h("th", { class: "num" }, t("console.stops")),
        h("th", {}, t("console.hours")), h("th", { class: "num" }, t("console.done")), h("th", { class: "num" }, t("console.remaining")),
        h("th", { class: "num" }, t("console.late")))),
      h("tbody", {}, routes().map((r) => {
        const v = byVehicle[r.vehicle_id] || {};
        return h("tr", { "data-vehicle": r.vehicle_id, class: r.vehicle_id === state.vehicle ? "chosen" : null,
          onclick: () => { state.vehicle = r.vehicle_id; renderLive(); }, ...dropTarget(r.vehicle_id, "") },
          h("td", {}, h("span", { class: `swatch c${colourOf(r.vehicle_id)}` }), r.vehicle_id),
          h("td", { class: "num" }, r.steps.filter((x) => TASKS.has(x.kind)).length),
          h("td", {}, `${r.start}–${r.end}`),
          h("td", { class: "num", "data-testid": "done" }, v.done != null ? v.done : 0),
          h("td", { class: "num" }, v.remaining != null ? v.remaining : ""),
          h("td", { class: "num" }, v.late ? h("span", { class: "violation" }, v.late) : "0"));
      }))));
}

// The chosen vehicle's stops in order, with their outcomes (the crew's list, as the dispatcher sees it).
function stopListSection(doc) {
  const shown = shownDocument() || doc;
  const listed = shown.routes.filter((r) => r.steps.some((x) => TASKS.has(x.kind)));
  const route = listed.find((r) => r.vehicle_id === state.vehicle) || routes().find((r) => r.vehicle_id === state.vehicle)
    || listed[0];
  if (!route) return h("section", { "data-testid": "stop-list" });
  const done = outcomes();
  const late = violationsByStep(shown);
  const behind = overdue();
  const tasks = route.steps.filter((x) => TASKS.has(x.kind));
  return h("section", { "data-testid": "stop-list", "data-vehicle": route.vehicle_id },
    h("h2", {}, h("span", { class: `swatch c${colourOf(route.vehicle_id)}` }), t("console.stop_list", { vehicle: route.vehicle_id })),
    h("p", { class: "small" }, t("console.edit_hint")),
    h("ol", { class: "stops" }, tasks.map((step, i) => h("li", { "data-step": step.id, class: step.id === state.selected ? "chosen" : null,
      onclick: () => select(step.id), ...draggable(step.id), ...dropTarget(route.vehicle_id, String(i + 1)) },
      h("span", { class: "time" }, step.start), " ", h("b", {}, step.id), step.address ? ` · ${step.address}` : "",
      done[step.id] ? h("span", { class: `badge o-${done[step.id]}` }, t(`outcome.${done[step.id]}`)) : null,
      late[step.id] ? h("span", { class: "badge late" }, t("console.late")) : null,
      !done[step.id] && behind.has(step.id) ? h("span", { class: "badge overdue" }, t("console.overdue")) : null))));
}

function reasonText(u) {
  return t(`reason.${u.reason}`) + (u.detail ? ` (${u.detail})` : "");
}

function unservedSection(doc) {
  return h("section", { "data-testid": "unserved" },
    h("h2", {}, t("console.unserved_title", { n: doc.unassigned.length })),
    doc.unassigned.length ? h("ul", { class: "plain" }, doc.unassigned.map((u) => h("li", { "data-visit": u.visit_id },
      h("b", {}, u.visit_id), " ", h("span", { class: "unserved-reason" }, reasonText(u)))))
      : h("p", { class: "small" }, t("console.none_unserved")));
}

function findStep(doc, id) {
  for (const route of doc.routes) {
    const index = route.steps.findIndex((x) => x.id === id && x.kind !== "start" && x.kind !== "end");
    if (index >= 0) return { route, step: route.steps[index], index };
  }
  return null;
}

function detailSection(doc) {
  const found = findStep(doc, state.selected);
  const unserved = doc.unassigned.find((u) => u.visit_id === state.selected);
  const outcome = outcomes()[state.selected];
  const rows = [];
  if (found) {
    const { route, step } = found;
    const position = route.steps.filter((x) => TASKS.has(x.kind)).findIndex((x) => x.id === step.id) + 1;
    rows.push([t("console.vehicle"), `${route.vehicle_id} · #${position}`], [t("console.arrival"), step.arrival],
      [t("console.start"), step.start], [t("console.departure"), step.departure]);
    if (step.address) rows.push([t("console.address"), step.address]);
    if (step.people != null) rows.push([t("console.people_label"), step.people]);
    if (step.priority) rows.push([t("console.priority"), t(`priority.${step.priority}`)]);
    if (step.time_windows && step.time_windows.length) rows.push([t("console.window"), step.time_windows.map((w) => `${w.start}–${w.end}`).join(", ")]);
    if (step.wait_s) rows.push([t("console.wait"), `${Math.round(step.wait_s / 60)} min`]);
    if (step.notes) rows.push([t("console.notes"), step.notes]);
    if (step.oldest_sample_age_s != null) rows.push([t("console.sample_age"), `${Math.round(step.oldest_sample_age_s / 60)} min`]);
  }
  if (unserved) rows.push([t("console.unserved"), reasonText(unserved)]);
  if (outcome) rows.push([t("console.outcome"), t(`outcome.${outcome}`)]);
  const violations = violationsByStep(doc)[state.selected] || [];
  return h("section", { "data-testid": "stop-detail" },
    h("h2", {}, state.selected),
    h("dl", { class: "detail" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    violations.map((v) => h("p", { class: "violation", title: v.message }, violationText(t, v, doc))));
}

function diffSection() {
  const d = state.diff;
  const removed = (m) => h("li", { class: "removed" }, t("console.diff_removed", { id: m.id, outcome: m.outcome ? t(`outcome.${m.outcome}`) : "–" }));
  // doors recorded since (done, refused...) leave the rest of the day by design: listed apart, folded
  const recorded = d.removed.filter((m) => m.outcome);
  const items = [
    ...d.moved.map((m) => h("li", { class: "moved" }, t("console.diff_moved", { id: m.id, from: m.from_vehicle, to: m.to_vehicle }))),
    ...d.added.map((m) => h("li", { class: "added" }, t("console.diff_added", { id: m.id, vehicle: m.vehicle_id }))),
    ...d.removed.filter((m) => !m.outcome).map(removed),
  ];
  // a door the re-plan could not fit again is not "tried again", whatever the first list says
  const notRetried = new Set(d.replan ? d.replan.not_retried : []);
  const retried = d.replan ? d.replan.retried.filter((id) => !notRetried.has(id)) : [];
  return h("section", { "data-testid": "diff" },
    h("h2", {}, t("console.diff_title", { from: d.from_version, to: d.to_version })),
    h("p", {}, t("console.diff_summary", { moved: d.moved.length, added: d.added.length, removed: d.removed.length, eta: d.eta_changes.length })),
    h("ul", { class: "plain diff" }, items.length ? items : h("li", {}, t("console.diff_none"))),
    recorded.length ? h("details", { class: "recorded" }, h("summary", {}, t("console.diff_recorded_title", { n: recorded.length })),
      h("ul", { class: "plain diff" }, recorded.map(removed))) : null,
    d.edit ? h("p", { class: "small" }, t("console.hand_edit_diff")) : null,
    retried.length ? h("p", { "data-testid": "retried" }, t("console.retried", { ids: retried.join(", ") })) : null,
    notRetried.size ? h("p", { class: "violation", "data-testid": "not-retried" },
      t("console.not_retried", { ids: [...notRetried].join(", ") })) : null,
    d.eta_changes.length ? h("details", { class: "eta" }, h("summary", {}, t("console.diff_eta_title", { n: d.eta_changes.length })),
      h("ul", { class: "plain" }, d.eta_changes.map((m) => h("li", {}, t("console.diff_eta", { id: m.id, from: m.from, to: m.to }))))) : null,
    draftActions(d));
}

function draftActions(d) {
  const plan = state.plan;
  if (!plan || plan.id !== d.to_id || plan.publication !== "draft") {
    return d.published ? h("p", { class: "small feasible" }, t("console.published", { version: d.to_version })) : null;
  }
  const broken = ((plan.plan || {}).violations || []);
  const current = (state.versions || []).find((v) => v.id === d.from_id);
  return h("div", { "data-testid": "draft-actions" },
    h("p", { class: "notice" }, t("console.draft_notice", { version: d.to_version, current: current ? current.version : d.from_version })),
    broken.length ? h("ul", { class: "plain" }, broken.map((v) => h("li", { class: "violation", "data-kind": v.kind, title: v.message },
      violationText(t, v, plan.plan)))) : null,
    // a version breaking rules goes out only when the dispatcher says so, knowingly
    broken.length ? h("label", { class: "inline" }, h("input", { type: "checkbox", name: "accept",
      onchange: (event) => { document.querySelector("[data-action=publish]").disabled = !event.target.checked; } }),
      t("console.accept_violations", { n: broken.length })) : null,
    h("div", { class: "buttons" },
      h("button", { type: "button", class: "primary", "data-action": "publish", disabled: broken.length ? true : null,
        onclick: () => publish() }, t("console.publish")),
      h("button", { type: "button", "data-action": "discard-draft", onclick: () => discardDraft() }, t("console.discard_draft"))));
}

function replanSection(doc) {
  const vehicles = doc.routes.map((r) => r.vehicle_id);
  return h("section", { "data-testid": "replan" },
    h("h2", {}, t("console.replan_title")),
    h("form", { onsubmit: replan },
      h("label", {}, t("console.replan_now"), h("input", { name: "now", value: state.progress ? state.progress.at.slice(0, 5) : nowClock(), pattern: "\\d{1,2}:\\d{2}" })),
      h("div", {}, h("span", { class: "small" }, t("console.drop_vehicles")), h("br"),
        vehicles.map((v) => h("label", { class: "inline" }, h("input", { type: "checkbox", name: "dropped", value: v }), v))),
      h("label", { class: "inline" }, h("input", { type: "checkbox", name: "retry" }), t("console.retry_not_home")),
      h("div", { class: "small" }, t("console.urgent_title")),
      h("div", { class: "row" },
        h("input", { name: "urgent_id", placeholder: t("console.urgent_id") }),
        h("input", { name: "urgent_people", type: "number", min: "1", value: "1", title: t("console.people_label") })),
      h("div", { class: "row" },
        h("input", { name: "urgent_lon", placeholder: "lon" }),
        h("input", { name: "urgent_lat", placeholder: "lat" }),
        h("button", { type: "button", onclick: () => { state.pickOnMap = true; say(t("console.pick_hint")); } }, t("console.pick"))),
      h("input", { name: "urgent_address", placeholder: t("console.address") }),
      joiningSection(doc),
      h("div", { class: "buttons" }, h("button", { class: "primary", type: "submit", "data-action": "replan",
        disabled: state.solving ? true : null }, t("console.replan")))));
}

// The re-plan form's joining vehicle: from one of the plan's depots, carrying as much as the fullest
// vehicle of the plan did (the dispatcher corrects it).
function joiningSection(doc) {
  const depots = new Set();
  const most = {};
  for (const route of doc.routes) {
    for (const step of route.steps) {
      if ((step.kind === "start" || step.kind === "end") && !String(step.id).startsWith("at:")) depots.add(step.id);
      for (const [dim, amount] of Object.entries(step.load || {})) most[dim] = Math.max(most[dim] || 0, amount);
    }
  }
  return h("div", { "data-testid": "joining" },
    h("div", { class: "small" }, t("console.add_vehicle")),
    h("div", { class: "row" },
      h("input", { name: "new_vehicle_id", placeholder: t("console.new_vehicle_id") }),
      h("select", { name: "new_vehicle_profile" }, h("option", { value: "walk" }, t("console.new_vehicle_walk")),
        h("option", { value: "drive" }, t("console.new_vehicle_drive")))),
    h("div", { class: "row" },
      h("label", {}, t("console.new_vehicle_depot"), h("select", { name: "new_vehicle_depot" },
        [...depots].map((id) => h("option", { value: id }, id)))),
      h("label", {}, t("console.new_vehicle_until"), h("input", { name: "new_vehicle_until", value: "16:00", pattern: "\\d{1,2}:\\d{2}" })),
      h("label", {}, t("console.new_vehicle_capacity"), h("input", { name: "new_vehicle_capacity",
        value: Object.entries(most).map(([dim, amount]) => `${dim}=${amount}`).join(" ") }))));
}

function editSection(doc) {
  const ids = doc.routes.flatMap((r) => r.steps.filter((x) => x.kind === "visit").map((x) => x.id))
    .concat(doc.unassigned.map((u) => u.visit_id));
  const e = state.edit;
  let result = null;
  if (e && e.error) result = h("p", { class: "violation", "data-testid": "edit-result" }, e.error);
  else if (e) {
    result = h("div", { "data-testid": "edit-result" },
      e.feasible ? h("p", { class: "feasible" }, t("console.edit_feasible", { cost: Math.round(e.cost) }))
        : h("p", { class: "violation" }, t("console.edit_infeasible")),
      h("ul", { class: "plain" }, e.plan.violations.map((v) => h("li", { class: "violation", "data-kind": v.kind, title: v.message },
        `${t(`violation.${v.kind}`)}: ${violationText(t, v, e.plan)}`))),
      e.missing.length ? h("p", { class: "small" }, t("console.edit_missing", { ids: e.missing.join(", ") })) : null,
      h("p", { class: "small" }, e.feasible ? t("console.edit_apply_hint") : t("console.edit_not_savable")),
      h("div", { class: "buttons" },
        h("button", { type: "button", class: e.feasible ? "primary" : null, "data-action": "save-edit",
          onclick: (event) => saveEdit(event.currentTarget) }, t("console.edit_save")),
        h("button", { type: "button", "data-action": "discard-edit",
          onclick: () => { state.edit = null; renderAll(); } }, t("console.edit_discard"))));
  }
  return h("section", { "data-testid": "edit" },
    h("h2", {}, t("console.edit_title")),
    h("form", { onsubmit: checkEdit },
      h("div", { class: "row" },
        h("label", {}, t("console.edit_visit"), h("select", { name: "visit" }, ids.map((id) => h("option", { value: id, selected: id === (e && e.visit ? e.visit : state.selected) }, id)))),
        h("label", {}, t("console.edit_to"), h("select", { name: "vehicle" }, doc.routes.map((r) => h("option",
          { value: r.vehicle_id, selected: e && e.vehicle === r.vehicle_id }, r.vehicle_id)))),
        h("label", {}, t("console.edit_position"), h("input", { name: "position", type: "number", min: "1",
          value: String((e && e.position) || 1) }))),
      h("div", { class: "buttons" }, h("button", { type: "submit", "data-action": "evaluate" }, t("console.edit_check")))),
    result);
}

function handoverSection(doc) {
  const planId = state.plan.id;
  return h("section", { "data-testid": "handover" },
    h("h2", {}, t("console.handover_title")),
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => download(`/v1/plans/${planId}.geojson`, "plan.geojson") }, "GeoJSON")),
    routes().map((r) => {
      const link = state.links[`${planId}/${r.vehicle_id}`];
      const base = `/v1/plans/${planId}/routes/${encodeURIComponent(r.vehicle_id)}`;
      return h("div", { class: "handover", "data-vehicle": r.vehicle_id },
        h("p", {}, h("span", { class: `swatch c${colourOf(r.vehicle_id)}` }), h("b", {}, r.vehicle_id)),
        h("div", { class: "buttons" },
          h("button", { type: "button", "data-action": "crew-link", onclick: () => crewLink(r.vehicle_id) }, t("console.crew_link")),
          ["csv", "gpx", "html"].map((ext) => h("button", { type: "button", onclick: () => download(`${base}.${ext}`, `${r.vehicle_id}.${ext}`) }, ext.toUpperCase()))),
        link ? h("div", { "data-testid": "crew-link" },
          h("img", { class: "qr", src: link.qr_png, alt: t("console.qr_alt", { vehicle: r.vehicle_id }) }),
          h("p", { class: "link-url" }, link.url)) : null);
    }));
}

// -- the map ---------------------------------------------------------------------------------------

function setUpMap() {
  state.map = L.map("map", { zoomControl: true, fadeAnimation: false, zoomSnap: 0.25 });
  state.streetRenderer = L.canvas({ padding: 0.2 }); // thousands of streets: one canvas, not thousands of paths
  state.map.setView([60.17, 24.94], 13);
  if (state.config.tiles_url) {
    L.tileLayer(state.config.tiles_url, { attribution: state.config.tiles_attribution || "", maxZoom: 19 }).addTo(state.map);
  }
  state.layers = {
    streets: L.layerGroup().addTo(state.map),
    routes: L.layerGroup().addTo(state.map),
    sites: L.layerGroup().addTo(state.map),
    stops: L.layerGroup().addTo(state.map),
    unserved: L.layerGroup().addTo(state.map),
  };
  state.map.on("click", (event) => {
    if (!state.pickOnMap) return;
    state.pickOnMap = false;
    const form = document.querySelector("[data-testid=replan] form");
    if (form) {
      form.urgent_lon.value = event.latlng.lng.toFixed(6);
      form.urgent_lat.value = event.latlng.lat.toFixed(6);
    }
    state.message = null;
  });
}

function planBounds(doc) {
  const points = [];
  for (const route of doc.routes) for (const step of route.steps) points.push(step.location);
  for (const u of doc.unassigned) if (u.location) points.push(u.location);
  if (!points.length) return null;
  const lons = points.map((p) => p[0]);
  const lats = points.map((p) => p[1]);
  return [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
}

async function drawStreets(doc) {
  const network = (state.request && state.request.network) || (state.networks.find((n) => n.default) || {}).name;
  const known = state.networks.find((n) => n.name === network);
  if (!known || !known.profiles.length) return;
  const box = doc ? planBounds(doc) : known.bounds;
  if (!box) return;
  const pad = 0.01;
  const bbox = [box[0] - pad, box[1] - pad / 2, box[2] + pad, box[3] + pad / 2].map((x) => x.toFixed(5)).join(",");
  const profile = known.profiles.includes("walk") ? "walk" : known.profiles[0];
  const key = `${network}/${profile}/${bbox}`;
  if (state.streetsFor === key) return;
  state.streetsFor = key;
  const { data } = await state.api.get(`/v1/networks/${encodeURIComponent(network)}/streets?profile=${profile}&bbox=${bbox}`);
  state.layers.streets.clearLayers();
  L.geoJSON(data, { interactive: false, renderer: state.streetRenderer,
    style: { color: "#b9b4a8", weight: 1.2, opacity: 1 } }).addTo(state.layers.streets);
  document.getElementById("map").dataset.streets = String(data.features[0] ? data.features[0].properties.segments : 0);
}

function stepIcon(classes, label, size = 20) {
  return L.divIcon({ className: classes, html: `<span>${label}</span>`, iconSize: [size, size] });
}

function renderMap() {
  const doc = document_();
  if (!state.map || !doc) return;
  state.map.invalidateSize(); // the timeline below may have grown
  const done = outcomes();
  const late = violationsByStep(state.edit && state.edit.plan ? state.edit.plan : doc);
  const behind = overdue();
  for (const layer of Object.values(state.layers)) if (layer !== state.layers.streets) layer.clearLayers();
  drawStreets(doc).catch((error) => say(describe(error), "problem"));
  const sites = new Map();
  const shown = state.edit && state.edit.plan ? state.edit.plan : doc;
  for (const route of shown.routes) {
    const tasks = route.steps.filter((x) => TASKS.has(x.kind));
    if (!tasks.length) continue;
    const colour = colourOf(route.vehicle_id);
    const line = route.geometry ? route.geometry.coordinates : route.steps.map((x) => x.location);
    L.polyline(line.map(([x, y]) => [y, x]), { color: PALETTE[colour], weight: 4, opacity: 0.85, className: `route c${colour}`,
      dashArray: shown === doc ? null : "8 6" })
      .bindTooltip(route.vehicle_id).addTo(state.layers.routes);
    tasks.forEach((step, i) => {
      const outcome = done[step.id];
      const classes = ["stop-marker", `c${colour}`, outcome ? `o-${outcome}` : "", late[step.id] ? "late" : "",
        !outcome && behind.has(step.id) ? "overdue" : "",
        step.kind === "stop" ? "bus" : ""].filter(Boolean).join(" ");
      const marker = L.marker([step.location[1], step.location[0]], { icon: stepIcon(classes, i + 1), title: step.id,
        riseOnHover: true });
      marker.bindPopup(() => popup(route, step, i + 1, outcome));
      marker.on("click", () => select(step.id, false));
      marker.addTo(state.layers.stops);
    });
    for (const step of route.steps) {
      if (step.kind === "start" || step.kind === "end") sites.set(`depot:${step.location}`, ["depot", step]);
      if (step.kind === "lab") sites.set(`lab:${step.id}`, ["lab", step]);
    }
  }
  for (const [kind, step] of sites.values()) {
    L.marker([step.location[1], step.location[0]], { icon: stepIcon(`site-marker ${kind}`, kind === "depot" ? "D" : "L", 22),
      title: `${t(`console.${kind}`)} ${step.id}`, zIndexOffset: kind === "lab" ? 0 : -100 })
      .bindTooltip(`${t(`console.${kind}`)} ${step.id}`).addTo(state.layers.sites);
  }
  for (const area of doc.coverage || []) {
    if (area.location && area.stop_location) {
      L.polyline([[area.location[1], area.location[0]], [area.stop_location[1], area.stop_location[0]]],
        { color: "#555", weight: 1, dashArray: "3 4", className: "catchment" }).addTo(state.layers.routes);
      L.circleMarker([area.location[1], area.location[0]], { radius: 5, color: "#555", weight: 1, fillOpacity: 0.3 })
        .bindTooltip(`${area.area_id} → ${area.stop_id}`).addTo(state.layers.routes);
    }
  }
  for (const u of doc.unassigned) {
    if (!u.location) continue;
    L.marker([u.location[1], u.location[0]], { icon: stepIcon("unserved-marker", "!", 20), title: u.visit_id })
      .bindPopup(() => h("div", {}, h("b", {}, u.visit_id), h("br"), h("span", { class: "unserved-reason" }, reasonText(u))))
      .on("click", () => select(u.visit_id, false))
      .addTo(state.layers.unserved);
  }
  const box = planBounds(doc);
  if (box && state.fitted !== state.plan.id) {
    state.fitted = state.plan.id;
    state.map.fitBounds([[box[1], box[0]], [box[3], box[2]]], { padding: [20, 20] });
  }
}

function popup(route, step, number, outcome) {
  return h("div", { class: "popup", "data-step": step.id },
    h("b", {}, `${number}. ${step.id}`), ` · ${route.vehicle_id}`, h("br"),
    `${step.arrival}–${step.departure}`, step.address ? [h("br"), step.address] : null,
    step.people != null ? [h("br"), t("console.people_n", { n: step.people })] : null,
    outcome ? [h("br"), h("b", {}, t(`outcome.${outcome}`))] : null);
}

function select(stepId, pan = true) {
  state.selected = stepId;
  renderSide();
  renderTimeline();
  if (pan && state.map) {
    const doc = document_();
    const found = doc && findStep(doc, stepId);
    const location = found ? found.step.location : (doc.unassigned.find((u) => u.visit_id === stepId) || {}).location;
    if (location) state.map.panTo([location[1], location[0]]);
  }
}

// -- the timeline ------------------------------------------------------------------------------------

function renderTimeline() {
  const box = document.getElementById("timeline");
  const doc = document_();
  if (!doc) {
    box.replaceChildren();
    return;
  }
  const shown = state.edit && state.edit.plan ? state.edit.plan : doc;
  const rows = shown.routes.filter((r) => r.steps.some((x) => TASKS.has(x.kind)));
  const shifts = {};
  for (const v of (state.request && state.request.vehicles) || []) shifts[v.id] = v.shift;
  const toS = (value) => (typeof value === "number" ? value : Number(value.split(":")[0]) * 3600 + Number(value.split(":")[1]) * 60);
  const spans = rows.map((r) => {
    const shift = shifts[r.vehicle_id];
    const first = r.steps[0];
    const last = r.steps[r.steps.length - 1];
    return shift ? [Math.min(toS(shift.start), first.departure_s), Math.max(toS(shift.end), last.arrival_s)]
      : [first.departure_s, last.arrival_s];
  });
  const from = Math.floor(Math.min(...spans.map((x) => x[0])) / 3600) * 3600;
  const to = Math.ceil(Math.max(...spans.map((x) => x[1])) / 3600) * 3600;
  const label = 90;
  const width = Math.max(600, box.clientWidth - 20);
  const rowH = 26;
  const top = 18;
  const x = (sec) => label + ((sec - from) / Math.max(1, to - from)) * (width - label - 40);
  const done = outcomes();
  const violations = violationsByStep(shown);
  const svg = s("svg", { width, height: top + rows.length * rowH + 4, "data-testid": "timeline-svg" });
  for (let hour = from; hour <= to; hour += 3600) {
    svg.append(s("line", { x1: x(hour), x2: x(hour), y1: 12, y2: top + rows.length * rowH, stroke: "#ddd" }),
      s("text", { x: x(hour) + 2, y: 11, fill: "#555" }, clock(hour)));
  }
  const now = state.progress ? state.progress.at_s : null;
  if (now != null && now >= from && now <= to) {
    svg.append(s("line", { class: "now", x1: x(now), x2: x(now), y1: 12, y2: top + rows.length * rowH, stroke: "#a40f0f",
      "stroke-width": 1.5, "stroke-dasharray": "4 3" }, s("title", {}, clock(now))));
  }
  rows.forEach((route, index) => {
    const y = top + index * rowH;
    const colour = PALETTE[colourOf(route.vehicle_id)];
    const group = s("g", { "data-vehicle": route.vehicle_id, class: "tl-row" });
    group.append(s("text", { x: 2, y: y + 16, "font-weight": 700, fill: colour }, route.vehicle_id));
    const [start, end] = spans[index];
    group.append(s("rect", { x: x(start), y: y + 9, width: Math.max(1, x(end) - x(start)), height: 4, fill: "#eee" }));
    const routeViolations = violations[`route:${route.vehicle_id}`];
    if (routeViolations) group.append(s("title", {}, routeViolations.map((v) => violationText(t, v, shown)).join("\n")));
    let previous = null;
    for (const step of route.steps) {
      if (previous && step.arrival_s > previous.departure_s) {
        group.append(s("rect", { class: "seg travel", x: x(previous.departure_s), y: y + 7, width: Math.max(0.5, x(step.arrival_s) - x(previous.departure_s)),
          height: 8, fill: "#9e9e9e" }, s("title", {}, `${t("console.travel")} ${clock(previous.departure_s)}–${clock(step.arrival_s)}`)));
      }
      if (step.wait_s > 0 && step.kind !== "end") {
        group.append(s("rect", { class: "seg wait", x: x(step.arrival_s), y: y + 7, width: Math.max(0.5, x(step.start_s) - x(step.arrival_s)), height: 8,
          fill: "#fff", stroke: "#888", "stroke-dasharray": "2 2" }, s("title", {}, `${t("console.wait")} ${clock(step.arrival_s)}–${clock(step.start_s)}`)));
      }
      if (step.service_s > 0 || TASKS.has(step.kind)) {
        const kind = step.kind === "break" ? "break" : step.kind === "lab" ? "lab" : "service";
        const fill = kind === "break" ? "#d8cfa0" : kind === "lab" ? "#6a1b9a" : colour;
        const bad = violations[step.id];
        const outcome = done[step.id];
        const rect = s("rect", { class: `seg ${kind}${bad ? " late" : ""}${outcome ? ` o-${outcome}` : ""}`, "data-step": step.id,
          x: x(step.start_s), y: y + 3, width: Math.max(2, x(step.departure_s) - x(step.start_s)), height: 16, fill,
          stroke: bad ? "#a40f0f" : step.id === state.selected ? "#000" : "#fff", "stroke-width": bad || step.id === state.selected ? 2.5 : 0.5,
          onclick: () => select(step.id) },
        s("title", {}, [`${step.id} ${step.start}–${step.departure}`, outcome ? t(`outcome.${outcome}`) : "",
          step.oldest_sample_age_s != null ? `${t("console.sample_age")}: ${Math.round(step.oldest_sample_age_s / 60)} min` : "",
          ...(bad || []).map((v) => violationText(t, v, shown))].filter(Boolean).join("\n")));
        group.append(rect);
        if (outcome) {
          const mark = { done: "✓", not_home: "⌂", refused: "✗", unreachable: "?", skipped: "–", arrived: "•" }[outcome] || "";
          group.append(s("text", { x: x(step.start_s) + 1, y: y + 15, fill: "#fff", "font-weight": 800, "pointer-events": "none" }, mark));
        }
        if (bad) group.append(s("text", { x: x(step.departure_s) + 1, y: y + 10, fill: "#a40f0f", "font-weight": 900 }, "!"));
      }
      previous = step;
    }
    svg.append(group);
  });
  const legend = h("div", { class: "legend-row" },
    ["travel", "wait", "service", "break", "lab", "late"].map((k) => h("span", {}, h("span", { class: `key ${k}` }), t(`console.legend_${k}`))),
    state.edit && state.edit.plan ? h("b", { class: "violation" }, t("console.timeline_edit")) : null);
  const unserved = h("div", { class: "unserved-row", "data-testid": "timeline-unserved" },
    h("b", {}, t("console.unserved_row", { n: doc.unassigned.length })),
    doc.unassigned.map((u) => h("span", { class: "chip", "data-visit": u.visit_id, title: reasonText(u), onclick: () => select(u.visit_id) },
      `${u.visit_id}: ${t(`reason.${u.reason}`)}`)));
  box.replaceChildren(legend, svg, unserved);
  box.dataset.rows = String(rows.length);
}

// -- everything ------------------------------------------------------------------------------------

// What the ledger changes, redrawn in place: the forms being filled in are left alone.
function renderLive() {
  const doc = document_();
  if (!doc) return;
  for (const [id, make] of [["summary", summarySection], ["stop-detail", detailSection], ["stop-list", stopListSection]]) {
    const old = document.querySelector(`#side [data-testid=${id}]`);
    if (old && (id !== "stop-detail" || state.selected)) old.replaceWith(make(doc));
  }
  renderMap();
  renderTimeline();
}

function renderAll() {
  const doc = document_();
  document.getElementById("plan-name").textContent = doc ? (state.plan.name || state.plan.id) : "";
  renderSide();
  renderTimeline();
  renderMap();
}

function setLanguage() {
  const button = document.getElementById("lang");
  const other = state.i18n.lang === "en" ? "zh-CN" : "en";
  button.textContent = LANGUAGES[other];
  button.onclick = async () => {
    I18n.remember(other);
    state.i18n = await I18n.load(other);
    state.i18n.apply();
    document.title = t("console.title");
    setLanguage();
    renderAll();
  };
}

async function main() {
  state.i18n = await I18n.load();
  state.i18n.apply();
  document.title = t("console.title");
  setLanguage();
  try {
    state.config = await (await fetch("/console/config.json")).json();
  } catch {
    state.config = {};
  }
  setUpMap();
  setInterval(() => { document.getElementById("clock").textContent = nowClock(); }, 1000);
  document.getElementById("clock").textContent = nowClock();
  const key = takeKey();
  if (key) await signIn(key);
  else renderSide();
  window.addEventListener("resize", () => renderTimeline());
}

main();
