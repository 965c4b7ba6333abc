/**
 * A typed client for the daemon's HTTP API under /api/v1.
 *
 * The browser authenticates with the HttpOnly session cookie (credentials: same-origin) and
 * sends the session's CSRF token as X-CSRF-Token on every request that is not a read. Every
 * failure is an ApiError: the daemon's `{"error": {kind, message, details}}` envelope when it
 * sent one, else a kind of our own (network, bad_response, http_<status>).
 */

export const API_BASE = "/api/v1";

export class ApiError extends Error {
  readonly kind: string;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(kind: string, message: string, status: number, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.status = status;
    this.details = details;
  }
}

// ---- response shapes (see palyra/daemon/service.py) ----------------------------------------

export interface ToolSummary {
  id: string;
  name: string;
  description: string;
  requires_approval: boolean;
}

export interface AuditSummary {
  passed?: boolean;
  should_quarantine?: boolean;
  failed_checks?: string[];
  warning_checks?: string[];
  quarantine_reasons?: string[];
  check_count?: number;
  at_ms?: number;
}

export type CapabilityDiff = Record<string, string[]>;

export interface SkillVersion {
  skill_id: string;
  version: string;
  publisher: string;
  name: string;
  current: boolean;
  status: string;
  status_reason: string | null;
  status_changed_at_ms: number;
  status_principal: string;
  artifact_sha256: string;
  payload_sha256: string;
  signature_key_id: string;
  trust_decision: string;
  source: { kind: string; reference: string };
  installed_at_ms: number;
  audit: AuditSummary;
  pending_capabilities: CapabilityDiff | null;
  tools: ToolSummary[];
  missing_secrets: string[];
  needs_secrets: boolean;
  artifact_error?: unknown;
}

export interface SkillRow {
  skill_id: string;
  name: string;
  publisher: string;
  status: string;
  status_reason: string | null;
  trust_decision: string;
  tools: ToolSummary[];
  missing_secrets: string[];
  needs_secrets: boolean;
  current_version: string | null;
  held_versions: string[];
  versions: SkillVersion[];
}

export interface ManifestTool {
  id: string;
  name: string;
  description: string;
  input_schema: unknown;
  output_schema: unknown;
  risk: { default_sensitive: boolean; requires_approval: boolean };
}

export interface CapabilityGrants {
  http_hosts: string[];
  secret_keys: string[];
  storage_prefixes: string[];
  storage_read_prefixes: string[];
  channels: string[];
}

export interface SkillInfo extends SkillVersion {
  installed_versions: string[];
  manifest?: {
    entrypoints: { tools: ManifestTool[] };
    capabilities?: Record<string, unknown>;
    [key: string]: unknown;
  };
  capabilities?: CapabilityGrants;
  entries?: string[];
}

export interface AuditCheck {
  check_id: string;
  status: string;
  severity: string;
  message: string;
}

/** verify/audit: the refreshed entry plus what the re-check found. */
export interface RecheckResult extends SkillVersion {
  result: {
    ok: boolean;
    error?: { kind: string; message: string };
    audit?: {
      passed: boolean;
      trust_decision: string;
      checks: AuditCheck[];
      manifest_warnings: { code: string; severity: string; message: string }[];
      quarantine_reasons: string[];
    };
  };
}

export interface LogLine {
  [key: string]: unknown;
}

export interface RunResult {
  skill_id: string;
  version: string;
  tool_id: string;
  receipt_seq: number;
  approval_id: string | null;
  output: unknown;
  exit_code: number;
  fuel_used: number;
  duration_ms: number;
  memory_bytes: number;
  logs: LogLine[];
  dropped_logs: number;
  egress: Record<string, unknown>[];
}

export interface Approval {
  approval_id: string;
  skill_id: string;
  version: string;
  tool_id: string;
  input_sha256: string;
  input_preview: string;
  requested_by: string;
  requested_at_ms: number;
  expires_at_ms: number;
  state: string;
  decided_at_ms: number | null;
  decided_by: string | null;
  window_until_ms: number | null;
  reason: string | null;
}

