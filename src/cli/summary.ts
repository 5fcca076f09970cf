// Formats a sender's round summary for the operator.
import type { RoundSummary } from "../machines/senderTypes.js";

const mb = (n: number) => `${(n / 1e6).toFixed(n < 1e6 ? 3 : 1)} MB`;

/** The round summary an operator reads after `tsync sender --once`. */
export const formatSummary = (s: RoundSummary): string => {
  const lines = [
    `round ${s.roundError ? "FAILED" : s.failed.length + s.conflicts.length > 0 ? "finished with problems" : "ok"}: ` +
      `${s.sent.length} file(s) sent (${mb(s.bytesSent)}), ${s.skipped.length} skipped, ${s.failed.length} failed, ${s.deleted.length} deleted`,
  ];
  if (s.roundError) lines.push(`  reason: ${s.roundError}`);
  for (const f of s.sent)
    lines.push(`  sent     ${f.file} (${f.bytes} bytes${f.resumedFrom > 0 ? `, resumed from ${f.resumedFrom}` : ""})`);
  for (const f of s.skipped) lines.push(`  skipped  ${f.file}: ${f.reason}`);
  for (const c of s.conflicts) lines.push(`  conflict ${c.sg}: ${c.message}`);
  for (const f of s.failed) lines.push(`  failed   ${f.file}: ${f.reason} (after ${f.attempts} attempt(s))`);
  for (const f of s.deleted) lines.push(`  deleted  ${f}`);
  return lines.join("\n");
};
