import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const src = fileURLToPath(new URL("../src/", import.meta.url));

const importsOf = async (dir: string): Promise<Array<{ file: string; spec: string }>> => {
  const out: Array<{ file: string; spec: string }> = [];
  for (const e of await readdir(join(src, dir), { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith(".ts")) continue;
    const file = join(e.parentPath, e.name);
    const text = await readFile(file, "utf8");
    for (const m of text.matchAll(
      /(?:import|export)[^"';]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|^import\s+["']([^"']+)["']/gm,
    ))
      out.push({ file, spec: m[1] ?? m[2] ?? m[3] ?? "" });
  }
  return out;
};

// The import table of docs/architecture.md is the rule: read it, then check every import against it.
interface Room {
  readonly folder: string;
  readonly mayImport: ReadonlySet<string> | "everything";
  readonly mayNot: ReadonlyArray<string>;
}

const cells = (cell: string): string[] =>
  cell
    .split(";")[0]!
    .split(",")
    .map((t) => t.trim().replace(/`/g, ""))
    .filter((t) => t !== "" && t !== "—");

const rooms = async (): Promise<Room[]> => {
  const doc = await readFile(fileURLToPath(new URL("../docs/architecture.md", import.meta.url)), "utf8");
  return doc
    .split("\n")
    .filter((l) => l.startsWith("| `src/"))
    .map((l) => {
      const [, folder, , may, mayNot] = l.split("|").map((c) => c.trim());
      return {
        folder: folder!.replace(/`/g, "").replace(/^src\//, ""),
        mayImport: may === "everything" ? "everything" : new Set(cells(may!)),
        mayNot: cells(mayNot!),
      };
    });
};

/** The src folder an import lands in, or the package (`node:*`, `NATS`, a name) it names. */
const target = (file: string, spec: string): string => {
  if (spec.startsWith("node:")) return "node:*";
  if (spec.startsWith("@nats-io/")) return "NATS";
  if (!spec.startsWith(".")) return spec;
  const landed = join(dirname(file), spec);
  return landed.startsWith(src) ? (landed.slice(src.length).split("/")[0] ?? "") : spec;
};

test("docs/architecture.md's import table names every folder of src, and only checkable rules", async () => {
  const table = await rooms();
  const folders = (await readdir(src, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  expect(table.map((r) => r.folder).sort()).toEqual(folders.sort());
  const known = new Set([...folders, "node:*", "NATS"]);
  expect(table.flatMap((r) => r.mayNot.filter((t) => !known.has(t)))).toEqual([]);
});

test("every import in src obeys docs/architecture.md's import table", async () => {
  const table = await rooms();
  const folders = new Set(table.map((r) => r.folder));
  const bad: string[] = [];
  for (const room of table) {
    for (const { file, spec } of await importsOf(room.folder)) {
      const t = target(file, spec);
      if (t === room.folder) continue;
      const forbidden = room.mayNot.includes(t) || (folders.has(t) && room.mayImport !== "everything" && !room.mayImport.has(t));
      if (forbidden) bad.push(`${file.slice(src.length)} imports ${spec} (${t})`);
    }
  }
  expect(bad).toEqual([]);
});

// The checker itself: an import the table forbids is reported.
test("the import check catches a forbidden import", () => {
  expect(target(join(src, "plugins", "x.ts"), "../actors/runtime.js")).toBe("actors");
  expect(target(join(src, "actors", "receiver", "x.ts"), "../../cli/main.js")).toBe("cli");
  expect(target(join(src, "actors", "receiver", "x.ts"), "../natsServer.js")).toBe("actors");
  expect(target(join(src, "files", "x.ts"), "node:fs")).toBe("node:*");
  expect(target(join(src, "files", "x.ts"), "@nats-io/kv")).toBe("NATS");
});

test("machines read no clock and no randomness", async () => {
  for (const e of await readdir(join(src, "machines"))) {
    const text = await readFile(join(src, "machines", e), "utf8");
    expect(text, e).not.toMatch(/Date\.now|Math\.random|performance\.now|new Date\(/);
  }
});

// Every module says what it is for before its imports: a `//` or `/** */` comment on its first line.
test("every src/**/*.ts starts with a comment", async () => {
  const bare: string[] = [];
  for (const e of await readdir(src, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith(".ts")) continue;
    const file = join(e.parentPath, e.name);
    const first = (await readFile(file, "utf8")).trimStart();
    const name = file.slice(src.length);
    if (!first.startsWith("//") && !first.startsWith("/*")) bare.push(name);
  }
  expect(bare.sort()).toEqual([]);
});
