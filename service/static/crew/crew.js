// The crew's phone page: the vehicle's route, the next stop first; record each door; work offline.
//
// Thin over the API: it reads GET /v1/crew/day and records with POST /v1/plans/{id}/events, as
// any client with a crew key may. The key comes in the link's fragment (#key=...), which no server
// sees; it is kept on the phone and the fragment is taken out of the address bar.
import { Api, ApiError, Offline, describe } from "/static/shared/api.js";
import { h } from "/static/shared/dom.js";
import { I18n, LANGUAGES } from "/static/shared/i18n.js";
import { Outbox } from "/static/shared/outbox.js";

const STORED_KEY = "doorstep.crew.key";
const REFRESH_MS = 10000; // how often the route is read again (a re-plan shows within this)
const SEND_MS = 5000; // how often waiting records are tried again
const FINAL = new Set(["done", "not_home", "refused", "unreachable", "skipped"]);
const RECORDED_KINDS = new Set(["visit", "stop"]);
const OTHER_OUTCOMES = ["not_home", "refused", "unreachable", "skipped"];

const state = {
  key: null,
  api: null,
  i18n: null,
  day: null,
  online: navigator.onLine,
  problem: null,
  outbox: new Outbox("crew"),
  dialog: null,
};

// -- the key ------------------------------------------------------------------------------------

function takeKey() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("key");
  if (given) {
    if (given !== localStorage.getItem(STORED_KEY)) localStorage.setItem(STORED_KEY, given);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return localStorage.getItem(STORED_KEY);
}

const prefixOf = (key) => (key || "").split("_")[1] || "crew";
const dayStore = () => `doorstep.crew.day.${prefixOf(state.key)}`;
const seenStore = () => `doorstep.crew.seen.${prefixOf(state.key)}`;

// -- time of the plan's day ---------------------------------------------------------------------

function nowS() {
  const d = new Date();
  let s = d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds();
  const first = state.day && state.day.steps.length ? state.day.steps[0].start_s : null;
  if (first != null && first - s > 12 * 3600) s += 24 * 3600; // a night shift past midnight
  return s;
}

function clock(seconds) {
  const total = Math.floor(seconds);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  return `${String(hours).padStart(2, "0")}:${String(minutes).padStart(2, "0")}`;
}

// -- building the page --------------------------------------------------------------------------


const t = (key, values) => state.i18n.t(key, values);

// The records made on this phone for the day's plan, by step, newest last.
function localRecords() {
  const planId = state.day && state.day.plan_id;
  const by = new Map();
  for (const item of state.outbox.all()) {
    if (item.planId !== planId) continue;
    if (!by.has(item.step)) by.set(item.step, []);
    by.get(item.step).push(item);
  }
  return by;
}

// A step's outcome as the crew knows it: its latest record on this phone not yet sent, else the server's.
function outcomeOf(step, local) {
  const mine = (local.get(step.id) || []).filter((i) => i.state === "waiting" || i.state === "sent");
  if (mine.length) {
    const last = mine[mine.length - 1];
    return { outcome: last.body.outcome, waiting: last.state === "waiting", arrival: arrivalOf(step, local) };
  }
  return { outcome: step.outcome, waiting: false, arrival: step.arrival_recorded_s };
}

function arrivalOf(step, local) {
  const arrived = (local.get(step.id) || []).filter((i) => i.state !== "failed" && i.body.outcome === "arrived");
  return arrived.length ? arrived[arrived.length - 1].body.at : step.arrival_recorded_s;
}

function isOpen(step, local) {
  return RECORDED_KINDS.has(step.kind) && !FINAL.has(outcomeOf(step, local).outcome);
}

function render() {
  const app = document.getElementById("app");
  app.replaceChildren(...page().filter((part) => part));
  state.i18n.apply(app);
}

function page() {
  const parts = [header()];
  if (!state.key) return [...parts, h("p", { class: "notice problem" }, t("crew.no_link"))];
  if (state.problem) parts.push(h("p", { class: "notice problem", role: "alert" }, state.problem));
  const day = state.day;
  if (!day) {
    parts.push(h("p", { class: "notice" }, state.online ? t("crew.loading") : t("crew.offline_no_route")));
    return parts;
  }
  const local = localRecords();
  parts.push(...replanNotice(day), progress(day, local), waitingList(local));
  if (!day.version_id) {
    parts.push(h("p", { class: "notice" }, t("crew.not_planned_yet")));
    return parts;
  }
  const open = day.steps.filter((s) => !RECORDED_KINDS.has(s.kind) || isOpen(s, local));
  const nextIndex = open.findIndex((s) => RECORDED_KINDS.has(s.kind));
  if (nextIndex < 0) {
    parts.push(h("p", { class: "notice good" }, t("crew.all_done")));
  } else {
    const upcoming = open.slice(nextIndex + 1);
    // a break or a lab drop due before the next door, unless it is over
    const before = open.slice(0, nextIndex).filter((s) => s.departure_s == null || s.departure_s > nowS());
    parts.push(...before.map((s) => stepCard(s, local, false)));
    parts.push(h("h2", { class: "section" }, t("crew.next")), stepCard(open[nextIndex], local, true));
    if (upcoming.length) {
      parts.push(h("h2", { class: "section" }, t("crew.then", { n: upcoming.filter((s) => RECORDED_KINDS.has(s.kind)).length })));
      parts.push(h("ol", { class: "steps" }, upcoming.map((s) => h("li", {}, stepCard(s, local, false)))));
    }
  }
  parts.push(recordedList(day, local), footer(day));
  return parts;
}

