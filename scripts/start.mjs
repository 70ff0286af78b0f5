#!/usr/bin/env node
// `npm start`: the registry on its embedded defaults (127.0.0.1:5000, ./data), in the foreground.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const registry = spawn(process.execPath, [join(root, "apps/registry/bin/minato-registry.js"), "serve", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
});
const listen = process.env.MINATO_REGISTRY_LISTEN ?? "127.0.0.1:5000";
process.stderr.write(
  `\nMinato registry on http://${listen} (data in ${process.env.MINATO_REGISTRY_DATA ?? "./data"})\n` +
    `  push:   skopeo copy --dest-tls-verify=false oci:./layout:tag docker://${listen}/team/app:tag\n` +
    `  browse: curl http://${listen}/v2/_catalog\n` +
    "Ctrl-C stops it; in-flight requests finish first.\n\n",
);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => registry.kill(signal));
registry.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
