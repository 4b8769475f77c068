import { describe, expect, it } from "vitest";
import { MAX_SKILL_UPLOAD_FILES, toSkillUpload } from "./skill-upload.js";

const file = (filename: string, text = "x") => ({ filename, content: Buffer.from(text) });

describe("toSkillUpload", () => {
  it("strips the shared top-level folder and keeps paths below it", () => {
    expect(toSkillUpload([file("my-skill/SKILL.md"), file("my-skill/examples/a.md")])).toEqual({
      directoryName: "my-skill",
      files: [
        { path: "SKILL.md", content: Buffer.from("x") },
        { path: "examples/a.md", content: Buffer.from("x") },
      ],
    });
    expect(toSkillUpload([file("SKILL.md")]).files.map((each) => each.path)).toEqual(["SKILL.md"]);
  });

  it.each([
    ["no files", []],
    ["an absolute path", [file("/etc/passwd")]],
    ["a .. segment", [file("skill/SKILL.md"), file("skill/../../x")]],
    ["a . segment", [file("skill/./SKILL.md")]],
    ["an empty segment", [file("skill//SKILL.md")]],
    ["a backslash", [file("skill\\..\\x")]],
    ["a NUL", [file("skill/a\u0000b")]],
    ["two top-level folders", [file("a/SKILL.md"), file("b/x.md")]],
    ["files inside and outside a folder", [file("SKILL.md"), file("a/x.md")]],
    ["the same path twice", [file("a/SKILL.md"), file("a/SKILL.md")]],
    ["too many files", Array.from({ length: MAX_SKILL_UPLOAD_FILES + 1 }, (_, index) => file(`a/${index}`))],
  ])("refuses %s with 400 skill_invalid", (_, files) => {
    expect(() => toSkillUpload(files)).toThrow(
      expect.objectContaining({ status: 400, code: "skill_invalid" }),
    );
  });

  it("marks scripts/ and #! files executable, unless executable_files names them", () => {
    const uploaded = [
      file("s/SKILL.md"),
      file("s/run.sh", "#!/bin/sh\n"),
      file("s/scripts/a.py"),
      file("s/bin/tool"),
    ];
    const executable = (names?: Set<string>) =>
      toSkillUpload(uploaded, names)
        .files.filter((each) => each.isExecutable === true)
        .map((each) => each.path);
    expect(executable()).toEqual(["run.sh", "scripts/a.py"]);
    expect(executable(new Set(["s/bin/tool"]))).toEqual(["bin/tool"]);
    expect(executable(new Set())).toEqual([]);
  });
});
