// Violation texts in the page's language, made from the violation's code (its kind) and the plan's
// own figures (the step's arrival and windows, the route's end). The server's `message` is English
// prose: it is shown only where no text exists for a code (and as a tooltip).

function stepOf(doc, id) {
  for (const route of (doc && doc.routes) || []) {
    const step = route.steps.find((x) => x.id === id && x.kind !== "start" && x.kind !== "end");
    if (step) return step;
  }
  return null;
}

export function violationText(t, violation, doc) {
  const key = `violation_text.${violation.kind}`;
  const step = violation.step_id ? stepOf(doc, violation.step_id) : null;
  const route = ((doc && doc.routes) || []).find((r) => r.vehicle_id === violation.vehicle_id);
  const windows = step && step.time_windows && step.time_windows.length
    ? step.time_windows.map((w) => `${w.start}–${w.end}`).join(", ") : "–";
  const text = t(key, {
    step: violation.step_id || "", vehicle: violation.vehicle_id, arrival: step ? step.arrival : "–", window: windows,
    end: route ? route.end : "–",
  });
  return text === key ? violation.message : text;
}
