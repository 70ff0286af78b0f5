#!/usr/bin/env node
// `npm run build` bundles the CLI into one CommonJS file, dist/minato.cjs: loading its ~70 modules
// one by one cost ~70 ms on every command. The bundle runs from V8's code cache (minato.cjs.cache,
// written beside it on the first run where that directory is writable), which saves compiling it
// again, another ~15 ms. After a bare `tsc -b` (a newer .tsbuildinfo) the modules run instead, so a
// stale bundle never hides a change.
import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

const path = (relative) => fileURLToPath(new URL(relative, import.meta.url));
const modified = (file) => statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? -1;
const bundle = path("../dist/minato.cjs");
const cache = `${bundle}.cache`;
const bundled = modified(bundle);

if (bundled < modified(path("../dist/.tsbuildinfo"))) {
  await import("../dist/main.js");
} else {
  // V8 checks a cache against the source's length only: one older than the bundle is not used.
  const cachedData = modified(cache) >= bundled ? readFileSync(cache) : undefined;
  const source = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, "utf8")}\n})`;
  const script = new Script(source, { filename: bundle, cachedData });
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, path("../dist"));
  if (cachedData === undefined || script.cachedDataRejected) {
    // Made once the command has run, so that the functions it compiled on the way are in it.
    process.once("beforeExit", () => {
      try {
        writeFileSync(`${cache}.${process.pid}`, script.createCachedData());
        renameSync(`${cache}.${process.pid}`, cache);
      } catch {
        // a read-only install: every run compiles the bundle
      }
    });
  }
}
