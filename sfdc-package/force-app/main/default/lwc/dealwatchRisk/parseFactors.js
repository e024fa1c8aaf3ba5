/**
 * Reads Opportunity.Risk_Factors__c as Dealwatch writes it:
 *
 *   Risk factors:
 *   - No activity for 21 days (+14)
 *   - Discount above segment norm (-3)
 *   Recommended actions:
 *   - Book a call with the economic buyer this week
 *   Model v3 · data of 2026-11-30
 *
 * Factor lines end in a signed whole number of points in parentheses; either section may be
 * empty; one last free line (model and data date) may follow the actions. Lines that fit none of
 * this (a factor without its impact, text before the first header, blank lines) are ignored.
 */

const FACTORS_HEADER = "risk factors:";
const ACTIONS_HEADER = "recommended actions:";
// "- text (+14)": the impact is the last parenthesis, so the text may hold parentheses itself.
// U+2212 (minus sign) and U+2013 (en dash) count as minus, in case the text was retyped.
const FACTOR_LINE = /^(.*\S)\s*\(\s*([+\-\u2212\u2013])\s*(\d+)\s*\)$/;
const ITEM_PREFIX = /^[-\u2022*]\s+/;

/**
 * @param {string|null|undefined} text the field's value
 * @returns {{factors: {text: string, impact: number}[], actions: {text: string}[], footer: string|null}}
 */
export function parseFactors(text) {
  const result = { factors: [], actions: [], footer: null };
  if (typeof text !== "string" || text.trim() === "") {
    return result;
  }
  let section = null;
  for (const rawLine of text.split(/\r\n|\r|\n/)) {
    const line = rawLine.trim();
    if (line === "") {
      continue;
    }
    const lower = line.toLowerCase();
    if (lower === FACTORS_HEADER) {
      section = "factors";
      continue;
    }
    if (lower === ACTIONS_HEADER) {
      section = "actions";
      continue;
    }
    const isItem = ITEM_PREFIX.test(line);
    const item = line.replace(ITEM_PREFIX, "");
    if (section === "factors" && isItem) {
      const factor = parseFactor(item);
      if (factor) {
        result.factors.push(factor);
      }
    } else if (section === "actions" && isItem) {
      result.actions.push({ text: item });
      // A free line followed by more actions was no footer.
      result.footer = null;
    } else if (section === "actions") {
      // The free line after the actions (model and data date), if it stays the last line.
      result.footer = line;
    }
  }
  return result;
}

function parseFactor(item) {
  const match = FACTOR_LINE.exec(item);
  if (!match) {
    return null;
  }
  const magnitude = Number.parseInt(match[3], 10);
  const negative = match[2] !== "+";
  return { text: match[1], impact: negative ? -magnitude : magnitude };
}

/** "+14", "−3" (a true minus sign), "0" for no impact. */
export function formatImpact(impact) {
  if (impact > 0) {
    return `+${impact}`;
  }
  if (impact < 0) {
    return `\u2212${Math.abs(impact)}`;
  }
  return "0";
}

/** Dealwatch's bands: Low 0–25, Medium 26–50, High 51–75, Critical 76–100. */
export function categoryForScore(score) {
  if (typeof score !== "number" || Number.isNaN(score)) {
    return null;
  }
  if (score <= 25) {
    return "Low";
  }
  if (score <= 50) {
    return "Medium";
  }
  if (score <= 75) {
    return "High";
  }
  return "Critical";
}
