#!/usr/bin/env node
// `npm start`: the registry on its embedded defaults (127.0.0.1:5000, ./data) and, when run as root,
// the engine daemon beside it, both in the foreground until Ctrl-C.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const listen = process.env.MINATO_REGISTRY_LISTEN || "127.0.0.1:5000";
const host = process.env.MINATO_HOST || "unix:///run/minato/minato.sock";
const asRoot = process.getuid?.() === 0;

const children = [spawn(process.execPath, [join(root, "apps/registry/bin/minato-registry.js"), "serve"], { cwd: root, stdio: "inherit" })];
if (asRoot) children.push(spawn(process.execPath, [join(root, "apps/engine/bin/minatod.js"), "-H", host], { cwd: root, stdio: "inherit" }));

const lines = [
  "",
  `Minato registry on http://${listen} (data in ${process.env.MINATO_REGISTRY_DATA || "./data"})`,
  `  push:    skopeo copy --dest-tls-verify=false oci:./layout:1.0 docker://${listen}/team/app:1.0`,
  `  browse:  curl http://${listen}/v2/_catalog`,
];
if (asRoot) {
  lines.push(
    `Minato engine (minatod) on ${host}`,
    `  export MINATO_HOST=${host}`,
    "  scripts/busybox-rootfs.sh busybox.tar && npx minato import busybox.tar busybox:latest",
    `  npx minato tag busybox:latest ${listen}/library/busybox:latest && npx minato push ${listen}/library/busybox:latest`,
    `  docker -H ${host} images      # the stock docker CLI works too`,
  );
} else {
  lines.push("The engine (minatod) needs root: run `sudo npm start` to start it as well.");
}
lines.push("Ctrl-C stops everything; in-flight requests finish first.", "");
process.stderr.write(`${lines.join("\n")}\n`);

let exiting = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    exiting = true;
    for (const child of children) child.kill(signal);
  });
}
let running = children.length;
for (const child of children) {
  child.on("exit", (code) => {
    // One part failing takes the stack down with it, with that part's status.
    if (!exiting && code !== 0) {
      exiting = true;
      for (const other of children) if (other !== child) other.kill("SIGTERM");
      process.exitCode = code ?? 1;
    }
    if (--running === 0) process.exit();
  });
}
