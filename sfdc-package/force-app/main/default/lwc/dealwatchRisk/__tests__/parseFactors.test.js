import { parseFactors, formatImpact, categoryForScore } from "../parseFactors";

const SAMPLE = [
  "Risk factors:",
  "- No activity for 21 days (+14)",
  "- Stage unchanged for 40 days (+9)",
  "- Discount above segment norm (-3)",
  "Recommended actions:",
  "- Book a call with the economic buyer this week",
  "- Send the revised proposal",
  "Model v3 · data of 2026-11-30"
].join("\n");

describe("parseFactors", () => {
  it("reads both sections and the footer", () => {
    expect(parseFactors(SAMPLE)).toEqual({
      factors: [
        { text: "No activity for 21 days", impact: 14 },
        { text: "Stage unchanged for 40 days", impact: 9 },
        { text: "Discount above segment norm", impact: -3 }
      ],
      actions: [
        { text: "Book a call with the economic buyer this week" },
        { text: "Send the revised proposal" }
      ],
      footer: "Model v3 · data of 2026-11-30"
    });
  });

  it("accepts empty sections", () => {
    expect(parseFactors("Risk factors:\nRecommended actions:\n")).toEqual({
      factors: [],
      actions: [],
      footer: null
    });
    expect(
      parseFactors("Risk factors:\nRecommended actions:\n- Call them\nModel v3")
    ).toEqual({
      factors: [],
      actions: [{ text: "Call them" }],
      footer: "Model v3"
    });
    expect(
      parseFactors(
        "Risk factors:\n- Open for 140 days (+14)\nRecommended actions:"
      )
    ).toEqual({
      factors: [{ text: "Open for 140 days", impact: 14 }],
      actions: [],
      footer: null
    });
  });

  it("reads negative, zero and large impacts", () => {
    const { factors } = parseFactors(
      "Risk factors:\n- A (-12)\n- B (+0)\n- C (+100)\n- D (\u22127)\nRecommended actions:"
    );
    expect(factors.map((f) => f.impact)).toEqual([-12, 0, 100, -7]);
  });

  it("keeps parentheses inside a factor's text", () => {
    const { factors } = parseFactors(
      "Risk factors:\n- Industry: EdTech (K-12) (+7)\nRecommended actions:"
    );
    expect(factors).toEqual([{ text: "Industry: EdTech (K-12)", impact: 7 }]);
  });

  it("ignores malformed lines", () => {
    const text = [
      "Some preamble the parser does not know",
      "- a dash line before any header (+5)",
      "Risk factors:",
      "- no impact at all",
      "- an unsigned impact (14)",
      "- a word instead of a number (+many)",
      "not an item line (+3)",
      "",
      "- Real factor (+2)",
      "Recommended actions:",
      "-missing space after the dash",
      "- Real action"
    ].join("\n");
    expect(parseFactors(text)).toEqual({
      factors: [{ text: "Real factor", impact: 2 }],
      actions: [{ text: "Real action" }],
      footer: null
    });
  });

  it("handles Windows line endings and stray spaces", () => {
    const text =
      "Risk factors:\r\n  - Slow replies (+4)  \r\nRecommended actions:\r\n- Chase\r\nModel v2";
    expect(parseFactors(text)).toEqual({
      factors: [{ text: "Slow replies", impact: 4 }],
      actions: [{ text: "Chase" }],
      footer: "Model v2"
    });
  });

  it("returns empty results for nothing", () => {
    const empty = { factors: [], actions: [], footer: null };
    expect(parseFactors(null)).toEqual(empty);
    expect(parseFactors(undefined)).toEqual(empty);
    expect(parseFactors("")).toEqual(empty);
    expect(parseFactors("   \n ")).toEqual(empty);
    expect(parseFactors(42)).toEqual(empty);
  });
});

describe("formatImpact", () => {
  it("signs the points", () => {
    expect(formatImpact(14)).toBe("+14");
    expect(formatImpact(-3)).toBe("\u22123");
    expect(formatImpact(0)).toBe("0");
  });
});

describe("categoryForScore", () => {
  it("uses Dealwatch's bands", () => {
    expect([0, 25, 26, 50, 51, 75, 76, 100].map(categoryForScore)).toEqual([
      "Low",
      "Low",
      "Medium",
      "Medium",
      "High",
      "High",
      "Critical",
      "Critical"
    ]);
    expect(categoryForScore(null)).toBeNull();
    expect(categoryForScore(Number.NaN)).toBeNull();
  });
});
