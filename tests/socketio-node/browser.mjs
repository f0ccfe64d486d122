// Headless Chromium driven over the DevTools protocol (CDP) with `ws`, for
// the browser test of socket.io-client: launch, open a page, evaluate.
// Debian's `chromium` is installed by `scripts/brokers.sh install`.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import WebSocket from "ws";

export const CHROMIUM = "/usr/bin/chromium";

/// Whether Chromium is here; without it a test skips, except under
/// CI=true, where it fails.
export function chromiumOrSkip(t) {
  if (existsSync(CHROMIUM)) return true;
  const message = "chromium is not installed; run `scripts/brokers.sh install`";
  if (process.env.CI === "true") throw new Error(`CI=true and ${message}`);
  t.skip(message);
  return false;
}

/// A headless browser with one page at `url`; `evaluate(expression)`
/// returns the expression's value (awaiting promises); `close()` ends it.
export async function openPage(url, waitMs) {
  const profile = mkdtempSync(path.join(tmpdir(), "tickcast-chromium-"));
  const child = spawn(
    CHROMIUM,
    [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const close = () => {
    child.kill("SIGKILL");
    // Chromium's own children can still be writing to the profile for a
    // moment after the kill (ENOTEMPTY): retry, and never fail a test
    // over a temporary directory left behind.
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
    } catch (error) {
      console.error(`tickcast: left ${profile} behind: ${error.message}`);
    }
  };
  try {
    const port = await devtoolsPort(child, waitMs);
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const target = targets.find((t) => t.type === "page");
    const page = new Cdp(new WebSocket(target.webSocketDebuggerUrl));
    await page.opened;
    await page.call("Page.enable");
    await page.call("Page.navigate", { url });
    return {
      evaluate: (expression) => page.evaluate(expression),
      close: () => {
        page.socket.close();
        close();
      },
    };
  } catch (error) {
    close();
    throw error;
  }
}

/// The port of "DevTools listening on ws://127.0.0.1:PORT/..." on stderr.
function devtoolsPort(child, waitMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("chromium did not listen")), waitMs);
    child.once("exit", (code) => reject(new Error(`chromium exited with ${code}`)));
    createInterface({ input: child.stderr }).on("line", (line) => {
      const found = line.match(/DevTools listening on ws:\/\/[^:]+:(\d+)\//);
      if (found) {
        clearTimeout(timer);
        resolve(Number(found[1]));
      }
    });
  });
}

/// One CDP session: commands by id, answers matched back.
class Cdp {
  constructor(socket) {
    this.socket = socket;
    this.next = 0;
    this.pending = new Map();
    this.opened = new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    socket.on("message", (data) => {
      const message = JSON.parse(data.toString());
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (message.error) waiting.reject(new Error(JSON.stringify(message.error)));
      else waiting.resolve(message.result);
    });
  }

  call(method, params = {}) {
    const id = ++this.next;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  async evaluate(expression) {
    const result = await this.call("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    });
    if (result.exceptionDetails) {
      throw new Error(`page: ${JSON.stringify(result.exceptionDetails)}`);
    }
    return result.result.value;
  }
}
