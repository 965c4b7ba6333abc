/** Capabilities in plain words. */

import type { CapabilityDiff, CapabilityGrants } from "./api";

function url(host: string): string {
  return host.includes("://") ? host : `https://${host}`;
}

const PHRASES: Record<string, (item: string) => string> = {
  http_hosts: (host) => `may call ${url(host)}`,
  secret_keys: (key) => `may read secret ${key}`,
  secrets: (key) => `may read secret ${key}`,
  storage_prefixes: (prefix) => `may store data under ${prefix}`,
  storage_read_prefixes: (prefix) => `may read data under ${prefix}`,
  channels: (channel) => `may post to channel ${channel}`,
  approval_removed: (tool) => `runs ${tool} without an operator's approval`,
};

export function describeCapability(kind: string, item: string): string {
  const phrase = PHRASES[kind];
  return phrase ? phrase(item) : `${kind}: ${item}`;
}

/** Every grant (or every added capability of a held update) as a sentence. */
export function describeGrants(grants: Partial<CapabilityGrants> | CapabilityDiff | null | undefined): string[] {
  if (!grants) return [];
  const lines: string[] = [];
  for (const [kind, items] of Object.entries(grants)) {
    if (!Array.isArray(items)) continue;
    for (const item of items) lines.push(describeCapability(kind, String(item)));
  }
  return lines;
}
