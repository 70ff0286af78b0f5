import { describe, expect, it } from "vitest";
import {
  HISTORY_FORMAT,
  type HistoryItem,
  historyRows,
  IMAGES_DIGESTS_TABLE,
  IMAGES_FORMAT,
  type ImageSummary,
  imageRows,
} from "../src/commands/image.js";
import { formatList } from "../src/output/formatter.js";
import { alignColumns } from "../src/output/tabwriter.js";

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);
const ago = (seconds: number) => Math.floor(NOW / 1000) - seconds;

const BUSYBOX_ID = "sha256:a416a98b71e224a31ee99cff8e16063554498227d2b696152a9c3e0aa65e5824";
const DIGEST = "sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79";
const images: ImageSummary[] = [
  {
    Id: BUSYBOX_ID,
    RepoTags: ["busybox:latest", "127.0.0.1:5000/tools/busybox:1.36"],
    RepoDigests: [`busybox@${DIGEST}`],
    Created: ago(3600),
    Size: 4_263_936,
    SharedSize: -1,
    Containers: -1,
  },
  {
    Id: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    RepoTags: [],
    RepoDigests: [],
    Created: ago(3 * 86400),
    Size: 1234,
    SharedSize: -1,
  },
  {
    Id: "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
    RepoTags: [],
    RepoDigests: [`127.0.0.1:5000/app@${DIGEST}`],
    Created: ago(30),
    Size: 77_800_000,
  },
];

describe("tabwriter (Go text/tabwriter rules, docker's 10/1/3 table settings)", () => {
  it("pads cells to the widest cell plus 3, at least 10, and leaves the last cell alone", () => {
    expect(alignColumns("A\tBB\tC\nlonger-cell\tx\tlast\n")).toBe("A             BB        C\nlonger-cell   x         last\n");
  });

  it("aligns each block of consecutive lines separately", () => {
    const text = " Version:\t1\n API version:\t2\n\nServer:\n  Version:\t3\n";
    expect(alignColumns(text, { minWidth: 20, padding: 1 })).toBe(
      " Version:           1\n API version:       2\n\nServer:\n  Version:          3\n",
    );
  });

  it("counts characters, not bytes", () => {
    expect(alignColumns("…ab\tx\nabcd\ty\n", { minWidth: 0, padding: 1 })).toBe("…ab  x\nabcd y\n");
  });
});

