import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { digestOf, MediaType, parseManifest } from "@minato/oci";
import Database from "better-sqlite3";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, addUser, bearer, type Credentials, startAuthRegistry, tokenFor, usersOf } from "./auth-helpers.js";
import { type Fixtures, pushFixtures } from "./browse-fixtures.js";
import { call, type TestRegistry } from "./harness.js";

/**
 * The web UI in a real browser: Debian's chromium driven by playwright-core (no browser is ever
 * downloaded). Each page's screenshot goes to docs/screenshots/ for the README.
 */

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOTS = resolve(import.meta.dirname, "../../../docs/screenshots");
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe.skipIf(!existsSync(CHROMIUM))(`web UI in Chromium (skipped when ${CHROMIUM} is absent: apt-get install chromium)`, () => {
  let registry: TestRegistry;
  let fx: Fixtures;
  let alice: Credentials;
  let profile: string;
  let browser: BrowserContext;

  beforeAll(async () => {
    registry = await startAuthRegistry();
    fx = await pushFixtures(registry);
    alice = await addUser(registry, "alice", "alice-password-1", [["team/*", ["pull", "push", "delete"]]]);
    await mkdir(SCREENSHOTS, { recursive: true });
    profile = await mkdtemp(join(tmpdir(), "minato-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 860 },
      colorScheme: "light",
    });
    await browser.grantPermissions(["clipboard-read", "clipboard-write"], { origin: registry.url });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await registry?.destroy();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  async function freshPage(): Promise<Page> {
    await browser.clearCookies();
    const page = await browser.newPage();
    page.setDefaultTimeout(30_000);
    return page;
  }

  /** Saves the page's screenshot, after checking every control on it has a label or a name. */
  async function shot(page: Page, name: string): Promise<void> {
    const unnamed = await page.evaluate(() => [
      ...[...document.querySelectorAll("input, select")]
        .filter((e) => (e as HTMLInputElement).labels?.length === 0)
        .map((e) => e.outerHTML),
      ...[...document.querySelectorAll("button, a")]
        .filter((e) => !(e.getAttribute("aria-label") || e.textContent?.trim()))
        .map((e) => e.outerHTML),
    ]);
    expect(unnamed, name).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }

  async function tagsList(name: string): Promise<string[]> {
    const res = await call(registry, "GET", `/v2/${name}/tags/list`, {
      headers: bearer(await tokenFor(registry, ADMIN, `repository:${name}:pull`)),
    });
    return ((await res.body.json()) as { tags: string[] }).tags;
  }

  async function logIn(page: Page, who: Credentials): Promise<void> {
    await page.goto(registry.url);
    await page.getByLabel("User name").fill(who.user);
    await page.getByLabel("Password or access token").fill(who.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Repositories" }).waitFor();
  }

  it("logs in, searches, opens a tag, copies the pull command, deletes a tag, logs out", async () => {
    const page = await freshPage();
    await page.goto(registry.url);
    await page.getByRole("heading", { name: "Log in" }).waitFor();

    // A wrong password says so, and logs nobody in.
    await page.getByLabel("User name").fill(alice.user);
    await page.getByLabel("Password or access token").fill("not-her-password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").filter({ hasText: "Wrong user name or password." }).waitFor();
    await shot(page, "login");

    await page.getByLabel("Password or access token").fill(alice.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Repositories" }).waitFor();
    await page.getByText("Logged in as alice").waitFor();
    await page.getByRole("link", { name: "team/app" }).waitFor();
    await page.getByRole("link", { name: "team/multi" }).waitFor();
    await shot(page, "repositories");

    await page.getByLabel("Search repositories").fill("multi");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: "team/app" }).waitFor({ state: "detached" });
    await page.getByRole("link", { name: "team/multi" }).click();
    await page.getByRole("heading", { name: "team/multi" }).waitFor();
    await page.getByText("linux/amd64, linux/arm64/v8").waitFor();

    await page.goto(`${registry.url}/#/r/team%2Fapp`);
    await page.getByRole("heading", { name: "team/app" }).waitFor();
    const rows = page.locator("tbody tr");
    await page.waitForFunction(() => document.querySelectorAll("tbody tr").length === 3);
    expect(await rows.locator("th").allTextContents()).toEqual(["1.0", "1.1", "latest"]);
    expect(await rows.first().textContent()).toContain("1 application/spdx+json");
    await shot(page, "tags");

    await page.getByRole("link", { name: "1.0", exact: true }).click();
    await page.getByRole("heading", { name: "team/app:1.0" }).waitFor();
    await page.getByRole("heading", { name: "Layers" }).waitFor();
    await page
      .getByText(fx.app.history[2]?.created_by as string)
      .first()
      .waitFor();
    await page.getByRole("rowheader", { name: "application/spdx+json" }).waitFor();
    await page.getByText("8080/tcp, 9090/udp").waitFor();
    await shot(page, "image");

    const host = new URL(registry.url).host;
    await page.getByRole("button", { name: "Copy the podman pull command" }).click();
    // "Copied" shows for two seconds; the attribute stays, so a slow machine cannot miss it.
    await page.locator("button[data-copied]").waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`podman pull ${host}/team/app:1.0`);

    // Delete a tag: asked first, then gone from the page and from the distribution API.
    await page.goto(`${registry.url}/#/r/team%2Fapp`);
    await page.getByRole("button", { name: "Delete tag 1.1" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    await shot(page, "delete-confirm");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "detached" });
    expect(await tagsList("team/app")).toContain("1.1");
    await page.getByRole("button", { name: "Delete tag 1.1" }).click();
    await dialog.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("status").filter({ hasText: "Deleted tag 1.1." }).waitFor();
    await page.getByRole("link", { name: "1.1", exact: true }).waitFor({ state: "detached" });
    expect(await tagsList("team/app")).toEqual(["1.0", "latest"]);

    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByText("You are logged out.").waitFor();
    expect(await page.evaluate(() => fetch("/api/v1/session").then((r) => r.json()))).toMatchObject({ user: null });
    await page.close();
  }, 180_000);

  it("works with the keyboard alone: log in, search, open a tag, copy, delete through the dialog", async () => {
    const page = await freshPage();
    await page.goto(registry.url);
    await page.getByRole("heading", { name: "Log in" }).waitFor();
    // The user name field has focus on arrival.
    await page.keyboard.type(alice.user);
    await page.keyboard.press("Tab");
    await page.keyboard.type(alice.password);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Repositories" }).waitFor();

    /** Tabs forward until the element matching `selector` has focus. */
    const tabTo = async (describe: string, test: () => boolean) => {
      for (let i = 0; i < 60; i++) {
        await page.keyboard.press("Tab");
        if (await page.evaluate(test)) return;
      }
      throw new Error(`Tab never reached ${describe}`);
    };
    await tabTo("the search field", () => document.activeElement?.id === "search");
    await page.keyboard.type("app");
    await page.keyboard.press("Enter");
    await page.getByRole("link", { name: "team/multi" }).waitFor({ state: "detached" });
    await tabTo("the team/app link", () => document.activeElement?.textContent === "team/app");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "team/app" }).waitFor();
    await tabTo("the latest tag", () => document.activeElement?.textContent === "latest");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "team/app:latest" }).waitFor();
    await tabTo("the minato copy button", () => document.activeElement?.getAttribute("aria-label") === "Copy the minato pull command");
    await page.keyboard.press("Enter");
    const host = new URL(registry.url).host;
    await page.waitForFunction(() => document.activeElement?.hasAttribute("data-copied"));
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`minato pull ${host}/team/app:latest`);

    await tabTo("the delete-tag button", () => document.activeElement?.textContent === "Delete tag latest");
    await page.keyboard.press("Enter");
    await page.getByRole("dialog").waitFor();
    // Cancel has focus first; Tab to Delete.
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.getByRole("status").filter({ hasText: "Deleted tag latest." }).waitFor();
    expect(await tagsList("team/app")).toEqual(["1.0"]);
    await page.close();
  }, 180_000);

  it("sends an expired session back to the login page", async () => {
    const page = await freshPage();
    await logIn(page, alice);
    const db = new Database(join(registry.dataDir, "registry.db"));
    db.prepare("UPDATE browser_sessions SET expires_at = ?").run(Date.now() - 1);
    db.close();
    await page.getByRole("link", { name: "team/app" }).click();
    await page.getByRole("heading", { name: "Log in" }).waitFor();
    await page.getByRole("alert").filter({ hasText: "Your session has expired" }).waitFor();
    // Logging in again returns to where they were going.
    await page.getByLabel("User name").fill(alice.user);
    await page.getByLabel("Password or access token").fill(alice.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "team/app" }).waitFor();
    await page.close();
  }, 120_000);

  it("refuses a delete with a forged or missing CSRF token, even from the logged-in page", async () => {
    const page = await freshPage();
    await logIn(page, alice);
    const attempt = (token: string | null) =>
      page.evaluate(
        (csrf) =>
          fetch("/api/v1/repositories/team%2Fapp/tags/1.0", {
            method: "DELETE",
            headers: csrf === null ? {} : { "x-csrf-token": csrf },
          }).then(async (r) => ({ status: r.status, body: await r.json() })),
        token,
      );
    for (const token of [null, "forged-token", ""]) {
      const answer = await attempt(token);
      expect(answer.status, String(token)).toBe(403);
      expect(answer.body.errors[0].message).toBe("missing or wrong CSRF token");
    }
    expect(await tagsList("team/app")).toContain("1.0");
    await page.close();
  }, 120_000);

  it("lets a visitor browse public repositories without logging in, and nothing else", async () => {
    usersOf(registry).addPublic("team/multi");
    const page = await freshPage();
    await page.goto(registry.url);
    await page.getByRole("link", { name: "Browse public repositories without logging in" }).click();
    await page.getByRole("heading", { name: "Repositories" }).waitFor();
    await page.getByRole("link", { name: "team/multi" }).waitFor();
    expect(await page.locator("tbody th").allTextContents()).toEqual(["team/multi"]);
    await page.getByRole("navigation", { name: "Account" }).getByRole("link", { name: "Log in" }).waitFor();
    // No delete buttons for a visitor, and a private repository's page says nothing about it.
    await page.getByRole("link", { name: "team/multi" }).click();
    await page.getByRole("heading", { name: "team/multi" }).waitFor();
    expect(await page.getByRole("button", { name: /Delete/ }).count()).toBe(0);
    await page.goto(`${registry.url}/#/r/team%2Fapp`);
    await page.getByRole("alert").filter({ hasText: "repository name not known to registry" }).waitFor();
    await page.close();
  }, 120_000);

  it("fits a phone screen, in dark mode", async () => {
    const page = await freshPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: "dark" });
    await logIn(page, alice);
    await page.goto(`${registry.url}/#/r/team%2Fmulti`);
    await page.getByRole("heading", { name: "team/multi" }).waitFor();
    // Nothing wider than the screen but the scrollable tables.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe("rgb(15, 20, 25)");
    await shot(page, "tags-phone-dark");
    await page.goto(`${registry.url}/#/r/team%2Fmulti/i/latest`);
    await page.getByRole("heading", { name: "Platforms" }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(page, "image-phone-dark");
    await page.close();
  }, 120_000);

  it("pages through many repositories with Next and Previous", async () => {
    // 30 more repositories, written through the registry's own metadata store.
    const { metadata } = registry.deps;
    for (let i = 0; i < 30; i++) {
      const name = `bulk/r${String(i).padStart(2, "0")}`;
      const config = Buffer.from(JSON.stringify({ n: i }));
      const configDigest = digestOf(config);
      await metadata.linkBlob(name, configDigest, config.length);
      const content = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.length },
          layers: [],
        }),
      );
      await metadata.putManifest(
        name,
        { digest: digestOf(content), mediaType: MediaType.ociManifest, content, summary: parseManifest(content) },
        ["v1"],
      );
    }
    usersOf(registry).grant({ user: "alice" }, "bulk/*", ["pull"]);
    const page = await freshPage();
    await logIn(page, alice);
    await page.getByText("Page 1 of 2 · 32 in all").waitFor();
    expect(await page.locator("tbody th").count()).toBe(25);
    expect(await page.locator("tbody th").first().textContent()).toBe("bulk/r00");
    await page.getByRole("link", { name: "Next →" }).click();
    await page.getByText("Page 2 of 2 · 32 in all").waitFor();
    expect(await page.locator("tbody th").allTextContents()).toEqual([
      "bulk/r25",
      "bulk/r26",
      "bulk/r27",
      "bulk/r28",
      "bulk/r29",
      "team/app",
      "team/multi",
    ]);
    await page.getByRole("link", { name: "← Previous" }).click();
    await page.getByText("Page 1 of 2 · 32 in all").waitFor();
    await page.close();
  }, 120_000);
});