function header() {
  const other = Object.keys(LANGUAGES).find((lang) => lang !== state.i18n.lang);
  const waiting = state.outbox.waiting().length;
  return h("header", { class: "bar" },
    h("div", { class: "who" },
      h("strong", { class: "vehicle" }, state.day ? state.day.vehicle_id : t("crew.title")),
      state.day && state.day.plan_name ? h("span", { class: "plan" }, state.day.plan_name) : null),
    h("span", { class: `signal ${state.online ? "on" : "off"}`, "data-testid": "signal" },
      state.online ? t("crew.online") : t("crew.offline")),
    waiting ? h("span", { class: "signal waiting", "data-testid": "waiting-count" }, t("crew.waiting_count", { n: waiting })) : null,
    h("button", { class: "lang", type: "button", onclick: () => switchLanguage(other), lang: other }, LANGUAGES[other]));
}

function replanNotice(day) {
  const seen = localStorage.getItem(seenStore());
  if (!day.changes || !day.version_id || !seen || seen === day.version_id) return [];
  const c = day.changes;
  const lines = [];
  if (c.added.length) lines.push(t("crew.changes_added", { ids: c.added.map((id) => label(day, id)).join(", ") }));
  if (c.removed.length) lines.push(t("crew.changes_removed", { ids: c.removed.map((id) => label(day, id)).join(", ") }));
  if (c.order_changed) lines.push(t("crew.changes_order"));
  for (const e of c.eta_changes.slice(0, 5)) lines.push(t("crew.changes_eta", { id: label(day, e.id), from: e.from, to: e.to }));
  if (!lines.length) lines.push(t("crew.changes_none"));
  return [h("section", { class: "replan", role: "alert", "data-testid": "replan-notice" },
    h("h2", {}, t("crew.replanned", { version: c.to_version })),
    h("ul", {}, lines.map((line) => h("li", {}, line))),
    h("button", { type: "button", class: "big", onclick: () => { localStorage.setItem(seenStore(), day.version_id); render(); } },
      t("crew.got_it")))];
}

function label(day, id) {
  const step = [...day.steps, ...day.recorded].find((s) => s.id === id);
  return (step && step.address) || (day.changes && day.changes.addresses[id]) || id;
}

function progress(day, local) {
  const recorded = [...day.steps, ...day.recorded].filter((s) => RECORDED_KINDS.has(s.kind));
  const done = recorded.filter((s) => outcomeOf(s, local).outcome === "done").length;
  const closed = recorded.filter((s) => FINAL.has(outcomeOf(s, local).outcome)).length;
  const remaining = day.steps.filter((s) => isOpen(s, local)).length;
  const now = nowS();
  const late = day.steps.filter((s) => isOpen(s, local) && s.start_s != null && s.start_s < now - 60).length;
  const bar = h("div", { class: "meter-fill" });
  bar.style.width = `${recorded.length ? Math.round((100 * closed) / (closed + remaining || 1)) : 0}%`;
  return h("section", { class: "progress", "data-testid": "progress" },
    h("div", { class: "meter" }, bar),
    h("p", {},
      h("span", { class: "count" }, t("crew.done_count", { n: done })), " · ",
      h("span", { class: "count" }, t("crew.remaining_count", { n: remaining })),
      late ? [" · ", h("span", { class: "count late" }, t("crew.late_count", { n: late }))] : null));
}

function waitingList(local) {
  const items = [...local.values()].flat().filter((i) => i.state === "waiting" || i.state === "failed");
  if (!items.length) return null;
  return h("section", { class: "outbox", "data-testid": "outbox" },
    h("h2", {}, t("crew.waiting_title")),
    h("ul", {}, items.map((i) => h("li", { class: i.state },
      `${clock(i.body.at)} ${label(state.day, i.step)}: ${t(`outcome.${i.body.outcome}`)} — `,
      i.state === "failed"
        ? [t("crew.failed", { reason: i.error }), " ", h("button", { type: "button", onclick: () => { state.outbox.drop(i.key); render(); } }, t("crew.discard"))]
        : t("crew.waiting")))));
}