export interface JournalEvent {
  seq: number;
  at_ms: number;
  kind: string;
  actor: string;
  payload: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export interface ChainReport {
  ok: boolean;
  events: number;
  last_seq: number;
  last_hash: string;
  first_bad_seq: number | null;
  problem: string | null;
}

export interface PluginBinding {
  plugin_id: string;
  skill_id: string;
  skill_version: string | null;
  tool_id: string;
  enabled: boolean;
  capability_profile: Record<string, string[]>;
  notes: string | null;
}

export interface PluginCheck {
  ready?: boolean;
  reasons?: string[];
  warnings?: string[];
  [key: string]: unknown;
}

export interface HookBinding {
  hook_id: string;
  event: string;
  plugin_id: string;
  enabled: boolean;
}

export interface SessionInfo {
  authenticated: boolean;
  via: string;
  csrf_token?: string;
  expires_at_ms?: number;
}

// ---- the client ----------------------------------------------------------------------------

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface RequestOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  json?: unknown;
  body?: BodyInit;
  contentType?: string;
  signal?: AbortSignal;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The ApiError for a non-2xx response body (already read as text). */
export function errorFromBody(status: number, text: string, statusText = ""): ApiError {
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (isRecord(parsed) && isRecord(parsed.error)) {
    const envelope = parsed.error;
    const kind = typeof envelope.kind === "string" && envelope.kind ? envelope.kind : `http_${status}`;
    const message =
      typeof envelope.message === "string" && envelope.message
        ? envelope.message
        : `request failed with HTTP ${status}`;
    const details = isRecord(envelope.details) ? envelope.details : {};
    return new ApiError(kind, message, status, details);
  }
  const snippet = text.trim().slice(0, 200);
  const reason = snippet || statusText || "no details";
  return new ApiError(`http_${status}`, `request failed with HTTP ${status}: ${reason}`, status);
}

export class Api {
  private csrf: string | null = null;
  private readonly fetcher: FetchLike;
  /** Called when any request answers 401 (the session ended): the shell shows sign-in. */
  onUnauthorized: (() => void) | null = null;

  constructor(fetcher?: FetchLike, private readonly base: string = API_BASE) {
    this.fetcher = fetcher ?? ((input, init) => fetch(input, init));
  }

  get csrfToken(): string | null {
    return this.csrf;
  }

  setCsrf(token: string | null): void {
    this.csrf = token;
  }

