#!/usr/bin/env node
// `npm start`: the registry on its embedded defaults (127.0.0.1:5000, ./data) and, when run as root,
// the engine daemon beside it, both in the foreground until Ctrl-C. `.env` in the working directory
// is read first, as both programs read it, so the banner shows the addresses they will use. When one
// part cannot start, the other keeps serving and one line says what to do.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SYSTEM_PACKAGES } from "./system-packages.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
if (existsSync(".env")) process.loadEnvFile(".env");
const listen = process.env.MINATO_REGISTRY_LISTEN || "127.0.0.1:5000";
const execRoot = process.env.MINATO_EXEC_ROOT || "/run/minato";
const host = process.env.MINATO_HOST || `unix://${execRoot}/minato.sock`;
const asRoot = process.getuid?.() === 0;

/** The engine's Debian packages whose command is missing here (looked up on PATH, as a shell would). */
function missingEnginePackages() {
  const found = (command) =>
    command.startsWith("/")
      ? existsSync(command)
      : spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore", env: process.env }).status === 0;
  return SYSTEM_PACKAGES.engine.filter(([, command]) => !found(command)).map(([pkg]) => pkg);
}

/** Starts a part, forwarding its output; `onFailure` gets the last line it wrote to stderr. */
function startPart(name, args, advice) {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "pipe"] });
  let last = "";
  child.stderr.on("data", (chunk) => {
    process.stderr.write(chunk);
    const lines = chunk.toString("utf8").trimEnd().split("\n");
    last = lines[lines.length - 1] || last;
  });
  child.name = name;
  child.explain = (code) => `${name} stopped (exit ${code}): ${last.replace(/^[\w-]+: /, "") || "no message"} — ${advice}`;
  return child;
}

const children = [
  startPart(
    "minato-registry",
    [join(root, "apps/registry/bin/minato-registry.js"), "serve"],
    "if the port is in use, set MINATO_REGISTRY_LISTEN (see Troubleshooting in the README) and run npm start again",
  ),
];
const lines = [
  "",
  `Minato registry on http://${listen} (data in ${process.env.MINATO_REGISTRY_DATA || "./data"})`,
  `  push:    skopeo copy --dest-tls-verify=false oci:./layout:1.0 docker://${listen}/team/app:1.0`,
  `  browse:  curl http://${listen}/v2/_catalog`,
];
if (!asRoot) {
  lines.push("The engine (minatod) needs root: run `sudo npm start` to start it as well.");
} else {
  const missing = missingEnginePackages();
  if (missing.length > 0) {
    lines.push(
      `minatod not started: ${missing.join(", ")} missing — install them with \`apt-get install -y ${missing.join(" ")}\` (npm start as root does) and start again; the registry serves meanwhile.`,
    );
  } else {
    children.push(
      startPart(
        "minatod",
        [join(root, "apps/engine/bin/minatod.js"), "-H", host],
        "the registry keeps serving; see Troubleshooting in the README, then run npm start again",
      ),
    );
    lines.push(
      `Minato engine (minatod) on ${host}`,
      `  export MINATO_HOST=${host}`,
      "  scripts/busybox-rootfs.sh busybox.tar && npx minato import busybox.tar busybox:latest",
      `  npx minato tag busybox:latest ${listen}/library/busybox:latest && npx minato push ${listen}/library/busybox:latest`,
      `  docker -H ${host} images      # the stock docker CLI works too`,
    );
  }
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
  child.on("exit", (code, signal) => {
    // A part failing leaves the others serving; its status becomes the script's at the end.
    if (!exiting && code !== 0) {
      process.stderr.write(`${child.explain(code ?? signal)}\n`);
      process.exitCode = code ?? 1;
    }
    if (--running === 0) process.exit();
  });
}