function details(step) {
  const bits = [];
  if (step.kind === "stop") {
    if (step.people != null) bits.push(t("crew.expected_people", { n: step.people }));
    if (step.dwell_s != null) bits.push(t("crew.dwell", { min: Math.round(step.dwell_s / 60) }));
  } else if (step.people != null) {
    bits.push(t("crew.people", { n: step.people }));
  }
  for (const [what, n] of Object.entries(step.needs || {})) bits.push(t(`crew.need_${what}`, { n }));
  return bits;
}

function stepCard(step, local, isNext) {
  if (step.kind === "break") {
    return h("article", { class: "card quiet" }, h("p", {}, t("crew.break", { start: step.start, end: step.departure })));
  }
  if (step.kind === "lab") {
    return h("article", { class: "card quiet" }, h("p", {}, t("crew.lab", { time: step.start, id: step.address || step.id })));
  }
  const known = outcomeOf(step, local);
  const late = step.start_s != null && step.start_s < nowS() - 60;
  const windows = (step.time_windows || []).map((w) => `${w.start}–${w.end}`).join(", ");
  const [lon, lat] = step.location || [null, null];
  return h("article", { class: `card ${isNext ? "next" : ""} ${step.priority || ""}`, "data-step": step.id },
    h("div", { class: "top" },
      h("span", { class: "time" }, step.start),
      step.priority && step.priority !== "routine" ? h("span", { class: `badge ${step.priority}` }, t(`priority.${step.priority}`)) : null,
      late ? h("span", { class: "badge late" }, t("crew.late_by", { min: Math.round((nowS() - step.start_s) / 60) })) : null,
      known.outcome === "arrived" ? h("span", { class: "badge here" }, t("crew.here_since", { time: clock(known.arrival) })) : null,
      known.waiting ? h("span", { class: "badge waiting" }, t("crew.waiting")) : null),
    h("h3", { class: "address" }, step.address || step.id),
    h("p", { class: "facts" }, details(step).join(" · ")),
    windows ? h("p", { class: "window" }, t("crew.window", { windows })) : null,
    step.notes ? h("p", { class: "notes" }, step.notes) : null,
    // The next stop has every control; a later one (done out of order now and then) the essentials.
    h("div", { class: "links" },
      lat != null ? h("a", { class: "button", href: `geo:${lat},${lon}?q=${lat},${lon}(${encodeURIComponent(step.address || step.id)})` }, t("crew.navigate")) : null,
      lat != null && isNext ? h("a", { class: "button", rel: "noreferrer", target: "_blank", href: `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=18/${lat}/${lon}` }, t("crew.map")) : null,
      isNext ? null : recordButton(step),
      step.contact ? h("a", { class: "button call", href: `tel:${step.contact.replace(/[^0-9+]/g, "")}` }, t("crew.call", { contact: step.contact })) : null),
    isNext ? h("div", { class: "actions" },
      known.outcome !== "arrived" ? h("button", { type: "button", class: "big", onclick: () => record(step, "arrived", {}) }, t("crew.arrived")) : null,
      recordButton(step)) : null);
}

function recordButton(step) {
  return h("button", { type: "button", class: "big primary", "data-action": "record", onclick: () => openDialog(step) }, t("crew.record"));
}

function recordedList(day, local) {
  const closed = [...day.recorded, ...day.steps].filter((s) => RECORDED_KINDS.has(s.kind) && FINAL.has(outcomeOf(s, local).outcome));
  if (!closed.length) return null;
  return h("details", { class: "recorded" },
    h("summary", {}, t("crew.recorded_title", { n: closed.length })),
    h("ul", {}, closed.map((s) => {
      const known = outcomeOf(s, local);
      return h("li", { class: known.outcome },
        h("strong", {}, t(`outcome.${known.outcome}`)), " ", s.address || s.id,
        known.waiting ? h("span", { class: "badge waiting" }, t("crew.waiting")) : null);
    })));
}

function footer(day) {
  return h("footer", {},
    h("button", { type: "button", class: "big", onclick: () => refresh() }, t("crew.refresh")),
    day.expires_at ? h("p", {}, t("crew.expires", { when: new Date(day.expires_at).toLocaleString(state.i18n.lang) })) : null);
}

// -- recording ----------------------------------------------------------------------------------

function stepper(name, value, labelKey) {
  const input = h("input", { type: "number", inputmode: "numeric", min: "0", max: "100000", name, value: String(value), "aria-label": t(labelKey) });
  const change = (by) => () => { input.value = String(Math.max(0, (parseInt(input.value, 10) || 0) + by)); };
  return h("label", { class: "stepper" }, h("span", {}, t(labelKey)),
    h("span", { class: "row" },
      h("button", { type: "button", class: "step", onclick: change(-1), "aria-label": "-1" }, "−"),
      input,
      h("button", { type: "button", class: "step", onclick: change(1), "aria-label": "+1" }, "+")));
}

