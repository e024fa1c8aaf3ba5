import { createElement } from "lwc";
import DealwatchRisk from "c/dealwatchRisk";
import { getRecord, notifyRecordUpdateAvailable } from "lightning/uiRecordApi";
import refreshScore from "@salesforce/apex/DealwatchRiskController.refreshScore";

jest.mock(
  "@salesforce/apex/DealwatchRiskController.refreshScore",
  () => ({ default: jest.fn() }),
  { virtual: true }
);

const RECORD_ID = "006000000000001AAA";

const FACTORS = [
  "Risk factors:",
  "- No activity for 21 days (+14)",
  "- Stage unchanged for 40 days (+9)",
  "- Discount above segment norm (-3)",
  "Recommended actions:",
  "- Book a call with the economic buyer this week",
  "- Send the revised proposal",
  "Model v3 · data of 2026-11-30"
].join("\n");

function opportunity(values) {
  const fields = {};
  for (const name of [
    "Risk_Score__c",
    "Risk_Category__c",
    "Risk_Factors__c",
    "Risk_Updated__c",
    "Win_Probability__c"
  ]) {
    const value = Object.prototype.hasOwnProperty.call(values, name)
      ? values[name]
      : null;
    fields[name] = { value, displayValue: null };
  }
  return { apiName: "Opportunity", id: RECORD_ID, fields };
}

const SCORED = {
  Risk_Score__c: 72,
  Risk_Category__c: "High",
  Risk_Factors__c: FACTORS,
  Risk_Updated__c: "2026-11-30T09:15:00.000Z",
  Win_Probability__c: 34.5
};

/** Lets pending promises (the Apex call, re-rendering) settle. */
function flushPromises() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function mount() {
  const element = createElement("c-dealwatch-risk", { is: DealwatchRisk });
  element.recordId = RECORD_ID;
  document.body.appendChild(element);
  return element;
}

const $ = (element, selector) => element.shadowRoot.querySelector(selector);
const $$ = (element, selector) =>
  Array.from(element.shadowRoot.querySelectorAll(selector));

