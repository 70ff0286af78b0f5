import { describe, expect, it } from "vitest";
import { printValue, renderTemplate, Template, TemplateError } from "../src/output/template.js";

const inspect = {
  Id: "sha256:abc",
  RepoTags: ["busybox:latest", "busybox:1.36"],
  Config: { Cmd: ["/bin/sh", "-c", "echo hi"], Env: null, Labels: { b: "2", a: "1" }, User: "" },
  Size: 4263936,
  Os: "linux",
};

describe("Go template subset", () => {
  it("prints fields, nested fields and the dot", () => {
    expect(renderTemplate("{{.Id}} {{.Os}}", inspect)).toBe("sha256:abc linux");
    expect(renderTemplate("{{.Config.Cmd}}", inspect)).toBe("[/bin/sh -c echo hi]");
    expect(renderTemplate("{{.Config.Labels}}", inspect)).toBe("map[a:1 b:2]");
    expect(renderTemplate("{{.Config.Env}}", inspect)).toBe("<nil>");
    expect(renderTemplate("{{.Size}}", inspect)).toBe("4263936");
    expect(renderTemplate("{{.Missing}}", inspect)).toBe("<no value>");
    expect(renderTemplate("x{{.}}y", "dot")).toBe("xdoty");
  });

  it("runs json and the string functions, as calls and in pipelines", () => {
    expect(renderTemplate("{{json .Config.Cmd}}", inspect)).toBe('["/bin/sh","-c","echo hi"]');
    expect(renderTemplate("{{.Config.Cmd | json}}", inspect)).toBe('["/bin/sh","-c","echo hi"]');
    expect(renderTemplate("{{json .}}", { a: "<b>&" })).toBe('{"a":"<b>&"}');
    expect(renderTemplate("{{upper .Os}} {{.Os | lower}} {{title .Os}}", inspect)).toBe("LINUX linux Linux");
    expect(renderTemplate('{{join .RepoTags ", "}}', inspect)).toBe("busybox:latest, busybox:1.36");
    expect(renderTemplate('{{index .RepoTags 1}} {{index .Config.Labels "a"}}', inspect)).toBe("busybox:1.36 1");
    expect(renderTemplate("{{len .RepoTags}}", inspect)).toBe("2");
    expect(renderTemplate("{{truncate .Id 6}}|{{pad .Os 1 2}}|", inspect)).toBe("sha256| linux  |");
    expect(renderTemplate('{{split "a:b" ":"}}', {})).toBe("[a b]");
    expect(renderTemplate('{{printf "%s=%d" .Os .Size}}', inspect)).toBe("linux=4263936");
    expect(renderTemplate("{{println .Os}}", inspect)).toBe("linux\n");
    expect(renderTemplate("{{json (index .RepoTags 0)}}", inspect)).toBe('"busybox:latest"');
  });

  it("runs if/else, else if, range and with blocks, with whitespace trimming", () => {
    expect(renderTemplate("{{if .Config.User}}user{{else}}root{{end}}", inspect)).toBe("root");
    expect(renderTemplate('{{if eq .Os "windows"}}w{{else if eq .Os "linux"}}l{{else}}?{{end}}', inspect)).toBe("l");
    expect(renderTemplate("{{range .RepoTags}}[{{.}}]{{end}}", inspect)).toBe("[busybox:latest][busybox:1.36]");
    expect(renderTemplate("{{range .Nothing}}x{{else}}empty{{end}}", inspect)).toBe("empty");
    expect(renderTemplate("{{with .Config}}{{.Cmd}}{{end}}", inspect)).toBe("[/bin/sh -c echo hi]");
    expect(renderTemplate("a  {{- .Os -}}  b", inspect)).toBe("alinuxb");
    expect(renderTemplate("{{/* a comment */}}ok", inspect)).toBe("ok");
    expect(renderTemplate("{{if and .Os (not .Config.User)}}yes{{end}}", inspect)).toBe("yes");
  });

  it("rejects templates that do not parse", () => {
    expect(() => new Template("{{.Id")).toThrow(TemplateError);
    expect(() => new Template("{{nosuch .Id}}")).toThrow(/function "nosuch" not defined/);
    expect(() => new Template("{{if .Id}}x")).toThrow(/unexpected EOF/);
    expect(() => new Template("{{end}}")).toThrow(/unexpected \{\{end\}\}/);
    try {
      new Template("{{.Id");
    } catch (error) {
      expect((error as TemplateError).parse).toBe(true);
    }
  });

  it("fails on unknown fields of a strict (row) context, as docker's typed contexts do", () => {
    const template = new Template("{{.Repository}} {{.Nope}}", true);
    expect(() => template.execute({ Repository: "busybox" })).toThrow(/can't evaluate field Nope/);
    expect(() => renderTemplate("{{.Os.Name}}", inspect)).toThrow(/can't evaluate field Name in type string/);
  });

  it("prints values as Go's %v", () => {
    expect(printValue([1, "a", true, null])).toBe("[1 a true <nil>]");
    expect(printValue({ z: [], a: {} })).toBe("map[a:map[] z:[]]");
  });
});
