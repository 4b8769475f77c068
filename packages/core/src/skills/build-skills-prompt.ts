/** The system-prompt section that lists skills: name, description and where SKILL.md is, never bodies. */

export interface SkillSummary {
  readonly name: string;
  readonly description: string;
  /** Absolute path of the skill's SKILL.md as the model sees it, e.g. `/skills/pdf/SKILL.md`. */
  readonly location: string;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Builds the skills section, sorted by name; returns "" when there are no skills. The model reads a
 * skill's SKILL.md (and its other files) with Read when a task matches its description.
 */
export function buildSkillsPrompt(skills: readonly SkillSummary[]): string {
  if (skills.length === 0) return "";
  const sorted = [...skills].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const entries = sorted.map(
    (skill) =>
      `<skill>\n<name>${escapeXml(skill.name)}</name>\n<description>${escapeXml(skill.description)}</description>\n<location>${escapeXml(skill.location)}</location>\n</skill>`,
  );
  return [
    "# Skills",
    "Skills are folders of instructions and resources for specific tasks. When a task matches a skill's description, read its SKILL.md with the Read tool before starting, then follow it; read the other files it mentions only when you need them.",
    "<available_skills>",
    ...entries,
    "</available_skills>",
  ].join("\n");
}
