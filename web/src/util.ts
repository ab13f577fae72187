// Small DOM and formatting helpers shared by the views.

export type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;
export type Child = Node | string | number | null | undefined | false | Child[];

/** An element with attributes (`on*` are listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes and children. */
export function s(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag) as SVGElement;
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el: Element, attrs: Attrs): void {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value as EventListener);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

export function append(el: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Seconds as `1h02m`, `3m20s`, `4.2s`, `120ms`. */
export function duration(seconds: number): string {
  if (!isFinite(seconds)) return "";
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  const d = Math.floor(whole / 86400);
  const hh = Math.floor((whole % 86400) / 3600);
  const mm = Math.floor((whole % 3600) / 60);
  const ss = whole % 60;
  if (d) return `${d}d${hh ? `${hh}h` : ""}`;
  if (hh) return `${hh}h${String(mm).padStart(2, "0")}m`;
  if (mm) return `${mm}m${String(ss).padStart(2, "0")}s`;
  return `${ss}s`;
}

export function parseTime(text: string | null | undefined): number | null {
  if (!text) return null;
  const at = Date.parse(text);
  return isNaN(at) ? null : at / 1000;
}

/** How long ago an RFC 3339 time was, kubectl-style. */
export function age(text: string | null | undefined): string {
  const at = parseTime(text);
  return at === null ? "" : duration(Date.now() / 1000 - at);
}

/** The CSS class of a phase (run or step). */
export function phaseClass(phase: string): string {
  return `phase phase-${(phase || "Pending").toLowerCase()}`;
}

export function phaseBadge(phase: string): HTMLElement {
  return h("span", { class: phaseClass(phase), "data-phase": phase }, phase || "Pending");
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Calls `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn: () => void, ms: number): () => void {
  let timer: number | undefined;
  return () => {
    if (timer !== undefined) window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}