describe("c-dealwatch-risk", () => {
  afterEach(() => {
    while (document.body.firstChild) {
      document.body.removeChild(document.body.firstChild);
    }
    jest.clearAllMocks();
  });

  it("asks for the five Dealwatch fields of its record", async () => {
    mount();
    await flushPromises();
    const config = getRecord.getLastConfig();
    expect(config.recordId).toBe(RECORD_ID);
    expect(config.fields.map((f) => f.fieldApiName).sort()).toEqual([
      "Risk_Category__c",
      "Risk_Factors__c",
      "Risk_Score__c",
      "Risk_Updated__c",
      "Win_Probability__c"
    ]);
  });

  it("shows a loading line until the record arrives", () => {
    const element = mount();
    expect($(element, ".dw-loading")).not.toBeNull();
    expect($(element, ".dw-score")).toBeNull();
  });

  it("shows score, factors, actions, update time and win probability", async () => {
    const element = mount();
    getRecord.emit(opportunity(SCORED));
    await flushPromises();

    expect($(element, ".dw-score-value").textContent).toBe("72");
    expect($(element, ".dw-badge").textContent).toBe("High");

    const factors = $$(element, ".dw-factor");
    expect(
      factors.map((li) => li.querySelector(".dw-factor-text").textContent)
    ).toEqual([
      "No activity for 21 days",
      "Stage unchanged for 40 days",
      "Discount above segment norm"
    ]);
    const impacts = factors.map((li) => li.querySelector(".dw-impact"));
    expect(impacts.map((span) => span.textContent)).toEqual([
      "+14",
      "+9",
      "\u22123"
    ]);
    expect(impacts[0].classList).toContain("dw-impact_up");
    expect(impacts[2].classList).toContain("dw-impact_down");

    expect($$(element, ".dw-action").map((li) => li.textContent)).toEqual([
      "Book a call with the economic buyer this week",
      "Send the revised proposal"
    ]);
    expect($(element, ".dw-footer").textContent).toContain(
      "Model v3 · data of 2026-11-30"
    );

    expect($(element, ".dw-updated").textContent).toContain("Updated");
    expect($(element, "lightning-relative-date-time").value).toBe(
      Date.parse("2026-11-30T09:15:00.000Z")
    );
    const win = $(element, "lightning-formatted-number.dw-win-value");
    expect(win.value).toBeCloseTo(0.345);
    expect(win.formatStyle).toBe("percent");

    expect($(element, ".dw-empty")).toBeNull();
  });

  it.each([
    ["Low", 12, "dw-badge_low"],
    ["Medium", 40, "dw-badge_medium"],
    ["High", 63, "dw-badge_high"],
    ["Critical", 91, "dw-badge_critical"]
  ])("colours the %s badge", async (category, score, colourClass) => {
    const element = mount();
    getRecord.emit(
      opportunity({
        ...SCORED,
        Risk_Score__c: score,
        Risk_Category__c: category
      })
    );
    await flushPromises();

    const badge = $(element, ".dw-badge");
    expect(badge.textContent).toBe(category);
    expect(badge.classList).toContain(colourClass);
    const others = [
      "dw-badge_low",
      "dw-badge_medium",
      "dw-badge_high",
      "dw-badge_critical"
    ].filter((c) => c !== colourClass);
    for (const other of others) {
      expect(badge.classList).not.toContain(other);
    }
  });

  it("derives the category from the score when the picklist is empty", async () => {
    const element = mount();
    getRecord.emit(
      opportunity({ ...SCORED, Risk_Score__c: 80, Risk_Category__c: null })
    );
    await flushPromises();

    const badge = $(element, ".dw-badge");
    expect(badge.textContent).toBe("Critical");
    expect(badge.classList).toContain("dw-badge_critical");
  });

  it("shows the empty state when the record was never scored", async () => {
    const element = mount();
    getRecord.emit(opportunity({}));
    await flushPromises();

    expect($(element, ".dw-empty")).not.toBeNull();
    expect($(element, ".dw-empty").textContent).toContain("Not scored yet");
    expect($(element, ".dw-score")).toBeNull();
    expect($(element, ".dw-badge")).toBeNull();
    expect($(element, "lightning-button.dw-refresh")).not.toBeNull();
  });

  it("shows a scored record with empty sections without lists", async () => {
    const element = mount();
    getRecord.emit(
      opportunity({
        ...SCORED,
        Risk_Factors__c: "Risk factors:\nRecommended actions:\n",
        Win_Probability__c: null
      })
    );
    await flushPromises();

    expect($(element, ".dw-score-value").textContent).toBe("72");
    expect($(element, ".dw-factors")).toBeNull();
    expect($(element, ".dw-actions")).toBeNull();
    expect($(element, ".dw-win")).toBeNull();
  });

  it("says when the fields cannot be read", async () => {
    const element = mount();
    getRecord.error(
      { message: "No access to field Risk_Score__c" },
      403,
      "Forbidden"
    );
    await flushPromises();

    const error = $(element, ".dw-error");
    expect(error).not.toBeNull();
    expect(error.textContent).toContain("No access to field Risk_Score__c");
  });

  it("refreshes through Apex with a spinner, then reloads the record", async () => {
    let finish;
    refreshScore.mockImplementation(
      () =>
        new Promise((resolve) => {
          finish = resolve;
        })
    );
    const element = mount();
    getRecord.emit(opportunity(SCORED));
    await flushPromises();
    expect($(element, "lightning-spinner")).toBeNull();

    $(element, "lightning-button.dw-refresh").click();
    await flushPromises();

    expect(refreshScore).toHaveBeenCalledTimes(1);
    expect(refreshScore).toHaveBeenCalledWith({ opportunityId: RECORD_ID });
    expect($(element, "lightning-spinner")).not.toBeNull();
    expect($(element, "lightning-button.dw-refresh").disabled).toBe(true);

    // A second click while running does nothing.
    $(element, "lightning-button.dw-refresh").click();
    expect(refreshScore).toHaveBeenCalledTimes(1);

    finish();
    await flushPromises();

    expect(notifyRecordUpdateAvailable).toHaveBeenCalledWith([
      { recordId: RECORD_ID }
    ]);
    expect($(element, "lightning-spinner")).toBeNull();
    expect($(element, "lightning-button.dw-refresh").disabled).toBe(false);
  });

  it("shows an error toast when the refresh fails", async () => {
    refreshScore.mockRejectedValue({
      body: { message: "Dealwatch could not refresh the score: HTTP 502" },
      status: 500
    });
    const element = mount();
    const toast = jest.fn();
    element.addEventListener("lightning__showtoast", toast);
    getRecord.emit(opportunity(SCORED));
    await flushPromises();

    $(element, "lightning-button.dw-refresh").click();
    await flushPromises();

    expect(toast).toHaveBeenCalledTimes(1);
    const detail = toast.mock.calls[0][0].detail;
    expect(detail.variant).toBe("error");
    expect(detail.title).toBe("Dealwatch could not refresh the score");
    expect(detail.message).toBe(
      "Dealwatch could not refresh the score: HTTP 502"
    );
    expect(notifyRecordUpdateAvailable).not.toHaveBeenCalled();
    expect($(element, "lightning-spinner")).toBeNull();
  });
});