  url(path: string, query?: RequestOptions["query"]): string {
    let url = this.base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value === null || value === undefined || value === "") continue;
        params.set(key, String(value));
      }
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    return url;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    let body: BodyInit | undefined;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      headers["Content-Type"] = options.contentType ?? "application/octet-stream";
      body = options.body;
    }
    const upper = method.toUpperCase();
    if (!SAFE_METHODS.has(upper) && this.csrf) headers["X-CSRF-Token"] = this.csrf;
    let response: Response;
    try {
      response = await this.fetcher(this.url(path, options.query), {
        method: upper,
        headers,
        body,
        credentials: "same-origin",
        cache: "no-store",
        signal: options.signal,
      });
    } catch (exc) {
      if (exc instanceof DOMException && exc.name === "AbortError") throw exc;
      const why = exc instanceof Error ? exc.message : String(exc);
      throw new ApiError("network", `cannot reach the daemon: ${why}`, 0);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (exc) {
      const why = exc instanceof Error ? exc.message : String(exc);
      throw new ApiError("network", `the response could not be read: ${why}`, response.status);
    }
    if (!response.ok) {
      const error = errorFromBody(response.status, text, response.statusText);
      if (response.status === 401 && path !== "/session") this.onUnauthorized?.();
      throw error;
    }
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(
        "bad_response",
        `the daemon answered HTTP ${response.status} with a body that is not JSON`,
        response.status,
      );
    }
  }

  get<T>(path: string, query?: RequestOptions["query"]): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  post<T>(path: string, json: unknown = {}, query?: RequestOptions["query"]): Promise<T> {
    return this.request<T>("POST", path, { json, query });
  }

  // ---- session ---------------------------------------------------------------------------
  async signIn(token: string): Promise<void> {
    const body = await this.request<{ csrf_token: string }>("POST", "/session", { json: { token } });
    this.csrf = body.csrf_token;
  }

  /** The current session (restores the CSRF token), or null when there is none. */
  async restoreSession(): Promise<SessionInfo | null> {
    try {
      const info = await this.get<SessionInfo>("/session");
      if (!info?.authenticated) return null;
      this.csrf = info.csrf_token ?? null;
      return info;
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 401) return null;
      throw exc;
    }
  }

  async signOut(): Promise<void> {
    try {
      await this.request("DELETE", "/session");
    } finally {
      this.csrf = null;
    }
  }

  // ---- skills ----------------------------------------------------------------------------
  listSkills(): Promise<{ count: number; skills: SkillRow[] }> {
    return this.get("/skills");
  }

  skillInfo(skillId: string, version?: string): Promise<SkillInfo> {
    return this.get(`/skills/${encodeURIComponent(skillId)}`, { version });
  }

  verify(skillId: string, version?: string): Promise<RecheckResult> {
    return this.post(`/skills/${encodeURIComponent(skillId)}/verify`, { version: version ?? null });
  }

  audit(skillId: string, version?: string): Promise<RecheckResult> {
    return this.post(`/skills/${encodeURIComponent(skillId)}/audit`, { version: version ?? null });
  }

  enable(skillId: string, opts: { version?: string; approveCapabilities?: boolean } = {}): Promise<SkillVersion> {
    return this.post(`/skills/${encodeURIComponent(skillId)}/enable`, {
      version: opts.version ?? null,
      approve_capabilities: opts.approveCapabilities ?? false,
    });
  }

  disable(skillId: string, reason?: string): Promise<SkillVersion> {
    return this.post(`/skills/${encodeURIComponent(skillId)}/disable`, { reason: reason || null });
  }

  quarantine(skillId: string, reason: string): Promise<SkillVersion> {
    return this.post(`/skills/${encodeURIComponent(skillId)}/quarantine`, { reason });
  }

  remove(skillId: string, version?: string): Promise<{ skill_id: string; removed_versions: string[] }> {
    return this.request("DELETE", `/skills/${encodeURIComponent(skillId)}`, { query: { version } });
  }

  install(bytes: ArrayBuffer | Blob, allowTofu: boolean): Promise<SkillVersion & { changed?: boolean }> {
    return this.request("POST", "/skills/install", {
      body: bytes,
      contentType: "application/octet-stream",
      query: { allow_tofu: allowTofu ? "true" : "false" },
    });
  }

  // ---- tools -----------------------------------------------------------------------------
  run(skillId: string, tool: string, input: unknown, version?: string): Promise<RunResult> {
    const body: Record<string, unknown> = { input };
    if (version) body.version = version;
    return this.post(
      `/skills/${encodeURIComponent(skillId)}/tools/${encodeURIComponent(tool)}/run`,
      body,
    );
  }

  // ---- approvals -------------------------------------------------------------------------
  approvals(state = "pending"): Promise<{ count: number; approvals: Approval[] }> {
    return this.get("/approvals", { state });
  }

  approve(approvalId: string, windowS?: number): Promise<Approval> {
    return this.post(`/approvals/${encodeURIComponent(approvalId)}/approve`, windowS ? { window_s: windowS } : {});
  }

  deny(approvalId: string, reason?: string): Promise<Approval> {
    return this.post(`/approvals/${encodeURIComponent(approvalId)}/deny`, reason ? { reason } : {});
  }

  // ---- journal ---------------------------------------------------------------------------
  journal(after = 0, limit = 100, kind?: string): Promise<{ count: number; events: JournalEvent[] }> {
    return this.get("/journal", { after, limit, kind });
  }

  verifyJournal(): Promise<ChainReport> {
    return this.get("/journal/verify");
  }

  status(): Promise<{ journal_last_seq: number; pending_approvals: number; [key: string]: unknown }> {
    return this.get("/status");
  }

  journalStreamUrl(after: number): string {
    return this.url("/journal/stream", { after });
  }

  // ---- plugins and hooks -----------------------------------------------------------------
  plugins(): Promise<{ count: number; plugins: PluginBinding[] }> {
    return this.get("/plugins");
  }

  setPluginEnabled(pluginId: string, enabled: boolean): Promise<PluginCheck> {
    return this.post(`/plugins/${encodeURIComponent(pluginId)}/${enabled ? "enable" : "disable"}`);
  }

  hooks(): Promise<{ count: number; hooks: HookBinding[]; events: string[] }> {
    return this.get("/hooks");
  }

  setHookEnabled(hookId: string, enabled: boolean): Promise<Record<string, unknown>> {
    return this.post(`/hooks/${encodeURIComponent(hookId)}/${enabled ? "enable" : "disable"}`);
  }
}

/** A one-line, human message for any thrown value. */
export function describeError(exc: unknown): string {
  if (exc instanceof ApiError) return `${exc.message} (${exc.kind})`;
  if (exc instanceof Error) return exc.message;
  return String(exc);
}
