import { describe, expect, it, vi } from "vitest";
import { Api, ApiError, errorFromBody } from "../src/app/api";

function reply(status: number, body: unknown, raw = false): Response {
  return new Response(raw ? (body as string) : JSON.stringify(body), {
    status,
    headers: { "content-type": raw ? "text/plain" : "application/json" },
  });
}

function client(...responses: (Response | Error)[]) {
  const fetcher = vi.fn(async (_url: string, _init?: RequestInit) => {
    const next = responses.shift();
    if (!next) throw new Error("no more responses");
    if (next instanceof Error) throw next;
    return next;
  });
  return { api: new Api(fetcher), fetcher };
}

async function caught(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (exc) {
    expect(exc).toBeInstanceOf(ApiError);
    return exc as ApiError;
  }
  throw new Error("expected an ApiError");
}

describe("Api error handling", () => {
  it("turns the daemon's envelope into a typed ApiError", async () => {
    const { api } = client(
      reply(409, {
        error: {
          kind: "capability_approval_required",
          message: "x asks for more",
          details: { pending_capabilities: { http_hosts: ["a.example"] } },
        },
      }),
    );
    const error = await caught(api.enable("x"));
    expect(error.kind).toBe("capability_approval_required");
    expect(error.message).toBe("x asks for more");
    expect(error.status).toBe(409);
    expect(error.details).toEqual({ pending_capabilities: { http_hosts: ["a.example"] } });
  });

  it("handles a body that is not an envelope", async () => {
    const { api } = client(reply(502, "Bad Gateway from proxy", true));
    const error = await caught(api.listSkills());
    expect(error.kind).toBe("http_502");
    expect(error.status).toBe(502);
    expect(error.message).toContain("Bad Gateway from proxy");
  });

  it("handles an envelope with missing or wrong-typed fields", () => {
    const a = errorFromBody(400, JSON.stringify({ error: { kind: 3, message: null } }));
    expect(a.kind).toBe("http_400");
    expect(a.message).toBe("request failed with HTTP 400");
    expect(a.details).toEqual({});
    const b = errorFromBody(500, "");
    expect(b.kind).toBe("http_500");
  });

  it("reports a network failure as kind network, status 0", async () => {
    const { api } = client(new TypeError("Failed to fetch"));
    const error = await caught(api.listSkills());
    expect(error.kind).toBe("network");
    expect(error.status).toBe(0);
    expect(error.message).toContain("Failed to fetch");
  });

  it("reports a 2xx body that is not JSON as bad_response", async () => {
    const { api } = client(reply(200, "<html>", true));
    const error = await caught(api.listSkills());
    expect(error.kind).toBe("bad_response");
  });

  it("calls onUnauthorized on a 401 from a data route", async () => {
    const { api } = client(reply(401, { error: { kind: "unauthorized", message: "missing or wrong bearer token", details: {} } }));
    const spy = vi.fn();
    api.onUnauthorized = spy;
    const error = await caught(api.listSkills());
    expect(error.kind).toBe("unauthorized");
    expect(spy).toHaveBeenCalledOnce();
  });
});

describe("Api session and CSRF", () => {
  it("signs in, then sends X-CSRF-Token on mutating requests only", async () => {
    const { api, fetcher } = client(
      reply(200, { csrf_token: "csrf-1", expires_at_ms: 1 }),
      reply(200, { count: 0, skills: [] }),
      reply(200, { skill_id: "x", version: "1.0.0" }),
    );
    await api.signIn("tok");
    const [signUrl, signInit] = fetcher.mock.calls[0]!;
    expect(signUrl).toBe("/api/v1/session");
    expect(signInit?.method).toBe("POST");
    expect(signInit?.credentials).toBe("same-origin");
    expect(JSON.parse(String(signInit?.body))).toEqual({ token: "tok" });

    await api.listSkills();
    const getHeaders = fetcher.mock.calls[1]![1]!.headers as Record<string, string>;
    expect(getHeaders["X-CSRF-Token"]).toBeUndefined();

    await api.quarantine("x", "bad");
    const [url, init] = fetcher.mock.calls[2]!;
    expect(url).toBe("/api/v1/skills/x/quarantine");
    const headers = init!.headers as Record<string, string>;
    expect(headers["X-CSRF-Token"]).toBe("csrf-1");
    expect(headers["Content-Type"]).toBe("application/json");
    expect(JSON.parse(String(init!.body))).toEqual({ reason: "bad" });
  });

  it("a wrong token is an unauthorized ApiError and does not trigger onUnauthorized", async () => {
    const { api } = client(reply(401, { error: { kind: "unauthorized", message: "wrong token", details: {} } }));
    const spy = vi.fn();
    api.onUnauthorized = spy;
    const error = await caught(api.signIn("nope"));
    expect(error.kind).toBe("unauthorized");
    expect(spy).not.toHaveBeenCalled();
    expect(api.csrfToken).toBeNull();
  });

  it("restores a session from GET /session, or returns null on 401", async () => {
    const { api } = client(
      reply(200, { authenticated: true, via: "session", csrf_token: "c2" }),
      reply(401, { error: { kind: "unauthorized", message: "no", details: {} } }),
    );
    expect((await api.restoreSession())?.via).toBe("session");
    expect(api.csrfToken).toBe("c2");
    expect(await api.restoreSession()).toBeNull();
  });

  it("uploads artifacts as octet-stream with allow_tofu in the query", async () => {
    const { api, fetcher } = client(reply(200, { csrf_token: "c" }), reply(200, { skill_id: "x" }));
    await api.signIn("t");
    const bytes = new Uint8Array([80, 75, 3, 4]).buffer;
    await api.install(bytes, true);
    const [url, init] = fetcher.mock.calls[1]!;
    expect(url).toBe("/api/v1/skills/install?allow_tofu=true");
    const headers = init!.headers as Record<string, string>;
    expect(headers["Content-Type"]).toBe("application/octet-stream");
    expect(headers["X-CSRF-Token"]).toBe("c");
    expect(init!.body).toBe(bytes);
  });

  it("encodes path segments and builds run and journal URLs", async () => {
    const { api, fetcher } = client(reply(200, { output: 1 }), reply(200, { count: 0, events: [] }));
    await api.run("a/b", "t x", { n: 1 });
    expect(fetcher.mock.calls[0]![0]).toBe("/api/v1/skills/a%2Fb/tools/t%20x/run");
    expect(JSON.parse(String(fetcher.mock.calls[0]![1]!.body))).toEqual({ input: { n: 1 } });
    await api.journal(5, 10, "tool.called");
    expect(fetcher.mock.calls[1]![0]).toBe("/api/v1/journal?after=5&limit=10&kind=tool.called");
    expect(api.journalStreamUrl(7)).toBe("/api/v1/journal/stream?after=7");
  });
});
