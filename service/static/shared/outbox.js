// Records made on a phone, kept until the server has them: "nothing is lost, nothing twice".
//
// Each record gets its idempotency key when it is made, and is kept in localStorage (it survives
// a reload, a closed tab, a flat battery) until the server answers it. A record sent again after
// a lost answer is stored once by the server (same key). Records are sent in the order they were
// made (an arrival before its outcome). A record the server refuses (403, 404, 409, 422) is kept
// as failed, with the reason, for the crew to see; 401 (a revoked or expired link) stops sending.
import { ApiError, Offline, describe } from "./api.js";

export class Outbox {
  constructor(name) {
    this.name = `doorstep.outbox.${name}`;
  }

  all() {
    try {
      return JSON.parse(localStorage.getItem(this.name) || "[]");
    } catch {
      return [];
    }
  }

  save(items) {
    localStorage.setItem(this.name, JSON.stringify(items));
  }

  add(item) {
    const entry = { ...item, key: item.key || newKey(), made: Date.now(), state: "waiting", error: null };
    this.save([...this.all(), entry]);
    return entry;
  }

  drop(key) {
    this.save(this.all().filter((item) => item.key !== key));
  }

  mark(key, changes) {
    this.save(this.all().map((item) => (item.key === key ? { ...item, ...changes } : item)));
  }

  // Forgets the records sent before ``since`` (ms): a page that read the server's state after
  // that shows them from there. Until then a sent record still shows, so nothing flickers back.
  prune(since) {
    this.save(this.all().filter((item) => !(item.state === "sent" && item.sentAt < since)));
  }

  waiting() {
    return this.all().filter((item) => item.state === "waiting");
  }

  // Sends the waiting records, oldest first, each with ``apiFor(record)`` (an Api: a record goes
  // with the key it was made with); stops at the first one that cannot be sent now.
  // Returns {sent, stopped: null | "busy" | "offline" | "unauthorized"}.
  async flush(apiFor) {
    if (this.flushing) return { sent: 0, stopped: "busy" };
    this.flushing = true;
    let sent = 0;
    try {
      for (const item of this.waiting()) {
        try {
          await apiFor(item).post(item.path, item.body, { "Idempotency-Key": item.key });
          this.mark(item.key, { state: "sent", sentAt: Date.now() });
          sent += 1;
        } catch (error) {
          if (error instanceof Offline) return { sent, stopped: "offline" };
          if (error instanceof ApiError && error.status === 401) return { sent, stopped: "unauthorized" };
          if (error instanceof ApiError && error.status < 500 && error.status !== 429) {
            this.mark(item.key, { state: "failed", error: describe(error) });
            continue;
          }
          return { sent, stopped: "offline" }; // the server is in trouble: try again later
        }
      }
      return { sent, stopped: null };
    } finally {
      this.flushing = false;
    }
  }
}

function newKey() {
  if (crypto.randomUUID) return `phone-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `phone-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
