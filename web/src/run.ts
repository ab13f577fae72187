// A run: its graph and timeline, each step's attempts, input, output and logs, its history,
// signals, updates, locks, queries, conditions and Events, and the actions (signal, update,
// cancel, suspend, resume, redrive), each sent with the user's own rights; a refusal is shown as
// the API server said it.
// The step shown is in the URL (`?step=KEY`), and so is the tab (`&tab=timeline`).

import { ApiError, follow, get, getText, post, streamText } from "./api";
import { drawGraph, GraphData, GraphNode, waitsForLock } from "./graph";
import { drawTimeline, TimelineData } from "./gantt";
import { View } from "./main";
import { RunSummary, runDuration, runPath } from "./runs";
import { append, clear, debounce, duration, h, json, phaseBadge } from "./util";

interface Attempt {
  attempt: number;
  idempotencyKey: string;
  started?: number;
  ended?: number;
  outcome?: string;
  error?: { type: string; message?: string };
}

interface Detail {
  run: { metadata: any; spec: any; status: any };
  summary: RunSummary & { generation?: number };
  definition: any;
  graph: GraphData;
  timeline: TimelineData;
  attempts: Record<string, Attempt[]>;
  history: { at: number; time: string; type: string; step: string | null; detail: string; event: any }[];
  children: RunSummary[];
  events: { type: string; reason: string; message: string; count: number; time: string }[];
  pods: { name: string; key: string; attempt: number; phase: string }[];
  signals: { sent: { index: number; name: string; payload?: unknown; taken: boolean }[]; accepted: string[] };
  updates: {
    sent: { index: number; id: string; name: string; payload?: unknown; outcome?: string; output?: unknown; reason?: string; at?: string }[];
    accepted: string[];
  };
  locks: { step: string; kind: string; name: string; held: boolean; message: string }[];
  outputRefs: string[];
  problems: string[];
}

const TABS = ["graph", "timeline", "history", "signals", "events", "definition"] as const;
type Tab = (typeof TABS)[number];
const FINISHED = new Set(["Succeeded", "Failed", "Compensated", "CompensationFailed", "Cancelled", "TimedOut", "ContinuedAsNew"]);
const LOG_KEPT = 512 * 1024;
/** Characters of a followed log kept on the page: its latest half megabyte. */

