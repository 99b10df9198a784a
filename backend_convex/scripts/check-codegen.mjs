// Fails when convex/_generated is not what `convex codegen` writes for the current functions.
//
// Runs the codegen in place, compares every generated file with the committed
// one, and puts the committed files back, so the check never changes the tree.

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const generated = join(root, "convex", "_generated");

function snapshot() {
  return new Map(readdirSync(generated).map((name) => [name, readFileSync(join(generated, name), "utf8")]));
}

const committed = snapshot();
execFileSync(process.execPath, [join(root, "node_modules", "convex", "bin", "main.js"), "codegen", "--system-udfs", "--typecheck", "enable"], {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
});
const fresh = snapshot();

const stale = [...new Set([...committed.keys(), ...fresh.keys()])].filter(
  (name) => committed.get(name) !== fresh.get(name),
);
for (const name of fresh.keys()) if (!committed.has(name)) rmSync(join(generated, name));
for (const [name, text] of committed) writeFileSync(join(generated, name), text);

if (stale.length > 0) {
  console.error(`convex/_generated is stale (${stale.join(", ")}). Run \`npm run codegen\` and commit the result.`);
  process.exit(1);
}
console.log("convex/_generated is current.");