function openDialog(step) {
  const dialog = document.getElementById("outcome");
  const people = stepper("people", step.people ?? 0, "crew.people_sampled");
  const tubes = stepper("tubes", (step.needs && step.needs.tubes) ?? 0, "crew.tubes_used");
  const note = h("textarea", { name: "note", rows: "2", maxlength: "2000", placeholder: t("crew.note_placeholder") });
  const values = () => ({
    people: parseInt(people.querySelector("input").value, 10) || 0,
    tubes: parseInt(tubes.querySelector("input").value, 10) || 0,
    note: note.value.trim(),
  });
  const choose = (outcome) => () => {
    dialog.close();
    record(step, outcome, values());
  };
  dialog.replaceChildren(h("form", { method: "dialog", class: "sheet" },
    h("h2", {}, step.address || step.id),
    h("div", { class: "counts" }, people, tubes),
    h("label", { class: "note" }, h("span", {}, t("crew.note")), note),
    h("button", { type: "button", class: "big done", "data-outcome": "done", onclick: choose("done") }, t("crew.record_done")),
    h("div", { class: "others" }, OTHER_OUTCOMES.map((o) =>
      h("button", { type: "button", class: "big", "data-outcome": o, onclick: choose(o) }, t(`outcome.${o}`)))),
    h("button", { type: "button", class: "big cancel", onclick: () => dialog.close() }, t("crew.cancel"))));
  dialog.showModal();
}

function record(shown, outcome, { people = 0, tubes = 0, note = "" }) {
  const day = state.day;
  // the step as the page knows it now: the card may have been drawn before the last read
  const step = [...day.steps, ...day.recorded].find((s) => s.id === shown.id) || shown;
  const at = nowS();
  const body = { vehicle_id: day.vehicle_id, step_id: step.id, outcome, at };
  if (outcome === "arrived") {
    body.arrival = at;
  } else {
    const arrival = arrivalOf(step, localRecords());
    if (arrival != null && arrival <= at) body.arrival = arrival;
    body.departure = at;
  }
  if (outcome === "done") Object.assign(body, { people_sampled: people, tubes_used: tubes });
  if (note) body.note = note;
  state.outbox.add({ path: `/v1/plans/${day.plan_id}/events`, body, step: step.id, planId: day.plan_id, token: state.key });
  render();
  send();
}

async function send() {
  // The browser knows it has no network: keep the records (sent on the "online" event or the next
  // round) rather than start calls that cannot land (navigator.onLine false is always right).
  if (navigator.onLine === false) {
    setOnline(false);
    render();
    return;
  }
  const result = await state.outbox.flush((item) => (item.token === state.key ? state.api : new Api(item.token)));
  if (result.stopped === "offline") setOnline(false);
  else if (result.stopped === "unauthorized") state.problem = t("crew.link_invalid");
  else if (result.stopped === null) setOnline(true);
  if (result.sent) await refresh();
  else render();
}

// -- reading the day ----------------------------------------------------------------------------

function setOnline(online) {
  state.online = online;
}

function accept(day) {
  state.day = day;
  localStorage.setItem(dayStore(), JSON.stringify(day));
  if (day.version_id && !localStorage.getItem(seenStore())) localStorage.setItem(seenStore(), day.version_id);
}

async function refresh() {
  const asked = Date.now();
  try {
    const { data } = await state.api.get("/v1/crew/day");
    setOnline(true);
    state.problem = null;
    accept(data);
    state.outbox.prune(asked);
  } catch (error) {
    if (error instanceof Offline) setOnline(false);
    else if (error instanceof ApiError && error.status === 401) state.problem = `${t("crew.link_invalid")} (${describe(error)})`;
    else state.problem = describe(error);
  }
  render();
}

async function switchLanguage(lang) {
  I18n.remember(lang);
  state.i18n = await I18n.load(lang);
  render();
}

async function start() {
  state.key = takeKey();
  state.i18n = await I18n.load();
  state.api = new Api(state.key);
  const cached = state.key && localStorage.getItem(dayStore());
  if (cached) state.day = JSON.parse(cached);
  render();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/crew/sw.js", { scope: "/crew/" }).catch(() => {
      // without a secure context (plain http on a LAN) the page still works while it stays open
    });
  }
  if (!state.key) return;
  await refresh();
  await send();
  window.addEventListener("online", () => send().then(refresh));
  window.addEventListener("offline", () => { setOnline(false); render(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  setInterval(() => { if (!document.hidden && !state.outbox.flushing) refresh(); }, REFRESH_MS);
  setInterval(() => { if (state.outbox.waiting().length) send(); }, SEND_MS);
}

start();