export async function showRun(main: HTMLElement, namespace: string, name: string): Promise<View> {
  const base = `/api/runs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  let detail = await get<Detail>(base);
  const unfolded = new Set<string>();
  const params = () => new URLSearchParams(location.search);
  const state = () => ({
    step: params().get("step"),
    tab: (TABS as readonly string[]).includes(params().get("tab") || "") ? (params().get("tab") as Tab) : "graph",
  });
  const setUrl = (step: string | null, tab: Tab) => {
    const next = new URLSearchParams();
    if (step) next.set("step", step);
    if (tab !== "graph") next.set("tab", tab);
    history.pushState(null, "", `${runPath({ namespace, name })}${next.toString() ? `?${next}` : ""}`);
    render();
  };
  const select = (key: string | null) => setUrl(key, state().tab);

  const header = h("div", { class: "run-header" });
  const actions = h("div", { class: "actions card" });
  const tabs = h("div", { class: "tabs", role: "tablist" });
  const content = h("div", { class: "tab-content" });
  const panel = h("aside", { class: "step-panel", "data-testid": "step-panel" });
  const result = h("div", { class: "action-result", "data-testid": "action-result", role: "status" });
  main.append(h("section", { class: "run" }, header, actions, result, h("div", { class: "run-body" }, h("div", { class: "run-main" }, tabs, content), panel)));

  /** Ask the server to act on the run; true when it accepted. */
  const act = async (action: string, body: unknown = {}): Promise<boolean> => {
    result.className = "action-result pending";
    result.textContent = `${action}…`;
    try {
      const answer = await post<{ message: string }>(`${base}/${action}`, body);
      result.className = "action-result ok";
      result.textContent = answer.message;
      await reload();
      return true;
    } catch (error) {
      result.className = "action-result refused";
      result.textContent =
        error instanceof ApiError ? `refused (${error.status}): ${error.message}` : String(error);
      return false;
    }
  };
  // What the user typed into the signal and update forms, until it is sent. The run moving on
  // re-renders the forms, which must neither drop a half-typed payload nor send without it.
  const drafts = new Map<"signal" | "update", { name?: string; payload?: string }>();
  let actionsShown = "";

  const renderHeader = () => {
    const { metadata, spec, status } = detail.run;
    const run = detail.summary;
    clear(header);
    append(header, [
      h(
        "div",
        { class: "title-row" },
        h("h1", { "data-testid": "run-name" }, run.name),
        h("span", { "data-testid": "run-phase" }, phaseBadge(run.phase)),
        status.suspended ? h("span", { class: "tag" }, "suspended") : null,
        spec.cancel && !FINISHED.has(run.phase) ? h("span", { class: "tag" }, "cancel requested") : null,
      ),
      h(
        "dl",
        { class: "facts" },
        fact("namespace", metadata.namespace),
        fact(
          "workflow",
          run.workflow === "(inline)"
            ? run.workflow
            : h("a", { href: `/workflows/${encodeURIComponent(metadata.namespace)}/${encodeURIComponent(run.workflow)}` }, run.workflow + (status.workflowGeneration ? ` (generation ${status.workflowGeneration})` : "")),
        ),
        fact("started", status.startedAt || "not yet"),
        fact("duration", runDuration(run)),
        fact("progress", run.progress),
        fact("step", run.step),
        metadata.annotations?.["baton.dev/parent-uid"] || metadata.labels?.["baton.dev/parent-uid"]
          ? fact("parent", parentLink(metadata))
          : null,
        status.continuedFrom ? fact("continues", lineageLink(metadata.namespace, status.continuedFrom, "continued-from")) : null,
        status.continuedAs ? fact("continued as", lineageLink(metadata.namespace, status.continuedAs, "continued-as")) : null,
      ),
      run.error ? h("div", { class: "error-box", "data-testid": "run-error" }, run.error) : null,
      ...detail.locks.filter((l) => !l.held).map((l) => h("div", { class: "info-box", "data-testid": "lock-waiting" }, `${l.step}: ${l.message}`)),
      ...detail.problems.map((p) => h("div", { class: "warning-box" }, p)),
    ]);
  };

  const renderActions = () => {
    const { spec, status } = detail.run;
    const phase = detail.summary.phase;
    const signalPrefill = detail.graph.nodes.find(waitsForSignal)?.signal || "";
    const updates = detail.updates.accepted;
    // Rebuilt only when what the actions show changed: a rebuild takes the focus from a field
    // being typed into.
    const shown = JSON.stringify([detail.signals.accepted, signalPrefill, updates, phase, spec.cancel, spec.suspend, status.suspended]);
    if (shown === actionsShown) return;
    actionsShown = shown;
    clear(actions);
    // A signal or an update: a name (the workflow's own offered), an optional JSON payload.
    const messageForm = (what: "signal" | "update", names: string[], prefill: string, example: string, disabled: boolean) => {
      const draft = drafts.get(what) ?? {};
      const nameInput = h("input", {
        list: `${what}-names`,
        placeholder: `${what} name`,
        "data-testid": `${what}-name`,
        oninput: () => drafts.set(what, { ...drafts.get(what), name: nameInput.value }),
      });
      nameInput.value = draft.name ?? prefill;
      const payload = h("textarea", {
        rows: 1,
        placeholder: `${example}  (JSON payload, optional)`,
        "data-testid": `${what}-payload`,
        oninput: () => drafts.set(what, { ...drafts.get(what), payload: payload.value }),
      });
      payload.value = draft.payload ?? "";
      const send = (event: Event) => {
        event.preventDefault();
        let body: Record<string, unknown> = { name: nameInput.value };
        if (payload.value.trim()) {
          try {
            body = { ...body, payload: JSON.parse(payload.value) };
          } catch (error) {
            result.className = "action-result refused";
            result.textContent = `payload: not JSON (${(error as Error).message})`;
            return;
          }
        }
        void act(what, body).then((accepted) => {
          if (!accepted) return;
          // Sent, so no longer a draft. The reload inside `act` may already have rebuilt the
          // forms from it: rebuild them again rather than empty inputs that may be detached.
          drafts.delete(what);
          actionsShown = "";
          renderActions();
        });
      };
      return h(
        "form",
        { class: "signal-form", onsubmit: send },
        h("datalist", { id: `${what}-names` }, ...names.map((n) => h("option", { value: n }))),
        nameInput,
        payload,
        h("button", { type: "submit", "data-testid": `send-${what}`, disabled }, `Send ${what}`),
      );
    };
    actions.append(
      messageForm("signal", detail.signals.accepted, signalPrefill, '{"ok": true}', false),
      // A workflow without update handlers takes none: no form to send one.
      updates.length ? messageForm("update", updates, updates.length === 1 ? updates[0] : "", '{"sku": "A-1"}', FINISHED.has(phase)) : "",
      h(
        "div",
        { class: "buttons" },
        h("button", { "data-testid": "cancel", disabled: FINISHED.has(phase) || spec.cancel, onclick: () => confirm(`Cancel ${name}?`) && void act("cancel") }, "Cancel"),
        status.suspended || spec.suspend
          ? h("button", { "data-testid": "resume", onclick: () => void act("resume") }, "Resume")
          : h("button", { "data-testid": "suspend", disabled: FINISHED.has(phase), onclick: () => void act("suspend") }, "Suspend"),
        h("button", { "data-testid": "redrive", disabled: phase !== "Failed", onclick: () => void act("redrive") }, "Redrive"),
      ),
    );
  };

  const renderTabs = () => {
    const { tab } = state();
    clear(tabs);
    for (const t of TABS) {
      tabs.append(
        h("button", { role: "tab", class: t === tab ? "active" : "", "aria-selected": t === tab, "data-tab": t, onclick: () => setUrl(state().step, t) }, t),
      );
    }
  };

  const renderContent = () => {
    const { tab, step } = state();
    clear(content);
    const fold = (key: string) => {
      if (unfolded.has(key)) unfolded.delete(key);
      else unfolded.add(key);
      renderContent();
    };
    if (tab === "graph") {
      content.append(
        drawGraph(detail.graph, {
          selected: step,
          unfolded,
          onSelect: select,
          onFold: fold,
          childHref: (child) => runPath(child),
        }),
      );
    } else if (tab === "timeline") {
      content.append(drawTimeline(detail.timeline, unfolded, select));
      const groups = detail.graph.nodes.filter((n) => n.forEach);
      if (groups.length) {
        content.append(
          h("div", { class: "buttons" }, ...groups.map((g) => h("button", { onclick: () => fold(g.id) }, `${unfolded.has(g.id) ? "fold" : "unfold"} ${g.label}`))),
        );
      }
    } else if (tab === "history") {
      content.append(
        table(
          ["+time", "event", "step", "detail"],
          detail.history.map((e) => [
            h("span", { title: e.time }, `+${duration(e.at)}`),
            e.type,
            e.step ? h("a", { href: `?step=${encodeURIComponent(e.step)}`, onclick: (ev: Event) => { ev.preventDefault(); select(e.step); } }, e.step) : "",
            e.detail,
          ]),
          "history",
        ),
      );
    } else if (tab === "signals") {
      const { status } = detail.run;
      content.append(
        h("h3", {}, "Signals sent"),
        table(["#", "name", "payload", "taken"], detail.signals.sent.map((sg) => [String(sg.index), sg.name, h("code", {}, JSON.stringify(sg.payload ?? null)), sg.taken ? "yes" : "pending"]), "signals"),
        h("p", { class: "muted" }, `accepted: ${detail.signals.accepted.join(", ") || "none"}`),
        h("h3", {}, "Waiting for"),
        h("ul", {}, ...detail.graph.nodes.filter(waitsForSignal).map((n) => h("li", {}, `${n.id} waits for signal "${n.signal}"`))),
        h("h3", {}, "Updates"),
        table(
          ["#", "id", "name", "payload", "answer", "result"],
          detail.updates.sent.map((u) => [
            String(u.index),
            u.id,
            u.name,
            h("code", {}, JSON.stringify(u.payload ?? null)),
            u.outcome || "pending",
            u.reason ? u.reason : u.output !== undefined ? h("code", {}, JSON.stringify(u.output)) : "",
          ]),
          "updates",
        ),
        h("p", { class: "muted" }, `handlers: ${detail.updates.accepted.join(", ") || "none"}`),
        h("h3", {}, "Locks"),
        table(["step", "lock", "state"], detail.locks.map((l) => [l.step, `${l.kind} ${l.name}`, l.message]), "locks"),
        h("h3", {}, "Queries"),
        table(["name", "value"], Object.entries(status.queries || {}).map(([k, v]) => [k, h("code", {}, JSON.stringify(v))]), "queries"),
        h("h3", {}, "Conditions"),
        table(["type", "status", "reason", "message", "since"], (status.conditions || []).map((c: any) => [c.type, c.status, c.reason || "", c.message || "", c.lastTransitionTime || ""]), "conditions"),
      );
    } else if (tab === "events") {
      content.append(table(["time", "type", "reason", "message", "count"], detail.events.map((e) => [e.time || "", e.type, e.reason, e.message, String(e.count)]), "events"));
    } else {
      content.append(h("pre", { class: "code" }, json(detail.definition)));
    }
  };

  const renderPanel = () => {
    const { step } = state();
    clear(panel);
    panel.classList.toggle("open", !!step);
    if (!step) {
      panel.append(h("p", { class: "muted" }, "Select a step (click a node, or Tab and Enter) to see its attempts, input, output and logs."));
      return;
    }
    const status = detail.run.status;
    const entry = (status.steps || {})[step] || (status.compensations || []).find((c: any) => c.key === step) || {};
    const node = detail.graph.nodes.find((n) => n.id === step);
    const holder = detail.graph.nodes.find((n) => n.forEach?.items.some((item) => item.key === step));
    const kind = node?.kind || holder?.forEach?.kind || (step.endsWith("/compensate") ? "compensation" : "");
    const attempts = detail.attempts[step] || [];
    append(panel, [
      h("div", { class: "title-row" }, h("h2", { "data-testid": "step-title" }, step), h("button", { class: "close", title: "close (Esc)", onclick: () => select(null) }, "×")),
      h("dl", { class: "facts" }, fact("kind", kind), fact("phase", phaseBadge(entry.phase || "Pending")), fact("attempts", String(entry.attempts || 0)), fact("started", entry.startedAt || ""), fact("finished", entry.finishedAt || ""), entry.nextAttemptAt ? fact("next attempt", entry.nextAttemptAt) : null, entry.wakeAt ? fact("wakes", entry.wakeAt) : null),
      entry.error ? h("div", { class: "error-box" }, `${entry.error.type}: ${entry.error.message || ""}`) : null,
      node?.child ? h("p", {}, "child run: ", h("a", { href: runPath(node.child), "data-testid": "panel-child-link" }, node.child.name), " ", phaseBadge(node.child.phase)) : null,
      attempts.length
        ? h(
            "div",
            {},
            h("h3", {}, "Attempts"),
            h(
              "ol",
              { class: "attempts", "data-testid": "attempts" },
              ...attempts.map((a) =>
                h(
                  "li",
                  { class: `attempt outcome-${a.outcome || "running"}` },
                  h("b", {}, `#${a.attempt}`),
                  ` ${a.started !== undefined ? `+${duration(a.started)}` : ""} → ${a.ended !== undefined ? `+${duration(a.ended)}` : "…"} `,
                  h("span", { class: "outcome" }, a.outcome || "running"),
                  a.error ? h("div", { class: "error-text" }, `${a.error.type}: ${a.error.message || ""}`) : null,
                  h("div", {}, h("span", { class: "muted" }, "idempotency key "), h("code", { class: "small" }, a.idempotencyKey)),
                ),
              ),
            ),
          )
        : null,
      entry.request !== undefined && entry.request !== null ? h("div", {}, h("h3", {}, "Input (the rendered request)"), h("pre", { class: "code" }, json(entry.request))) : null,
      outputBlock("Output", entry.output ?? entry.stepOutput),
      kind === "job" ? logsBlock(step) : null,
    ]);
  };

  const outputBlock = (title: string, value: any): HTMLElement | null => {
    if (value === undefined || value === null) return null;
    if (value && typeof value === "object" && Object.keys(value).length === 1 && typeof value.$ref === "string") {
      const box = h("div", {}, h("h3", {}, title));
      const ref = value.$ref as string;
      const button = h("button", { "data-testid": "load-output" }, `Load offloaded output (${ref})`);
      button.addEventListener("click", async () => {
        try {
          const answer = await get<{ output: unknown }>(`${base}/outputs/${encodeURIComponent(ref)}`);
          button.replaceWith(h("pre", { class: "code", "data-testid": "output" }, json(answer.output)));
        } catch (error) {
          button.replaceWith(h("div", { class: "error-box" }, String((error as Error).message)));
        }
      });
      box.append(button);
      return box;
    }
    return h("div", {}, h("h3", {}, title), h("pre", { class: "code", "data-testid": "output" }, json(value)));
  };

  // A followed log keeps its box across re-renders of the panel (the run changes while its Job
  // step runs); it stops when another log is shown, another step is opened or the page is left.
  let following: { step: string; box: HTMLElement; stop: () => void } | null = null;
  const stopFollowing = () => {
    following?.stop();
    following = null;
  };
  const logsBlock = (step: string): HTMLElement => {
    if (following && following.step === step) return following.box;
    stopFollowing();
    const pods = detail.pods.filter((p) => p.key === step);
    const box = h("div", {}, h("h3", {}, "Pod logs"));
    const out = h("pre", { class: "code logs", "data-testid": "logs" }, "");
    const query = (attempt?: number, follow = false) => {
      const q = new URLSearchParams({ key: step });
      if (attempt) q.set("attempt", String(attempt));
      if (follow) q.set("follow", "1");
      return q;
    };
    const load = async (attempt?: number) => {
      stopFollowing();
      out.textContent = "loading…";
      try {
        const answer = await getText(`${base}/logs?${query(attempt)}`);
        out.textContent = `==> ${answer.pod} <==\n${answer.text || "(empty log)"}`;
      } catch (error) {
        out.textContent = (error as Error).message;
      }
    };
    const live = (attempt?: number) => {
      stopFollowing();
      out.textContent = "following…";
      const stop = streamText(
        `${base}/logs?${query(attempt, true)}`,
        (pod) => (out.textContent = `==> ${pod} (following) <==\n`),
        (text) => {
          out.textContent = (out.textContent + text).slice(-LOG_KEPT);
          out.scrollTop = out.scrollHeight;
        },
        (error) => {
          out.textContent += error ? `\n${error.message}` : "\n(the log ended)";
          following = null;
        },
      );
      following = { step, box, stop };
    };
    const attempts = pods.length ? pods.map((p) => ({ attempt: p.attempt as number | undefined, label: `attempt ${p.attempt}: pod ${p.name} (${p.phase})`, title: `pod ${p.name}` })) : [{ attempt: undefined, label: "show log", title: "the step's latest pod" }];
    box.append(
      h(
        "div",
        { class: "buttons" },
        ...attempts.flatMap((a) => [
          h("button", { title: a.title, onclick: () => void load(a.attempt) }, a.label),
          h("button", { title: `follow the log of ${a.title} as it is written`, "data-testid": "follow-log", onclick: () => live(a.attempt) }, "follow"),
        ]),
      ),
      out,
    );
    return box;
  };

  const render = () => {
    renderHeader();
    renderActions();
    renderTabs();
    renderContent();
    renderPanel();
  };
  const reload = async () => {
    try {
      detail = await get<Detail>(base);
      renderHeader();
      renderActions();
      renderContent();
      renderPanel();
    } catch (error) {
      result.className = "action-result refused";
      result.textContent = (error as Error).message;
    }
  };
  render();
  const refresh = debounce(() => void reload(), 400);
  const stop = follow(
    "/api/runs/events",
    (message) => {
      const mine = (list: RunSummary[] | undefined) => (list || []).some((r) => r.namespace === namespace && (r.name === name || detail.children.some((c) => c.name === r.name)));
      // `hello` opens every connection: what changed between the page's read and the stream
      // starting (or while it reconnected) sent no message, so read again.
      if (message.hello || message.reset || mine(message.runs) || mine(message.deleted)) refresh();
    },
    () => undefined,
  );
  window.addEventListener("popstate", render);
  return {
    stop: () => {
      stop();
      stopFollowing();
      window.removeEventListener("popstate", render);
    },
    key: (event) => {
      if (event.key === "Escape" && state().step) {
        select(null);
        return true;
      }
      const index = TABS.indexOf(state().tab);
      if (event.key === "]" || event.key === "[") {
        const next = TABS[(index + (event.key === "]" ? 1 : TABS.length - 1)) % TABS.length];
        setUrl(state().step, next);
        return true;
      }
      const digit = Number(event.key);
      if (digit >= 1 && digit <= TABS.length) {
        setUrl(state().step, TABS[digit - 1]);
        return true;
      }
      return false;
    },
  };
}

function waitsForSignal(node: GraphNode): boolean {
  return node.phase === "Waiting" && !!node.signal && !waitsForLock(node);
}

function fact(label: string, value: string | Node | null | undefined): HTMLElement[] {
  return [h("dt", {}, label), h("dd", {}, value ?? "")] as unknown as HTMLElement[];
}

/** A link to another run of the same continue-as-new lineage (always the same namespace). */
function lineageLink(namespace: string, name: string, testid: string): Node {
  return h("a", { href: runPath({ namespace, name }), "data-testid": testid }, name);
}

function parentLink(metadata: any): Node | string {
  const owner = (metadata.ownerReferences || []).find((o: any) => o.kind === "WorkflowRun");
  return owner ? h("a", { href: runPath({ namespace: metadata.namespace, name: owner.name }), "data-testid": "parent-link" }, owner.name) : "";
}

export function table(headers: string[], rows: (string | Node)[][], testid: string): HTMLElement {
  return h(
    "table",
    { class: "grid", "data-testid": testid },
    h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, ...(rows.length ? rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c)))) : [h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "none"))])),
  );
}
