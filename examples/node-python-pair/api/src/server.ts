// The pair's public API: POST /api/analyze forwards a text to the intelligence service and
// answers with its analysis. GET /health answers while the process serves requests (liveness
// and the image's HEALTHCHECK); GET /ready also requires the intelligence service to answer,
// so a pod whose peer is down leaves the Service's endpoints instead of failing requests.
import express, { NextFunction, Request, Response } from "express";
import type { Server } from "node:http";

// The platform injects the peer's in-cluster URL as INTELLIGENCE_URL; the default is for runs
// by hand next to a local intelligence service.
const INTELLIGENCE_URL = (process.env.INTELLIGENCE_URL ?? "http://127.0.0.1:8000").replace(/\/+$/, "");
const PORT = Number(process.env.PORT ?? "3000");
const HOST = process.env.HOST ?? "0.0.0.0"; // a container listens on all interfaces
const READY_TIMEOUT_MS = 1500; // below the readiness probe's timeoutSeconds (2)
const ANALYZE_TIMEOUT_MS = 5000;
const GRACEFUL_SHUTDOWN_MS = 20000; // below the pod's terminationGracePeriodSeconds (30)
const MAX_TEXT = 100_000;

async function intelligence(path: string, init: RequestInit, timeoutMs: number): Promise<globalThis.Response> {
  return fetch(`${INTELLIGENCE_URL}${path}`, { ...init, signal: AbortSignal.timeout(timeoutMs) });
}

export function createApp(): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json({ limit: "256kb" }));

  app.get("/health", (_req: Request, res: Response) => {
    res.json({ status: "ok" });
  });

  app.get("/ready", async (_req: Request, res: Response) => {
    try {
      const peer = await intelligence("/health", {}, READY_TIMEOUT_MS);
      if (peer.ok) {
        res.json({ status: "ready", intelligence: "ok" });
        return;
      }
    } catch {
      // unreachable or too slow: not ready, answered below
    }
    res.status(503).json({ status: "unavailable", intelligence: "unreachable" });
  });

  app.post("/api/analyze", async (req: Request, res: Response) => {
    const text: unknown = req.body?.text;
    if (typeof text !== "string" || text.length === 0 || text.length > MAX_TEXT) {
      res.status(422).json({ detail: `text must be a non-empty string of at most ${MAX_TEXT} characters` });
      return;
    }
    try {
      const peer = await intelligence(
        "/analyze",
        { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text }) },
        ANALYZE_TIMEOUT_MS,
      );
      if (!peer.ok) {
        res.status(502).json({ detail: `intelligence service answered ${peer.status}` });
        return;
      }
      res.json({ analysis: await peer.json(), characters: text.length });
    } catch (err) {
      res.status(502).json({ detail: `intelligence service unreachable: ${(err as Error).message}` });
    }
  });

  // Malformed JSON and other errors: a JSON answer without a stack trace.
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    res.status(status).json({ detail: status === 500 ? "internal error" : err.message });
  });
  return app;
}

function main(): void {
  const server: Server = createApp().listen(PORT, HOST, () => {
    console.log(JSON.stringify({ level: "info", msg: "listening", host: HOST, port: PORT }));
  });
  // tini forwards the pod's SIGTERM here: stop accepting, let in-flight requests finish, exit 0.
  const stop = (signal: string) => {
    console.log(JSON.stringify({ level: "info", msg: "shutting down", signal }));
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(1), GRACEFUL_SHUTDOWN_MS).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

if (require.main === module) {
  main();
}
