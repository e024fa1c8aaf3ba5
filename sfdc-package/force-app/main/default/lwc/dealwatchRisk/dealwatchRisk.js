import { LightningElement, api, wire } from "lwc";
import {
  getRecord,
  getFieldValue,
  notifyRecordUpdateAvailable
} from "lightning/uiRecordApi";
import { ShowToastEvent } from "lightning/platformShowToastEvent";
import refreshScore from "@salesforce/apex/DealwatchRiskController.refreshScore";
import RISK_SCORE from "@salesforce/schema/Opportunity.Risk_Score__c";
import RISK_CATEGORY from "@salesforce/schema/Opportunity.Risk_Category__c";
import RISK_FACTORS from "@salesforce/schema/Opportunity.Risk_Factors__c";
import RISK_UPDATED from "@salesforce/schema/Opportunity.Risk_Updated__c";
import WIN_PROBABILITY from "@salesforce/schema/Opportunity.Win_Probability__c";
import { parseFactors, formatImpact, categoryForScore } from "./parseFactors";

const FIELDS = [
  RISK_SCORE,
  RISK_CATEGORY,
  RISK_FACTORS,
  RISK_UPDATED,
  WIN_PROBABILITY
];

const CATEGORY_CLASS = {
  Low: "dw-badge dw-badge_low",
  Medium: "dw-badge dw-badge_medium",
  High: "dw-badge dw-badge_high",
  Critical: "dw-badge dw-badge_critical"
};

/** The message of an Apex or UI API error, whatever shape it came in. */
function errorMessage(error) {
  if (!error) {
    return "Unknown error";
  }
  const body = error.body;
  if (Array.isArray(body)) {
    return body.map((e) => e.message).join(", ");
  }
  if (body && typeof body.message === "string" && body.message) {
    return body.message;
  }
  if (typeof error.message === "string" && error.message) {
    return error.message;
  }
  return "Unknown error";
}

export default class DealwatchRisk extends LightningElement {
  @api recordId;

  record;
  loadError;
  isRefreshing = false;

  @wire(getRecord, { recordId: "$recordId", fields: FIELDS })
  wiredRecord({ data, error }) {
    if (data) {
      this.record = data;
      this.loadError = undefined;
    } else if (error) {
      this.record = undefined;
      this.loadError = errorMessage(error);
    }
  }

  get isLoading() {
    return !this.record && !this.loadError;
  }

  get score() {
    const value = this.record ? getFieldValue(this.record, RISK_SCORE) : null;
    return typeof value === "number" ? Math.round(value) : null;
  }

  get updated() {
    return this.record ? getFieldValue(this.record, RISK_UPDATED) : null;
  }

  /** Risk_Updated__c as epoch milliseconds, for lightning-relative-date-time. */
  get updatedTime() {
    const time = this.updated ? Date.parse(this.updated) : NaN;
    return Number.isNaN(time) ? null : time;
  }

  get hasUpdated() {
    return this.updatedTime !== null;
  }

  /** Never scored: neither a score nor a scoring time. */
  get isEmpty() {
    return Boolean(this.record) && this.score === null && !this.updated;
  }

  get hasScore() {
    return Boolean(this.record) && !this.isEmpty;
  }

  get category() {
    const value = this.record
      ? getFieldValue(this.record, RISK_CATEGORY)
      : null;
    return CATEGORY_CLASS[value] ? value : categoryForScore(this.score);
  }

  get categoryClass() {
    return CATEGORY_CLASS[this.category] || "dw-badge";
  }

  get scoreText() {
    return this.score === null ? "–" : String(this.score);
  }

  get parsed() {
    return parseFactors(
      this.record ? getFieldValue(this.record, RISK_FACTORS) : null
    );
  }

  get factors() {
    return this.parsed.factors.map((factor, index) => ({
      key: `factor-${index}`,
      text: factor.text,
      impactText: formatImpact(factor.impact),
      impactClass:
        factor.impact > 0
          ? "dw-impact dw-impact_up"
          : factor.impact < 0
            ? "dw-impact dw-impact_down"
            : "dw-impact"
    }));
  }

  get hasFactors() {
    return this.factors.length > 0;
  }

  get actions() {
    return this.parsed.actions.map((action, index) => ({
      key: `action-${index}`,
      text: action.text
    }));
  }

  get hasActions() {
    return this.actions.length > 0;
  }

  get footer() {
    return this.parsed.footer;
  }

  get winProbability() {
    const value = this.record
      ? getFieldValue(this.record, WIN_PROBABILITY)
      : null;
    return typeof value === "number" ? value / 100 : null;
  }

  get hasWinProbability() {
    return this.winProbability !== null;
  }

  get refreshLabel() {
    return this.isRefreshing ? "Refreshing…" : "Refresh score";
  }

  async handleRefresh() {
    if (this.isRefreshing || !this.recordId) {
      return;
    }
    this.isRefreshing = true;
    try {
      await refreshScore({ opportunityId: this.recordId });
      // Dealwatch has written the new risk fields: have Lightning Data Service reload them.
      await notifyRecordUpdateAvailable([{ recordId: this.recordId }]);
    } catch (error) {
      this.dispatchEvent(
        new ShowToastEvent({
          title: "Dealwatch could not refresh the score",
          message: errorMessage(error),
          variant: "error"
        })
      );
    } finally {
      this.isRefreshing = false;
    }
  }
}
