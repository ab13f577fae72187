// The page of `baton ui`: a router over the URL (every view and every step has its own
// address), the theme, keyboard navigation, and the token form of token mode.

import { ApiError, setToken } from "./api";
import { showPools } from "./pools";
import { showRun } from "./run";
import { showRuns } from "./runs";
import { h, clear } from "./util";
import { showWorkflow, showWorkflows } from "./workflows";

export interface View {
  /** Stops what the view follows (its event stream) when another view replaces it. */
  stop?: () => void;
  /** Keys the view handles (j/k/Enter...); true when it handled the key. */
  key?: (event: KeyboardEvent) => boolean;
}

let current: View = {};

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void route();
}

async function route(): Promise<void> {
  current.stop?.();
  current = {};
  const main = document.getElementById("main")!;
  clear(main);
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a[data-section]")) {
    link.classList.toggle("active", link.dataset.section === (parts[0] || "runs"));
  }
  try {
    if (parts[0] === "runs" && parts.length === 3) {
      current = await showRun(main, parts[1], parts[2]);
    } else if (parts[0] === "workflows" && parts.length === 3) {
      current = await showWorkflow(main, parts[1], parts[2]);
    } else if (parts[0] === "workflows") {
      current = await showWorkflows(main);
    } else if (parts[0] === "pools") {
      current = await showPools(main);
    } else {
      current = await showRuns(main);
    }
  } catch (error) {
    showError(main, error);
  }
}

export function showError(main: HTMLElement, error: unknown): void {
  clear(main);
  if (error instanceof ApiError && error.status === 401) {
    const input = h("input", { type: "password", placeholder: "bearer token", "data-testid": "token" });
    main.append(
      h(
        "form",
        {
          class: "card token-form",
          onsubmit: (event: Event) => {
            event.preventDefault();
            setToken(input.value.trim());
            void route();
          },
        },
        h("h2", {}, "Sign in with your Kubernetes token"),
        h("p", {}, error.message),
        h("p", { class: "muted" }, "kubectl create token <service-account> prints one; it stays in this tab only."),
        input,
        h("button", { type: "submit" }, "Sign in"),
      ),
    );
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  main.append(h("div", { class: "error-box", "data-testid": "page-error" }, message));
}

// -- theme ----------------------------------------------------------------------------------------

const THEME_KEY = "baton-theme";

function applyTheme(theme: string): void {
  document.documentElement.dataset.theme = theme;
  const button = document.getElementById("theme");
  if (button) button.textContent = theme === "dark" ? "☀ light" : "☾ dark";
}

export function toggleTheme(): void {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
}

function initialTheme(): string {
  const stored = localStorage.getItem(THEME_KEY);
  if (stored === "light" || stored === "dark") return stored;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

// -- keys -----------------------------------------------------------------------------------------

let pendingG = false;

function onKey(event: KeyboardEvent): void {
  const target = event.target as HTMLElement;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target.closest("input, textarea, select")) {
    if (event.key === "Escape") target.blur();
    return;
  }
  if (pendingG) {
    pendingG = false;
    const to = { r: "/runs", w: "/workflows", p: "/pools" }[event.key];
    if (to) {
      navigate(to);
      event.preventDefault();
    }
    return;
  }
  if (current.key?.(event)) {
    event.preventDefault();
    return;
  }
  switch (event.key) {
    case "g":
      pendingG = true;
      break;
    case "t":
      toggleTheme();
      break;
    case "/": {
      const search = document.querySelector<HTMLInputElement>("[data-search]");
      if (search) {
        search.focus();
        event.preventDefault();
      }
      break;
    }
    case "?":
      document.getElementById("help")!.classList.toggle("hidden");
      break;
    case "Escape":
      document.getElementById("help")!.classList.add("hidden");
      break;
  }
}

function start(): void {
  applyTheme(initialTheme());
  document.getElementById("theme")!.addEventListener("click", toggleTheme);
  document.addEventListener("keydown", onKey);
  document.addEventListener("click", (event) => {
    const link = (event.target as Element).closest("a");
    if (!link || link.target || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", () => void route());
  void route();
}

start();