describe("images output", () => {
  const rows = imageRows(images, { now: NOW });

  it("lists one row per repository and tag, newest first, with docker's columns", () => {
    const lines = formatList(rows, IMAGES_FORMAT, {}).split("\n");
    expect(lines[0]).toBe("REPOSITORY                     TAG       IMAGE ID       CREATED             SIZE");
    expect(lines[1]).toBe("127.0.0.1:5000/app             <none>    fedcba987654   30 seconds ago      77.8MB");
    expect(lines[2]).toBe("busybox                        latest    a416a98b71e2   About an hour ago   4.26MB");
    expect(lines[3]).toBe("127.0.0.1:5000/tools/busybox   1.36      a416a98b71e2   About an hour ago   4.26MB");
    expect(lines[4]).toBe("<none>                         <none>    0123456789ab   3 days ago          1.23kB");
    expect(lines[5]).toBe("");
  });

  it("shows digests with --digests and full IDs with --no-trunc", () => {
    const withDigests = imageRows(images, { now: NOW, digests: true, noTrunc: true });
    const out = formatList(withDigests, { ...IMAGES_FORMAT, table: IMAGES_DIGESTS_TABLE }, {});
    const lines = out.split("\n");
    expect(lines[0]).toMatch(/^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(lines[1]).toContain(`127.0.0.1:5000/app`);
    expect(lines[1]).toContain(`<none>    ${DIGEST}`);
    expect(lines[2]).toMatch(new RegExp(`^busybox\\s+latest\\s+${DIGEST}\\s+${BUSYBOX_ID}\\s+About an hour ago\\s+4.26MB$`));
    expect(lines[3]).toMatch(/^127\.0\.0\.1:5000\/tools\/busybox\s+1\.36\s+<none>\s+sha256:a416/);
  });

  it("prints IDs only with -q, one per row as docker does", () => {
    expect(formatList(rows, IMAGES_FORMAT, { quiet: true })).toBe("fedcba987654\na416a98b71e2\na416a98b71e2\n0123456789ab\n");
  });

  it("applies --format templates: plain, table and json", () => {
    expect(formatList(rows, IMAGES_FORMAT, { format: "{{.Repository}}:{{.Tag}}" })).toBe(
      "127.0.0.1:5000/app:<none>\nbusybox:latest\n127.0.0.1:5000/tools/busybox:1.36\n<none>:<none>\n",
    );
    expect(formatList(rows.slice(1, 2), IMAGES_FORMAT, { format: "table {{.ID}}\\t{{.Size}}" })).toBe(
      "IMAGE ID       SIZE\na416a98b71e2   4.26MB\n",
    );
    const json = JSON.parse(formatList(rows.slice(1, 2), IMAGES_FORMAT, { format: "{{json .}}" }));
    expect(json).toEqual({
      Containers: "N/A",
      CreatedAt: expect.stringMatching(/^2024-05-01 \d\d:00:00 [+-]\d{4} /),
      CreatedSince: "About an hour ago",
      Digest: "<none>",
      ID: "a416a98b71e2",
      Repository: "busybox",
      SharedSize: "N/A",
      Size: "4.26MB",
      Tag: "latest",
      UniqueSize: "N/A",
      VirtualSize: "4.26MB",
    });
    expect(formatList(rows.slice(1, 2), IMAGES_FORMAT, { format: "json" })).toBe(
      formatList(rows.slice(1, 2), IMAGES_FORMAT, { format: "{{json .}}" }),
    );
  });

  it("prints the header alone when there is nothing to list", () => {
    expect(formatList([], IMAGES_FORMAT, {})).toBe("REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
  });

  it("fails on a field images do not have", () => {
    expect(() => formatList(rows, IMAGES_FORMAT, { format: "{{.Nope}}" })).toThrow(/can't evaluate field Nope/);
  });
});

describe("history output", () => {
  const items: HistoryItem[] = [
    {
      Id: BUSYBOX_ID,
      Created: ago(7200),
      CreatedBy: '/bin/sh -c #(nop)  CMD ["sh"]\tand a very long tail of text',
      Tags: ["busybox:latest"],
      Size: 0,
      Comment: "",
    },
    {
      Id: "<missing>",
      Created: ago(7300),
      CreatedBy: "/bin/sh -c #(nop) ADD file:abc in / ",
      Tags: null,
      Size: 4_263_936,
      Comment: "Imported from -",
    },
  ];

  it("shows docker's columns, truncating CREATED BY to 45 characters", () => {
    const lines = formatList(historyRows(items, { now: NOW }), HISTORY_FORMAT, {}).split("\n");
    expect(lines[0]).toBe("IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT");
    expect(lines[1]).toBe('a416a98b71e2   2 hours ago   /bin/sh -c #(nop)  CMD ["sh"] and a very lon…   0B        ');
    expect(lines[2]).toBe("<missing>      2 hours ago   /bin/sh -c #(nop) ADD file:abc in /             4.26MB    Imported from -");
  });

  it("prints raw values with --human=false, everything with --no-trunc, IDs with -q", () => {
    const raw = historyRows(items, { now: NOW, human: false, noTrunc: true });
    expect(raw[1]?.Size).toBe("4263936");
    expect(raw[1]?.CreatedSince).toMatch(/^2024-05-01T\d\d:\d\d:20(Z|[+-]\d\d:\d\d)$/);
    expect(raw[0]?.CreatedBy).toBe('/bin/sh -c #(nop)  CMD ["sh"] and a very long tail of text');
    expect(raw[0]?.ID).toBe(BUSYBOX_ID);
    expect(formatList(historyRows(items, { now: NOW }), HISTORY_FORMAT, { quiet: true })).toBe("a416a98b71e2\n<missing>\n");
  });
});
