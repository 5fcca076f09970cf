/**
 * A failed file operation told without its local path, for messages that leave the machine:
 * "ENOTDIR (not a directory)". Node puts the path in the message of its errors, so only the code
 * and the kernel's description are kept; an error of another shape is not vouched for at all.
 */
export const fsFailure = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== "string" || !/^[A-Z][A-Z0-9_]*$/.test(code)) return "see the receiver log";
  const message = e instanceof Error ? e.message : "";
  const described = message.startsWith(`${code}: `) ? /^[^,'"/\\]*/.exec(message.slice(code.length + 2))?.[0].trim() : undefined;
  return described ? `${code} (${described})` : code;
};
