#!/usr/bin/env node
// `npm run build` bundles the CLI into one file, dist/minato.mjs: loading its ~70 modules one by one
// cost ~70 ms on every command. After a bare `tsc -b` (newer .tsbuildinfo) the modules run instead,
// so a stale bundle never hides a change.
import { statSync } from "node:fs";

const modified = (path) => statSync(new URL(path, import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? -1;
await import(modified("../dist/minato.mjs") >= modified("../dist/.tsbuildinfo") ? "../dist/minato.mjs" : "../dist/main.js");
