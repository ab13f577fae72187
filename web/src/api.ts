// The JSON API of `baton ui`. In token mode every request carries the user's bearer token,
// kept in this browser's session storage only.

const TOKEN_KEY = "baton-token";

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

async function check(response: Response): Promise<Response> {
  if (response.ok) return response;
  let message = response.statusText;
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
  } catch {
    // not JSON: keep the status text
  }
  throw new ApiError(response.status, message);
}

export async function get<T>(path: string): Promise<T> {
  const response = await check(await fetch(path, { headers: headers() }));
  return (await response.json()) as T;
}

export async function getText(path: string): Promise<{ text: string; pod: string }> {
  const response = await check(await fetch(path, { headers: headers() }));
  return { text: await response.text(), pod: response.headers.get("X-Pod") || "" };
}

export async function post<T>(path: string, body: unknown): Promise<T> {
  const response = await check(
    await fetch(path, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    }),
  );
  return (await response.json()) as T;
}

/**
 * Follows the server-sent events of `path` (with fetch, so the token header goes too) and
 * hands each message to `onMessage`; reconnects after a pause when the stream ends.
 * Returns a function that stops it.
 */
export function follow(
  path: string,
  onMessage: (data: any) => void,
  onState: (live: boolean) => void,
): () => void {
  const controller = new AbortController();
  let stopped = false;
  const run = async () => {
    while (!stopped) {
      try {
        const response = await check(
          await fetch(path, { headers: headers(), signal: controller.signal }),
        );
        onState(true);
        const reader = response.body!.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut: number;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const data = block
              .split("\n")
              .filter((line) => line.startsWith("data: "))
              .map((line) => line.slice(6))
              .join("\n");
            if (data) onMessage(JSON.parse(data));
          }
        }
      } catch (error) {
        if (stopped) return;
      }
      onState(false);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  };
  void run();
  return () => {
    stopped = true;
    controller.abort();
  };
}
