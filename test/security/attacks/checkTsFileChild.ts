// Run in a child process by hugeIndex.test.ts: the receiver's verify step on one file, then the process's
// peak RSS, so a test can see what the check costs without the test runner's own memory in the figure.
import { validateTsFile } from "../../../src/actors/receiver/validateTsFile.js";

const path = process.argv[2];
if (path === undefined) throw new Error("usage: checkTsFileChild FILE");
const check = await validateTsFile(path);
process.stdout.write(
  JSON.stringify({
    ok: check.ok,
    reason: check.ok ? undefined : check.reason,
    devices: check.ok ? check.facts.devices.length : undefined,
    // resourceUsage reports kilobytes.
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  }) + "\n",
);
